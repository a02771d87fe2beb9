#include "waypoint/transport/address.hpp"

#include <strings.h>

#include <algorithm>
#include <charconv>

namespace waypoint::transport {

std::string_view toString(Protocol protocol) {
  switch (protocol) {
    case Protocol::udp:
      return "UDP";
    case Protocol::tcp:
      return "TCP";
    case Protocol::tls:
      return "TLS";
    case Protocol::ws:
      return "WS";
    case Protocol::wss:
      return "WSS";
  }
  return "?";
}

std::optional<Protocol> protocolFromString(std::string_view text) {
  for (Protocol p : {Protocol::udp, Protocol::tcp, Protocol::tls, Protocol::ws, Protocol::wss}) {
    const std::string_view name = toString(p);
    if (name.size() == text.size() && strncasecmp(name.data(), text.data(), text.size()) == 0)
      return p;
  }
  return std::nullopt;
}

bool isReliable(Protocol protocol) { return protocol != Protocol::udp; }

std::optional<boost::asio::ip::address> parseIpAddress(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(std::string(host), ec);
  if (ec) return std::nullopt;
  return address;
}

namespace {

bool isHostNameCharacter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.';
}

std::optional<std::uint16_t> parsePort(std::string_view text) {
  std::uint16_t port = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (ec != std::errc() || end != text.data() + text.size() || port == 0) return std::nullopt;
  return port;
}

}  // namespace

std::optional<HostPort> parseHostPort(std::string_view text) {
  HostPort result;
  std::string_view host = text;
  std::string_view port;
  if (host.starts_with('[')) {
    const std::size_t close = host.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    const std::string_view rest = host.substr(close + 1);
    if (!rest.empty() && !rest.starts_with(':')) return std::nullopt;
    port = rest.empty() ? rest : rest.substr(1);
    if (!rest.empty() && port.empty()) return std::nullopt;
    host = host.substr(1, close - 1);
    const auto address = parseIpAddress(host);
    if (!address || !address->is_v6()) return std::nullopt;
  } else if (host.find(':') != host.rfind(':')) {
    // More than one colon: a bare IPv6 address, which cannot carry a port.
    const auto address = parseIpAddress(host);
    if (!address || !address->is_v6()) return std::nullopt;
  } else {
    if (const std::size_t colon = host.find(':'); colon != std::string_view::npos) {
      port = host.substr(colon + 1);
      if (port.empty()) return std::nullopt;
      host = host.substr(0, colon);
    }
    if (host.empty() || !std::all_of(host.begin(), host.end(), isHostNameCharacter))
      return std::nullopt;
  }
  if (host.empty()) return std::nullopt;
  if (!port.empty()) {
    result.port = parsePort(port);
    if (!result.port) return std::nullopt;
  }
  result.host = std::string(host);
  return result;
}

std::string toString(const HostPort& hostPort, std::uint16_t defaultPort) {
  const bool v6 = hostPort.host.find(':') != std::string::npos;
  std::string text = v6 ? "[" + hostPort.host + "]" : hostPort.host;
  text.append(":").append(std::to_string(hostPort.port.value_or(defaultPort)));
  return text;
}

bool AddressBlock::contains(const boost::asio::ip::address& address) const {
  std::array<unsigned char, 16> candidate{};
  if (v6) {
    if (!address.is_v6()) return false;
    candidate = address.to_v6().to_bytes();
  } else if (address.is_v4()) {
    const auto v4 = address.to_v4().to_bytes();
    std::copy(v4.begin(), v4.end(), candidate.begin());
  } else if (address.to_v6().is_v4_mapped()) {
    const auto mapped = address.to_v6().to_bytes();
    std::copy(mapped.begin() + 12, mapped.end(), candidate.begin());
  } else {
    return false;
  }
  const unsigned whole = prefix / 8;
  if (!std::equal(bytes.begin(), bytes.begin() + whole, candidate.begin())) return false;
  const unsigned rest = prefix % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (candidate[whole] & mask) == bytes[whole];
}

