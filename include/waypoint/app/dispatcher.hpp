#pragma once
// Where every message from the transports goes first: parse and validate, answer a
// malformed request with its 400 statelessly, then hand the message to the transaction
// layer, whose user is the proxy.

#include <cstdint>
#include <string_view>

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

class Dispatcher {
 public:
  Dispatcher(transaction::Sender& sender, proxy::Proxy& proxy, sip::ParseLimits limits);

  void onMessage(const transport::Source& source, std::string_view bytes);
  const DispatcherCounters& counters() const { return counters_; }

 private:
  void respondStateless(const transport::Source& source, const sip::Message& request, int status,
                        std::string_view reason);

  transaction::Sender& sender_;
  proxy::Proxy& proxy_;
  sip::ParseLimits limits_;
  DispatcherCounters counters_;
};

}  // namespace waypoint::app
