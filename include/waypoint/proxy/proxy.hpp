#pragma once
// The transaction-stateful proxy of RFC 3261 §16, the transaction layer's user. For each
// request it runs the §16.3 checks, Route preprocessing (§16.4), decides the target set
// (the dialog's Route set, the registrar's bindings, or the routing rules), forks, and
// keeps a response context per request until every branch has ended (§16.7): provisional
// responses go up at once, every 2xx goes up at once and cancels the other branches,
// otherwise the best final response goes up when no branch is left. Timer C bounds a
// ringing INVITE branch. CANCEL is answered hop by hop and cancels every pending branch
// (§16.10). ACK for 2xx and stray responses are forwarded statelessly. No dialog state:
// in-dialog requests follow the Route set its Record-Route built.
//
// Sans-I/O like the layer below: a Clock, a Sender; the daemon drives fireDueTimers().

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "waypoint/proxy/local_identity.hpp"
#include "waypoint/proxy/next_hop.hpp"
#include "waypoint/proxy/refusal_log.hpp"
#include "waypoint/proxy/route_token.hpp"
#include "waypoint/registrar/registrar.hpp"
#include "waypoint/routing/rules.hpp"
#include "waypoint/transaction/transaction_layer.hpp"

namespace waypoint::proxy {

using transaction::TimePoint;
using transaction::TransactionId;

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
};

struct ProxyCounters {
  std::uint64_t requestsForwarded = 0;   // branches started (client transactions)
  std::uint64_t responsesForwarded = 0;  // responses sent upstream from branches
  std::uint64_t responsesGenerated = 0;  // final responses the proxy made itself (4xx/5xx/408)
  std::uint64_t statelessForwarded = 0;  // ACK for 2xx, CANCEL without transaction, stray responses
  std::uint64_t statelessDropped = 0;    // ACKs and stray responses with nowhere to go
  std::uint64_t maxForwardsExceeded = 0;  // 483
  std::uint64_t loopsDetected = 0;        // 482
  std::uint64_t badExtensions = 0;        // 420
  std::uint64_t locationNotFound = 0;     // 404: AOR never registered
  std::uint64_t locationUnavailable = 0;  // 480: AOR with no binding now
  std::uint64_t rulesRejected = 0;        // a reject rule, or the default 404
  std::uint64_t unresolvable = 0;         // next hop with a host name (no DNS) or no listener
  std::uint64_t cancelsReceived = 0;
  std::uint64_t branchesCancelled = 0;  // CANCEL sent downstream
  std::uint64_t timerCFired = 0;
  std::uint64_t preloadedRoutesDenied = 0;  // 403 Preload Route denied
  std::uint64_t routeTokensRejected = 0;    // 403: our Route with a forged or damaged token
  std::uint64_t dialogRequestsRefused = 0;  // 403: valid token, but from/to neither side
  std::uint64_t optionsAnswered = 0;
  std::uint64_t registersHandled = 0;
  std::uint64_t liveContexts = 0;  // gauge: requests with branches still running
};

// §16.7 step 6: is `candidate` a better final response than `current`? 6xx beats all;
// otherwise the lower class wins; in 4xx, 401/407/415/420/484 are preferred (they let the
// caller retry); a response the proxy made up (timeout, transport error) loses a tie.
// The flow an in-dialog request with a valid token goes to, given the flow it arrived on,
// the dialogs its Route entries named, and its next hop by Route or Request-URI.
std::optional<Flow> dialogFlowFor(const Flow& arrived, const std::vector<DialogFlows>& dialogs,
                                  const std::optional<transport::Destination>& nextHop);

bool betterFinalResponse(int candidate, bool candidateSynthetic, int current,
                         bool currentSynthetic);

class Proxy final : public transaction::TransactionUser {
 public:
  Proxy(const transaction::Clock& clock, transaction::Sender& sender,
        transaction::LayerSettings layerSettings, const LocalIdentity& identity,
        registrar::Registrar& registrar, ProxySettings settings);
  ~Proxy() override;

  transaction::TransactionLayer& transactions() { return layer_; }
  // A reload swaps the rules; requests in progress keep the decision they got.
  void setRules(std::shared_ptr<const routing::RuleSet> rules) { rules_ = std::move(rules); }
  const routing::RuleSet& rules() const { return *rules_; }

  // The earliest deadline of the proxy (Timer C) and of its transaction layer.
  std::optional<TimePoint> nextExpiry();
  void fireDueTimers();

