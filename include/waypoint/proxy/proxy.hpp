#pragma once
// The transaction-stateful proxy of RFC 3261 §16, the transaction layer's user. It runs
// each request through its parts in turn: the §16.3 checks (RequestChecks), Route
// preprocessing and the target set (Router), admission — digest authentication and the
// identity checks (auth::Authenticator, whose user lookups may answer later) — then
// either a local answer (the registrar, OPTIONS) or the Forwarder, which forks and keeps
// the response context. A request waiting for its admission is parked here by its server
// transaction (which absorbs retransmissions meanwhile) and resumes when the answer
// comes; a CANCEL or a failed transaction ends the wait. No dialog state: in-dialog
// requests follow the Route set its Record-Route built.
//
// Sans-I/O like the layer below: a Clock, a Sender; the daemon drives fireDueTimers().

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "waypoint/auth/authenticator.hpp"
#include "waypoint/proxy/decision_note.hpp"
#include "waypoint/proxy/forwarder.hpp"
#include "waypoint/proxy/identifiers.hpp"
#include "waypoint/proxy/local_identity.hpp"
#include "waypoint/proxy/next_hop.hpp"
#include "waypoint/proxy/proxy_counters.hpp"
#include "waypoint/proxy/responder.hpp"
#include "waypoint/proxy/route_token.hpp"
#include "waypoint/proxy/router.hpp"
#include "waypoint/registrar/registrar.hpp"
#include "waypoint/routing/rules.hpp"
#include "waypoint/transaction/transaction_layer.hpp"

namespace waypoint::proxy {

struct AdmissionSettings {
  bool challengeRegister = true;         // REGISTER for a served domain: 401
  bool challengeCalls = true;            // requests from local users that leave the proxy: 407
  bool exemptTrusted = true;             // `trusted:` sources are never challenged
  bool strictIdentity = true;            // REGISTER one's own AOR only, From one's own only
  std::size_t maxWaiting = 10000;        // requests parked for a lookup or a back-off at once
  std::size_t maxWaitingPerSource = 32;  // so one source cannot take the whole table
};

struct ProxySettings {
  std::chrono::milliseconds timerC{180000};  // > 3 min per §16.6 step 11; tests shorten it
  std::uint32_t maxForwards = 70;            // inserted when a request has none
  // Record-Route token secrets: the first signs, all verify (rotation). Empty: one made up
  // at start, so tokens do not outlive the process (tests).
  std::vector<std::string> routeSecrets;
  // Sources whose preloaded Route sets are followed (gateways, other proxies of ours).
  std::vector<transport::AddressBlock> trusted;
  // The Server header of responses made here; empty: none (no product or version given away).
  std::string serverHeader;
  // Seeds the generator of tags and branch numbers; unset: std::random_device. Tests and
  // golden files set it so that the bytes sent are the same on every run.
  std::optional<std::uint64_t> randomSeed;
  AdmissionSettings admission;
};

class Proxy final : public transaction::TransactionUser {
 public:
  // `authenticator` null: nobody is challenged (no users configured).
  Proxy(const transaction::Clock& clock, transaction::Sender& sender,
        transaction::LayerSettings layerSettings, const LocalIdentity& identity,
        registrar::Registrar& registrar, ProxySettings settings,
        auth::Authenticator* authenticator = nullptr);
  ~Proxy() override;

  transaction::TransactionLayer& transactions() { return layer_; }
  void setRules(std::shared_ptr<const routing::RuleSet> rules) {
    router_.setRules(std::move(rules));
  }
  const routing::RuleSet& rules() const { return router_.rules(); }
  // Where the rules send an initial request, sending nothing (waypointctl route explain).
  Routed explainRoute(const sip::Message& request, const transport::Source& source) const {
    return router_.explain(request, source);
  }
  void setAdmission(AdmissionSettings admission) { settings_.admission = admission; }

  // Graceful stop: from now on a request that would start a new transaction is answered
  // 503 with Retry-After (RFC 3261 §21.5.4); ACK, CANCEL for live transactions, responses
  // and retransmissions (absorbed by the layer) keep flowing, so live calls finish.
  void startDrain(std::chrono::seconds retryAfter);
  bool draining() const { return draining_; }
  // Nothing left to finish: every request taken in has its final response (no response
  // context or parked request); lingering transactions only absorb retransmissions.
  bool drained() const;

