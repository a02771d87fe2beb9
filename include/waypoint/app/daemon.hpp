#pragma once
// The running daemon: one io_context with the transports, the dispatcher, signals and
// the systemd notifications, wired from a Config.

#include "waypoint/app/config.hpp"

namespace waypoint::app {

// Sets up spdlog's default logger to stderr (journald captures it) per the config.
void configureLogging(const LogConfig& log);

// Runs until SIGTERM/SIGINT. Throws std::runtime_error when a listener cannot bind.
int runDaemon(const Config& config);

}  // namespace waypoint::app
