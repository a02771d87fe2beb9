#pragma once
// What a reload changes: each top-level section of the config file as text, compared
// with the running one, and which sections a reload can apply.

#include <map>
#include <set>
#include <string>
#include <vector>

namespace waypoint::app {

using ConfigSections = std::map<std::string, std::string>;

// Each top-level section of the file as text, a mapping one entry per key ("limits.
// tcp_idle_timeout"), so that a reload names the keys that changed; `routing` stays
// whole. Throws YAML::Exception when unreadable.
ConfigSections sectionsOf(const std::string& path);

// The names of the sections that differ (added, removed or changed), sorted.
std::vector<std::string> changedSections(const ConfigSections& running,
                                         const ConfigSections& fresh);

// What a reload applies: the routing rules (swapped in one step, live transactions keep
// theirs), the flood limits (running bans stay), the log level and pattern, and the
// registrar's expiry limits and contacts per AOR (bindings made before keep theirs), and
// the transport's connection limits and timeouts (Transports::setLimits). The
// users file and the TLS certificate files are read again on every reload. Any other
// change needs a restart.
bool reloadable(const std::string& section);

// "a, b, c", or "none".
std::string joinedOrNone(const std::vector<std::string>& items);

}  // namespace waypoint::app
