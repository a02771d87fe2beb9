#include "waypoint/app/route_explain.hpp"

#include <algorithm>
#include <cctype>

namespace waypoint::app {

namespace {

bool hasLineBreak(std::string_view text) {
  return text.find_first_of("\r\n") != std::string_view::npos;
}

// RFC 3261 §7.1: the method is case-sensitive; every standard method is upper case.
bool hasLowerCase(std::string_view method) {
  return std::any_of(method.begin(), method.end(),
                     [](unsigned char c) { return std::islower(c) != 0; });
}

}  // namespace

std::optional<ExplainedRequest> explainedRequest(
    const RouteQuestion& question,
    const std::vector<std::pair<transport::Protocol, transport::Endpoint>>& listeners,
    std::string& why) {
  const std::string& line = question.requestLine;
  const auto space = line.find(' ');
  if (hasLineBreak(line) || hasLineBreak(question.from) || space == std::string::npos ||
      space == 0 || line.find(' ', space + 1) != std::string::npos || space + 1 == line.size()) {
    why = "the request must be 'METHOD URI', e.g. 'INVITE sip:bob@example.com'";
    return std::nullopt;
  }
  const std::string method = line.substr(0, space);
  const std::string uri = line.substr(space + 1);
  const auto requestUri = sip::parseUri(uri);
  if (!requestUri) {
    why = "not a SIP URI: " + uri;
    return std::nullopt;
  }
  const auto protocol =
      transport::protocolFromString(question.transport.empty() ? "udp" : question.transport);
  if (!protocol) {
    why = "unknown transport '" + question.transport + "' (udp, tcp, tls, ws or wss)";
    return std::nullopt;
  }
  const auto hostPort =
      transport::parseHostPort(question.source.empty() ? "127.0.0.1" : question.source);
  const auto address = hostPort ? transport::parseIpAddress(hostPort->host) : std::nullopt;
  if (!address) {
    why = "the source must be an IP address or IP:port, not '" + question.source + "'";
    return std::nullopt;
  }
  transport::Source source;
  source.protocol = *protocol;
  source.remote = transport::Endpoint{*address, hostPort->port.value_or(5060)};
  const auto listener = std::find_if(listeners.begin(), listeners.end(),
                                     [&](const auto& bound) { return bound.first == *protocol; });
  if (listener != listeners.end()) source.local = listener->second;
  const std::string from =
      question.from.empty() ? std::string("sip:caller@").append(requestUri->host) : question.from;
  std::string text = method;
  text.append(" ").append(uri).append(" SIP/2.0\r\n");
  text.append("Via: SIP/2.0/")
      .append(transport::toString(*protocol))
      .append(" ")
      .append(transport::toString(source.remote))
      .append(";branch=z9hG4bK-route-explain\r\n");
  text.append("Max-Forwards: 70\r\n");
  text.append("From: <").append(from).append(">;tag=route-explain\r\n");
  text.append("To: <").append(uri).append(">\r\n");
  text.append("Call-ID: route-explain\r\n");
  text.append("CSeq: 1 ").append(method).append("\r\n");
  text.append("Content-Length: 0\r\n\r\n");
  auto parsed = sip::Message::parse(text);
  if (!parsed.message || !parsed.error.empty()) {
    why = "that request does not parse: " + (parsed.error.empty() ? "bad method" : parsed.error);
    return std::nullopt;
  }
  return ExplainedRequest{std::move(*parsed.message), source};
}

nlohmann::json describeRouted(const ExplainedRequest& request, const proxy::Routed& routed) {
  const auto& message = request.message;
  nlohmann::json reply{
      {"request", std::string(message.method()).append(" ").append(message.requestUri())},
      {"from", message.from() ? message.from()->uri : std::string()},
      {"source", std::string(transport::toString(request.source.protocol))
                     .append(" ")
                     .append(transport::toString(request.source.remote))}};
  if (!routed.rule.empty()) reply["rule"] = routed.rule;
  if (routed.status > 0) {
    reply["status"] = routed.status;
    reply["reason"] = routed.reason;
  }
  nlohmann::json groups = nlohmann::json::array();
  for (const auto& group : routed.groups) {
    nlohmann::json targets = nlohmann::json::array();
    for (const auto& target : group) {
      targets.push_back({{"request_uri", target.requestUri},
                         {"destination", transport::toString(target.destination)},
                         {"path", target.routes}});
    }
    groups.push_back(targets);
  }
  reply["target_groups"] = groups;
  if (!routed.groups.empty()) {
    reply["record_route"] = routed.recordRoute;
    reply["authenticate"] = !routed.authenticate ? "default" : *routed.authenticate ? "yes" : "no";
  }
  if (hasLowerCase(message.method())) {
    reply["note"] = "method names are case-sensitive (RFC 3261 section 7.1): '" +
                    std::string(message.method()) +
                    "' is an extension method, not the standard one";
  }
  return reply;
}

}  // namespace waypoint::app
