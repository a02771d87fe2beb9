#pragma once
// "Is this URI me?": the server's own host names and addresses, the ports it listens on,
// and which listener speaks for it on each transport and address family (the sent-by of
// its Via and the host of its Record-Route).

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "waypoint/sip/message.hpp"
#include "waypoint/transport/address.hpp"

namespace waypoint::proxy {

class LocalIdentity {
 public:
  void addName(std::string_view hostOrAddress);  // case-insensitive; IPv6 with or without []
  void addPort(std::uint16_t port) { ports_.insert(port); }
  // A bound listener: its address becomes a name, its port one of ours.
  void addListener(transport::Protocol protocol, const transport::Endpoint& endpoint);

  bool isLocalHost(std::string_view host) const;
  // Host is ours and the port is one we listen on (no port: 5060/5061 must be ours).
  bool isLocal(const sip::Uri& uri) const;
  // Host is ours and the port is one we listen on, 5060 (sip) or 5061 (sips) when the URI
  // has none: a request sent there reaches this server.
  bool isThisServer(const sip::Uri& uri) const;
  // Host is ours and the port, when given, is one we listen on (a Via sent-by).
  bool isLocalSentBy(std::string_view host, std::optional<std::uint16_t> port) const;

  // The first listener of that transport whose address has the family of `like`.
  std::optional<transport::Endpoint> listener(transport::Protocol protocol,
                                              const boost::asio::ip::address& like) const;
  // The first listener of that transport, any family.
  std::optional<transport::Endpoint> listener(transport::Protocol protocol) const;

 private:
  static std::string normalise(std::string_view host);
  std::set<std::string> names_;
  std::set<std::uint16_t> ports_;
  std::vector<std::pair<transport::Protocol, transport::Endpoint>> listeners_;
};

}  // namespace waypoint::proxy
