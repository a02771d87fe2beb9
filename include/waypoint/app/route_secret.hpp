#pragma once
// The secret that signs Record-Route tokens, kept in the state directory so that calls
// set up before a restart can still be routed after it.

#include <string>
#include <vector>

#include "waypoint/app/config.hpp"

namespace waypoint::app {

// The configured secret, else <stateDir>/route-secret, made (32 random bytes, mode 0600)
// when absent; then the previous secrets. Throws std::runtime_error naming the file when
// the directory or the file cannot be made or read.
std::vector<std::string> routeSecrets(const Config& config);

// The secret that signs digest nonces (RFC 7616 §3.3): security.auth_secret, else
// <stateDir>/auth-secret, made the same way. Nonces given out before a restart stay good.
std::string authSecret(const Config& config);

}  // namespace waypoint::app
