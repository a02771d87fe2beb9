#pragma once
// Where every message from the transports goes first: parse and validate, then into the
// transaction layer. It is also the layer's user for now: it answers what the daemon
// answers itself (OPTIONS to one of its own names) and 501 to everything else, until
// the proxy core takes that role.

#include <cstdint>
#include <random>
#include <string_view>

#include "waypoint/app/local_identity.hpp"
#include "waypoint/registrar/registrar.hpp"
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
  std::uint64_t acksUnmatched = 0;
  std::uint64_t optionsAnswered = 0;
  std::uint64_t requestsNotImplemented = 0;
};

// Sends the transaction layer's messages through the transports.
class TransportSender final : public transaction::Sender {
 public:
  explicit TransportSender(transport::Transports& transports) : transports_(transports) {}
  void send(const transport::Destination& destination, const std::string& bytes, ErrorHandler onError) override;

 private:
  transport::Transports& transports_;
};

class Dispatcher final : public transaction::TransactionUser {
 public:
  Dispatcher(transport::Transports& transports, const LocalIdentity& identity, sip::ParseLimits limits,
             const transaction::Clock& clock, transaction::LayerSettings settings, registrar::Registrar& registrar);

  void onMessage(const transport::Source& source, std::string_view bytes);
  const DispatcherCounters& counters() const { return counters_; }
  transaction::TransactionLayer& transactions() { return layer_; }

  // transaction::TransactionUser
  void onRequest(transaction::TransactionId server, const sip::Message& request,
                 const transport::Source& source) override;
  void onAck(const sip::Message& ack, const transport::Source& source) override;
  void onResponse(transaction::TransactionId client, const sip::Message& response) override;
  void onStrayResponse(const sip::Message& response, const transport::Source& source) override;
  void onClientTimeout(transaction::TransactionId client) override;
  void onClientTransportError(transaction::TransactionId client) override;
  void onServerFailure(transaction::TransactionId server) override;

 private:
  void respondStateless(const transport::Source& source, const sip::Message& request, int status,
                        std::string_view reason);
  std::string newTag();

  const LocalIdentity& identity_;
  const transaction::Clock& clock_;
  registrar::Registrar& registrar_;
  sip::ParseLimits limits_;
  TransportSender sender_;
  transaction::TransactionLayer layer_;
  DispatcherCounters counters_;
  std::mt19937_64 random_;
};

}  // namespace waypoint::app
