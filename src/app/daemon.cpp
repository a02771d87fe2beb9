#include "waypoint/app/daemon.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <cstdlib>

#include "waypoint/app/dispatcher.hpp"
#include "waypoint/app/local_identity.hpp"
#include "waypoint/app/metrics.hpp"
#include "waypoint/registrar/registrar.hpp"
#include "waypoint/transaction/transaction_layer.hpp"
#include "waypoint/transport/transports.hpp"

namespace waypoint::app {

namespace asio = boost::asio;

void configureLogging(const LogConfig& log) {
  auto logger = spdlog::stderr_logger_st("waypointd");
  logger->set_pattern(log.pattern);
  logger->set_level(spdlog::level::from_str(log.level == "warning" ? "warn" : log.level));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
}

namespace {

LocalIdentity identityFrom(const Config& config, const transport::Transports& transports) {
  LocalIdentity identity;
  for (const auto& name : config.names) identity.addName(name);
  for (const auto& domain : config.domains) identity.addName(domain);
  for (const auto& [protocol, endpoint] : transports.boundEndpoints()) {
    identity.addName(endpoint.address.to_string());
    identity.addPort(endpoint.port);
  }
  return identity;
}

// Keeps one Asio timer on the earliest deadline of the transaction layer and of the
// location store. It is re-armed only when an earlier deadline appears, so most
// transactions and registrations cost no timer syscall.
class TimerDriver {
 public:
  TimerDriver(asio::io_context& io, const transaction::Clock& clock, transaction::TransactionLayer& layer,
              registrar::Registrar& registrar)
      : timer_(io), clock_(clock), layer_(layer), registrar_(registrar) {}

  void rearm() {
    auto next = layer_.nextExpiry();
    if (const auto bindings = registrar_.store().nextExpiry(); bindings && (!next || *bindings < *next)) {
      next = bindings;
    }
    if (!next || (armed_ && *next >= armedFor_)) return;
    armed_ = true;
    armedFor_ = *next;
    timer_.expires_at(*next);
    timer_.async_wait([this](boost::system::error_code ec) {
      if (ec == asio::error::operation_aborted) return;
      armed_ = false;
      layer_.fireDueTimers();
      registrar_.expire(clock_.now());
      rearm();
    });
  }
  void stop() { timer_.cancel(); }

 private:
  asio::steady_timer timer_;
  const transaction::Clock& clock_;
  transaction::TransactionLayer& layer_;
  registrar::Registrar& registrar_;
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

}  // namespace

int runDaemon(const Config& config) {
  asio::io_context io(1);
  std::unique_ptr<Dispatcher> dispatcher;
  std::unique_ptr<TimerDriver> timerDriver;
  transport::Transports transports(io, config.transport, [&](const transport::Source& source, std::string_view bytes) {
    dispatcher->onMessage(source, bytes);
    timerDriver->rearm();
  });
  for (const auto& listener : config.listeners) transports.listen(listener);
  const LocalIdentity identity = identityFrom(config, transports);
  const transaction::SteadyClock clock;
  transaction::LayerSettings layerSettings;
  layerSettings.timers = transaction::TimerSettings{config.timers.t1, config.timers.t2, config.timers.t4};
  layerSettings.send100Trying = config.transactions.send100Trying;
  layerSettings.udpMtu = config.transport.udpMtu;
  registrar::InMemoryLocationStore locations;
  registrar::Registrar registrar(
      locations, std::set<std::string>(config.domains.begin(), config.domains.end()),
      registrar::RegistrarSettings{config.registrar.minExpires, config.registrar.maxExpires,
                                   config.registrar.defaultExpires, config.registrar.maxContacts});
  dispatcher = std::make_unique<Dispatcher>(transports, identity, sip::ParseLimits{config.transport.maxMessageSize},
                                            clock, layerSettings, registrar);
  timerDriver = std::make_unique<TimerDriver>(io, clock, dispatcher->transactions(), registrar);
  transports.onUnreachable([&](const transport::Destination& destination, std::error_code) {
    dispatcher->transactions().destinationUnreachable(destination);
    timerDriver->rearm();
  });

  auto writeMetrics = [&] {
    const std::string text =
        renderMetrics(transports.counters(), dispatcher->counters(), dispatcher->transactions().counters(), registrar);
    if (!config.metrics.file.empty()) writeMetricsFile(config.metrics.file, text);
    return text;
  };

  Watchdog watchdog(io);
  asio::signal_set stopSignals(io, SIGTERM, SIGINT);
  stopSignals.async_wait([&](boost::system::error_code ec, int signal) {
    if (ec) return;
    spdlog::info("signal {}: shutting down", signal);
    sd_notify(0, "STOPPING=1");
    watchdog.stop();
    timerDriver->stop();
    transports.close();
    io.stop();
  });
  asio::signal_set controlSignals(io, SIGUSR1, SIGHUP);
  std::function<void()> waitControl = [&] {
    controlSignals.async_wait([&](boost::system::error_code ec, int signal) {
      if (ec) return;
      if (signal == SIGUSR1) {
        const std::string text = writeMetrics();
        spdlog::info("metrics written{}{}", config.metrics.file.empty() ? "" : " to ", config.metrics.file);
        spdlog::debug("metrics:\n{}", text);
      } else {
        spdlog::warn("SIGHUP: configuration reload is not supported yet; the running configuration stays");
      }
      waitControl();
    });
  };
  waitControl();

  for (const auto& [protocol, endpoint] : transports.boundEndpoints()) {
    spdlog::info("listening on {} {}", transport::toString(protocol), transport::toString(endpoint));
  }
  spdlog::info("waypointd ready (version {})", WAYPOINT_VERSION);
  sd_notify(0, "READY=1");
  io.run();
  writeMetrics();
  spdlog::info("waypointd stopped");
  return EXIT_SUCCESS;
}

}  // namespace waypoint::app
