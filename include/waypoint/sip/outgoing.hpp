#pragma once
// The requests waypoint sends, built from parsed messages (DESIGN.md principle 3): one
// branch of a forwarded request (a sofia msg_copy of the parsed request, so every header
// the proxy did not edit goes out byte for byte as it came, whatever its line ends), the
// CANCEL of such a request (RFC 3261 §9.1) and the ACK for its non-2xx final response
// (§17.1.1.3).
//
// The top Via is always ours. Its transport is written once the transport is chosen: the
// transaction layer moves a request that is too big for UDP to TCP, or back to UDP when the
// TCP connection is refused (§18.1.1), by setting the transport and serializing again —
// nothing is re-parsed.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "waypoint/sip/message.hpp"

namespace waypoint::sip {

// What one branch of a forwarded request changes (§16.6 steps 2-8); everything else is
// the request as it arrived, with the edits common to every branch already made.
struct BranchEdits {
  std::string_view requestUri;  // the branch's target; empty keeps the request's
  std::string_view via;         // our Via: "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK..."
  std::span<const std::string> recordRoutes;  // Record-Route values to add, top first
  std::span<const std::string> routes;        // Route values put before the request's own (Path)
};

// A request on its way out. Owns its message (move-only); the client transaction keeps it
// while it may still need it (retransmission over another transport, CANCEL, ACK).
class OutgoingRequest {
 public:
  // A request that is already complete, its own Via on top (tests; requests made elsewhere).
  explicit OutgoingRequest(Message message) : message_(std::move(message)) {}

  // One branch of `request`: a shallow copy of it with the branch's edits. nullopt when an
  // edit does not take (a Request-URI, Via or route value sofia cannot read).
  static std::optional<OutgoingRequest> forBranch(const Message& request, const BranchEdits& edits);
  // The same edits on `request` itself, for a request forwarded once and forgotten (an ACK
  // for a 2xx, §16.11): no copy.
  static std::optional<OutgoingRequest> forwarded(Message&& request, const BranchEdits& edits);

  // §9.1: the CANCEL of this request — its Request-URI, Call-ID, From, To, CSeq number and
  // Route set, its top Via only. nullopt for a request without those headers.
  std::optional<OutgoingRequest> cancel(std::uint32_t maxForwards) const;
  // §17.1.1.3: the ACK for a non-2xx final response to this INVITE — as the CANCEL, but
  // with the response's To (and its tag).
  std::optional<OutgoingRequest> ack(const Message& response, std::uint32_t maxForwards) const;

  std::string_view method() const { return message_.method(); }
  std::string_view branch() const;        // of the top Via (the client transaction's key)
  std::string_view viaTransport() const;  // of the top Via: "UDP", "TCP", ...
  // Sets the transport of the top Via ("TCP"); false when there is no Via.
  bool setViaTransport(std::string_view transport);

  // The bytes to send.
  std::string serialize() const { return message_.serialize(); }
  const Message& message() const { return message_; }

 private:
  Message message_;
};

}  // namespace waypoint::sip
