#include "waypoint/proxy/local_identity.hpp"

#include <algorithm>

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

void LocalIdentity::addListener(transport::Protocol protocol, const transport::Endpoint& endpoint,
                                const std::optional<transport::HostPort>& advertise) {
  Listener listener{protocol, endpoint, {}};
  if (!endpoint.address.is_unspecified()) addName(transport::toString(endpoint.address));
  addPort(endpoint.port);
  if (advertise) {
    listener.advertised = transport::toString(*advertise, endpoint.port);
    addName(advertise->host);
    addPort(advertise->port.value_or(endpoint.port));
  }
  listeners_.push_back(std::move(listener));
}

bool LocalIdentity::hasWildcardListener() const {
  return std::any_of(listeners_.begin(), listeners_.end(),
                     [](const Listener& l) { return l.bound.address.is_unspecified(); });
}

bool LocalIdentity::isLocalHost(std::string_view host) const {
  if (names_.count(normalise(host)) != 0) return true;
  if (blocks_.empty()) return false;
  const auto address = transport::parseIpAddress(host);
  return address &&
         std::any_of(blocks_.begin(), blocks_.end(),
                     [&](const transport::AddressBlock& b) { return b.contains(*address); });
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

const LocalIdentity::Listener* LocalIdentity::boundAt(transport::Protocol protocol,
                                                      const transport::Endpoint& local) const {
  for (const auto& l : listeners_) {
    if (l.protocol != protocol || l.bound.port != local.port) continue;
    if (l.bound.address == local.address) return &l;
    if (l.bound.address.is_unspecified() && l.bound.address.is_v6() == local.address.is_v6())
      return &l;
  }
  return nullptr;
}

const LocalIdentity::Listener* LocalIdentity::firstOf(transport::Protocol protocol,
                                                      const boost::asio::ip::address& like) const {
  for (const auto& l : listeners_) {
    if (l.protocol == protocol && l.bound.address.is_v6() == like.is_v6()) return &l;
  }
  return nullptr;
}

Interface LocalIdentity::interfaceOf(const Listener& listener,
                                     const boost::asio::ip::address& concrete) {
  transport::Endpoint local = listener.bound;
  if (local.address.is_unspecified()) local.address = concrete;
  return Interface{listener.protocol, local, listener.advertised};
}

Interface LocalIdentity::arrivalInterface(transport::Protocol protocol,
                                          const transport::Endpoint& local) const {
  const Listener* listener = boundAt(protocol, local);
  if (listener == nullptr) listener = firstOf(protocol, local.address);
  if (listener == nullptr) return Interface{protocol, local, {}};
  return interfaceOf(*listener, local.address);
}

std::optional<transport::Endpoint> LocalIdentity::localEndpointOf(transport::Protocol protocol,
                                                                  const sip::Uri& uri) const {
  const auto address = transport::parseIpAddress(uri.host);
  if (!address) return std::nullopt;
  const transport::Endpoint local{*address, uri.port.value_or(uri.scheme == "sips" ? 5061 : 5060)};
  if (boundAt(protocol, local) == nullptr) return std::nullopt;
  return local;
}

std::optional<Interface> LocalIdentity::departureInterface(
    transport::Protocol protocol, const transport::Endpoint& remote) const {
  const Listener* listener = firstOf(protocol, remote.address);
  if (listener == nullptr) return std::nullopt;
  if (!listener->bound.address.is_unspecified()) return interfaceOf(*listener, {});
  const auto source = resolver_ ? resolver_(remote) : std::nullopt;
  if (source && source->is_v6() == remote.address.is_v6()) return interfaceOf(*listener, *source);
  // No route known: an advertised name still says who we are; the kernel picks the source.
  if (!listener->advertised.empty()) return interfaceOf(*listener, listener->bound.address);
  return std::nullopt;
}

}  // namespace waypoint::proxy
