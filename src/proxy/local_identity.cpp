#include "waypoint/proxy/local_identity.hpp"

#include "waypoint/sip/text.hpp"

namespace waypoint::proxy {

std::string LocalIdentity::normalise(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return sip::lowerAscii(host);
}

void LocalIdentity::addName(std::string_view hostOrAddress) {
  names_.insert(normalise(hostOrAddress));
}

void LocalIdentity::addListener(transport::Protocol protocol, const transport::Endpoint& endpoint) {
  listeners_.emplace_back(protocol, endpoint);
  addName(endpoint.address.to_string());
  addPort(endpoint.port);
}

bool LocalIdentity::isLocalHost(std::string_view host) const {
  return names_.count(normalise(host)) != 0;
}

bool LocalIdentity::isLocal(const sip::Uri& uri) const {
  if (!isLocalHost(uri.host)) return false;
  const std::uint16_t port = uri.port.value_or(uri.scheme == "sips" ? 5061 : 5060);
  // A URI without a port names the domain itself (RFC 3263 would resolve it to us).
  return !uri.port.has_value() || ports_.count(port) != 0;
}

bool LocalIdentity::isThisServer(const sip::Uri& uri) const {
  return isLocalHost(uri.host) &&
         ports_.count(uri.port.value_or(uri.scheme == "sips" ? 5061 : 5060)) != 0;
}

bool LocalIdentity::isLocalSentBy(std::string_view host, std::optional<std::uint16_t> port) const {
  return isLocalHost(host) && ports_.count(port.value_or(5060)) != 0;
}

std::optional<transport::Endpoint> LocalIdentity::listener(
    transport::Protocol protocol, const boost::asio::ip::address& like) const {
  for (const auto& [p, endpoint] : listeners_) {
    if (p == protocol && endpoint.address.is_v6() == like.is_v6()) return endpoint;
  }
  return std::nullopt;
}

std::optional<transport::Endpoint> LocalIdentity::listener(transport::Protocol protocol) const {
  for (const auto& [p, endpoint] : listeners_) {
    if (p == protocol) return endpoint;
  }
  return std::nullopt;
}

}  // namespace waypoint::proxy
