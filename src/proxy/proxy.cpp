#include "waypoint/proxy/proxy.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "waypoint/sip/outgoing.hpp"
#include "waypoint/sip/text.hpp"

namespace waypoint::proxy {

namespace {

constexpr std::string_view kMagicCookie = "z9hG4bK";

const std::vector<std::string> kOptionsHeaders = {
    "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, SUBSCRIBE, NOTIFY, REFER, INFO, UPDATE, "
    "MESSAGE, PRACK",
    "Accept: application/sdp",
    "Supported: path",
};

std::uint64_t fnv1a(std::string_view text, std::uint64_t hash = 14695981039346656037ull) {
  for (const unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

// §16.6 step 8 / §16.3 item 4: the fields that stay the same when a request comes back
// in a loop and change in a spiral (Request-URI, Route). The top Via is left out (RFC 5393
// §4.2): a loop through another stateful proxy changes it every time round.
std::string loopKeyOf(const sip::Message& request) {
  std::uint64_t hash = fnv1a(request.requestUri());
  const auto from = request.from();
  const auto to = request.to();
  const auto cseq = request.cseq();
  hash = fnv1a(from ? from->tag : "", fnv1a("|", hash));
  hash = fnv1a(to ? to->tag : "", fnv1a("|", hash));
  hash = fnv1a(request.callId(), fnv1a("|", hash));
  hash = fnv1a(cseq ? std::to_string(cseq->number) : "", fnv1a("|", hash));
  for (const char* name : {"Proxy-Require", "Proxy-Authorization", "Route"}) {
    for (const auto& value : request.headerValues(name)) hash = fnv1a(value, fnv1a("|", hash));
  }
  return sip::hex64(hash);
}

bool isDialogCreating(std::string_view method) {
  return method == "INVITE" || method == "SUBSCRIBE" || method == "REFER";
}

bool hasToTag(const sip::Message& request) {
  const auto to = request.to();
  return to && !to->tag.empty();
}

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

struct Proxy::Target {
  std::string requestUri;
  transport::Destination destination;
  std::vector<std::string> routes;  // Path (RFC 3327): Route values put first
};

namespace {

// RFC 3261 §16.6 step 4: a request for a SIPS URI (its Request-URI, as received or as
// retargeted, or its top Route) is Record-Routed with SIPS URIs.
bool isSipsRequest(const sip::Message& request, const Proxy::Target& target) {
  auto sips = [](std::string_view uri) {
    while (!uri.empty() && (uri.front() == '<' || uri.front() == ' ')) uri.remove_prefix(1);
    return uri.size() >= 5 && sip::equalsIgnoringCase(uri.substr(0, 5), "sips:");
  };
  return sips(request.requestUri()) || sips(target.requestUri) ||
         (!target.routes.empty() && sips(target.routes.front()));
}

}  // namespace

struct Proxy::Branch {
  TransactionId client = 0;
  std::string id;  // our Via branch
  transport::Destination destination;
  bool provisional = false;  // a CANCEL may be sent only after a provisional response (§9.1)
  bool ended = false;  // a final response (or its stand-in: timeout, transport error, Timer C)
  bool cancelWanted = false;
  bool cancelSent = false;
  std::uint32_t timerCGeneration = 0;
};

struct Proxy::Context {
  explicit Context(sip::Message parsed) : request(std::move(parsed)) {}
  // The request as it arrived, with the edits common to every branch; each branch is a
  // shallow copy of it (DESIGN.md principle 3), and local answers are built from it.
  sip::Message request;
  std::uint64_t id = 0;
  TransactionId server = 0;
  std::string method;
  bool invite = false;
  std::string loopKey;
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

Proxy::Proxy(const transaction::Clock& clock, transaction::Sender& sender,
             transaction::LayerSettings layerSettings, const LocalIdentity& identity,
             registrar::Registrar& registrar, ProxySettings settings)
    : clock_(clock),
      sender_(sender),
      identity_(identity),
      registrar_(registrar),
      settings_(settings),
      rules_(std::make_shared<routing::RuleSet>()),
      tokens_(settings_.routeSecrets.empty() ? std::vector<std::string>{generateRouteSecret()}
                                             : settings_.routeSecrets),
      layer_(clock, sender, *this, layerSettings),
      random_(settings.randomSeed ? *settings.randomSeed : std::random_device{}()),
      branchCounter_(random_()) {}

Proxy::~Proxy() = default;

// ---------------------------------------------------------------- requests

void Proxy::onRequest(TransactionId server, sip::Message& request,
                      const transport::Source& source) {
  // §16.10: a CANCEL for an INVITE here is answered here and cancels its branches; one
  // with no INVITE here (it went through before a restart) is passed on like any request,
  // so the next hop's answer reaches the caller.
  if (request.method() == "CANCEL" && handleCancel(server, request)) return;
  if (const auto mf = request.maxForwards(); mf && *mf == 0) {  // §16.3 item 3
    ++counters_.maxForwardsExceeded;
    respondLocal(server, request, 483, "Too Many Hops");
    return;
  }
  if (const auto required = request.proxyRequire();
      !required.empty()) {  // §16.3 item 5: we support none
    ++counters_.badExtensions;
    std::string list;
    for (const auto& tag : required) list.append(list.empty() ? "" : ", ").append(tag);
    respondLocal(server, request, 420, "Bad Extension", {"Unsupported: " + list});
    return;
  }
  const std::string loopKey = loopKeyOf(request);
  const std::string ourBranchPrefix = std::string(kMagicCookie) + loopKey + ".";
  for (const auto& via : request.vias()) {  // §16.3 item 4
    if (via.branch.starts_with(ourBranchPrefix) && identity_.isLocalSentBy(via.host, via.port)) {
      ++counters_.loopsDetected;
      spdlog::warn("{} Call-ID {}: loop detected", request.method(), request.callId());
      respondLocal(server, request, 482, "Loop Detected");
      return;
    }
  }

  Routed routed = route(request, source);
  if (routed.status == 0 && routed.groups.empty()) {
    if (answerLocally(server, request, source)) return;
    routed.status = 404;
    routed.reason = "Not Found";
  }
  if (routed.status != 0) {
    respondLocal(server, request, routed.status, routed.reason);
    return;
  }

  request.decrementMaxForwards(settings_.maxForwards);
  const std::string method(request.method());
  auto owned = std::make_unique<Context>(std::move(request));  // the layer lets the TU take it
  Context& context = *owned;
  context.id = nextContext_++;
  context.server = server;
  context.method = method;
  context.invite = context.method == "INVITE";
  context.loopKey = loopKey;
  context.caller = Flow{source.protocol, source.remote};
  context.inbound = identity_.arrivalInterface(source.protocol, source.local);
  context.recordRoute = routed.recordRoute;
  context.failoverOnAnyFailure = routed.failoverOnAnyFailure;
  context.groups = std::move(routed.groups);
  contexts_.emplace(context.id, std::move(owned));
  contextByServer_[server] = context.id;
  if (!startGroup(context)) finishIfDone(context.id);
}

bool Proxy::answerLocally(TransactionId server, sip::Message& request,
                          const transport::Source& source) {
  const auto uri = request.requestUriParts();
  if (!uri) return false;
  const bool toUs = uri->user.empty() && identity_.isLocal(*uri);
  if (request.method() == "REGISTER" && (toUs || registrar_.domainOf(*uri))) {
    ++counters_.registersHandled;
    const registrar::RegistrarReply reply = registrar_.handle(request, source, clock_.now());
    if (reply.status >= 300) {
      spdlog::info("REGISTER from {} {} refused: {} {}", transport::toString(source.protocol),
                   transport::toString(source.remote), reply.status, reply.reason);
    }
    layer_.respond(server, reply.status,
                   localResponse(request, reply.status, reply.reason, reply.headers));
    return true;
  }
  if (request.method() == "OPTIONS" && toUs) {
    ++counters_.optionsAnswered;
    layer_.respond(server, 200, localResponse(request, 200, "OK", kOptionsHeaders));
    return true;
  }
  return false;
}

// §16.4 Route preprocessing, then the target set (§16.5). Our own Route entries are
// popped and their flow tokens checked. An in-dialog request with a valid token goes to
// the dialog's other side; every other request is routed by the rules, and a Route set
// naming another host (a preloaded Route) is followed only for a trusted source or a rule
// that allows it, so the proxy is no relay for strangers.
Proxy::Routed Proxy::route(sip::Message& request, const transport::Source& source) {
  std::vector<DialogFlows> dialogs;
  bool forged = false;
  // The last of our URIs popped: the Record-Route entry of the side the request goes to.
  std::optional<sip::Uri> ownUri;
  auto checkToken = [&](const sip::Uri& uri) {
    const auto verdict = tokens_.verify(uri.params);
    if (verdict.check == RouteTokenSigner::Check::valid) dialogs.push_back(verdict.flows);
    forged = forged || verdict.check == RouteTokenSigner::Check::invalid;
    ownUri = uri;
  };
  // A strict router upstream put our Record-Route URI into the Request-URI.
  if (const auto uri = request.requestUriParts();
      uri && uri->user.empty() && identity_.isLocal(*uri) &&
      tokens_.verify(uri->params).check != RouteTokenSigner::Check::absent) {
    const auto routes = request.routes();
    if (!routes.empty()) {
      checkToken(*uri);
      request.setRequestUri(routes.back().uri);
      request.popLastRoute();
    }
  }
  for (auto routes = request.routes(); !routes.empty(); routes = request.routes()) {
    const auto uri = sip::parseUri(routes.front().uri);
    if (!uri || !identity_.isLocal(*uri)) break;
    checkToken(*uri);
    request.popRoute();
  }

  Routed routed;
  if (forged) {
    ++counters_.routeTokensRejected;
    if (refusalLog_.allow(source.remote.address, clock_.now())) {
      spdlog::warn("{} Call-ID {} from {}: Route with a forged or damaged flow token refused",
                   request.method(), request.callId(), transport::toString(source.remote));
    }
    return refusal(403, "Invalid Route Token");
  }
  routed.recordRoute = isDialogCreating(request.method()) && !hasToTag(request);
  const auto routes = request.routes();
  const auto uri = request.requestUriParts();
  if (!dialogs.empty() && hasToTag(request) && uri && !identity_.isLocal(*uri)) {
    std::optional<transport::Destination> nextHop;
    if (!routes.empty()) {
      if (const auto next = sip::parseUri(routes.front().uri)) nextHop = resolveNumeric(*next);
    } else {
      nextHop = resolveNumeric(*uri);
    }
    const auto flow = dialogFlowFor(Flow{source.protocol, source.remote}, dialogs, nextHop);
    if (!flow) {
      ++counters_.dialogRequestsRefused;
      if (refusalLog_.allow(source.remote.address, clock_.now())) {
        spdlog::warn("{} Call-ID {} from {}: neither side of the dialog its Route names",
                     request.method(), request.callId(), transport::toString(source.remote));
      }
      return refusal(403, "Route Token Not For This Request");
    }
    if (!routes.empty()) followStrictRouter(request);
    // Leave by the address of ours that side knows (on a wildcard listener, the one it
    // sent to when the dialog was set up), as its Route entry names it.
    transport::Destination destination{flow->protocol, flow->remote, 0, std::nullopt, {}, {}};
    if (ownUri) destination.local = identity_.localEndpointOf(flow->protocol, *ownUri);
    routed.groups.push_back({Target{request.requestUri(), destination, {}}});
    return routed;
  }
  if (!routes.empty()) return routePreloaded(request, source, routed.recordRoute);
  if (uri && uri->user.empty() && identity_.isLocal(*uri) &&
      (request.method() == "OPTIONS" || request.method() == "REGISTER")) {
    return routed;  // for us: answered by answerLocally()
  }
  if (request.method() == "REGISTER" && uri && registrar_.domainOf(*uri)) return routed;
  Routed byRules = routeByRules(request, source);
  byRules.recordRoute = byRules.recordRoute && routed.recordRoute;
  return byRules;
}

// A Route set that still names another host once ours are popped, without a dialog
// token of ours: the rules decide first (a reject rule wins), then the Route is
// followed only when the source is trusted or the matching rule allows preloaded Routes.
Proxy::Routed Proxy::routePreloaded(sip::Message& request, const transport::Source& source,
                                    bool recordRoute) {
  const std::shared_ptr<const routing::RuleSet> rules = rules_;
  ParsedUris uris;
  const routing::Decision& decision = rules->decide(factsOf(request, source, uris));
  // A reject rule wins; the default for unserved domains does not apply: the Route, not
  // the Request-URI, says where this request goes.
  if (decision.kind == routing::Decision::Kind::reject && decision.rule != "default") {
    ++counters_.rulesRejected;
    return refusal(decision.status, decision.reason);
  }
  if (!isTrusted(source.remote.address) && !decision.allowPreloadedRoute) {
    ++counters_.preloadedRoutesDenied;
    if (refusalLog_.allow(source.remote.address, clock_.now())) {
      spdlog::warn("{} {} from {}: preloaded Route {} denied (source not trusted, rule {})",
                   request.method(), request.requestUri(), transport::toString(source.remote),
                   request.routes().front().uri, decision.rule);
    }
    return refusal(403, "Preload Route denied");
  }
  // Loose routing to the next element of the Route set (§16.6 steps 6-7).
  const auto next = sip::parseUri(request.routes().front().uri);
  const auto destination = next ? resolveNumeric(*next) : std::nullopt;
  if (!destination) {
    ++counters_.unresolvable;
    spdlog::warn("{} Call-ID {}: cannot resolve Route {} (only numeric hosts are supported)",
                 request.method(), request.callId(), request.routes().front().uri);
    return refusal(503, "Next Hop Not Resolvable");
  }
  followStrictRouter(request);
  Routed routed;
  routed.recordRoute = recordRoute && decision.recordRoute.value_or(true);
  routed.groups.push_back({Target{request.requestUri(), *destination, {}}});
  return routed;
}

// A strict router next: its URI becomes the Request-URI (§16.6 step 6).
void Proxy::followStrictRouter(sip::Message& request) {
  const auto routes = request.routes();
  const auto next = routes.empty() ? std::nullopt : sip::parseUri(routes.front().uri);
  if (!next || next->lr) return;
  request.addHeader("Route", "<" + request.requestUri() + ">");
  request.setRequestUri(routes.front().uri);
  request.popRoute();
}

Proxy::Routed Proxy::refusal(int status, std::string reason) {
  Routed routed;
  routed.status = status;
  routed.reason = std::move(reason);
  return routed;
}

bool Proxy::isTrusted(const boost::asio::ip::address& address) const {
  return std::any_of(settings_.trusted.begin(), settings_.trusted.end(),
                     [&](const transport::AddressBlock& block) { return block.contains(address); });
}

// The flow an in-dialog request goes to: the other side of the dialog when it came from
// one side (by its exact flow, or by its address when only the port changed, as after a
// TCP reconnect or a NAT rebinding); otherwise only a flow of the dialog that its next hop
// names. Never anywhere else: a token from a call of one's own cannot aim at a stranger.
std::optional<Flow> dialogFlowFor(const Flow& arrived, const std::vector<DialogFlows>& dialogs,
                                  const std::optional<transport::Destination>& nextHop) {
  for (const auto& d : dialogs) {
    if (arrived == d.caller) return d.callee;
    if (arrived == d.callee) return d.caller;
  }
  for (const auto& d : dialogs) {
    if (d.caller.remote.address == d.callee.remote.address) continue;
    if (arrived.remote.address == d.caller.remote.address) return d.callee;
    if (arrived.remote.address == d.callee.remote.address) return d.caller;
  }
  if (nextHop) {
    for (const auto& d : dialogs) {
      for (const Flow* flow : {&d.caller, &d.callee}) {
        if (flow->remote == nextHop->remote) return *flow;
      }
    }
  }
  return std::nullopt;
}

// What the rules look at. The facts point into the parsed URIs, which the caller keeps.
// A Request-URI that names this server with a user part (sip:bob@<our address>) counts as
// one for the default domain.
routing::RequestFacts Proxy::factsOf(const sip::Message& request, const transport::Source& source,
                                     ParsedUris& uris) const {
  uris.requestUri = request.requestUriParts();
  const auto from = request.from();
  uris.from = from ? sip::parseUri(from->uri) : std::nullopt;
  routing::RequestFacts facts;
  facts.method = request.method();
  if (uris.requestUri) {
    facts.uriUser = uris.requestUri->user;
    facts.uriHost = uris.requestUri->host;
    if (!uris.requestUri->user.empty() || registrar_.servesDomain(uris.requestUri->host)) {
      uris.domain = registrar_.domainOf(*uris.requestUri);
    }
    if (uris.domain) facts.uriHost = *uris.domain;
    facts.servedDomain = uris.domain.has_value();
  }
  if (uris.from) facts.fromHost = uris.from->host;
  facts.sourceAddress = source.remote.address;
  facts.transport = source.protocol;
  return facts;
}

Proxy::Routed Proxy::routeByRules(const sip::Message& request, const transport::Source& source) {
  Routed routed;
  ParsedUris uris;
  const routing::RequestFacts facts = factsOf(request, source, uris);
  const std::shared_ptr<const routing::RuleSet> rules = rules_;
  const routing::Decision& decision = rules->decide(facts);
  routed.recordRoute = decision.recordRoute.value_or(true);
  switch (decision.kind) {
    case routing::Decision::Kind::reject:
      ++counters_.rulesRejected;
      spdlog::debug("{} {} rejected by {}: {} {}", request.method(), request.requestUri(),
                    decision.rule, decision.status, decision.reason);
      routed.status = decision.status;
      routed.reason = decision.reason;
      return routed;
    case routing::Decision::Kind::location: {
      Routed located = routeToLocation(uris.requestUri, decision.forking);
      located.recordRoute = routed.recordRoute;
      return located;
    }
    case routing::Decision::Kind::forward: {
      routed.failoverOnAnyFailure = false;
      std::vector<Target> targets;
      for (const auto& hop : decision.nextHops) {
        const auto hopUri = sip::parseUri(hop);
        if (auto destination = hopUri ? resolveNumeric(*hopUri) : std::nullopt) {
          destination->serverName = decision.tlsServerName;
          destination->verifyPeer = decision.tlsVerifyPeer;
          targets.push_back(Target{request.requestUri(), *destination, {}});
        }
      }
      if (decision.forking == routing::Forking::parallel) {
        routed.groups.push_back(std::move(targets));
      } else {
        for (auto& target : targets) routed.groups.push_back({std::move(target)});
      }
      return routed;
    }
  }
  return routed;
}

Proxy::Routed Proxy::routeToLocation(const std::optional<sip::Uri>& requestUri,
                                     routing::Forking forking) {
  Routed routed;
  const std::string aor = requestUri ? registrar_.aorOf(*requestUri) : std::string();
  std::vector<registrar::Binding> bindings = registrar_.store().lookup(aor);
  if (bindings.empty()) {
    const bool known = registrar_.store().known(aor);
    ++(known ? counters_.locationUnavailable : counters_.locationNotFound);
    routed.status = known ? 480 : 404;
    routed.reason = known ? "Temporarily Unavailable" : "Not Found";
    return routed;
  }
  std::stable_sort(
      bindings.begin(), bindings.end(),
      [](const registrar::Binding& a, const registrar::Binding& b) { return a.qMilli > b.qMilli; });
  int groupQ = -1;
  for (auto& binding : bindings) {
    // A phone behind NAT is reached over the flow it registered from: its source address
    // (UDP) or its connection (TCP/TLS); its Contact is then only the Request-URI. Over a
    // stream the connection is tried first anyway, then the Contact's address.
    const auto contactUri = sip::parseUri(binding.contact);
    const auto contact = contactUri ? resolveNumeric(*contactUri) : std::nullopt;
    transport::Destination destination{
        binding.flow.protocol, binding.flow.remote, 0, std::nullopt, {}, {}};
    if (transport::isReliable(binding.flow.protocol)) {
      destination.connectionId = binding.flow.connectionId;
      if (contact && !binding.behindNat) destination.remote = contact->remote;
    } else if (contact && !binding.behindNat) {
      destination = *contact;
    }
    // The phone's flow ends at one local address of ours (the one it sent to): leave by it.
    if (destination.protocol == binding.flow.protocol) destination.local = binding.flow.local;
    Target target{std::move(binding.contact), destination, std::move(binding.path)};
    if (forking == routing::Forking::serial || binding.qMilli != groupQ || routed.groups.empty()) {
      routed.groups.emplace_back();
    }
    groupQ = binding.qMilli;
    routed.groups.back().push_back(std::move(target));
  }
  return routed;
}

// ---------------------------------------------------------------- branches

bool Proxy::startGroup(Context& context) {
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
void Proxy::noteUnreachableTarget(Context& context) {
  if (context.bestStatus == 0 ||
      betterFinalResponse(503, true, context.bestStatus, context.bestSynthetic)) {
    context.bestStatus = 503;
    context.bestSynthetic = true;
    context.bestResponse.reset();
  }
}

bool Proxy::startBranch(Context& context, const Target& target) {
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
  branch.id = newBranch(context.loopKey);
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
  const std::size_t index = context.branches.size();
  branchByClient_[branch.client] = BranchRef{context.id, index};
  context.branches.push_back(std::move(branch));
  if (context.invite) armTimerC(context, index);
  return true;
}

// A flow whose local end is known (a phone's registration) leaves by that end; anything
// else by the listener of its transport and family, from the address routed towards it.
std::optional<Interface> Proxy::interfaceFor(const transport::Destination& destination) const {
  if (destination.local)
    return identity_.arrivalInterface(destination.protocol, *destination.local);
  return identity_.departureInterface(destination.protocol, destination.remote);
}

void Proxy::cancelPending(Context& context) {
  for (auto& branch : context.branches) {
    if (!branch.ended) cancelBranch(context, branch);
  }
}

void Proxy::cancelBranch(Context& context, Branch& branch) {
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

void Proxy::armTimerC(Context& context, std::size_t branchIndex) {
  Branch& branch = context.branches[branchIndex];
  timerC_.push(TimerCEntry{clock_.now() + settings_.timerC, context.id, branchIndex,
                           ++branch.timerCGeneration});
}

bool Proxy::handleCancel(TransactionId server, sip::Message& cancel) {
  ++counters_.cancelsReceived;
  const auto invite = layer_.inviteForCancel(cancel);
  if (!invite) return false;
  respondLocal(server, cancel, 200, "OK");
  const auto found = contextByServer_.find(*invite);
  if (found == contextByServer_.end()) return true;
  Context& context = *contexts_.at(found->second);
  if (context.finalSent) return true;
  context.cancelled = true;
  context.nextGroup = context.groups.size();
  cancelPending(context);
  return true;
}

// ---------------------------------------------------------------- responses

void Proxy::onResponse(TransactionId client, sip::Message& response) {
  const int status = response.statusCode();
  const auto ref = branchByClient_.find(client);
  if (ref == branchByClient_.end()) {
    // The answer to one of our CANCELs, or a 2xx retransmission after the context ended.
    const auto cseq = response.cseq();
    if (status >= 200 && status < 300 && cseq && cseq->method == "INVITE")
      onStrayResponse(response, {});
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

void Proxy::branchEnded(Context& context, Branch& branch, int status,
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

void Proxy::finishIfDone(std::uint64_t contextId) {
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

void Proxy::sendFinal(Context& context) {
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
                   localResponse(context.request, status, reasonFor(status)));
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

void Proxy::onStrayResponse(sip::Message& response, const transport::Source&) {
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

void Proxy::onClientTimeout(TransactionId client) {
  const auto ref = branchByClient_.find(client);
  if (ref == branchByClient_.end()) return;
  Context& context = *contexts_.at(ref->second.context);
  branchEnded(context, context.branches[ref->second.branch], 408, std::nullopt, true, {});
}

void Proxy::onClientTransportError(TransactionId client) {
  const auto ref = branchByClient_.find(client);
  if (ref == branchByClient_.end()) return;
  Context& context = *contexts_.at(ref->second.context);
  Branch& branch = context.branches[ref->second.branch];
  spdlog::warn("{} to {}: transport error, treated as 503", context.method,
               transport::toString(branch.destination));
  branchEnded(context, branch, 503, std::nullopt, true, {});  // §16.9
}

void Proxy::onServerFailure(TransactionId server) {
  const auto found = contextByServer_.find(server);
  if (found == contextByServer_.end()) return;
  Context& context = *contexts_.at(found->second);
  context.finalSent = true;  // nobody is left to answer
  context.cancelled = true;
  context.nextGroup = context.groups.size();
  cancelPending(context);
}

// ---------------------------------------------------------------- stateless

void Proxy::onAck(sip::Message& ack, const transport::Source& source) {
  if (const auto mf = ack.maxForwards(); mf && *mf == 0) {
    ++counters_.statelessDropped;
    return;
  }
  Routed routed = route(ack, source);
  if (routed.status != 0 || routed.groups.empty() || routed.groups.front().empty()) {
    ++counters_.statelessDropped;
    spdlog::debug("ACK Call-ID {} from {}: nowhere to send it", ack.callId(),
                  transport::toString(source.remote));
    return;
  }
  const Target& target = routed.groups.front().front();
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

void Proxy::respondLocal(TransactionId server, const sip::Message& request, int status,
                         std::string_view reason, const std::vector<std::string>& extraHeaders) {
  ++counters_.responsesGenerated;
  layer_.respond(server, status, localResponse(request, status, reason, extraHeaders));
}

std::string Proxy::localResponse(const sip::Message& request, int status, std::string_view reason,
                                 std::vector<std::string> extraHeaders) {
  if (!settings_.serverHeader.empty()) extraHeaders.push_back("Server: " + settings_.serverHeader);
  return sip::buildResponse(request, status, reason, newTag(), extraHeaders);
}

// ---------------------------------------------------------------- timers

std::optional<TimePoint> Proxy::nextExpiry() {
  auto next = layer_.nextExpiry();
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

void Proxy::fireDueTimers() {
  const transaction::TransactionLayer::DeferCallbacks defer(layer_);
  layer_.fireDueTimers();
  const TimePoint now = clock_.now();
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

// ---------------------------------------------------------------- identifiers

std::string Proxy::newBranch(std::string_view loopKey) {
  std::string branch(kMagicCookie);
  branch.append(loopKey).append(".").append(sip::hex64(branchCounter_++));
  return branch;
}

std::string Proxy::newTag() { return sip::hex64(random_()); }

}  // namespace waypoint::proxy
