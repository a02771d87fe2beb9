#pragma once
// Where every message from the transports goes first: drop it unparsed when its source
// floods (the SourceGuard), parse and validate, answer a malformed request with its 400
// statelessly, then hand the message to the transaction layer, whose user is the proxy.

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "waypoint/auth/source_guard.hpp"
#include "waypoint/proxy/proxy.hpp"
#include "waypoint/sip/message.hpp"
#include "waypoint/transaction/transaction_layer.hpp"
#include "waypoint/transport/transports.hpp"

namespace waypoint::app {

struct DispatcherCounters {
  std::uint64_t messagesUnparseable = 0;
  std::uint64_t requestsReceived = 0;
  std::uint64_t requestsMalformed = 0;  // answered 400 (or 416/505)
  std::uint64_t requestsDropped = 0;    // malformed and unanswerable: no Via, or an ACK
  std::uint64_t responsesReceived = 0;
  std::uint64_t responsesDropped = 0;
};

// Sends the transaction layer's messages through the transports.
class TransportSender final : public transaction::Sender {
 public:
  explicit TransportSender(transport::Transports& transports) : transports_(transports) {}
  void send(const transport::Destination& destination, const std::string& bytes,
            ErrorHandler onError) override;

 private:
  transport::Transports& transports_;
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
             std::optional<SourceFilter> filter = std::nullopt);

  void onMessage(const transport::Source& source, std::string_view bytes);
  const DispatcherCounters& counters() const { return counters_; }

 private:
  void respondStateless(const transport::Source& source, const sip::Message& request, int status,
                        std::string_view reason);
  bool admitted(const transport::Source& source);

  transaction::Sender& sender_;
  proxy::Proxy& proxy_;
  sip::ParseLimits limits_;
  std::optional<SourceFilter> filter_;
  DispatcherCounters counters_;
};

}  // namespace waypoint::app
