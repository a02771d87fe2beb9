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
    "Allow: OPTIONS, REGISTER",
    "Accept: application/sdp",
    "Supported: ",
};

}  // namespace

void TransportSender::send(const transport::Destination& destination, const std::string& bytes,
                           ErrorHandler onError) {
  if (spdlog::should_log(spdlog::level::debug)) {
    const std::string_view firstLine = std::string_view(bytes).substr(0, bytes.find('\r'));
    spdlog::debug("send \"{}\" to {}", firstLine, transport::toString(destination));
  }
  transports_.send(destination, bytes, [onError = std::move(onError)](const transport::Destination&, std::error_code ec) {
    if (onError) onError(ec);
  });
}

Dispatcher::Dispatcher(transport::Transports& transports, const LocalIdentity& identity, sip::ParseLimits limits,
                       const transaction::Clock& clock, transaction::LayerSettings settings,
                       registrar::Registrar& registrar)
    : identity_(identity),
      clock_(clock),
      registrar_(registrar),
      limits_(limits),
      sender_(transports),
      layer_(clock, sender_, *this, settings),
      random_(std::random_device{}()) {}

void Dispatcher::onMessage(const transport::Source& source, std::string_view bytes) {
  sip::ParseResult parsed = sip::Message::parse(bytes, limits_);
  if (!parsed.message) {
    ++counters_.messagesUnparseable;
    spdlog::warn("drop {} bytes from {}: {}", bytes.size(), describe(source), parsed.error);
    return;
  }
  sip::Message& message = *parsed.message;
  if (message.isResponse()) {
    ++counters_.responsesReceived;
    auto problem = parsed.error.empty() ? sip::validateResponse(message) : std::optional<std::string>(parsed.error);
    if (problem) {
      ++counters_.responsesDropped;
      spdlog::warn("drop response {} from {}: {}", message.statusCode(), describe(source), *problem);
      return;
    }
    if (spdlog::should_log(spdlog::level::debug)) {
      spdlog::debug("recv {} {} Call-ID {} from {}", message.statusCode(), message.reasonPhrase(), message.callId(),
                    describe(source));
    }
    layer_.receiveResponse(message, source);
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
    respondStateless(source, message, rejection->status, rejection->reason);
    return;
  }
  // RFC 3261 §18.2.1 / RFC 3581 §4: received and rport on the top Via, so that every
  // response (and later every forwarded request) carries where this really came from.
  message.setTopViaReceived(source.remote.address.to_string(), source.remote.port);
  layer_.receiveRequest(message, source);
}

void Dispatcher::onRequest(transaction::TransactionId server, const sip::Message& request,
                           const transport::Source& source) {
  const auto uri = request.requestUriParts();
  if (request.method() == "REGISTER") {
    const registrar::RegistrarReply reply = registrar_.handle(request, source, clock_.now());
    if (reply.status >= 300) {
      spdlog::info("REGISTER from {} refused: {} {}", describe(source), reply.status, reply.reason);
    }
    layer_.respond(server, reply.status, sip::buildResponse(request, reply.status, reply.reason, newTag(), reply.headers));
    return;
  }
  if (request.method() == "OPTIONS" && uri && uri->user.empty() && identity_.isLocal(*uri)) {
    ++counters_.optionsAnswered;
    layer_.respond(server, 200, sip::buildResponse(request, 200, "OK", newTag(), kOptionsHeaders));
    return;
  }
  ++counters_.requestsNotImplemented;
  layer_.respond(server, 501, sip::buildResponse(request, 501, "Not Implemented", newTag()));
}

void Dispatcher::onAck(const sip::Message& ack, const transport::Source& source) {
  // No 2xx is sent by this daemon yet, so nothing is waiting for this ACK.
  ++counters_.acksUnmatched;
  spdlog::debug("ACK Call-ID {} from {} matches no transaction", ack.callId(), describe(source));
}

void Dispatcher::onResponse(transaction::TransactionId, const sip::Message&) {}

void Dispatcher::onStrayResponse(const sip::Message& response, const transport::Source& source) {
  ++counters_.responsesDropped;
  spdlog::warn("drop response {} from {}: no matching transaction", response.statusCode(), describe(source));
}

void Dispatcher::onClientTimeout(transaction::TransactionId) {}
void Dispatcher::onClientTransportError(transaction::TransactionId) {}
void Dispatcher::onServerFailure(transaction::TransactionId) {}  // counted and logged by the layer

void Dispatcher::respondStateless(const transport::Source& source, const sip::Message& request, int status,
                                  std::string_view reason) {
  const auto via = request.topVia();
  const transport::Destination destination =
      transport::responseDestination(transport::ViaSentBy{via->port, via->hasRport}, source);
  sender_.send(destination, sip::buildResponse(request, status, reason, newTag()), {});
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
