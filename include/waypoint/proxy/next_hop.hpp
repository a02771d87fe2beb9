#pragma once
// Where a request goes next, and how the proxy marks its own place on the path:
//  - a SIP URI with a numeric host resolves to a Destination (RFC 3263 without DNS:
//    transport= parameter, sips -> TLS, default ports);
//  - Record-Route URIs (one, or two per RFC 5658 when the request changes transport or
//    address family) carry flow tokens: the flows of the caller and of the callee as the
//    proxy saw them, so in-dialog requests reach a phone behind NAT at its source address
//    or over its own connection (RFC 5626 §5.3 style), with no dialog state kept here.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "waypoint/sip/message.hpp"
#include "waypoint/transport/address.hpp"

namespace waypoint::proxy {

// The transport and address of a numeric SIP URI; nullopt for a host name (no DNS yet),
// a tel: URI, or an unknown transport.
std::optional<transport::Destination> resolveNumeric(const sip::Uri& uri);

// A flow as the proxy saw it: the peer's transport and address:port.
struct Flow {
  transport::Protocol protocol = transport::Protocol::udp;
  transport::Endpoint remote;
  friend bool operator==(const Flow&, const Flow&) = default;
};
std::string encodeFlow(const Flow& flow);  // "udp~127.0.0.1~5070"
std::optional<Flow> decodeFlow(std::string_view token);

// The URI parameters naming the caller's flow (request's source) and the callee's flow
// (where the proxy sent it).
inline constexpr std::string_view kCallerFlowParam = "wpa";
inline constexpr std::string_view kCalleeFlowParam = "wpb";

// The proxy's side of one hop: the transport, the local address:port it uses there (a
// concrete address even on a wildcard listener), and the name it writes into Via and
// Record-Route when that is not the address (a listener's `advertise`).
struct Interface {
  transport::Protocol protocol = transport::Protocol::udp;
  transport::Endpoint local;
  std::string advertised;  // "sip.example.com:5060"; empty: local is written
  // What Via and Record-Route name: the advertised host:port, else the local address.
  std::string hostPortOf() const;
  friend bool operator==(const Interface&, const Interface&) = default;
};

// "<sip:127.0.0.1:5060;transport=tcp;lr;wpa=...;wpb=...;wpm=...>" values to push, top
// first: one when both sides share the interface, else the callee side's on top of the
// caller side's. tokenParams is RouteTokenSigner::uriParams() of the two flows. sips: the
// request is for a SIPS URI, so the entries are SIPS URIs too (RFC 3261 §16.6 step 4).
std::vector<std::string> recordRouteValues(const Interface& callerSide, const Interface& calleeSide,
                                           std::string_view tokenParams, bool sips = false);

// "SIP/2.0/TCP 127.0.0.1:5060;branch=..." for a request leaving by that interface.
std::string viaValue(const Interface& out, std::string_view branch);

}  // namespace waypoint::proxy
