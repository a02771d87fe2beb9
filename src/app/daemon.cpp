#include "waypoint/app/daemon.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "waypoint/app/control_commands.hpp"
#include "waypoint/app/control_server.hpp"
#include "waypoint/app/dispatcher.hpp"
#include "waypoint/app/journal_log.hpp"
#include "waypoint/app/local_addresses.hpp"
#include "waypoint/app/metrics.hpp"
#include "waypoint/app/route_secret.hpp"
#include "waypoint/proxy/local_identity.hpp"
#include "waypoint/proxy/proxy.hpp"
#include "waypoint/registrar/registrar.hpp"
#include "waypoint/transaction/transaction_layer.hpp"
#include "waypoint/transport/self_signed_certificate.hpp"
#include "waypoint/transport/transports.hpp"

namespace waypoint::app {

namespace asio = boost::asio;

namespace {

// Every logger's level; "warning" is spdlog's "warn".
void setLogLevel(const std::string& level) {
  spdlog::set_level(spdlog::level::from_str(level == "warning" ? "warn" : level));
}

}  // namespace

void configureLogging(const LogConfig& log) {
  auto logger = spdlog::stderr_logger_st("waypointd");
  if (isJournalStream(STDERR_FILENO, std::getenv("JOURNAL_STREAM"))) {
    logger->set_formatter(journalFormatter());
  } else {
    logger->set_pattern(log.pattern);
  }
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  setLogLevel(log.level);
}

namespace {

// boundEndpoints() lists one endpoint per listen() call, in config order, so the i-th
// bound endpoint is the i-th configured listener (whose advertised name it takes).
proxy::LocalIdentity identityFrom(const Config& config, const transport::Transports& transports) {
  proxy::LocalIdentity identity;
  for (const auto& name : config.names) identity.addName(name);
  for (const auto& domain : config.domains) identity.addName(domain);
  const auto bound = transports.boundEndpoints();
  bool v4Wildcard = false;
  bool v6Wildcard = false;
  for (std::size_t i = 0; i < bound.size(); ++i) {
    const auto& [protocol, endpoint] = bound[i];
    const auto advertise =
        i < config.listeners.size() ? config.listeners[i].advertise : std::nullopt;
    identity.addListener(protocol, endpoint, advertise);
    if (endpoint.address.is_unspecified()) {
      (endpoint.address.is_v6() ? v6Wildcard : v4Wildcard) = true;
    }
  }
  if (v4Wildcard || v6Wildcard) {
    addMachineAddresses(identity, v4Wildcard, v6Wildcard);
    identity.setSourceResolver(sourceAddressToward);
  }
  return identity;
}

// Logs the flood bans that are over, once each.
void sweepBans(auth::SourceGuard& guard, transaction::TimePoint now) {
  for (const auto& ended : guard.sweep(now)) {
    spdlog::warn("flood: ban of {} ended ({} messages dropped)", transport::toString(ended.source),
                 ended.dropped);
  }
}

// Keeps one Asio timer on the earliest deadline of the proxy (Timer C and its transaction
// layer), of the location store and of the flood bans. It is re-armed only when an earlier deadline
// appears, so most transactions and registrations cost no timer syscall.
class TimerDriver {
 public:
  TimerDriver(asio::io_context& io, const transaction::Clock& clock, proxy::Proxy& proxy,
              registrar::Registrar& registrar, auth::SourceGuard& guard)
      : timer_(io), clock_(clock), proxy_(proxy), registrar_(registrar), guard_(guard) {}

  void rearm() {
    auto next = proxy_.nextExpiry();
    for (const auto other : {registrar_.store().nextExpiry(), guard_.nextExpiry()}) {
      if (other && (!next || *other < *next)) next = other;
    }
    if (!next || (armed_ && *next >= armedFor_)) return;
    armed_ = true;
    armedFor_ = *next;
    timer_.expires_at(*next);
    timer_.async_wait([this](boost::system::error_code ec) {
      if (ec == asio::error::operation_aborted) return;
      armed_ = false;
      proxy_.fireDueTimers();
      registrar_.expire(clock_.now());
      sweepBans(guard_, clock_.now());
      rearm();
    });
  }
  void stop() { timer_.cancel(); }

