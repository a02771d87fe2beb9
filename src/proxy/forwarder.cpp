#include "waypoint/proxy/forwarder.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "waypoint/sip/outgoing.hpp"
#include "waypoint/sip/text.hpp"

namespace waypoint::proxy {

namespace {

std::optional<transport::Destination> viaDestination(const sip::Via& via) {
  const auto protocol = transport::protocolFromString(via.protocol);
  sip::Uri uri;
  uri.scheme = "sip";
  uri.host = via.received.empty() ? via.host : via.received;
  auto destination = resolveNumeric(uri);
  if (!protocol || !destination) return std::nullopt;
  destination->protocol = *protocol;
  destination->remote.port = via.rport.value_or(via.port.value_or(5060));
  return destination;
}

// A UDP request leaves from the local address of its interface, which its Via names (the
// source a NATed phone expects); a stream picks its connection itself.
transport::Destination leavingBy(const transport::Destination& destination, const Interface& out) {
  transport::Destination leaving = destination;
  if (destination.protocol == transport::Protocol::udp) leaving.local = out.local;
  return leaving;
}

int rankOf(int status, bool synthetic) {
  // Lower is better. 6xx first; then 3xx, preferred 4xx, other 4xx, 5xx.
  int rank = 0;
  if (status >= 600) {
    rank = 0;
  } else if (status >= 300 && status < 400) {
    rank = 10;
  } else if (status == 401 || status == 407 || status == 415 || status == 420 || status == 484) {
    rank = 20;
  } else if (status >= 400 && status < 500) {
    rank = 30;
  } else {
    rank = 40;
  }
  return rank * 2 + (synthetic ? 1 : 0);
}

std::string_view reasonFor(int status) {
  switch (status) {
    case 408:
      return "Request Timeout";
    case 487:
      return "Request Terminated";
    case 500:
      return "Server Internal Error";
    default:
      return "Service Unavailable";
  }
}

}  // namespace

bool betterFinalResponse(int candidate, bool candidateSynthetic, int current,
                         bool currentSynthetic) {
  return rankOf(candidate, candidateSynthetic) < rankOf(current, currentSynthetic);
}

namespace {

// RFC 3261 §16.6 step 4: a request for a SIPS URI (its Request-URI, as received or as
// retargeted, or its top Route) is Record-Routed with SIPS URIs.
bool isSipsRequest(const sip::Message& request, const Target& target) {
  auto sips = [](std::string_view uri) {
    while (!uri.empty() && (uri.front() == '<' || uri.front() == ' ')) uri.remove_prefix(1);
    return uri.size() >= 5 && sip::equalsIgnoringCase(uri.substr(0, 5), "sips:");
  };
  return sips(request.requestUri()) || sips(target.requestUri) ||
         (!target.routes.empty() && sips(target.routes.front()));
}

}  // namespace

struct Forwarder::Branch {
  TransactionId client = 0;
  std::string id;  // our Via branch
  transport::Destination destination;
  bool provisional = false;  // a CANCEL may be sent only after a provisional response (§9.1)
  bool ended = false;  // a final response (or its stand-in: timeout, transport error, Timer C)
  bool cancelWanted = false;
  bool cancelSent = false;
  std::uint32_t timerCGeneration = 0;
};

struct Forwarder::Context {
  explicit Context(sip::Message parsed) : request(std::move(parsed)) {}
  // The request as it arrived, with the edits common to every branch; each branch is a
  // shallow copy of it (DESIGN.md principle 3), and local answers are built from it.
  sip::Message request;
  std::uint64_t id = 0;
  TransactionId server = 0;
  std::string method;
  bool invite = false;
  std::string loopKey;
  TimePoint received;
  bool forwardTimed = false;  // the first branch went out: received -> forward observed
  Interface inbound;
  Flow caller;
  bool recordRoute = false;
  bool failoverOnAnyFailure = true;
  std::vector<std::vector<Target>> groups;
  std::size_t nextGroup = 0;
  std::vector<Branch> branches;
  bool finalSent = false;
  bool cancelled = false;
  int bestStatus = 0;
  bool bestSynthetic = false;
  std::optional<sip::Message> bestResponse;  // none when the best is one the proxy made up
  std::vector<std::string> challenges;       // "WWW-Authenticate: ..." lines of every 401/407
  std::size_t challengeResponses = 0;
};

Forwarder::Forwarder(const transaction::Clock& clock, transaction::Sender& sender,
                     transaction::TransactionLayer& layer, const LocalIdentity& identity,
                     const RouteTokenSigner& tokens, Identifiers& ids, Responder& responder,
                     ForwarderSettings settings, ProxyCounters& counters)
    : clock_(clock),
      sender_(sender),
      layer_(layer),
      identity_(identity),
      tokens_(tokens),
      ids_(ids),
      responder_(responder),
      settings_(settings),
      counters_(counters) {}

Forwarder::~Forwarder() = default;

void Forwarder::start(TransactionId server, sip::Message request, const transport::Source& source,
                      std::string loopKey, Routed routed, TimePoint received) {
  request.decrementMaxForwards(settings_.maxForwards);
  const std::string method(request.method());
  auto owned = std::make_unique<Context>(std::move(request));
  Context& context = *owned;
  context.id = nextContext_++;
  context.server = server;
  context.method = method;
  context.invite = context.method == "INVITE";
  context.loopKey = std::move(loopKey);
  context.received = received;
  context.caller = Flow{source.protocol, source.remote};
  context.inbound = identity_.arrivalInterface(source.protocol, source.local);
  context.recordRoute = routed.recordRoute;
  context.failoverOnAnyFailure = routed.failoverOnAnyFailure;
  context.groups = std::move(routed.groups);
  contexts_.emplace(context.id, std::move(owned));
  contextByServer_[server] = context.id;
  if (!startGroup(context)) finishIfDone(context.id);
}

void Forwarder::cancel(TransactionId server) {
  const auto found = contextByServer_.find(server);
  if (found == contextByServer_.end()) return;
  Context& context = *contexts_.at(found->second);
  if (context.finalSent) return;
  context.cancelled = true;
  context.nextGroup = context.groups.size();
  cancelPending(context);
}

void Forwarder::forwardAck(sip::Message& ack, const Target& target) {
  auto out = interfaceFor(target.destination);
  if (!out) {
    ++counters_.statelessDropped;
    return;
  }
  const transport::Destination destination = leavingBy(target.destination, *out);
  ack.decrementMaxForwards(settings_.maxForwards);
  // §16.11: the same ACK (a retransmission) gets the same branch.
  const auto via = ack.topVia();
  const std::string branch = std::string(kMagicCookie) +
                             sip::hex64(fnv1a(via ? via->branch : "", fnv1a(ack.requestUri()))) +
                             ".s";
  const std::string ourVia = viaValue(*out, branch);
  // Stateless: nobody needs the ACK after this, so it is edited in place (no copy).
  std::optional<sip::OutgoingRequest> forwarded = sip::OutgoingRequest::forwarded(
      std::move(ack), sip::BranchEdits{target.requestUri, ourVia, {}, target.routes});
  if (!forwarded) {
    ++counters_.statelessDropped;
    return;
  }
  ++counters_.statelessForwarded;
  sender_.send(destination, forwarded->serialize(), {});
}

// ---------------------------------------------------------------- branches

bool Forwarder::startGroup(Context& context) {
  while (context.nextGroup < context.groups.size()) {
    const std::size_t group = context.nextGroup++;
    bool started = false;
    for (std::size_t i = 0; i < context.groups[group].size(); ++i) {
      started = startBranch(context, context.groups[group][i]) || started;
    }
    if (started) return true;
  }
  return false;
}

// A target no branch could be started for counts as a 503 made here (§16.7 step 6 then
// answers 500 if nothing better comes).
void Forwarder::noteUnreachableTarget(Context& context) {
  if (context.bestStatus == 0 ||
      betterFinalResponse(503, true, context.bestStatus, context.bestSynthetic)) {
    context.bestStatus = 503;
    context.bestSynthetic = true;
    context.bestResponse.reset();
  }
}

bool Forwarder::startBranch(Context& context, const Target& target) {
  const auto out = interfaceFor(target.destination);
  if (!out) {
    ++counters_.unresolvable;
    spdlog::warn("{}: no {} listener to reach {}", context.method,
                 transport::toString(target.destination.protocol),
                 transport::toString(target.destination));
    noteUnreachableTarget(context);
    return false;
  }
  Branch branch;
  branch.id = ids_.branch(context.loopKey);
  branch.destination = leavingBy(target.destination, *out);
  const std::string via = viaValue(*out, branch.id);
  std::vector<std::string> recordRoutes;
  if (context.recordRoute) {
    const DialogFlows flows{context.caller,
                            Flow{branch.destination.protocol, branch.destination.remote}};
    recordRoutes = recordRouteValues(context.inbound, *out, tokens_.uriParams(flows),
                                     isSipsRequest(context.request, target));
  }
  std::optional<sip::OutgoingRequest> request = sip::OutgoingRequest::forBranch(
      context.request, sip::BranchEdits{target.requestUri, via, recordRoutes, target.routes});
  if (!request) {
    ++counters_.unresolvable;
    spdlog::warn("{} to {}: target {} is not a usable Request-URI", context.method,
                 transport::toString(target.destination), target.requestUri);
    noteUnreachableTarget(context);
    return false;
  }
  branch.client =
      layer_.startClient(transaction::ClientRequest{std::move(*request), branch.destination, true});
  ++counters_.requestsForwarded;
  if (!context.forwardTimed) {
    context.forwardTimed = true;
    counters_.requestForward.observe(
        std::chrono::duration_cast<std::chrono::microseconds>(clock_.now() - context.received));
  }
  const std::size_t index = context.branches.size();
  branchByClient_[branch.client] = BranchRef{context.id, index};
  context.branches.push_back(std::move(branch));
  if (context.invite) armTimerC(context, index);
  return true;
}

// A flow whose local end is known (a phone's registration) leaves by that end; anything
// else by the listener of its transport and family, from the address routed towards it.
std::optional<Interface> Forwarder::interfaceFor(const transport::Destination& destination) const {
  if (destination.local)
    return identity_.arrivalInterface(destination.protocol, *destination.local);
  return identity_.departureInterface(destination.protocol, destination.remote);
}

void Forwarder::cancelPending(Context& context) {
  for (auto& branch : context.branches) {
    if (!branch.ended) cancelBranch(context, branch);
  }
}

void Forwarder::cancelBranch(Context& context, Branch& branch) {
  if (!context.invite || branch.cancelSent) return;
  if (!branch.provisional) {
    branch.cancelWanted = true;  // sent when the first provisional response arrives (§9.1)
    return;
  }
  branch.cancelSent = true;
  ++counters_.branchesCancelled;
  // Built by the layer from the INVITE as it was sent (§9.1), over the same transport.
  layer_.cancelClient(branch.client, settings_.maxForwards);
}

void Forwarder::armTimerC(Context& context, std::size_t branchIndex) {
  Branch& branch = context.branches[branchIndex];
  timerC_.push(TimerCEntry{clock_.now() + settings_.timerC, context.id, branchIndex,
                           ++branch.timerCGeneration});
}

// ---------------------------------------------------------------- responses

void Forwarder::onResponse(TransactionId client, sip::Message& response) {
  const int status = response.statusCode();
  const auto ref = branchByClient_.find(client);
  if (ref == branchByClient_.end()) {
    // The answer to one of our CANCELs, or a 2xx retransmission after the context ended.
    const auto cseq = response.cseq();
    if (status >= 200 && status < 300 && cseq && cseq->method == "INVITE")
      onStrayResponse(response);
    return;
  }
  Context& context = *contexts_.at(ref->second.context);
  const std::size_t index = ref->second.branch;
  Branch& branch = context.branches[index];
  // §16.7 step 3: with our Via gone and none left, the response was for us alone (a
  // broken peer dropped the caller's Via); it is never sent on.
  const bool forwardable = response.popVia() && response.topVia().has_value();
  if (!forwardable) {
    ++counters_.statelessDropped;
    spdlog::warn("{} response {} without a Via below ours: not forwarded", context.method, status);
    if (status >= 200 && !branch.ended) branchEnded(context, branch, 503, std::nullopt, true, {});
    return;
  }
  if (status < 200) {
    branch.provisional = true;
    if (branch.ended) return;
    if (context.invite && status > 100) armTimerC(context, index);  // §16.7 step 2
    if (branch.cancelWanted) cancelBranch(context, branch);
    if (status == 100 || context.finalSent) return;
    ++counters_.responsesForwarded;
    layer_.respond(context.server, status, response.serialize());
    return;
  }
  if (status < 300) {
    // Every 2xx goes up at once, even from a branch Timer C gave up on (§16.7 step 5).
    branch.ended = true;
    ++branch.timerCGeneration;
    ++counters_.responsesForwarded;
    layer_.respond(context.server, status, response.serialize());
    context.finalSent = true;
    context.nextGroup = context.groups.size();
    cancelPending(context);  // §16.7 step 10
    finishIfDone(context.id);
    return;
  }
  if (branch.ended) return;
  std::vector<std::string> challenges;
  if (status == 401 || status == 407) {
    for (const char* name : {"WWW-Authenticate", "Proxy-Authenticate"}) {
      for (const auto& value : response.headerValues(name))
        challenges.push_back(std::string(name) + ": " + value);
    }
  }
  branchEnded(context, branch, status, response.copy(), false, std::move(challenges));
}

void Forwarder::branchEnded(Context& context, Branch& branch, int status,
                            std::optional<sip::Message> response, bool synthetic,
                            std::vector<std::string> challenges) {
  branch.ended = true;
  ++branch.timerCGeneration;
  if (!challenges.empty()) {
    ++context.challengeResponses;
    for (auto& line : challenges) context.challenges.push_back(std::move(line));
  }
  if (!context.finalSent) {
    if (status >= 600) {  // §16.7 step 5: no other branch can do better
      context.nextGroup = context.groups.size();
      cancelPending(context);
    }
    const bool retryable = status == 408 || (status >= 500 && status < 600);
    if (!context.failoverOnAnyFailure && !retryable) context.nextGroup = context.groups.size();
    if (context.bestStatus == 0 ||
        betterFinalResponse(status, synthetic, context.bestStatus, context.bestSynthetic)) {
      context.bestStatus = status;
      context.bestSynthetic = synthetic;
      context.bestResponse = std::move(response);
    }
  }
  finishIfDone(context.id);
}

void Forwarder::finishIfDone(std::uint64_t contextId) {
  const auto found = contexts_.find(contextId);
  if (found == contexts_.end()) return;
  Context& context = *found->second;
  const auto live = [](const Branch& b) { return !b.ended; };
  if (std::any_of(context.branches.begin(), context.branches.end(), live)) return;
  if (!context.finalSent && !context.cancelled && startGroup(context)) return;
  if (!context.finalSent) sendFinal(context);
  contextByServer_.erase(context.server);
  for (const auto& branch : context.branches) branchByClient_.erase(branch.client);
  contexts_.erase(found);
}

void Forwarder::sendFinal(Context& context) {
  context.finalSent = true;
  int status = context.bestStatus;
  if (status == 0 || context.bestSynthetic || status == 503 || !context.bestResponse) {
    // Made here: no response at all (§16.7 step 6: 408, or 487 once cancelled), or a 503
    // that must not reach the caller as such (it would blame this proxy): 500.
    if (status == 0) status = context.cancelled ? 487 : 408;
    if (status == 503) status = 500;
    if (context.cancelled && status == 408) status = 487;
    ++counters_.responsesGenerated;
    layer_.respond(context.server, status,
                   responder_.response(context.request, status, reasonFor(status)));
    return;
  }
  sip::Message& best = *context.bestResponse;
  if ((status == 401 || status == 407) && context.challengeResponses > 1) {  // §16.7 step 7
    best.removeHeader("WWW-Authenticate");
    best.removeHeader("Proxy-Authenticate");
    for (const auto& line : context.challenges) {
      const std::size_t colon = line.find(':');
      best.addHeader(line.substr(0, colon), line.substr(colon + 2));
    }
  }
  ++counters_.responsesForwarded;
  layer_.respond(context.server, status, best.serialize());
}

void Forwarder::onStrayResponse(sip::Message& response) {
  // §16.11: a response for which we have no transaction goes back along its Via, if the
  // top one is ours.
  const auto top = response.topVia();
  if (!top || !identity_.isLocalSentBy(top->host, top->port) || !response.popVia()) {
    ++counters_.statelessDropped;
    return;
  }
  const auto next = response.topVia();
  const auto destination = next ? viaDestination(*next) : std::nullopt;
  if (!destination) {
    ++counters_.statelessDropped;
    return;
  }
  ++counters_.statelessForwarded;
  sender_.send(*destination, response.serialize(), {});
}

void Forwarder::onClientTimeout(TransactionId client) {
  const auto ref = branchByClient_.find(client);
  if (ref == branchByClient_.end()) return;
  Context& context = *contexts_.at(ref->second.context);
  branchEnded(context, context.branches[ref->second.branch], 408, std::nullopt, true, {});
}

void Forwarder::onClientTransportError(TransactionId client) {
  const auto ref = branchByClient_.find(client);
  if (ref == branchByClient_.end()) return;
  Context& context = *contexts_.at(ref->second.context);
  Branch& branch = context.branches[ref->second.branch];
  spdlog::warn("{} to {}: transport error, treated as 503", context.method,
               transport::toString(branch.destination));
  branchEnded(context, branch, 503, std::nullopt, true, {});  // §16.9
}

void Forwarder::onServerFailure(TransactionId server) {
  const auto found = contextByServer_.find(server);
  if (found == contextByServer_.end()) return;
  Context& context = *contexts_.at(found->second);
  context.finalSent = true;  // nobody is left to answer
  context.cancelled = true;
  context.nextGroup = context.groups.size();
  cancelPending(context);
}

// ---------------------------------------------------------------- timers

std::optional<TimePoint> Forwarder::nextExpiry() {
  std::optional<TimePoint> next;
  while (!timerC_.empty()) {
    const TimerCEntry& top = timerC_.top();
    const auto found = contexts_.find(top.context);
    if (found != contexts_.end() && top.branch < found->second->branches.size()) {
      const Branch& branch = found->second->branches[top.branch];
      if (!branch.ended && branch.timerCGeneration == top.generation) {
        if (!next || top.due < *next) next = top.due;
        break;
      }
    }
    timerC_.pop();
  }
  return next;
}

void Forwarder::fireDueTimers(TimePoint now) {
  while (!timerC_.empty() && timerC_.top().due <= now) {
    const TimerCEntry entry = timerC_.top();
    timerC_.pop();
    const auto found = contexts_.find(entry.context);
    if (found == contexts_.end()) continue;
    Context& context = *found->second;
    Branch& branch = context.branches[entry.branch];
    if (branch.ended || branch.timerCGeneration != entry.generation) continue;
    ++counters_.timerCFired;
    spdlog::info("INVITE Call-ID branch {}: Timer C fired, cancelling", branch.id);
    cancelBranch(context, branch);  // only once it has rung (§16.8); the branch counts as 408
    branchEnded(context, branch, 408, std::nullopt, true, {});
  }
}

}  // namespace waypoint::proxy
