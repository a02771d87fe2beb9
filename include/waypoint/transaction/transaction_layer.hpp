#pragma once
// The transaction table of RFC 3261 §17: matches messages to transactions, runs the four
// state machines, and keeps every timer of every transaction in one heap. Sans-I/O: it
// reads time from a Clock, sends through a Sender and tells its TransactionUser; the
// daemon drives fireDueTimers() from one Asio timer set to nextExpiry().

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "waypoint/metrics/metric.hpp"
#include "waypoint/sip/message.hpp"
#include "waypoint/sip/outgoing.hpp"
#include "waypoint/transaction/actions.hpp"
#include "waypoint/transport/address.hpp"

namespace waypoint::transaction {

using TimePoint = std::chrono::steady_clock::time_point;
using TransactionId = std::uint64_t;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
};

class SteadyClock final : public Clock {
 public:
  TimePoint now() const override { return std::chrono::steady_clock::now(); }
};

// Where the layer's messages go: the transports in the daemon, a recorder in tests. A
// failure may be reported from inside send() or later.
class Sender {
 public:
  using ErrorHandler = std::function<void(std::error_code)>;
  virtual ~Sender() = default;
  virtual void send(const transport::Destination& destination, const std::string& bytes,
                    ErrorHandler onError) = 0;
};

// The layer above: the proxy core (and, until it exists, the daemon's own UAS).
class TransactionUser {
 public:
  virtual ~TransactionUser() = default;
  // A new request made a server transaction (CANCEL makes its own). Answer with respond().
  // The request is the TU's: it may edit it or take it (move from it); nothing reads it
  // after this call.
  virtual void onRequest(TransactionId server, sip::Message& request,
                         const transport::Source& source) = 0;
  // An ACK for a 2xx, or an ACK that matches no transaction: it is routed, not absorbed.
  // The TU may take it, as with onRequest.
  virtual void onAck(sip::Message& ack, const transport::Source& source) = 0;
  // A response for a client transaction (provisional, final, or a retransmitted 2xx).
  virtual void onResponse(TransactionId client, sip::Message& response) = 0;
  // A response matching no client transaction.
  virtual void onStrayResponse(sip::Message& response, const transport::Source& source) = 0;
  // Timer B/F fired: no final response (the TU answers 408 upstream).
  virtual void onClientTimeout(TransactionId client) = 0;
  // The transport failed for the request (the TU treats it as 503, §17.1.4).
  virtual void onClientTransportError(TransactionId client) = 0;
  // A server transaction failed: no ACK before Timer H (§17.2.1), or the response could
  // not be sent (§17.2.4). The transaction is gone when this is called.
  virtual void onServerFailure(TransactionId server) = 0;
};

struct LayerSettings {
  TimerSettings timers;
  bool send100Trying = true;  // INVITE server transactions answer 100 at once (proxy TU)
  std::size_t udpMtu = 1300;  // a bigger request goes over TCP (RFC 3261 §18.1.1)
};

// What the transaction layer did; transactionMetrics below declares them.
struct TransactionCounters {
  std::uint64_t serverTransactionsCreated = 0;
  std::uint64_t clientTransactionsCreated = 0;
  metrics::Family responsesSent;                     // by metrics::statusClassIndex()
  std::uint64_t requestRetransmissionsAbsorbed = 0;  // server: retransmitted requests not passed up
  std::uint64_t acksAbsorbed = 0;                    // ACKs for non-2xx ended here
  std::uint64_t requestRetransmissionsSent = 0;      // client: Timer A/E
  std::uint64_t responseRetransmissionsSent = 0;  // server: Timer G and answers to retransmissions
  std::uint64_t responsesAbsorbed = 0;            // client: retransmitted finals not passed up
  std::uint64_t clientTimeouts = 0;               // Timer B/F
  std::uint64_t serverTimeouts = 0;               // Timer H: no ACK
  std::uint64_t transportErrors = 0;
  std::uint64_t strayResponses = 0;
  std::uint64_t requestsMovedToTcp = 0;      // over the UDP MTU limit (§18.1.1)
  std::uint64_t requestsRetriedOverUdp = 0;  // moved, then refused or reset over TCP (§18.1.1)
  std::uint64_t liveServerTransactions = 0;  // gauges
  std::uint64_t liveClientTransactions = 0;
  std::uint64_t pendingTimers = 0;
};