 private:
  asio::steady_timer timer_;
  const transaction::Clock& clock_;
  proxy::Proxy& proxy_;
  registrar::Registrar& registrar_;
  auth::SourceGuard& guard_;
  bool armed_ = false;
  transaction::TimePoint armedFor_{};
};

// Pings systemd's watchdog at half its interval when the unit asks for one.
class Watchdog {
 public:
  explicit Watchdog(asio::io_context& io) : timer_(io) {
    std::uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
      interval_ = std::chrono::microseconds(usec / 2);
      arm();
    }
  }
  void stop() { timer_.cancel(); }

 private:
  void arm() {
    timer_.expires_after(interval_);
    timer_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      sd_notify(0, "WATCHDOG=1");
      arm();
    });
  }
  asio::steady_timer timer_;
  std::chrono::microseconds interval_{0};
};

bool usesTls(const Config& config) {
  return config.tls || std::any_of(config.listeners.begin(), config.listeners.end(),
                                   [](const transport::ListenerConfig& listener) {
                                     return listener.tls.has_value();
                                   });
}

// The names the self-signed certificate is made for: what peers call this server.
std::vector<std::string> certificateNames(const Config& config) {
  std::vector<std::string> names = config.names;
  names.insert(names.end(), config.domains.begin(), config.domains.end());
  for (const auto& listener : config.listeners) {
    const auto address = transport::parseIpAddress(listener.address);
    if (address && !address->is_unspecified()) names.push_back(listener.address);
  }
  if (names.empty()) names.emplace_back("localhost");
  return names;
}

// TLS listeners and outgoing TLS: the configured certificate, or the self-signed one kept
// in the state directory (made at first start) where none is configured.
void startTls(const Config& config, transport::Transports& transports,
              std::vector<transport::ListenerConfig>& listeners) {
  if (!usesTls(config)) return;
  const auto names = certificateNames(config);
  std::optional<transport::TlsSettings> selfSigned;  // made (or found) once, logged once
  auto withCertificate = [&](transport::TlsSettings settings) {
    if (!settings.certificateFile.empty()) return settings;
    if (!selfSigned)
      selfSigned = transport::withSelfSignedFallback(settings, config.stateDir, names);
    settings.certificateFile = selfSigned->certificateFile;
    settings.privateKeyFile = selfSigned->privateKeyFile;
    return settings;
  };
  for (auto& listener : listeners) {
    if (listener.tls) listener.tls = withCertificate(*listener.tls);
  }
  transports.useClientTls(withCertificate(config.tls.value_or(transport::TlsSettings{})));
}

// Each top-level section of the file as text, to tell which ones a reload changes.
std::map<std::string, std::string> sectionsOf(const std::string& path) {
  std::map<std::string, std::string> sections;
  const YAML::Node root = YAML::LoadFile(path);
  for (const auto& entry : root) {
    sections[entry.first.as<std::string>()] = YAML::Dump(entry.second);
  }
  return sections;
}

// Sections a reload applies: the routing rules (swapped in one step, live transactions
// keep theirs), the flood limits (running bans stay) and the log level and pattern. The
// users file and the TLS certificate files are read again on every reload. Any other
// change needs a restart.
const std::set<std::string> kReloadableSections{"routing", "flood", "log"};

std::vector<std::string> changedSections(const std::map<std::string, std::string>& running,
                                         const std::map<std::string, std::string>& fresh) {
  std::set<std::string> names;
  for (const auto& [name, text] : running) names.insert(name);
  for (const auto& [name, text] : fresh) names.insert(name);
  std::vector<std::string> changed;
  for (const auto& name : names) {
    const auto before = running.find(name);
    const auto after = fresh.find(name);
    if (before == running.end() || after == fresh.end() || before->second != after->second)
      changed.push_back(name);
  }
  return changed;
}

