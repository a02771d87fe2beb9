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
#include <vector>

#include "waypoint/app/config_sections.hpp"
#include "waypoint/app/control_commands.hpp"
#include "waypoint/app/control_server.hpp"
#include "waypoint/app/diagnostics.hpp"
#include "waypoint/app/dispatcher.hpp"
#include "waypoint/app/journal_log.hpp"
#include "waypoint/app/local_addresses.hpp"
#include "waypoint/app/metrics.hpp"
#include "waypoint/app/metrics_http.hpp"
#include "waypoint/app/route_explain.hpp"
#include "waypoint/app/route_secret.hpp"
#include "waypoint/persistence/binding_persistence.hpp"
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
void applyLogLevel(const std::string& level) {
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
  applyLogLevel(log.level);
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

// Logs the flood bans that are over, once each, within the ban warnings' rate limit.
void sweepBans(auth::SourceGuard& guard, transaction::TimePoint now,
               log::WarningLimiter& warnings) {
  for (const auto& ended : guard.sweep(now)) {
    if (!warnings.allow(log::reason::floodBan)) continue;
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
              registrar::Registrar& registrar, auth::SourceGuard& guard,
              log::WarningLimiter& warnings)
      : timer_(io),
        clock_(clock),
        proxy_(proxy),
        registrar_(registrar),
        guard_(guard),
        warnings_(warnings) {}

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
      sweepBans(guard_, clock_.now(), warnings_);
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
  log::WarningLimiter& warnings_;
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

// Binds every listener (with its certificate) and returns who this server is.
proxy::LocalIdentity listenAll(const Config& config, transport::Transports& transports) {
  std::vector<transport::ListenerConfig> listeners = config.listeners;
  startTls(config, transports, listeners);
  for (const auto& listener : listeners) transports.listen(listener);
  return identityFrom(config, transports);
}

transaction::LayerSettings layerSettingsFrom(const Config& config) {
  transaction::LayerSettings settings;
  settings.timers =
      transaction::TimerSettings{config.timers.t1, config.timers.t2, config.timers.t4};
  settings.send100Trying = config.transactions.send100Trying;
  settings.udpMtu = config.transport.udpMtu;
  return settings;
}

registrar::RegistrarSettings registrarSettingsFrom(const Config& config,
                                                   const proxy::LocalIdentity& identity) {
  return registrar::RegistrarSettings{
      config.registrar.minExpires,
      config.registrar.maxExpires,
      config.registrar.defaultExpires,
      config.registrar.maxContacts,
      config.defaultDomain,
      [&identity](const sip::Uri& uri) { return identity.isThisServer(uri); }};
}

void applyLogSettings(const LogConfig& log) {
  applyLogLevel(log.level);
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

// The components, in the order they are built; members refer only to those above them.
struct Daemon::Parts {
  explicit Parts(const Config& configuration)
      : config(configuration),
        transports(io, config.transport,
                   [this](const transport::Source& source, std::string_view bytes) {
                     dispatcher->onMessage(source, bytes);
                     timerDriver->rearm();
                   }),
        identity(listenAll(config, transports)),
        bindingStore(config.registrar.persistence, locations),
        registrar(bindingStore.store(),
                  std::set<std::string>(config.domains.begin(), config.domains.end()),
                  registrarSettingsFrom(config, identity)),
        diagnostics(io, clock),
        sender(transports, diagnostics.forMessages()),
        guard(config.flood),
        watchdog(io),
        authSweep(io),
        stopSignals(io, SIGTERM, SIGINT),
        drainCheck(io),
        controlSignals(io, SIGUSR1, SIGHUP),
        runningSections(sectionsOf(config.path)) {
    if (!config.auth.usersFile.empty()) {
      users = std::make_unique<auth::FileUserStore>(config.auth.usersFile);
      authenticator = std::make_unique<auth::Authenticator>(
          *users, std::vector<std::string>{authSecret(config)}, wallClock, &guard,
          config.auth.settings);
      authenticator->limitWarnings(diagnostics.warnings());
      spdlog::info("digest authentication on: {} users from {}", users->size(), users->path());
    } else {
      spdlog::warn("no auth.users_file: nobody is challenged, any phone may register and call");
    }
    proxyCore = std::make_unique<proxy::Proxy>(
        clock, sender, layerSettingsFrom(config), identity, registrar,
        proxy::ProxySettings{config.proxy.timerC, config.proxy.maxForwards, routeSecrets(config),
                             config.trusted, config.security.serverHeader, std::nullopt,
                             admissionFrom(config.auth)},
        authenticator.get());
    proxyCore->setRules(config.routing);
    for (const auto& warning : config.routing->warnings()) spdlog::warn("{}", warning);
    dispatcher = std::make_unique<Dispatcher>(
        sender, *proxyCore, sip::ParseLimits{config.transport.maxMessageSize},
        SourceFilter{guard, clock, config.trusted}, diagnostics.forMessages());
    transports.limitWarnings(diagnostics.warnings());
    timerDriver = std::make_unique<TimerDriver>(io, clock, *proxyCore, registrar, guard,
                                                diagnostics.warnings());
    transports.onUnreachable([this](const transport::Destination& destination, std::error_code) {
      proxyCore->transactions().destinationUnreachable(destination);
      timerDriver->rearm();
    });
  }

  const Config config;
  asio::io_context io{1};
  // Built after the transports, which deliver to them (nothing arrives before run()).
  std::unique_ptr<proxy::Proxy> proxyCore;
  std::unique_ptr<Dispatcher> dispatcher;
  std::unique_ptr<TimerDriver> timerDriver;
  transport::Transports transports;
  const proxy::LocalIdentity identity;
  const transaction::SteadyClock clock;
  registrar::InMemoryLocationStore locations;
  persistence::BindingPersistence bindingStore;  // restores into locations, writes behind
  registrar::Registrar registrar;
  Diagnostics diagnostics;  // warning limits and message traces
  TransportSender sender;
  auth::SourceGuard guard;  // the dispatcher's flood check; the proxy may ban
  const auth::SystemWallClock wallClock;
  std::unique_ptr<auth::FileUserStore> users;
  std::unique_ptr<auth::Authenticator> authenticator;
  Watchdog watchdog;
  asio::steady_timer authSweep;  // logs the end of failed-login bans of users
  asio::signal_set stopSignals;
  asio::steady_timer drainCheck;
  transaction::TimePoint drainDeadline{};
  asio::signal_set controlSignals;
  std::unique_ptr<ControlServer> control;
  std::unique_ptr<MetricsHttpServer> metricsHttp;
  // The running value of each section, to report what a reload changes; sections that
  // need a restart keep their running text, so they are reported until then.
  ConfigSections runningSections;
  const std::chrono::steady_clock::time_point startedAt = std::chrono::steady_clock::now();
  const std::int64_t startedAtUnix = std::chrono::duration_cast<std::chrono::seconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count();
};

Daemon::Daemon(const Config& config) : parts_(std::make_unique<Parts>(config)) {
  auto& p = *parts_;
  if (p.authenticator) sweepAuthLater();
  armStopSignals();
  armControlSignals();
  p.timerDriver->rearm();  // bindings restored from disk expire on time, traffic or not
  if (!p.config.control.socket.empty()) {
    ControlOperations operations;
    operations.status = [this] { return status(); };
    operations.reload = [this] { return reload(); };
    operations.bindings = [this](const std::string& aor) { return bindings(aor); };
    operations.unregister = [this](const std::string& aor, const std::string& contact) {
      return unregister(aor, contact);
    };
    operations.logLevel = [this](const std::string& level) { return setLogLevel(level); };
    operations.connections = [this] { return connections(); };
    operations.routeExplain = [this](const RouteQuestion& question) {
      return explainRoute(question);
    };
    operations.trace = [this](const TraceRequest& request) {
      return parts_->diagnostics.trace(request);
    };
    p.control = std::make_unique<ControlServer>(
        p.io,
        ControlSocketSettings{p.config.control.socket, static_cast<mode_t>(p.config.control.mode),
                              p.config.control.group},
        [operations = std::move(operations)](std::string_view request) {
          return handleControlRequest(request, operations);
        });
    spdlog::info("control socket {}", p.control->path());
  }
  if (p.config.metrics.listen) {
    p.metricsHttp =
        startMetricsHttp(p.io, *p.config.metrics.listen, [this] { return metricsText(); });
  }
}

Daemon::~Daemon() = default;

int Daemon::run() {
  auto& p = *parts_;
  for (const auto& [protocol, endpoint] : p.transports.boundEndpoints()) {
    spdlog::info("listening on {} {}", transport::toString(protocol),
                 transport::toString(endpoint));
  }
  for (const auto& listener : p.config.listeners) spdlog::info("{}", describeAddressing(listener));
  spdlog::info("waypointd ready (version {})", WAYPOINT_VERSION);
  sd_notify(0, "READY=1");
  p.io.run();
  p.bindingStore.stop();  // the final batch
  writeMetricsFile();
  spdlog::info("waypointd stopped");
  return EXIT_SUCCESS;
}

void Daemon::sweepAuthLater() {
  auto& p = *parts_;
  p.authSweep.expires_after(std::chrono::seconds(10));
  p.authSweep.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    parts_->authenticator->sweep(parts_->clock.now());
    sweepAuthLater();
  });
}

// SIGTERM/SIGINT: the first starts the drain, a second one stops at once.
void Daemon::armStopSignals() {
  parts_->stopSignals.async_wait([this](boost::system::error_code ec, int signal) {
    if (ec) return;
    if (parts_->proxyCore->draining()) {
      spdlog::info("signal {} again: stopping now", signal);
      stopNow();
      return;
    }
    beginStop(signal);
    armStopSignals();
  });
}

void Daemon::beginStop(int signal) {
  auto& p = *parts_;
  spdlog::info(
      "signal {}: shutting down; new requests get 503 (Retry-After {} s), those "
      "in progress get up to {} ms",
      signal, p.config.stop.retryAfter.count(), p.config.stop.drainTime.count());
  sd_notify(0, "STOPPING=1");
  p.proxyCore->startDrain(p.config.stop.retryAfter);
  p.drainDeadline = p.clock.now() + p.config.stop.drainTime;
  checkDrain();
}

void Daemon::checkDrain() {
  auto& p = *parts_;
  const bool drained = p.proxyCore->drained();
  if (drained || p.clock.now() >= p.drainDeadline) {
    if (!drained) {
      spdlog::warn("stop: drain time over, {} requests still without a final response",
                   p.proxyCore->counters().liveContexts + p.proxyCore->counters().waitingRequests);
    }
    stopNow();
    return;
  }
  p.drainCheck.expires_after(std::chrono::milliseconds(50));
  p.drainCheck.async_wait([this](boost::system::error_code ec) {
    if (!ec) checkDrain();
  });
}

void Daemon::stopNow() {
  auto& p = *parts_;
  p.watchdog.stop();
  p.authSweep.cancel();
  p.drainCheck.cancel();
  p.diagnostics.stop();
  p.timerDriver->stop();
  p.transports.close();
  p.io.stop();
}

// SIGUSR1 writes the metrics file, SIGHUP reloads.
void Daemon::armControlSignals() {
  parts_->controlSignals.async_wait([this](boost::system::error_code ec, int signal) {
    if (ec) return;
    if (signal == SIGUSR1) {
      const auto& file = parts_->config.metrics.file;
      if (file.empty()) {
        spdlog::info("SIGUSR1: no metrics.file is set, so none was written");
      } else if (writeMetricsFile()) {
        spdlog::info("metrics written to {}", file);
      }
      spdlog::debug("metrics:\n{}", metricsText());
    } else {
      reload();
    }
    armControlSignals();
  });
}

std::string Daemon::metricsText() {
  auto& p = *parts_;
  return renderMetrics(MetricSources{
      p.transports.counters(), p.dispatcher->counters(), p.proxyCore->transactions().counters(),
      p.registrar.counters(), p.registrar.gauges(), p.proxyCore->counters(), p.guard.counters(),
      p.authenticator ? &p.authenticator->counters() : nullptr,
      auth::AuthGauges{p.users ? p.users->size() : 0},
      persistence::metricValues(p.bindingStore.counters()), WAYPOINT_VERSION, p.startedAtUnix});
}

bool Daemon::writeMetricsFile() {
  const auto& file = parts_->config.metrics.file;
  return file.empty() || app::writeMetricsFile(file, metricsText());
}

nlohmann::json Daemon::reload() {
  auto& p = *parts_;
  const std::string& path = p.config.path;
  sd_notify(0, "RELOADING=1");
  nlohmann::json report{{"ok", true}, {"file", path}};
  auto refuse = [&](const std::string& why) {
    spdlog::error("reload of {} refused, nothing changed: {}", path, why);
    sd_notifyf(0, "READY=1\nSTATUS=reload refused: %s", why.c_str());
    return nlohmann::json{{"ok", false}, {"error", why}, {"file", path}};
  };
  Config fresh;
  ConfigSections freshSections;
  try {
    fresh = loadConfig(path);
    freshSections = sectionsOf(path);
  } catch (const ConfigError& error) {
    return refuse(error.what());
  } catch (const YAML::Exception& error) {
    return refuse(error.what());
  }
  // Every certificate is read before anything changes; the users file is swapped only
  // once they are all good, and they are put in place only once it is.
  auto tls = p.transports.prepareTlsReload();
  nlohmann::json certificates = nlohmann::json::array();
  for (const auto& certificate : tls.reports) {
    certificates.push_back({{"what", certificate.what},
                            {"reloaded", certificate.result.reloaded},
                            {"error", certificate.result.reason}});
  }
  if (!tls.ok()) {
    std::string why;
    for (const auto& certificate : tls.reports) {
      if (certificate.result.reloaded) continue;
      why.append(why.empty() ? "" : "; ")
          .append(certificate.what)
          .append(": certificate refused, the current one stays: ")
          .append(certificate.result.reason);
    }
    auto refused = refuse(why);
    refused["certificates"] = certificates;
    return refused;
  }
  if (p.users) {
    std::string why;
    if (!p.users->reload(why)) return refuse("users file " + p.users->path() + ": " + why);
    report["users"] = p.users->size();
  }
  for (const auto& certificate : tls.reports)
    spdlog::info("reload: {}: certificate reloaded", certificate.what);
  p.transports.commitTlsReload(std::move(tls));
  report["certificates"] = certificates;
  std::vector<std::string> applied;
  std::vector<std::string> restartNeeded;
  for (const auto& name : changedSections(p.runningSections, freshSections)) {
    if (!reloadable(name)) {
      restartNeeded.push_back(name);
      continue;
    }
    applied.push_back(name);
    if (freshSections.count(name) != 0) {
      p.runningSections[name] = freshSections[name];
    } else {
      p.runningSections.erase(name);
    }
  }
  p.proxyCore->setRules(fresh.routing);
  for (const auto& warning : fresh.routing->warnings()) spdlog::warn("reload: {}", warning);
  p.guard.setSettings(fresh.flood);
  p.registrar.setLimits(registrarSettingsFrom(fresh, p.identity));
  p.transports.setLimits(fresh.transport);
  applyLogSettings(fresh.log);
  report["changed"] = applied;
  report["restart_needed"] = restartNeeded;
  report["rules"] = fresh.routing->size();
  const std::string summary = "changed: " + joinedOrNone(applied) +
                              "; needs a restart: " + joinedOrNone(restartNeeded) + "; " +
                              std::to_string(fresh.routing->size()) + " routing rules" +
                              (p.users ? ", " + std::to_string(p.users->size()) + " users" : "");
  spdlog::info("reloaded {}: {}", path, summary);
  sd_notifyf(0, "READY=1\nSTATUS=reloaded: %s", summary.c_str());
  return report;
}

nlohmann::json Daemon::status() {
  auto& p = *parts_;
  nlohmann::json listening = nlohmann::json::array();
  for (const auto& [protocol, endpoint] : p.transports.boundEndpoints()) {
    listening.push_back(std::string(transport::toString(protocol)) + " " +
                        transport::toString(endpoint));
  }
  const auto& live = p.proxyCore->transactions().counters();
  return nlohmann::json{{"version", WAYPOINT_VERSION},
                        {"pid", ::getpid()},
                        {"config", p.config.path},
                        {"uptime_seconds", std::chrono::duration_cast<std::chrono::seconds>(
                                               std::chrono::steady_clock::now() - p.startedAt)
                                               .count()},
                        {"listeners", listening},
                        {"aors", p.registrar.store().aorCount()},
                        {"bindings", p.registrar.store().bindingCount()},
                        {"connections", p.transports.counters().tcpOpenConnections},
                        {"server_transactions", live.liveServerTransactions},
                        {"client_transactions", live.liveClientTransactions},
                        {"users", p.users ? p.users->size() : 0},
                        {"stopping", p.proxyCore->draining()}};
}

nlohmann::json Daemon::bindings(const std::string& aor) {
  auto& p = *parts_;
  const auto now = p.clock.now();
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
    p.registrar.store().forEach(describe);
  } else {
    const std::string canonical = p.registrar.aorOf(aor);
    if (canonical.empty()) {
      return nlohmann::json{{"ok", false}, {"error", "not a sip or sips URI: " + aor}};
    }
    describe(canonical, p.registrar.store().lookup(canonical));
  }
  return nlohmann::json{{"aors", aors}};
}

