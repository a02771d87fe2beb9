#pragma once
// RFC 3261 §16.3, the checks a request passes before the proxy routes it: Max-Forwards
// (483), Proxy-Require (420: we support no extension there) and loop detection (482, by
// the loop key in our own Via branches, §16.6 step 8).

#include <optional>
#include <string>
#include <vector>

#include "waypoint/proxy/local_identity.hpp"
#include "waypoint/proxy/proxy_counters.hpp"
#include "waypoint/sip/message.hpp"

namespace waypoint::proxy {

// A hash of the fields that stay the same when a request comes back in a loop and change
// in a spiral (Request-URI, Route), in hex.
std::string loopKeyOf(const sip::Message& request);

struct Refusal {
  int status = 0;
  std::string reason;
  std::vector<std::string> headers;
};

// nullopt: the request may go on.
std::optional<Refusal> checkRequest(const sip::Message& request, std::string_view loopKey,
                                    const LocalIdentity& identity, ProxyCounters& counters);

}  // namespace waypoint::proxy