  const ProxyCounters& counters() const {
    counters_.liveContexts = contexts_.size();
    return counters_;
  }

  // A response made here (RFC 3261 §8.2.6) with a fresh To tag and the configured Server
  // header, if any: for the proxy's own answers and the dispatcher's 400s alike.
  std::string localResponse(const sip::Message& request, int status, std::string_view reason,
                            std::vector<std::string> extraHeaders = {});

  // transaction::TransactionUser
  void onRequest(TransactionId server, sip::Message& request,
                 const transport::Source& source) override;
  void onAck(sip::Message& ack, const transport::Source& source) override;
  void onResponse(TransactionId client, sip::Message& response) override;
  void onStrayResponse(sip::Message& response, const transport::Source& source) override;
  void onClientTimeout(TransactionId client) override;
  void onClientTransportError(TransactionId client) override;
  void onServerFailure(TransactionId server) override;

  struct Target;
  struct Branch;
  struct Context;

 private:
  struct TimerCEntry {
    TimePoint due;
    std::uint64_t context;
    std::size_t branch;
    std::uint32_t generation;
    bool operator>(const TimerCEntry& other) const { return due > other.due; }
  };
  // Where a request that is not for the proxy itself goes.
  struct Routed {
    std::vector<std::vector<Target>> groups;  // tried in turn; the targets of a group at once
    bool failoverOnAnyFailure = true;         // location: any non-2xx; forward: 408/5xx only
    bool recordRoute = true;
    int status = 0;  // > 0: answer this instead
    std::string reason;
  };

  // False when no INVITE transaction matches: the CANCEL is then routed like any request.
  bool handleCancel(TransactionId server, sip::Message& cancel);
  bool answerLocally(TransactionId server, sip::Message& request, const transport::Source& source);
  Routed route(sip::Message& request, const transport::Source& source);
  Routed routePreloaded(sip::Message& request, const transport::Source& source, bool recordRoute);
  Routed routeByRules(const sip::Message& request, const transport::Source& source);
  Routed routeToLocation(const std::optional<sip::Uri>& requestUri, routing::Forking forking);
  static Routed refusal(int status, std::string reason);
  static void followStrictRouter(sip::Message& request);
  bool isTrusted(const boost::asio::ip::address& address) const;
  struct ParsedUris {
    std::optional<sip::Uri> requestUri;
    std::optional<sip::Uri> from;
    std::optional<std::string> domain;  // the served domain of the Request-URI
  };
  routing::RequestFacts factsOf(const sip::Message& request, const transport::Source& source,
                                ParsedUris& uris) const;

  bool startGroup(Context& context);  // false: no group left that could start a branch
  bool startBranch(Context& context, const Target& target);
  void noteUnreachableTarget(Context& context);
  void cancelBranch(Context& context, Branch& branch);
  void cancelPending(Context& context);
  void branchEnded(Context& context, Branch& branch, int status,
                   std::optional<sip::Message> response, bool synthetic,
                   std::vector<std::string> challenges);
  void finishIfDone(std::uint64_t contextId);
  void sendFinal(Context& context);
  void armTimerC(Context& context, std::size_t branchIndex);
  void respondLocal(TransactionId server, const sip::Message& request, int status,
                    std::string_view reason, const std::vector<std::string>& extraHeaders = {});
  std::optional<Interface> interfaceFor(const transport::Destination& destination) const;
  std::string newBranch(std::string_view loopKey);
  std::string newTag();

  const transaction::Clock& clock_;
  transaction::Sender& sender_;
  const LocalIdentity& identity_;
  registrar::Registrar& registrar_;
  ProxySettings settings_;
  std::shared_ptr<const routing::RuleSet> rules_;
  RouteTokenSigner tokens_;
  RefusalLog refusalLog_;
  transaction::TransactionLayer layer_;
  mutable ProxyCounters counters_;
  std::uint64_t nextContext_ = 1;
  std::unordered_map<std::uint64_t, std::unique_ptr<Context>> contexts_;
  std::unordered_map<TransactionId, std::uint64_t> contextByServer_;
  struct BranchRef {
    std::uint64_t context;
    std::size_t branch;
  };
  std::unordered_map<TransactionId, BranchRef> branchByClient_;
  std::priority_queue<TimerCEntry, std::vector<TimerCEntry>, std::greater<>> timerC_;
  std::mt19937_64 random_;
  std::uint64_t branchCounter_;
};

}  // namespace waypoint::proxy