using TransactionMetric = metrics::Metric<TransactionCounters>;

inline constexpr std::array transactionMetrics{
    TransactionMetric::counter("transactions_server_created", "Server transactions created",
                               &TransactionCounters::serverTransactionsCreated),
    TransactionMetric::counter("transactions_client_created", "Client transactions created",
                               &TransactionCounters::clientTransactionsCreated),
    TransactionMetric::counterFamily(
        "responses_sent",
        "Responses sent through server transactions (made here or forwarded), by status class",
        &TransactionCounters::responsesSent, "class", metrics::statusClassLabels),
    TransactionMetric::counter(
        "transactions_request_retransmissions_absorbed",
        "Retransmitted requests a server transaction absorbed (not passed up)",
        &TransactionCounters::requestRetransmissionsAbsorbed),
    TransactionMetric::counter("transactions_acks_absorbed",
                               "ACKs for non-2xx responses that ended at a transaction",
                               &TransactionCounters::acksAbsorbed),
    TransactionMetric::counter("transactions_request_retransmissions_sent",
                               "Requests retransmitted by client transactions (Timer A/E)",
                               &TransactionCounters::requestRetransmissionsSent),
    TransactionMetric::counter(
        "transactions_response_retransmissions_sent",
        "Responses retransmitted by server transactions (Timer G, answers to retransmissions)",
        &TransactionCounters::responseRetransmissionsSent),
    TransactionMetric::counter("transactions_responses_absorbed",
                               "Retransmitted final responses a client transaction absorbed",
                               &TransactionCounters::responsesAbsorbed),
    TransactionMetric::counter("transactions_client_timeouts",
                               "Client transactions that timed out (Timer B/F)",
                               &TransactionCounters::clientTimeouts),
    TransactionMetric::counter("transactions_server_timeouts",
                               "INVITE server transactions that got no ACK (Timer H)",
                               &TransactionCounters::serverTimeouts),
    TransactionMetric::counter("transactions_transport_errors",
                               "Transactions ended by a transport error",
                               &TransactionCounters::transportErrors),
    TransactionMetric::counter("transactions_stray_responses",
                               "Responses that matched no client transaction",
                               &TransactionCounters::strayResponses),
    TransactionMetric::counter(
        "transactions_requests_moved_to_tcp",
        "Requests over the UDP size limit sent over TCP instead (RFC 3261 18.1.1)",
        &TransactionCounters::requestsMovedToTcp),
    TransactionMetric::counter(
        "transactions_requests_retried_over_udp",
        "Requests moved to TCP, then sent over UDP after TCP was refused or reset",
        &TransactionCounters::requestsRetriedOverUdp),
    TransactionMetric::gauge("transactions_live_server", "Server transactions alive now",
                             &TransactionCounters::liveServerTransactions),
    TransactionMetric::gauge("transactions_live_client", "Client transactions alive now",
                             &TransactionCounters::liveClientTransactions),
    TransactionMetric::gauge("transactions_pending_timers", "Transaction timers pending now",
                             &TransactionCounters::pendingTimers),
};

// A request for startClient(), its own Via on top (the Via's branch and the method name
// the transaction). The layer serializes it with the top Via's transport set to the one it
// uses: a UDP request bigger than the MTU limit goes over TCP instead when the target
// allows TCP, and back over UDP if that TCP connection is refused or reset before any
// response came (RFC 3261 §18.1.1).
struct ClientRequest {
  sip::OutgoingRequest request;
  transport::Destination destination;
  bool targetAllowsTcp = true;
};

class TransactionLayer {
 public:
  TransactionLayer(const Clock& clock, Sender& sender, TransactionUser& user,
                   LayerSettings settings);
  ~TransactionLayer();
  TransactionLayer(const TransactionLayer&) = delete;
  TransactionLayer& operator=(const TransactionLayer&) = delete;

