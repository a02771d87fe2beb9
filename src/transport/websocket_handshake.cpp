#include "websocket_handshake.hpp"

#include <boost/beast/websocket/rfc6455.hpp>
#include <string_view>

#include "waypoint/sip/text.hpp"

namespace waypoint::transport {

namespace http = boost::beast::http;

namespace {

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// Sec-WebSocket-Protocol is a comma-separated list, possibly over several header lines.
bool offersSip(const UpgradeRequest& request) {
  const auto [first, last] = request.equal_range(http::field::sec_websocket_protocol);
  for (auto it = first; it != last; ++it) {
    std::string_view list(it->value().data(), it->value().size());
    while (!list.empty()) {
      const std::size_t comma = list.find(',');
      if (sip::equalsIgnoringCase(trim(list.substr(0, comma)), "sip")) return true;
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  return false;
}

}  // namespace

UpgradeVerdict checkUpgrade(const UpgradeRequest& request, const WebSocketPolicy& policy) {
  if (!boost::beast::websocket::is_upgrade(request)) return UpgradeVerdict::notUpgrade;
  if (!offersSip(request)) return UpgradeVerdict::noSipSubprotocol;
  if (!policy.origins.empty()) {
    // Browsers always send Origin; with an allow-list, a request without one is refused.
    const auto origin = request.find(http::field::origin);
    if (origin == request.end()) return UpgradeVerdict::originRefused;
    const std::string_view value(origin->value().data(), origin->value().size());
    bool allowed = false;
    for (const std::string& entry : policy.origins) {
      if (sip::equalsIgnoringCase(trim(value), entry)) allowed = true;
    }
    if (!allowed) return UpgradeVerdict::originRefused;
  }
  return UpgradeVerdict::accept;
}

http::response<http::string_body> refusal(UpgradeVerdict verdict, unsigned httpVersion) {
  http::response<http::string_body> response;
  response.version(httpVersion);
  switch (verdict) {
    case UpgradeVerdict::notUpgrade:
      response.result(http::status::upgrade_required);
      response.set(http::field::upgrade, "websocket");
      response.body() = "This is a SIP WebSocket endpoint (RFC 7118): upgrade to websocket";
      break;
    case UpgradeVerdict::noSipSubprotocol:
      response.result(http::status::bad_request);
      response.body() = "Sec-WebSocket-Protocol must include sip";
      break;
    case UpgradeVerdict::originRefused:
      response.result(http::status::forbidden);
      response.body() = "Origin not allowed";
      break;
    case UpgradeVerdict::malformed:
    case UpgradeVerdict::accept:
      response.result(http::status::bad_request);
      response.body() = "Malformed WebSocket upgrade request";
      break;
  }
  response.body().append("\r\n");
  response.set(http::field::server, "waypoint");
  response.set(http::field::content_type, "text/plain");
  response.keep_alive(false);
  response.prepare_payload();
  return response;
}

void countVerdict(UpgradeVerdict verdict, TransportCounters& counters) {
  switch (verdict) {
    case UpgradeVerdict::accept:
      ++counters.wsHandshakesAccepted;
      break;
    case UpgradeVerdict::notUpgrade:
    case UpgradeVerdict::malformed:
      ++counters.wsHandshakesRefusedRequest;
      break;
    case UpgradeVerdict::noSipSubprotocol:
      ++counters.wsHandshakesRefusedSubprotocol;
      break;
    case UpgradeVerdict::originRefused:
      ++counters.wsHandshakesRefusedOrigin;
      break;
  }
}

}  // namespace waypoint::transport