  // The earliest deadline of the proxy (Timer C, parked requests) and of its layer.
  std::optional<TimePoint> nextExpiry();
  void fireDueTimers();

  const ProxyCounters& counters() const {
    counters_.liveContexts = forwarder_.liveContexts();
    counters_.waitingRequests = waiting_.size();
    return counters_;
  }

  std::string localResponse(const sip::Message& request, int status, std::string_view reason,
                            std::vector<std::string> extraHeaders = {}) {
    return responder_.response(request, status, reason, std::move(extraHeaders));
  }

  // While `text` is set, each request handled appends how it was decided (the rule and
  // targets, or why it was answered here) to it; nullptr stops it. The dispatcher sets it
  // around one request at debug level only.
  void explainInto(std::string* text) { note_.attach(text); }

  // transaction::TransactionUser
  void onRequest(TransactionId server, sip::Message& request,
                 const transport::Source& source) override;
  void onAck(sip::Message& ack, const transport::Source& source) override;
  void onResponse(TransactionId client, sip::Message& response) override;
  void onStrayResponse(sip::Message& response, const transport::Source& source) override;
  void onClientTimeout(TransactionId client) override;
  void onClientTransportError(TransactionId client) override;
  void onServerFailure(TransactionId server) override;

 private:
  // A request past the checks and the router, waiting for its admission.
  struct Waiting {
    Waiting(sip::Message parsed, transport::Source from, std::string key, Routed route,
            TimePoint at)
        : request(std::move(parsed)),
          source(from),
          loopKey(std::move(key)),
          routed(std::move(route)),
          received(at) {}
    sip::Message request;
    transport::Source source;
    std::string loopKey;
    Routed routed;
    TimePoint received;
    auth::AuthAttempt attempt;
    std::uint64_t generation = 0;
    std::optional<auth::AuthVerdict> heldAnswer;  // a challenge held back by the back-off
  };
  struct Wakeup {
    TimePoint due;
    TransactionId server;
    std::uint64_t generation;
    bool operator>(const Wakeup& other) const { return due > other.due; }
  };

  // False when no INVITE transaction matches: the CANCEL is then routed like any request.
  bool handleCancel(TransactionId server, sip::Message& cancel);
  // The attempt when the request must authenticate (realm, 401 or 407), else nullopt.
  std::optional<auth::AuthAttempt> admissionFor(const sip::Message& request,
                                                const transport::Source& source,
                                                const Routed& routed) const;
  void checkCredentials(TransactionId server);
  void onVerdict(TransactionId server, std::uint64_t generation, auth::AuthVerdict verdict);
  // `received`: when onRequest() got it, for the receive-to-forward histogram.
  void proceed(TransactionId server, sip::Message& request, const transport::Source& source,
               std::string loopKey, Routed routed, TimePoint received);
  bool identityAllowed(const sip::Message& request, const auth::AuthAttempt& attempt,
                       const auth::UserRecord& user) const;
  bool answerLocally(TransactionId server, sip::Message& request, const transport::Source& source);

  const transaction::Clock& clock_;
  const LocalIdentity& identity_;
  registrar::Registrar& registrar_;
  ProxySettings settings_;
  auth::Authenticator* authenticator_;
  RouteTokenSigner tokens_;
  mutable ProxyCounters counters_;
  Identifiers ids_;
  Responder responder_;
  transaction::TransactionLayer layer_;
  Router router_;
  Forwarder forwarder_;
  void forget(std::unordered_map<TransactionId, Waiting>::iterator waiting);

  std::unordered_map<TransactionId, Waiting> waiting_;
  std::unordered_map<boost::asio::ip::address, std::size_t> waitingBySource_;
  std::uint64_t nextGeneration_ = 1;
  bool draining_ = false;
  std::chrono::seconds retryAfter_{0};
  std::priority_queue<Wakeup, std::vector<Wakeup>, std::greater<>> wakeups_;
  DecisionNote note_;
};

}  // namespace waypoint::proxy
