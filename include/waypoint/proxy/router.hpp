#pragma once
// Where a request goes: RFC 3261 §16.4 Route preprocessing (our own entries popped, their
// flow tokens checked) and §16.5 the target set. An in-dialog request with a valid token
// goes to the dialog's other side; any other request is routed by the rules (a served
// domain's registered contacts, a forward, a refusal), and a Route set naming another
// host is followed only for a trusted source or a rule that allows it: no open relay.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "waypoint/proxy/local_identity.hpp"
#include "waypoint/proxy/next_hop.hpp"
#include "waypoint/proxy/proxy_counters.hpp"
#include "waypoint/proxy/refusal_log.hpp"
#include "waypoint/proxy/route_token.hpp"
#include "waypoint/registrar/registrar.hpp"
#include "waypoint/routing/rules.hpp"

namespace waypoint::proxy {

struct Target {
  std::string requestUri;
  transport::Destination destination;
  std::vector<std::string> routes;  // Path (RFC 3327): Route values put first
};

// Where a request that is not for the proxy itself goes.
struct Routed {
  std::vector<std::vector<Target>> groups;  // tried in turn; the targets of a group at once
  bool failoverOnAnyFailure = true;         // location: any non-2xx; forward: 408/5xx only
  bool recordRoute = true;
  bool inDialog = false;             // followed a valid flow token of ours: the dialog was admitted
  std::optional<bool> authenticate;  // the matching rule's say; nullopt: the default
  int status = 0;                    // > 0: answer this instead
  std::string reason;
  std::string rule;             // the routing rule that decided, "" when no rule was asked
  bool rejectedByRule = false;  // status is the rule's reject (not a location miss)
  // For the debug log: whether a preloaded Route set was followed, and why a refusal was
  // made when its reason does not say.
  bool preloaded = false;
  std::string why;
};

// The flow an in-dialog request with a valid token goes to, given the flow it arrived on,
// the dialogs its Route entries named, and its next hop by Route or Request-URI.
std::optional<Flow> dialogFlowFor(const Flow& arrived, const std::vector<DialogFlows>& dialogs,
                                  const std::optional<transport::Destination>& nextHop);

class Router {
 public:
  Router(const LocalIdentity& identity, registrar::Registrar& registrar,
         const RouteTokenSigner& tokens, std::vector<transport::AddressBlock> trusted,
         ProxyCounters& counters);

  // A reload swaps the rules; requests in progress keep the decision they got.
  void setRules(std::shared_ptr<const routing::RuleSet> rules) { rules_ = std::move(rules); }
  const routing::RuleSet& rules() const { return *rules_; }
  // Authentication is on: a never registered local user is answered like a registered
  // one that is offline (480), so the answer tells nobody which users exist.
  void setHideUnknownUsers(bool hide) { hideUnknownUsers_ = hide; }

  // Pops our Route entries from `request` (and follows a strict router upstream). No
  // groups and no status: the request is for the proxy itself (REGISTER, OPTIONS).
  Routed route(sip::Message& request, const transport::Source& source, transaction::TimePoint now);
  bool isTrusted(const boost::asio::ip::address& address) const;
  // What the rules make of a request with no Route set of ours, counting and logging
  // nothing (waypointctl route explain).
  Routed explain(const sip::Message& request, const transport::Source& source) const;

 private:
  Routed routePreloaded(sip::Message& request, const transport::Source& source, bool recordRoute,
                        transaction::TimePoint now);
  Routed routeByRules(const sip::Message& request, const transport::Source& source);
  Routed routeToLocation(const std::optional<sip::Uri>& requestUri, routing::Forking forking) const;
  static Routed refusal(int status, std::string reason);
  static void followStrictRouter(sip::Message& request);
  struct ParsedUris {
    std::optional<sip::Uri> requestUri;
    std::optional<sip::Uri> from;
    std::optional<std::string> domain;  // the served domain of the Request-URI
  };
  routing::RequestFacts factsOf(const sip::Message& request, const transport::Source& source,
                                ParsedUris& uris) const;

  const LocalIdentity& identity_;
  registrar::Registrar& registrar_;
  const RouteTokenSigner& tokens_;
  std::vector<transport::AddressBlock> trusted_;
  ProxyCounters& counters_;
  std::shared_ptr<const routing::RuleSet> rules_;
  RefusalLog refusalLog_;
  bool hideUnknownUsers_ = false;
};

}  // namespace waypoint::proxy
