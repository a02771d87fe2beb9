// waypointd: command line, then the daemon.

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "waypoint/app/config.hpp"
#include "waypoint/app/daemon.hpp"
#include "waypoint/app/local_addresses.hpp"

namespace {

constexpr const char* kUsage =
    "Usage: waypointd -c FILE            run with the configuration FILE\n"
    "       waypointd --check-config -c FILE   validate FILE and exit\n"
    "       waypointd --version | --help\n"
    "Signals: SIGTERM/SIGINT stop, SIGUSR1 writes the metrics file.\n";

}  // namespace

int main(int argc, char** argv) {
  std::string configPath;
  bool checkOnly = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return EXIT_SUCCESS;
    }
    if (arg == "--version" || arg == "-V") {
      std::printf("waypointd %s\n", WAYPOINT_VERSION);
      return EXIT_SUCCESS;
    }
    if (arg == "--check-config") {
      checkOnly = true;
    } else if ((arg == "-c" || arg == "--config") && i + 1 < argc) {
      configPath = argv[++i];
    } else {
      std::fprintf(stderr, "waypointd: unknown argument '%s'\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }
  if (configPath.empty()) {
    std::fprintf(stderr, "waypointd: a configuration file is required (-c FILE)\n%s", kUsage);
    return 2;
  }
  try {
    const waypoint::app::Config config = waypoint::app::loadConfig(configPath);
    if (checkOnly) {
      const std::size_t rules = config.routing->size();
      std::printf("%s: configuration OK, %zu routing rule%s\n", configPath.c_str(), rules,
                  rules == 1 ? "" : "s");
      for (const auto& listener : config.listeners)
        std::printf("%s\n", waypoint::app::describeAddressing(listener).c_str());
      return EXIT_SUCCESS;
    }
    waypoint::app::configureLogging(config.log);
    return waypoint::app::runDaemon(config);
  } catch (const waypoint::app::ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return EXIT_FAILURE;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "waypointd: %s\n", e.what());
    return EXIT_FAILURE;
  }
}
