#pragma once
// Where every message from the transports goes first: drop it unparsed when its source
// floods (the SourceGuard), parse and validate, answer a malformed request with its 400
// statelessly, then hand the message to the transaction layer, whose user is the proxy.
// It logs one debug line per message (with the proxy's decision for a request), shows the
// messages a running trace matches, and limits the warnings a peer can repeat at will.

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "waypoint/app/message_log.hpp"
#include "waypoint/app/message_trace.hpp"
#include "waypoint/auth/source_guard.hpp"
#include "waypoint/log/warning_limiter.hpp"
#include "waypoint/metrics/metric.hpp"
#include "waypoint/proxy/proxy.hpp"
#include "waypoint/sip/message.hpp"
#include "waypoint/transaction/transaction_layer.hpp"
#include "waypoint/transport/transports.hpp"

namespace waypoint::app {

// The methods requests are counted by (Family index); the rest count as "other".
enum class MethodLabel : std::uint8_t {
  invite,
  ack,
  bye,
  cancel,
  register_,
  options,
  subscribe,
  notify,
  refer,
  message,
  info,
  prack,
  update,
  publish,
  other
};
inline constexpr std::array<std::string_view, 15> methodLabels{
    "INVITE", "ACK",     "BYE",  "CANCEL", "REGISTER", "OPTIONS", "SUBSCRIBE", "NOTIFY",
    "REFER",  "MESSAGE", "INFO", "PRACK",  "UPDATE",   "PUBLISH", "other"};
// Case-sensitive, as RFC 3261 matches methods: "invite" is "other".
MethodLabel methodLabel(std::string_view method);

// What the dispatcher saw; dispatcherMetrics below declares them.
struct DispatcherCounters {
  metrics::Family requestsReceived;   // by MethodLabel, malformed ones included
  metrics::Family responsesReceived;  // by metrics::statusClassIndex(), dropped ones included
  std::uint64_t messagesUnparseable = 0;
  std::uint64_t requestsMalformed = 0;  // answered 400 (or 416/505)
  std::uint64_t requestsDropped = 0;    // malformed and unanswerable: no Via, or an ACK
  std::uint64_t responsesDropped = 0;
};

using DispatcherMetric = metrics::Metric<DispatcherCounters>;

inline constexpr std::array dispatcherMetrics{
    DispatcherMetric::counterFamily("requests_received",
                                    "SIP requests received (parsed), by method",
                                    &DispatcherCounters::requestsReceived, "method", methodLabels),
    DispatcherMetric::counterFamily(
        "responses_received", "SIP responses received (parsed), by status class",
        &DispatcherCounters::responsesReceived, "class", metrics::statusClassLabels),
    DispatcherMetric::counter(
        "messages_invalid",
        "Messages refused before the transaction layer, by reason: unparseable (not SIP, "
        "dropped), request_rejected (answered 400/416/505), request_dropped (malformed "
        "with no Via, or an ACK), response_dropped (malformed response)",
        &DispatcherCounters::messagesUnparseable, R"(reason="unparseable")"),
    DispatcherMetric::counter("messages_invalid", "", &DispatcherCounters::requestsMalformed,
                              R"(reason="request_rejected")"),
    DispatcherMetric::counter("messages_invalid", "", &DispatcherCounters::requestsDropped,
                              R"(reason="request_dropped")"),
    DispatcherMetric::counter("messages_invalid", "", &DispatcherCounters::responsesDropped,
                              R"(reason="response_dropped")"),
};

// The troubleshooting aids the dispatcher and the sender share, owned by the daemon
// (Diagnostics). Each may be null: then nothing is traced, every warning is logged, and
// debug lines are written at once.
struct MessageAids {
  MessageTracer* tracer = nullptr;
  log::WarningLimiter* warnings = nullptr;
  DebugLines* debugLines = nullptr;
};

// Sends the transaction layer's messages through the transports, with a debug line for
// each and the messages a running trace matches.
class TransportSender final : public transaction::Sender {
 public:
  explicit TransportSender(transport::Transports& transports, MessageAids aids = {})
      : transports_(transports), aids_(aids) {}
  void send(const transport::Destination& destination, const std::string& bytes,
            ErrorHandler onError) override;

 private:
  transport::Transports& transports_;
  MessageAids aids_;
};

// The flood check before parsing. The daemon owns the guard (the proxy bans through it
// too); trusted sources are never limited.
struct SourceFilter {
  auth::SourceGuard& guard;
  const transaction::Clock& clock;
  std::vector<transport::AddressBlock> trusted;
};

class Dispatcher {
 public:
  // Without a filter nothing is rate-limited (the unit tests, the fuzzer, the benchmarks).
  Dispatcher(transaction::Sender& sender, proxy::Proxy& proxy, sip::ParseLimits limits,
             std::optional<SourceFilter> filter = std::nullopt, MessageAids aids = {});

  void onMessage(const transport::Source& source, std::string_view bytes);
  const DispatcherCounters& counters() const { return counters_; }

 private:
  void respondStateless(const transport::Source& source, const sip::Message& request, int status,
                        std::string_view reason);
  bool admitted(const transport::Source& source);
  bool warningAllowed(std::string_view reason) const {
    return aids_.warnings == nullptr || aids_.warnings->allow(reason);
  }
  void deliverRequest(sip::Message& message, const transport::Source& source);

  transaction::Sender& sender_;
  proxy::Proxy& proxy_;
  sip::ParseLimits limits_;
  std::optional<SourceFilter> filter_;
  MessageAids aids_;
  DispatcherCounters counters_;
};

}  // namespace waypoint::app