nlohmann::json Daemon::unregister(const std::string& aor, const std::string& contact) {
  auto& p = *parts_;
  const std::string canonical = p.registrar.aorOf(aor);
  auto bindings = p.registrar.store().lookup(canonical);
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
  p.registrar.store().replace(canonical, std::move(bindings));
  spdlog::info("control: unregistered {} binding(s) of {}", removed, canonical);
  p.timerDriver->rearm();
  return nlohmann::json{{"aor", canonical}, {"removed", removed}};
}

nlohmann::json Daemon::setLogLevel(const std::string& level) {
  if (!isLogLevel(level)) {
    return nlohmann::json{{"ok", false},
                          {"error", std::string("log level must be one of ") + kLogLevelsText}};
  }
  applyLogLevel(level);
  spdlog::info("control: log level set to {}", level);
  return nlohmann::json{{"level", level}};
}

nlohmann::json Daemon::connections() {
  const auto now = std::chrono::steady_clock::now();
  auto seconds = [&](std::chrono::steady_clock::time_point since) {
    return std::chrono::duration_cast<std::chrono::seconds>(now - since).count();
  };
  nlohmann::json list = nlohmann::json::array();
  for (const auto& connection : parts_->transports.connections()) {
    list.push_back({{"id", connection.id},
                    {"transport", std::string(transport::toString(connection.protocol))},
                    {"remote", transport::toString(connection.remote)},
                    {"local", transport::toString(connection.local)},
                    {"state", std::string(connection.state)},
                    {"state_seconds", seconds(connection.stateSince)},
                    {"idle_seconds", seconds(connection.lastPeerActivity)},
                    {"queued_bytes", connection.queuedBytes}});
  }
  return nlohmann::json{{"connections", list}};
}

nlohmann::json Daemon::explainRoute(const RouteQuestion& question) {
  auto& p = *parts_;
  std::string why;
  const auto request = explainedRequest(question, p.transports.boundEndpoints(), why);
  if (!request) return nlohmann::json{{"ok", false}, {"error", why}};
  const auto uri = request->message.requestUriParts();
  if (request->message.method() == "REGISTER" && uri && p.registrar.domainOf(*uri)) {
    auto reply = describeRouted(*request, proxy::Routed{});
    reply["note"] = "a REGISTER for a served domain is answered by the registrar";
    return reply;
  }
  return describeRouted(*request, p.proxyCore->explainRoute(request->message, request->source));
}

int runDaemon(const Config& config) { return Daemon(config).run(); }

}  // namespace waypoint::app
