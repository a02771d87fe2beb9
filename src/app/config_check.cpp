#include "waypoint/app/config_check.hpp"

#include <cstdio>
#include <cstdlib>
#include <exception>

#include "waypoint/app/config.hpp"
#include "waypoint/app/local_addresses.hpp"

namespace waypoint::app {

int checkConfigFile(const std::string& path) {
  try {
    const Config config = loadConfig(path);
    for (const auto& warning : config.routing->warnings())
      std::fprintf(stderr, "warning: %s\n", warning.c_str());
    const std::size_t rules = config.routing->size();
    std::printf("%s: configuration OK, %zu routing rule%s\n", path.c_str(), rules,
                rules == 1 ? "" : "s");
    for (const auto& listener : config.listeners)
      std::printf("%s\n", describeAddressing(listener).c_str());
    return EXIT_SUCCESS;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return EXIT_FAILURE;
  }
}

}  // namespace waypoint::app
