#pragma once
// "Is this URI me?": the server's own host names and addresses, the ports it listens on,
// and which listener speaks for it on each transport and address family (the sent-by of
// its Via and the host of its Record-Route). A listener on a wildcard address (0.0.0.0,
// ::) names itself by the concrete address a request arrived on or leaves from; one with
// an advertised name (a server behind 1:1 NAT) by that name.

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "waypoint/proxy/next_hop.hpp"
#include "waypoint/sip/message.hpp"
#include "waypoint/transport/address.hpp"

namespace waypoint::proxy {

class LocalIdentity {
 public:
  // The address the kernel would send from to reach remote (its route choice); nullopt
  // when there is no route. Asked only for wildcard listeners.
  using SourceResolver =
      std::function<std::optional<boost::asio::ip::address>(const transport::Endpoint& remote)>;

  void addName(std::string_view hostOrAddress);  // case-insensitive; IPv6 with or without []
  // Every address in the block is ours (Linux answers on all of 127.0.0.0/8 on loopback).
  void addAddressBlock(const transport::AddressBlock& block) { blocks_.push_back(block); }
  void addPort(std::uint16_t port) { ports_.insert(port); }
  // A bound listener: its port is one of ours, and its address a name unless it is a
  // wildcard (the machine's addresses are then added with addName). With advertise, Via
  // and Record-Route name that host (and port; none: the bound one), which is ours too.
  void addListener(transport::Protocol protocol, const transport::Endpoint& endpoint,
                   const std::optional<transport::HostPort>& advertise = std::nullopt);
  void setSourceResolver(SourceResolver resolver) { resolver_ = std::move(resolver); }
  bool hasWildcardListener() const;

  bool isLocalHost(std::string_view host) const;
  // Host is ours and the port is one we listen on (no port: 5060/5061 must be ours).
  bool isLocal(const sip::Uri& uri) const;
  // Host is ours and the port is one we listen on, 5060 (sip) or 5061 (sips) when the URI
  // has none: a request sent there reaches this server.
  bool isThisServer(const sip::Uri& uri) const;
  // Host is ours and the port, when given, is one we listen on (a Via sent-by).
  bool isLocalSentBy(std::string_view host, std::optional<std::uint16_t> port) const;

  // The interface of a message that arrived at local (a concrete address and port): the
  // listener bound there, or the wildcard listener of that family and port; on a
  // connection we opened (an ephemeral local port) the first listener of that transport
  // and family. With no listener at all, local itself.
  Interface arrivalInterface(transport::Protocol protocol, const transport::Endpoint& local) const;
  // The local endpoint a URI of ours names (our Record-Route URI, as a Route of an
  // in-dialog request) when its host is an address a listener of that transport is bound
  // to, directly or by a wildcard; nullopt for a name or an address of no such listener.
  std::optional<transport::Endpoint> localEndpointOf(transport::Protocol protocol,
                                                     const sip::Uri& uri) const;
  // The interface to reach remote by: the first listener of that transport and family;
  // on a wildcard the source address comes from the resolver. nullopt: no such listener,
  // or a wildcard one with no route to remote and no advertised name.
  std::optional<Interface> departureInterface(transport::Protocol protocol,
                                              const transport::Endpoint& remote) const;

 private:
  struct Listener {
    transport::Protocol protocol;
    transport::Endpoint bound;
    std::string advertised;  // host:port, or empty
  };
  static std::string normalise(std::string_view host);
  const Listener* boundAt(transport::Protocol protocol, const transport::Endpoint& local) const;
  const Listener* firstOf(transport::Protocol protocol, const boost::asio::ip::address& like) const;
  static Interface interfaceOf(const Listener& listener, const boost::asio::ip::address& concrete);

  std::set<std::string> names_;
  std::vector<transport::AddressBlock> blocks_;
  std::set<std::uint16_t> ports_;
  std::vector<Listener> listeners_;
  SourceResolver resolver_;
};

}  // namespace waypoint::proxy
