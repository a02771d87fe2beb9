#pragma once
// What a listener on a wildcard address (0.0.0.0, ::) needs from the machine: the
// addresses that are ours (so that URIs naming them are recognised), and the address the
// kernel sends from towards a peer (the sent-by of a request we forward). Also the
// sentence --check-config prints about what each listener writes into Via and
// Record-Route.

#include <optional>
#include <string>

#include "waypoint/proxy/local_identity.hpp"
#include "waypoint/transport/transports.hpp"

namespace waypoint::app {

// Adds the addresses of the machine's interfaces (getifaddrs) of the families given as
// names; a loopback interface's whole block (Linux answers on all of 127.0.0.0/8).
void addMachineAddresses(proxy::LocalIdentity& identity, bool v4, bool v6);

// The source address of a datagram to remote, as the routing table chooses it: a UDP
// socket is connected (nothing is sent) and asked for its local address.
std::optional<boost::asio::ip::address> sourceAddressToward(const transport::Endpoint& remote);

// "UDP 0.0.0.0:5060: wildcard; Via and Record-Route name the address each request
// arrived on" and the like.
std::string describeAddressing(const transport::ListenerConfig& listener);

}  // namespace waypoint::app
