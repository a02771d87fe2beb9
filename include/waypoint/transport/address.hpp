#pragma once
// Value types naming transports, endpoints and flows. No I/O here.

#include <array>
#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace waypoint::transport {

enum class Protocol : std::uint8_t { udp, tcp, tls, ws, wss };

std::string_view toString(Protocol protocol);                       // "UDP", "TCP", ...
std::optional<Protocol> protocolFromString(std::string_view text);  // any case
bool isReliable(Protocol protocol);                                 // everything but UDP

struct Endpoint {
  boost::asio::ip::address address;
  std::uint16_t port = 0;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};
std::string toString(const Endpoint& endpoint);  // "127.0.0.1:5060", "[::1]:5060"
// "127.0.0.1", "::1": what address::to_string() gives, a v4 address without its sprintf
// (written several times into every forwarded request: Via received, Record-Route, tokens).
std::string toString(const boost::asio::ip::address& address);

// A host that is an IP address ("192.0.2.1", "::1" or "[::1]" as in a URI); nullopt for
// a host name or anything else.
std::optional<boost::asio::ip::address> parseIpAddress(std::string_view host);

// "HOST[:PORT]" as an operator writes it for a listener's advertised name: a host name,
// an IPv4 address, or an IPv6 address (in brackets when a port follows). The host is kept
// without brackets.
struct HostPort {
  std::string host;
  std::optional<std::uint16_t> port;
  friend bool operator==(const HostPort&, const HostPort&) = default;
};
// nullopt for an empty host, a bad character, a port out of 1..65535, or a bare IPv6
// address followed by a port.
std::optional<HostPort> parseHostPort(std::string_view text);
// "host:port" as Via and URIs want it ("[2001:db8::1]:5060"); defaultPort when it has none.
std::string toString(const HostPort& hostPort, std::uint16_t defaultPort);

// An address block ("10.0.0.0/8", "fd00::/8", or one address); host bits are cleared.
// A v4 block also holds v4-mapped v6 addresses (a v4 client on a dual-stack socket).
struct AddressBlock {
  bool v6 = false;
  std::array<unsigned char, 16> bytes{};
  unsigned prefix = 0;

  bool contains(const boost::asio::ip::address& address) const;
};
// nullopt when the text is not an address with an optional prefix length in range.
std::optional<AddressBlock> parseAddressBlock(std::string_view text);

// The flow a message arrived on. connectionId is 0 for UDP.
struct Source {
  Protocol protocol = Protocol::udp;
  Endpoint local;
  Endpoint remote;
  std::uint64_t connectionId = 0;
};

// Where to send. For a stream protocol, connectionId (when non-zero and still open) is
// used first, then any open connection to remote, then a new connection. For UDP, local
// picks the listening socket to send from (the one the request came in on).
struct Destination {
  Protocol protocol = Protocol::udp;
  Endpoint remote;
  std::uint64_t connectionId = 0;
  std::optional<Endpoint> local;
  // A new TLS connection: the name the server's certificate must show (RFC 5922) and that
  // the ClientHello names (SNI); empty: the remote address. verifyPeer overrides the TLS
  // settings' verify_peer for this destination (a forward rule's choice).
  std::string serverName;
  std::optional<bool> verifyPeer;
};
std::string toString(const Destination& destination);

// RFC 3261 §18.2.2 with RFC 3581 §4: where a response goes, given the top Via of the
// request and the flow the request arrived on.
struct ViaSentBy {
  std::optional<std::uint16_t> port;  // sent-by port
  bool hasRport = false;              // the client asked for rport (RFC 3581)
};
Destination responseDestination(const ViaSentBy& via, const Source& source);

// RFC 3261 §18.1.1: a request bigger than the MTU limit (or within 200 bytes of it) goes
// over TCP instead of UDP when the target allows it.
Protocol chooseRequestProtocol(Protocol wanted, std::size_t messageSize, std::size_t mtuLimit,
                               bool targetAllowsTcp);

}  // namespace waypoint::transport

template <>
struct std::hash<waypoint::transport::Endpoint> {
  std::size_t operator()(const waypoint::transport::Endpoint& e) const noexcept;
};

template <>
struct std::hash<boost::asio::ip::address> {
  std::size_t operator()(const boost::asio::ip::address& a) const noexcept;
};
