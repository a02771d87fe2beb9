#pragma once
// The forwarding half of the proxy (RFC 3261 §16.6-16.11): for an admitted, routed request
// it keeps a response context until every branch has ended. It forks (a group of targets
// at once, groups in turn), sends provisional responses up at once, every 2xx up at once
// (cancelling the other branches), otherwise the best final response when no branch is
// left (§16.7); Timer C bounds a ringing INVITE branch; CANCEL cancels every pending
// branch (§16.10). ACK for 2xx and stray responses are forwarded statelessly (§16.11).

#include <cstdint>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "waypoint/proxy/identifiers.hpp"
#include "waypoint/proxy/local_identity.hpp"
#include "waypoint/proxy/proxy_counters.hpp"
#include "waypoint/proxy/responder.hpp"
#include "waypoint/proxy/route_token.hpp"
#include "waypoint/proxy/router.hpp"
#include "waypoint/transaction/transaction_layer.hpp"

namespace waypoint::proxy {

using transaction::TimePoint;
using transaction::TransactionId;

// §16.7 step 6: is `candidate` a better final response than `current`? 6xx beats all;
// otherwise the lower class wins; in 4xx, 401/407/415/420/484 are preferred (they let the
// caller retry); a response the proxy made up (timeout, transport error) loses a tie.
bool betterFinalResponse(int candidate, bool candidateSynthetic, int current,
                         bool currentSynthetic);

struct ForwarderSettings {
  std::chrono::milliseconds timerC{180000};
  std::uint32_t maxForwards = 70;
};

class Forwarder {
 public:
  Forwarder(const transaction::Clock& clock, transaction::Sender& sender,
            transaction::TransactionLayer& layer, const LocalIdentity& identity,
            const RouteTokenSigner& tokens, Identifiers& ids, Responder& responder,
            ForwarderSettings settings, ProxyCounters& counters);
  ~Forwarder();

  // Starts the branches of a routed request (the server transaction's request, taken),
  // which the proxy got at `received`.
  void start(TransactionId server, sip::Message request, const transport::Source& source,
             std::string loopKey, Routed routed, TimePoint received);
  // A CANCEL for the INVITE of `server`, already answered with 200.
  void cancel(TransactionId server);
  void forwardAck(sip::Message& ack, const Target& target);

  void onResponse(TransactionId client, sip::Message& response);
  void onStrayResponse(sip::Message& response);
  void onClientTimeout(TransactionId client);
  void onClientTransportError(TransactionId client);
  void onServerFailure(TransactionId server);

  std::optional<TimePoint> nextExpiry();
  void fireDueTimers(TimePoint now);
  std::size_t liveContexts() const { return contexts_.size(); }

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
  std::optional<Interface> interfaceFor(const transport::Destination& destination) const;

  const transaction::Clock& clock_;
  transaction::Sender& sender_;
  transaction::TransactionLayer& layer_;
  const LocalIdentity& identity_;
  const RouteTokenSigner& tokens_;
  Identifiers& ids_;
  Responder& responder_;
  ForwarderSettings settings_;
  ProxyCounters& counters_;
  std::uint64_t nextContext_ = 1;
  std::unordered_map<std::uint64_t, std::unique_ptr<Context>> contexts_;
  std::unordered_map<TransactionId, std::uint64_t> contextByServer_;
  struct BranchRef {
    std::uint64_t context;
    std::size_t branch;
  };
  std::unordered_map<TransactionId, BranchRef> branchByClient_;
  std::priority_queue<TimerCEntry, std::vector<TimerCEntry>, std::greater<>> timerC_;
};

}  // namespace waypoint::proxy
