#include "waypoint/app/dispatcher.hpp"

#include <spdlog/spdlog.h>

#include "waypoint/sip/validation.hpp"

namespace waypoint::app {

namespace {

std::string describe(const transport::Source& source) {
  return std::string(transport::toString(source.protocol)) + " " + transport::toString(source.remote);
}

// What the server itself can answer as a UAS today; grows with the registrar and proxy.
const std::vector<std::string> kOptionsHeaders = {
    "Allow: OPTIONS",
    "Accept: application/sdp",
    "Supported: ",
};

}  // namespace

Dispatcher::Dispatcher(transport::Transports& transports, const LocalIdentity& identity, sip::ParseLimits limits)
    : transports_(transports), identity_(identity), limits_(limits), random_(std::random_device{}()) {}

void Dispatcher::onMessage(const transport::Source& source, std::string_view bytes) {
  sip::ParseResult parsed = sip::Message::parse(bytes, limits_);
  if (!parsed.message) {
    ++counters_.messagesUnparseable;
    spdlog::warn("drop {} bytes from {}: {}", bytes.size(), describe(source), parsed.error);
    return;
  }
  const sip::Message& message = *parsed.message;
  if (message.isResponse()) {
    ++counters_.responsesReceived;
    auto problem = parsed.error.empty() ? sip::validateResponse(message) : std::optional<std::string>(parsed.error);
    ++counters_.responsesDropped;  // no client transactions yet: nothing can match it
    spdlog::warn("drop response {} from {}: {}", message.statusCode(), describe(source),
                 problem ? *problem : "no matching transaction");
    return;
  }
  ++counters_.requestsReceived;
  if (spdlog::should_log(spdlog::level::debug)) {
    spdlog::debug("recv {} Call-ID {} from {}", message.method(), message.callId(), describe(source));
  }
  std::optional<sip::Rejection> rejection;
  if (!parsed.error.empty()) {
    rejection = sip::Rejection{400, parsed.error};
  } else {
    rejection = sip::validateRequest(message);
  }
  if (rejection) {
    // Without a Via there is nowhere to send a response; an ACK is never answered.
    if (!message.topVia() || message.method() == "ACK") {
      ++counters_.requestsDropped;
      spdlog::warn("drop {} from {}: {}", message.method(), describe(source), rejection->reason);
      return;
    }
    ++counters_.requestsMalformed;
    spdlog::warn("reject {} from {}: {} {}", message.method(), describe(source), rejection->status, rejection->reason);
    respond(source, message, rejection->status, rejection->reason);
    return;
  }
  onRequest(source, message);
}

void Dispatcher::onRequest(const transport::Source& source, const sip::Message& request) {
  const std::string_view method = request.method();
  if (method == "ACK") return;  // ACK to a final response we sent statelessly: nothing to do
  const auto uri = request.requestUriParts();
  if (method == "OPTIONS" && uri && uri->user.empty() && identity_.isLocal(*uri)) {
    ++counters_.optionsAnswered;
    respond(source, request, 200, "OK", kOptionsHeaders);
    return;
  }
  ++counters_.requestsNotImplemented;
  respond(source, request, 501, "Not Implemented");
}

void Dispatcher::respond(const transport::Source& source, const sip::Message& request, int status,
                         std::string_view reason, const std::vector<std::string>& extraHeaders) {
  const auto via = request.topVia();
  const transport::Destination destination =
      transport::responseDestination(transport::ViaSentBy{via->port, via->hasRport}, source);
  std::string response = sip::buildResponse(request, status, reason, newTag(), extraHeaders);
  if (spdlog::should_log(spdlog::level::debug)) {
    spdlog::debug("send {} {} Call-ID {} to {}", status, reason, request.callId(), transport::toString(destination));
  }
  transports_.send(destination, std::move(response));
}

std::string Dispatcher::newTag() {
  static constexpr char kHex[] = "0123456789abcdef";
  std::uint64_t bits = random_();
  std::string tag(16, '0');
  for (char& c : tag) {
    c = kHex[bits & 0xf];
    bits >>= 4;
  }
  return tag;
}

}  // namespace waypoint::app
