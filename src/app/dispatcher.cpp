#include "waypoint/app/dispatcher.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "waypoint/app/message_log.hpp"
#include "waypoint/sip/text.hpp"
#include "waypoint/sip/validation.hpp"

namespace waypoint::app {

namespace {

std::string describe(const transport::Source& source) {
  return std::string(transport::toString(source.protocol)) + " " +
         transport::toString(source.remote);
}

}  // namespace

MethodLabel methodLabel(std::string_view method) {
  for (std::size_t i = 0; i + 1 < methodLabels.size(); ++i) {
    if (method == methodLabels[i]) return static_cast<MethodLabel>(i);
  }
  return MethodLabel::other;
}

void TransportSender::send(const transport::Destination& destination, const std::string& bytes,
                           ErrorHandler onError) {
  if (aids_.tracer != nullptr && aids_.tracer->active()) {
    aids_.tracer->observe(MessageTracer::Direction::sent, destination.protocol, destination.remote,
                          bytes);
  }
  // Parsed again only at debug level: the layers above hand over bytes, and the line
  // wants the same fields as the one of a message received.
  if (spdlog::should_log(spdlog::level::debug)) {
    const sip::ParseResult parsed = sip::Message::parse(bytes);
    std::string line;
    if (parsed.message) {
      line = messageLine("send", *parsed.message, destination.protocol, destination.remote);
    } else {
      const std::string_view firstLine = std::string_view(bytes).substr(0, bytes.find('\r'));
      line = fmt::format("send \"{}\" to {}", firstLine, transport::toString(destination));
    }
    if (aids_.debugLines != nullptr) {
      aids_.debugLines->write(std::move(line));
    } else {
      spdlog::debug("{}", line);
    }
  }
  transports_.send(
      destination, bytes,
      [onError = std::move(onError)](const transport::Destination&, std::error_code ec) {
        if (onError) onError(ec);
      });
}

Dispatcher::Dispatcher(transaction::Sender& sender, proxy::Proxy& proxy, sip::ParseLimits limits,
                       std::optional<SourceFilter> filter, MessageAids aids)
    : sender_(sender), proxy_(proxy), limits_(limits), filter_(std::move(filter)), aids_(aids) {}

// Before any parsing, so that a flood costs a table lookup per message and no more. The
// guard counts what it drops.
bool Dispatcher::admitted(const transport::Source& source) {
  if (!filter_) return true;
  const auto& address = source.remote.address;
  const auto& trusted = filter_->trusted;
  if (std::any_of(trusted.begin(), trusted.end(),
                  [&](const transport::AddressBlock& block) { return block.contains(address); })) {
    return true;
  }
  switch (filter_->guard.admit(address, filter_->clock.now())) {
    case auth::SourceGuard::Verdict::pass:
      return true;
    case auth::SourceGuard::Verdict::banStarted:
      if (!warningAllowed(log::reason::floodBan)) break;
      spdlog::warn("flood: {} banned for {}s (more than {} requests/s)",
                   transport::toString(address), filter_->guard.settings().banTime.count(),
                   filter_->guard.settings().rate);
      break;
    case auth::SourceGuard::Verdict::drop:
      break;
  }
  return false;
}

void Dispatcher::onMessage(const transport::Source& source, std::string_view bytes) {
  if (!admitted(source)) return;
  if (aids_.tracer != nullptr && aids_.tracer->active()) {
    aids_.tracer->observe(MessageTracer::Direction::received, source.protocol, source.remote,
                          bytes);
  }
  sip::ParseResult parsed = sip::Message::parse(bytes, limits_);
  if (!parsed.message) {
    ++counters_.messagesUnparseable;
    if (warningAllowed(log::reason::badPacket))
      spdlog::warn("drop {} bytes from {}: {}", bytes.size(), describe(source), parsed.error);
    return;
  }
  sip::Message& message = *parsed.message;
  if (message.isResponse()) {
    ++counters_.responsesReceived[metrics::statusClassIndex(message.statusCode())];
    auto problem = parsed.error.empty() ? sip::validateResponse(message)
                                        : std::optional<std::string>(parsed.error);
    if (problem) {
      ++counters_.responsesDropped;
      if (warningAllowed(log::reason::badPacket))
        spdlog::warn("drop response {} from {}: {}", message.statusCode(), describe(source),
                     *problem);
      return;
    }
    if (spdlog::should_log(spdlog::level::debug)) {
      spdlog::debug("{}", messageLine("recv", message, source.protocol, source.remote));
    }
    proxy_.transactions().receiveResponse(message, source);
    return;
  }
  ++counters_.requestsReceived[methodLabel(message.method())];
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
      if (warningAllowed(log::reason::badPacket))
        spdlog::warn("drop {} from {}: {}", message.method(), describe(source), rejection->reason);
      if (spdlog::should_log(spdlog::level::debug)) {
        spdlog::debug("{} decision: dropped (malformed: {})",
                      messageLine("recv", message, source.protocol, source.remote),
                      rejection->reason);
      }
      return;
    }
    ++counters_.requestsMalformed;
    if (warningAllowed(log::reason::badPacket))
      spdlog::warn("reject {} from {}: {} {}", message.method(), describe(source),
                   rejection->status, rejection->reason);
    if (spdlog::should_log(spdlog::level::debug)) {
      spdlog::debug("{} decision: answered {} {} (malformed)",
                    messageLine("recv", message, source.protocol, source.remote), rejection->status,
                    rejection->reason);
    }
    respondStateless(source, message, rejection->status, rejection->reason);
    return;
  }
  // RFC 3261 §18.2.1 / RFC 3581 §4: received and rport on the top Via, so that every
  // response (and later every forwarded request) carries where this really came from.
  message.setTopViaReceived(transport::toString(source.remote.address), source.remote.port);
  deliverRequest(message, source);
}

// At debug level the request's line is made before the layer takes the message, and the
// proxy writes its decision into it while it handles the request.
void Dispatcher::deliverRequest(sip::Message& message, const transport::Source& source) {
  if (!spdlog::should_log(spdlog::level::debug)) {
    proxy_.transactions().receiveRequest(message, source);
    return;
  }
  std::string line = messageLine("recv", message, source.protocol, source.remote);
  std::string decision;
  if (aids_.debugLines != nullptr) aids_.debugLines->hold();
  proxy_.explainInto(&decision);
  proxy_.transactions().receiveRequest(message, source);
  proxy_.explainInto(nullptr);
  if (decision.empty()) {
    decision = "absorbed by its transaction (a retransmission or the ACK of a final response)";
  }
  line.append(" decision: ").append(decision);
  if (aids_.debugLines != nullptr) {
    aids_.debugLines->release(line);
  } else {
    spdlog::debug("{}", line);
  }
}

void Dispatcher::respondStateless(const transport::Source& source, const sip::Message& request,
                                  int status, std::string_view reason) {
  const auto via = request.topVia();
  const transport::Destination destination =
      transport::responseDestination(transport::ViaSentBy{via->port, via->hasRport}, source);
  sender_.send(destination, proxy_.localResponse(request, status, reason), {});
}

}  // namespace waypoint::app
