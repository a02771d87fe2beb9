#include "waypoint/auth/digest.hpp"
#include "waypoint/sip/text.hpp"

namespace waypoint::auth {

std::string_view algorithmName(Algorithm algorithm) {
  return algorithm == Algorithm::md5 ? "MD5" : "SHA-256";
}

std::optional<Algorithm> algorithmFromName(std::string_view name) {
  if (name.empty() || sip::equalsIgnoringCase(name, "MD5")) return Algorithm::md5;
  if (sip::equalsIgnoringCase(name, "SHA-256")) return Algorithm::sha256;
  return std::nullopt;
}

}  // namespace waypoint::auth
