#include "waypoint/proxy/router.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace waypoint::proxy {

namespace {

bool isDialogCreating(std::string_view method) {
  return method == "INVITE" || method == "SUBSCRIBE" || method == "REFER";
}

bool hasToTag(const sip::Message& request) {
  const auto to = request.to();
  return to && !to->tag.empty();
}

}  // namespace

Router::Router(const LocalIdentity& identity, registrar::Registrar& registrar,
               const RouteTokenSigner& tokens, std::vector<transport::AddressBlock> trusted,
               ProxyCounters& counters)
    : identity_(identity),
      registrar_(registrar),
      tokens_(tokens),
      trusted_(std::move(trusted)),
      counters_(counters),
      rules_(std::make_shared<routing::RuleSet>()) {}

// §16.4 Route preprocessing, then the target set (§16.5). Our own Route entries are
// popped and their flow tokens checked. An in-dialog request with a valid token goes to
// the dialog's other side; every other request is routed by the rules, and a Route set
// naming another host (a preloaded Route) is followed only for a trusted source or a rule
// that allows it, so the proxy is no relay for strangers.
Routed Router::route(sip::Message& request, const transport::Source& source,
                     transaction::TimePoint now) {
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
    if (refusalLog_.allow(source.remote.address, now)) {
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
      if (refusalLog_.allow(source.remote.address, now)) {
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
    routed.inDialog = true;
    return routed;
  }
  if (!routes.empty()) return routePreloaded(request, source, routed.recordRoute, now);
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
Routed Router::routePreloaded(sip::Message& request, const transport::Source& source,
                              bool recordRoute, transaction::TimePoint now) {
  const std::shared_ptr<const routing::RuleSet> rules = rules_;
  ParsedUris uris;
  const routing::Decision& decision = rules->decide(factsOf(request, source, uris));
  // A reject rule wins; the default for unserved domains does not apply: the Route, not
  // the Request-URI, says where this request goes.
  if (decision.kind == routing::Decision::Kind::reject && decision.rule != "default") {
    ++counters_.rulesRejected;
    Routed rejected = refusal(decision.status, decision.reason);
    rejected.rule = decision.rule;
    return rejected;
  }
  if (!isTrusted(source.remote.address) && !decision.allowPreloadedRoute) {
    ++counters_.preloadedRoutesDenied;
    if (refusalLog_.allow(source.remote.address, now)) {
      spdlog::warn("{} {} from {}: preloaded Route {} denied (source not trusted, rule {})",
                   request.method(), request.requestUri(), transport::toString(source.remote),
                   request.routes().front().uri, decision.rule);
    }
    Routed denied = refusal(403, "Preload Route denied");
    denied.rule = decision.rule;
    denied.why = "source not trusted";
    return denied;
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
  routed.authenticate = decision.authenticate;
  routed.rule = decision.rule;
  routed.preloaded = true;
  routed.groups.push_back({Target{request.requestUri(), *destination, {}}});
  return routed;
}

// A strict router next: its URI becomes the Request-URI (§16.6 step 6).
void Router::followStrictRouter(sip::Message& request) {
  const auto routes = request.routes();
  const auto next = routes.empty() ? std::nullopt : sip::parseUri(routes.front().uri);
  if (!next || next->lr) return;
  request.addHeader("Route", "<" + request.requestUri() + ">");
  request.setRequestUri(routes.front().uri);
  request.popRoute();
}

Routed Router::refusal(int status, std::string reason) {
  Routed routed;
  routed.status = status;
  routed.reason = std::move(reason);
  return routed;
}

bool Router::isTrusted(const boost::asio::ip::address& address) const {
  return std::any_of(trusted_.begin(), trusted_.end(),
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
routing::RequestFacts Router::factsOf(const sip::Message& request, const transport::Source& source,
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

Routed Router::routeByRules(const sip::Message& request, const transport::Source& source) {
  Routed routed = explain(request, source);
  if (routed.rejectedByRule) {
    ++counters_.rulesRejected;
    spdlog::debug("{} {} rejected by {}: {} {}", request.method(), request.requestUri(),
                  routed.rule, routed.status, routed.reason);
  } else if (routed.status == 480) {
    ++counters_.locationUnavailable;
  } else if (routed.status == 404) {
    ++counters_.locationNotFound;
  }
  return routed;
}

Routed Router::explain(const sip::Message& request, const transport::Source& source) const {
  Routed routed;
  ParsedUris uris;
  const routing::RequestFacts facts = factsOf(request, source, uris);
  const std::shared_ptr<const routing::RuleSet> rules = rules_;
  const routing::Decision& decision = rules->decide(facts);
  switch (decision.kind) {
    case routing::Decision::Kind::reject:
      routed.status = decision.status;
      routed.reason = decision.reason;
      routed.rejectedByRule = true;
      break;
    case routing::Decision::Kind::location:
      routed = routeToLocation(uris.requestUri, decision.forking);
      break;
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
      break;
    }
  }
  routed.rule = decision.rule;
  routed.recordRoute = decision.recordRoute.value_or(true);
  routed.authenticate = decision.authenticate;
  return routed;
}

Routed Router::routeToLocation(const std::optional<sip::Uri>& requestUri,
                               routing::Forking forking) const {
  Routed routed;
  const std::string aor = requestUri ? registrar_.aorOf(*requestUri) : std::string();
  std::vector<registrar::Binding> bindings = registrar_.store().lookup(aor);
  if (bindings.empty()) {
    const bool known = hideUnknownUsers_ || registrar_.store().known(aor);
    routed.status = known ? 480 : 404;
    routed.reason = known ? "Temporarily Unavailable" : "Not Found";
    routed.why = known ? "no binding" : "no such user";
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

}  // namespace waypoint::proxy