std::optional<AddressBlock> parseAddressBlock(std::string_view text) {
  const std::size_t slash = text.find('/');
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(std::string(text.substr(0, slash)), ec);
  if (ec) return std::nullopt;
  AddressBlock block;
  block.v6 = address.is_v6();
  const unsigned longest = block.v6 ? 128 : 32;
  block.prefix = longest;
  if (slash != std::string_view::npos) {
    const char* first = text.data() + slash + 1;
    const char* last = text.data() + text.size();
    const auto [end, error] = std::from_chars(first, last, block.prefix);
    if (first == last || error != std::errc() || end != last || block.prefix > longest)
      return std::nullopt;
  }
  if (block.v6) {
    block.bytes = address.to_v6().to_bytes();
  } else {
    const auto v4 = address.to_v4().to_bytes();
    std::copy(v4.begin(), v4.end(), block.bytes.begin());
  }
  for (unsigned bit = block.prefix; bit < 128; ++bit) {
    block.bytes[bit / 8] &= static_cast<unsigned char>(~(0x80u >> (bit % 8)));
  }
  return block;
}

std::string toString(const boost::asio::ip::address& address) {
  if (!address.is_v4()) return address.to_string();
  const boost::asio::ip::address_v4::bytes_type bytes = address.to_v4().to_bytes();
  std::string text;
  text.reserve(15);  // "255.255.255.255"
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i > 0) text.push_back('.');
    std::array<char, 3> digits{};
    const char* end = std::to_chars(digits.data(), digits.data() + digits.size(), bytes[i]).ptr;
    text.append(digits.data(), static_cast<std::size_t>(end - digits.data()));
  }
  return text;
}

std::string toString(const Endpoint& endpoint) {
  // Appends rather than operator+ chains: GCC 12 -O3 warns falsely on those (PR 105329).
  const std::string address = toString(endpoint.address);
  std::string text;
  text.reserve(address.size() + 8);
  if (endpoint.address.is_v6())
    text.append("[").append(address).append("]");
  else
    text.append(address);
  text.append(":").append(std::to_string(endpoint.port));
  return text;
}

std::string toString(const Destination& destination) {
  std::string text(toString(destination.protocol));
  text.append(" ").append(toString(destination.remote));
  if (destination.connectionId != 0)
    text.append(" #").append(std::to_string(destination.connectionId));
  return text;
}

Destination responseDestination(const ViaSentBy& via, const Source& source) {
  Destination destination;
  destination.protocol = source.protocol;
  destination.local = source.local;
  destination.remote.address = source.remote.address;
  if (isReliable(source.protocol)) {
    // §18.2.2: the connection the request came on; if it is gone, a new one to the
    // received address and the sent-by port.
    destination.connectionId = source.connectionId;
    if (source.protocol == Protocol::ws || source.protocol == Protocol::wss) {
      // RFC 7118 §5: the sent-by is an .invalid host; only this connection leads back.
      destination.remote = source.remote;
      return destination;
    }
    const std::uint16_t defaultPort = source.protocol == Protocol::tls ? 5061 : 5060;
    destination.remote.port = via.port.value_or(defaultPort);
    return destination;
  }
  // RFC 3581 §4: with rport, back to the source port. Otherwise to received (the source
  // address, which is what the proxy writes there) and the sent-by port.
  destination.remote.port = via.hasRport ? source.remote.port : via.port.value_or(5060);
  return destination;
}

Protocol chooseRequestProtocol(Protocol wanted, std::size_t messageSize, std::size_t mtuLimit,
                               bool targetAllowsTcp) {
  if (wanted == Protocol::udp && messageSize > mtuLimit && targetAllowsTcp) return Protocol::tcp;
  return wanted;
}

}  // namespace waypoint::transport

std::size_t std::hash<boost::asio::ip::address>::operator()(
    const boost::asio::ip::address& a) const noexcept {
  std::size_t h = 0;
  if (a.is_v4()) {
    h = a.to_v4().to_uint();
  } else {
    for (unsigned char b : a.to_v6().to_bytes()) h = h * 131 + b;
  }
  return h;
}

std::size_t std::hash<waypoint::transport::Endpoint>::operator()(
    const waypoint::transport::Endpoint& e) const noexcept {
  return std::hash<boost::asio::ip::address>()(e.address) * 65599 + e.port;
}