  // From the transports, after parsing and validation.
  void receiveRequest(sip::Message& request, const transport::Source& source);
  void receiveResponse(sip::Message& response, const transport::Source& source);
  // The user may edit the message it is handed (a proxy forwards it); these take a
  // message nobody else keeps.
  void receiveRequest(sip::Message&& request, const transport::Source& source) {
    receiveRequest(request, source);
  }
  void receiveResponse(sip::Message&& response, const transport::Source& source) {
    receiveResponse(response, source);
  }

  // From the TU. respond() on an ended transaction is ignored (returns false).
  bool respond(TransactionId server, int status, std::string bytes);
  TransactionId startClient(ClientRequest request);
  // §9.1: starts the CANCEL of a pending INVITE client transaction — built from the INVITE
  // as sent, to the same destination over the same transport. nullopt when the INVITE has
  // had its final response or is gone.
  std::optional<TransactionId> cancelClient(TransactionId invite, std::uint32_t maxForwards);

  // The transports learned that destination is unreachable (an ICMP error): every client
  // transaction waiting on it over UDP fails with a transport error (§17.1.4).
  void destinationUnreachable(const transport::Destination& destination);

  // The INVITE server transaction a CANCEL is for (§9.2), if it is still there.
  std::optional<TransactionId> inviteForCancel(const sip::Message& cancel) const;

  // Timers: the earliest pending one, and firing everything due at the clock's now.
  std::optional<TimePoint> nextExpiry();
  void fireDueTimers();

  const TransactionCounters& counters() const;
  const LayerSettings& settings() const { return settings_; }

  // Holds back transport-error callbacks while it lives, so that a TU starting a client
  // transaction learns its id before it can hear that the transaction failed.
  class DeferCallbacks {
   public:
    explicit DeferCallbacks(TransactionLayer& layer) : layer_(layer) { ++layer_.depth_; }
    ~DeferCallbacks() {
      --layer_.depth_;
      layer_.drainTransportErrors();
    }
    DeferCallbacks(const DeferCallbacks&) = delete;
    DeferCallbacks& operator=(const DeferCallbacks&) = delete;

   private:
    TransactionLayer& layer_;
  };

  struct ServerTransaction;
  struct ClientTransaction;

 private:
  struct TimerEntry {
    TimePoint due;
    TransactionId id;
    std::uint16_t generation;
    TimerName timer;
    bool operator>(const TimerEntry& other) const { return due > other.due; }
  };

  template <typename Transaction>
  void execute(Transaction& transaction, const Actions& actions, sip::Message* event,
               const transport::Source* source);
  void arm(TransactionId id, std::uint16_t& generation, TimerName timer, Duration delay);
  // A send that failed, from the transaction's `attempt` (a client transaction retried over
  // UDP starts a new one; failures of the old one no longer count).
  struct FailedSend {
    TransactionId id;
    std::uint32_t attempt;
    std::error_code error;
  };

  void sendFor(TransactionId id, std::uint32_t attempt, const transport::Destination& destination,
               const std::string& bytes);
  void drainTransportErrors();
  void onTransportError(const FailedSend& failure);
  bool retryOverUdp(ClientTransaction& transaction, std::error_code error);
  void eraseServer(TransactionId id);
  void eraseClient(TransactionId id);

  const Clock& clock_;
  Sender& sender_;
  TransactionUser& user_;
  LayerSettings settings_;
  mutable TransactionCounters counters_;
  TransactionId nextId_ = 1;
  std::unordered_map<std::string, TransactionId> serverByKey_;
  std::unordered_map<std::string, TransactionId> clientByKey_;
  std::unordered_map<TransactionId, std::unique_ptr<ServerTransaction>> servers_;
  std::unordered_map<TransactionId, std::unique_ptr<ClientTransaction>> clients_;
  std::priority_queue<TimerEntry, std::vector<TimerEntry>, std::greater<>> timers_;
  std::vector<FailedSend> failedSends_;
  int depth_ = 0;
};

// The §17.2.3 key of a server transaction for a request (ACK maps to its INVITE).
// For RFC 2543 requests without the magic cookie, toTag selects the To tag to use.
std::string serverTransactionKey(const sip::Message& request, std::string_view methodOverride = {},
                                 std::optional<std::string_view> toTag = std::nullopt);
// The §17.1.3 key of a client transaction: branch and CSeq method.
std::string clientTransactionKey(std::string_view branch, std::string_view method);

}  // namespace waypoint::transaction
