#include "waypoint/app/local_identity.hpp"

#include "waypoint/sip/text.hpp"


namespace waypoint::app {

std::string LocalIdentity::normalise(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return sip::lowerAscii(host);
}

void LocalIdentity::addName(std::string_view hostOrAddress) { names_.insert(normalise(hostOrAddress)); }

bool LocalIdentity::isLocalHost(std::string_view host) const { return names_.count(normalise(host)) != 0; }

bool LocalIdentity::isLocal(const sip::Uri& uri) const {
  if (!isLocalHost(uri.host)) return false;
  const std::uint16_t port = uri.port.value_or(uri.scheme == "sips" ? 5061 : 5060);
  // A URI without a port names the domain itself (RFC 3263 would resolve it to us).
  return !uri.port.has_value() || ports_.count(port) != 0;
}

}  // namespace waypoint::app