std::string joined(const std::vector<std::string>& items) {
  std::string text;
  for (const auto& item : items) text.append(text.empty() ? "" : ", ").append(item);
  return text.empty() ? "none" : text;
}

void applyLogSettings(const LogConfig& log) {
  setLogLevel(log.level);
  if (!isJournalStream(STDERR_FILENO, std::getenv("JOURNAL_STREAM"))) {
    spdlog::default_logger()->set_pattern(log.pattern);
  }
}

proxy::AdmissionSettings admissionFrom(const AuthConfig& auth) {
  proxy::AdmissionSettings admission;
  admission.challengeRegister = auth.challengeRegister;
  admission.challengeCalls = auth.challengeCalls;
  admission.exemptTrusted = auth.exemptTrusted;
  admission.strictIdentity = auth.strictIdentity;
  return admission;
}

}  // namespace

int runDaemon(const Config& config) {
  asio::io_context io(1);
  std::unique_ptr<proxy::Proxy> proxyCore;
  std::unique_ptr<Dispatcher> dispatcher;
  std::unique_ptr<TimerDriver> timerDriver;
  transport::Transports transports(io, config.transport,
                                   [&](const transport::Source& source, std::string_view bytes) {
                                     dispatcher->onMessage(source, bytes);
                                     timerDriver->rearm();
                                   });
  std::vector<transport::ListenerConfig> listeners = config.listeners;
  startTls(config, transports, listeners);
  for (const auto& listener : listeners) transports.listen(listener);
  const proxy::LocalIdentity identity = identityFrom(config, transports);
  const transaction::SteadyClock clock;
  transaction::LayerSettings layerSettings;
  layerSettings.timers =
      transaction::TimerSettings{config.timers.t1, config.timers.t2, config.timers.t4};
  layerSettings.send100Trying = config.transactions.send100Trying;
  layerSettings.udpMtu = config.transport.udpMtu;
  registrar::InMemoryLocationStore locations;
  registrar::Registrar registrar(
      locations, std::set<std::string>(config.domains.begin(), config.domains.end()),
      registrar::RegistrarSettings{
          config.registrar.minExpires, config.registrar.maxExpires, config.registrar.defaultExpires,
          config.registrar.maxContacts, config.defaultDomain,
          [&identity](const sip::Uri& uri) { return identity.isThisServer(uri); }});
  TransportSender sender(transports);
  auth::SourceGuard guard(config.flood);  // the dispatcher's flood check; the proxy may ban
  const auth::SystemWallClock wallClock;
  std::unique_ptr<auth::FileUserStore> users;
  std::unique_ptr<auth::Authenticator> authenticator;
  if (!config.auth.usersFile.empty()) {
    users = std::make_unique<auth::FileUserStore>(config.auth.usersFile);
    authenticator =
        std::make_unique<auth::Authenticator>(*users, std::vector<std::string>{authSecret(config)},
                                              wallClock, &guard, config.auth.settings);
    spdlog::info("digest authentication on: {} users from {}", users->size(), users->path());
  } else {
    spdlog::warn("no auth.users_file: nobody is challenged, any phone may register and call");
  }
  proxyCore = std::make_unique<proxy::Proxy>(
      clock, sender, layerSettings, identity, registrar,
      proxy::ProxySettings{config.proxy.timerC, config.proxy.maxForwards, routeSecrets(config),
                           config.trusted, config.security.serverHeader, std::nullopt,
                           admissionFrom(config.auth)},
      authenticator.get());
  proxyCore->setRules(config.routing);
  dispatcher = std::make_unique<Dispatcher>(sender, *proxyCore,
                                            sip::ParseLimits{config.transport.maxMessageSize},
                                            SourceFilter{guard, clock, config.trusted});
  timerDriver = std::make_unique<TimerDriver>(io, clock, *proxyCore, registrar, guard);
  transports.onUnreachable([&](const transport::Destination& destination, std::error_code) {
    proxyCore->transactions().destinationUnreachable(destination);
    timerDriver->rearm();
  });

  auto writeMetrics = [&] {
    std::string text =
        renderMetrics(transports.counters(), dispatcher->counters(),
                      proxyCore->transactions().counters(), registrar, proxyCore->counters()) +
        renderFloodMetrics(guard.counters());
    if (authenticator) text += renderAuthMetrics(authenticator->counters(), users->size());
    // An empty text means the file could not be written (writeMetricsFile logged why).
    if (!config.metrics.file.empty() && !writeMetricsFile(config.metrics.file, text))
      return std::string();
    return text;
  };

  Watchdog watchdog(io);
  // Logs the end of failed-login bans of users (a source's ban ends in the flood guard).
  asio::steady_timer authSweep(io);
  std::function<void()> sweepAuth = [&] {
    authSweep.expires_after(std::chrono::seconds(10));
    authSweep.async_wait([&](boost::system::error_code ec) {
      if (ec) return;
      authenticator->sweep(clock.now());
      sweepAuth();
    });
  };
  if (authenticator) sweepAuth();
  auto shutDown = [&] {
    watchdog.stop();
    authSweep.cancel();
    timerDriver->stop();
    transports.close();
    io.stop();
  };
  // SIGTERM/SIGINT: new requests get 503 with Retry-After while those already taken in get
  // up to stop.drain_time to finish; a second signal stops at once.
  asio::signal_set stopSignals(io, SIGTERM, SIGINT);
  asio::steady_timer drainCheck(io);
  transaction::TimePoint drainDeadline{};
  std::function<void()> checkDrain = [&] {
    const bool drained = proxyCore->drained();
    if (drained || clock.now() >= drainDeadline) {
      if (!drained) {
        spdlog::warn("stop: drain time over, {} requests still without a final response",
                     proxyCore->counters().liveContexts + proxyCore->counters().waitingRequests);
      }
      shutDown();
      return;
    }
    drainCheck.expires_after(std::chrono::milliseconds(50));
    drainCheck.async_wait([&](boost::system::error_code ec) {
      if (!ec) checkDrain();
    });
  };
  std::function<void()> waitStop = [&] {
    stopSignals.async_wait([&](boost::system::error_code ec, int signal) {
      if (ec) return;
      if (proxyCore->draining()) {
        spdlog::info("signal {} again: stopping now", signal);
        shutDown();
        return;
      }
      spdlog::info(
          "signal {}: shutting down; new requests get 503 (Retry-After {} s), those "
          "in progress get up to {} ms",
          signal, config.stop.retryAfter.count(), config.stop.drainTime.count());
      sd_notify(0, "STOPPING=1");
      proxyCore->startDrain(config.stop.retryAfter);
      drainDeadline = clock.now() + config.stop.drainTime;
      checkDrain();
      waitStop();
    });
  };
  waitStop();
  // The running value of each section, to report what a reload changes; sections that
  // need a restart keep their running text, so they are reported until then.
  std::map<std::string, std::string> runningSections = sectionsOf(config.path);
  // Everything or nothing: the file and the users file are checked before any change.
  auto reload = [&]() -> nlohmann::json {
    sd_notify(0, "RELOADING=1");
    nlohmann::json report{{"ok", true}, {"file", config.path}};
    auto refuse = [&](const std::string& why) {
      spdlog::error("reload of {} refused, nothing changed: {}", config.path, why);
      sd_notifyf(0, "READY=1\nSTATUS=reload refused: %s", why.c_str());
      return nlohmann::json{{"ok", false}, {"error", why}, {"file", config.path}};
    };
    Config fresh;
    std::map<std::string, std::string> freshSections;
    try {
      fresh = loadConfig(config.path);
      freshSections = sectionsOf(config.path);
    } catch (const ConfigError& error) {
      return refuse(error.what());
    } catch (const YAML::Exception& error) {
      return refuse(error.what());
    }
    if (users) {
      std::string why;
      if (!users->reload(why)) return refuse("users file " + users->path() + ": " + why);
      report["users"] = users->size();
    }
    nlohmann::json certificates = nlohmann::json::array();
    for (const auto& tls : transports.reloadTls()) {
      certificates.push_back({{"what", tls.what},
                              {"reloaded", tls.result.reloaded},
                              {"error", tls.result.reloaded ? "" : tls.result.reason}});
      if (tls.result.reloaded) {
        spdlog::info("reload: {}: certificate reloaded", tls.what);
      } else {
        spdlog::error("reload: {}: reload refused, the current certificate stays: {}", tls.what,
                      tls.result.reason);
        report["ok"] = false;
        report["error"] =
            tls.what + ": certificate refused, the current one stays: " + tls.result.reason;
      }
    }
    report["certificates"] = certificates;
    std::vector<std::string> applied;
    std::vector<std::string> restartNeeded;
    for (const auto& name : changedSections(runningSections, freshSections)) {
      if (kReloadableSections.count(name) == 0) {
        restartNeeded.push_back(name);
        continue;
      }
      applied.push_back(name);
      if (freshSections.count(name) != 0) {
        runningSections[name] = freshSections[name];
      } else {
        runningSections.erase(name);
      }
    }
    proxyCore->setRules(fresh.routing);
    guard.setSettings(fresh.flood);
    applyLogSettings(fresh.log);
    report["changed"] = applied;
    report["restart_needed"] = restartNeeded;
    report["rules"] = fresh.routing->size();
    const std::string summary = "changed: " + joined(applied) +
                                "; needs a restart: " + joined(restartNeeded) + "; " +
                                std::to_string(fresh.routing->size()) + " routing rules" +
                                (users ? ", " + std::to_string(users->size()) + " users" : "");
    if (report["ok"].get<bool>()) {
      spdlog::info("reloaded {}: {}", config.path, summary);
    } else {
      spdlog::error("reload of {}: {}; {}", config.path, report["error"].get<std::string>(),
                    summary);
    }
    sd_notifyf(0, "READY=1\nSTATUS=reloaded: %s", summary.c_str());
    return report;
  };

  const auto startedAt = std::chrono::steady_clock::now();
  ControlOperations operations;
  operations.status = [&] {
    nlohmann::json listening = nlohmann::json::array();
    for (const auto& [protocol, endpoint] : transports.boundEndpoints()) {
      listening.push_back(std::string(transport::toString(protocol)) + " " +
                          transport::toString(endpoint));
    }
    const auto& live = proxyCore->transactions().counters();
    return nlohmann::json{{"version", WAYPOINT_VERSION},
                          {"pid", ::getpid()},
                          {"config", config.path},
                          {"uptime_seconds", std::chrono::duration_cast<std::chrono::seconds>(
                                                 std::chrono::steady_clock::now() - startedAt)
                                                 .count()},
                          {"listeners", listening},
                          {"aors", registrar.store().aorCount()},
                          {"bindings", registrar.store().bindingCount()},
                          {"connections", transports.counters().tcpOpenConnections},
                          {"server_transactions", live.liveServerTransactions},
                          {"client_transactions", live.liveClientTransactions},
                          {"users", users ? users->size() : 0},
                          {"stopping", proxyCore->draining()}};
  };
  operations.reload = reload;
  operations.bindings = [&](const std::string& aor) {
    const auto now = clock.now();
    nlohmann::json aors = nlohmann::json::array();
    auto describe = [&](std::string_view name, const std::vector<registrar::Binding>& bindings) {
      nlohmann::json list = nlohmann::json::array();
      for (const auto& binding : bindings) {
        list.push_back(
            {{"contact", binding.contact},
             {"q", binding.qMilli / 1000.0},
             {"expires_in",
              std::chrono::duration_cast<std::chrono::seconds>(binding.expiresAt - now).count()},
             {"call_id", binding.callId},
             {"cseq", binding.cseq},
             {"flow",
              {{"transport", std::string(transport::toString(binding.flow.protocol))},
               {"remote", transport::toString(binding.flow.remote)},
               {"local", transport::toString(binding.flow.local)},
               {"connection", binding.flow.connectionId}}},
             {"behind_nat", binding.behindNat},
             {"instance", binding.instance},
             {"reg_id", binding.regId},
             {"path", binding.path}});
      }
      aors.push_back({{"aor", std::string(name)}, {"bindings", list}});
    };
    if (aor.empty()) {
      registrar.store().forEach(describe);
    } else {
      const std::string canonical = registrar.aorOf(aor);
      if (canonical.empty()) {
        return nlohmann::json{{"ok", false}, {"error", "not a sip or sips URI: " + aor}};
      }
      describe(canonical, registrar.store().lookup(canonical));
    }
    return nlohmann::json{{"aors", aors}};
  };
  operations.unregister = [&](const std::string& aor, const std::string& contact) {
    const std::string canonical = registrar.aorOf(aor);
    auto bindings = registrar.store().lookup(canonical);
    const auto before = bindings.size();
    std::erase_if(bindings, [&](const registrar::Binding& binding) {
      return contact.empty() || binding.contact == contact;
    });
    const auto removed = before - bindings.size();
    if (removed == 0) {
      return nlohmann::json{{"ok", false},
                            {"error", "no such binding: " + (canonical.empty() ? aor : canonical) +
                                          (contact.empty() ? "" : " " + contact)}};
    }
    registrar.store().replace(canonical, std::move(bindings));
    spdlog::info("control: unregistered {} binding(s) of {}", removed, canonical);
    timerDriver->rearm();
    return nlohmann::json{{"aor", canonical}, {"removed", removed}};
  };
  operations.logLevel = [&](const std::string& level) {
    if (!isLogLevel(level)) {
      return nlohmann::json{{"ok", false},
                            {"error", std::string("log level must be one of ") + kLogLevelsText}};
    }
    setLogLevel(level);
    spdlog::info("control: log level set to {}", level);
    return nlohmann::json{{"level", level}};
  };
  std::unique_ptr<ControlServer> control;
  if (!config.control.socket.empty()) {
    control = std::make_unique<ControlServer>(
        io,
        ControlSocketSettings{config.control.socket, static_cast<mode_t>(config.control.mode),
                              config.control.group},
        [&](std::string_view request) { return handleControlRequest(request, operations); });
    spdlog::info("control socket {}", control->path());
  }

  asio::signal_set controlSignals(io, SIGUSR1, SIGHUP);
  std::function<void()> waitControl = [&] {
    controlSignals.async_wait([&](boost::system::error_code ec, int signal) {
      if (ec) return;
      if (signal == SIGUSR1) {
        const std::string text = writeMetrics();
        if (text.empty()) return waitControl();
        spdlog::info("metrics written{}{}", config.metrics.file.empty() ? "" : " to ",
                     config.metrics.file);
        spdlog::debug("metrics:\n{}", text);
      } else {
        reload();
      }
      waitControl();
    });
  };
  waitControl();

  for (const auto& [protocol, endpoint] : transports.boundEndpoints()) {
    spdlog::info("listening on {} {}", transport::toString(protocol),
                 transport::toString(endpoint));
  }
  for (const auto& listener : config.listeners) spdlog::info("{}", describeAddressing(listener));
  spdlog::info("waypointd ready (version {})", WAYPOINT_VERSION);
  sd_notify(0, "READY=1");
  io.run();
  writeMetrics();
  spdlog::info("waypointd stopped");
  return EXIT_SUCCESS;
}

}  // namespace waypoint::app
