#pragma once
// `waypointctl route explain`: the initial request a phone would send, built from the
// operator's question, and the router's answer for it as the control socket's reply.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "waypoint/app/control_commands.hpp"
#include "waypoint/proxy/router.hpp"
#include "waypoint/sip/message.hpp"
#include "waypoint/transport/address.hpp"

namespace waypoint::app {

struct ExplainedRequest {
  sip::Message message;
  transport::Source source;
};

// The request (with Via, From, To, Call-ID, CSeq, Max-Forwards) and where it comes from:
// the question's source address (port 5060 when none) to the first listener of its
// transport. nullopt with `why` set when the question is not a request line, names an
// unknown transport or a source that is not an IP address.
std::optional<ExplainedRequest> explainedRequest(
    const RouteQuestion& question,
    const std::vector<std::pair<transport::Protocol, transport::Endpoint>>& listeners,
    std::string& why);

// The reply: the rule, the answer or the target groups in the order they are tried,
// Record-Route and the rule's authentication say.
nlohmann::json describeRouted(const ExplainedRequest& request, const proxy::Routed& routed);

}  // namespace waypoint::app
