#pragma once
// "Is this URI me?": the server's own host names and addresses, and the ports it listens on.

#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "waypoint/sip/message.hpp"

namespace waypoint::app {

class LocalIdentity {
 public:
  void addName(std::string_view hostOrAddress);  // case-insensitive; IPv6 with or without []
  void addPort(std::uint16_t port) { ports_.insert(port); }

  bool isLocalHost(std::string_view host) const;
  // Host is ours and the port is one we listen on (no port: 5060/5061 must be ours).
  bool isLocal(const sip::Uri& uri) const;

 private:
  static std::string normalise(std::string_view host);
  std::set<std::string> names_;
  std::set<std::uint16_t> ports_;
};

}  // namespace waypoint::app
