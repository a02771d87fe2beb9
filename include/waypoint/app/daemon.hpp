#pragma once
// The running daemon: one io_context with the transports, the dispatcher, signals and
// the systemd notifications, wired from a Config. Signals, the control socket and the
// metrics endpoint all act through the Daemon's named operations below.

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "waypoint/app/config.hpp"
#include "waypoint/app/control_commands.hpp"

namespace waypoint::app {

// Sets up spdlog's default logger to stderr (journald captures it) per the config.
void configureLogging(const LogConfig& log);

class Daemon {
 public:
  // Binds every listener and builds the components. Throws std::runtime_error when a
  // listener cannot bind.
  explicit Daemon(const Config& config);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Announces READY and serves until stopped (SIGTERM/SIGINT, then the drain).
  int run();

  // The control operations: each returns the reply's fields, with "ok": false and an
  // "error" when refused (see control_commands.hpp).
  nlohmann::json status();
  // Everything or nothing: a refused file or users file changes nothing.
  nlohmann::json reload();
  nlohmann::json bindings(const std::string& aor);  // "" lists every AOR
  nlohmann::json unregister(const std::string& aor, const std::string& contact);
  nlohmann::json setLogLevel(const std::string& level);
  nlohmann::json connections();
  nlohmann::json explainRoute(const RouteQuestion& question);

  // Every metric as Prometheus text.
  std::string metricsText();
  // Writes metricsText() to metrics.file (when configured); false when that failed.
  bool writeMetricsFile();

  // New requests get 503 with Retry-After, those in progress get stop.drain_time.
  void beginStop(int signal);
  void stopNow();

 private:
  struct Parts;
  void armStopSignals();
  void armControlSignals();
  void checkDrain();
  void sweepAuthLater();
  std::unique_ptr<Parts> parts_;
};

// Runs a Daemon until it stops. Throws std::runtime_error when a listener cannot bind.
int runDaemon(const Config& config);

}  // namespace waypoint::app
