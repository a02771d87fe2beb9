#include "waypoint/app/config_sections.hpp"

#include <yaml-cpp/yaml.h>

namespace waypoint::app {

namespace {

// Applied whole: the routing rules are compiled and swapped as one.
bool appliedWhole(const std::string& section) { return section == "routing"; }

}  // namespace

ConfigSections sectionsOf(const std::string& path) {
  ConfigSections sections;
  const YAML::Node root = YAML::LoadFile(path);
  for (const auto& entry : root) {
    const auto name = entry.first.as<std::string>();
    if (!entry.second.IsMap() || entry.second.size() == 0 || appliedWhole(name)) {
      sections[name] = YAML::Dump(entry.second);
      continue;
    }
    for (const auto& key : entry.second) {
      sections[name + "." + key.first.as<std::string>()] = YAML::Dump(key.second);
    }
  }
  return sections;
}

std::vector<std::string> changedSections(const ConfigSections& running,
                                         const ConfigSections& fresh) {
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

bool reloadable(const std::string& section) {
  static const std::set<std::string> kReloadableSections{"routing", "flood", "log"};
  static const std::set<std::string> kReloadableKeys{"registrar.min_expires",
                                                     "registrar.max_expires",
                                                     "registrar.default_expires",
                                                     "registrar.max_contacts",
                                                     "limits.tcp_idle_timeout",
                                                     "limits.tcp_connect_timeout",
                                                     "limits.handshake_timeout",
                                                     "limits.max_queued_bytes",
                                                     "limits.tcp_max_connections_per_source",
                                                     "limits.tcp_max_connections",
                                                     "limits.max_handshakes_per_source"};
  return kReloadableSections.count(section.substr(0, section.find('.'))) != 0 ||
         kReloadableKeys.count(section) != 0;
}

std::string joinedOrNone(const std::vector<std::string>& items) {
  std::string text;
  for (const auto& item : items) text.append(text.empty() ? "" : ", ").append(item);
  return text.empty() ? "none" : text;
}

}  // namespace waypoint::app
