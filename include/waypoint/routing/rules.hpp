#pragma once
// The routing rules of waypoint.yaml (`routing:` section), compiled once into a matcher:
// for a request that is not already on a Route set, which target set it gets. An ordered
// list; the first rule whose every condition matches decides. Immutable once built, so a
// reload swaps a whole RuleSet (shared_ptr) and in-flight requests keep the old one.

#include <yaml-cpp/yaml.h>

#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "waypoint/config/yaml_reader.hpp"
#include "waypoint/transport/address.hpp"

namespace waypoint::routing {

// What a rule looks at. Hosts are compared case-insensitively.
struct RequestFacts {
  std::string_view method;    // "INVITE"
  std::string_view uriUser;   // Request-URI user part, "" when none
  std::string_view uriHost;   // Request-URI host
  std::string_view fromHost;  // From URI host
  boost::asio::ip::address sourceAddress;
  transport::Protocol transport = transport::Protocol::udp;
  bool servedDomain = false;  // the Request-URI host is one of the config's domains
};

// How a target set of several targets is tried.
enum class Forking : std::uint8_t {
  parallel,  // location: all contacts of the highest q at once, lower q groups in turn
             // forward: every next hop at once
  serial,    // one target at a time, in order (location: by q, highest first)
};

struct Decision {
  enum class Kind : std::uint8_t { location, forward, reject };
  Kind kind = Kind::location;
  std::string rule;  // the rule's name (or "rule N", 1-based), "default" when none matched

  // forward: next hops as written (sip:/sips: URIs with a numeric IP host), tried in order
  // on 408, 5xx or transport failure unless forking is parallel.
  std::vector<std::string> nextHops;
  // forward over TLS: the name the next hop's certificate must show and its ClientHello
  // names (empty: the next hop's address), and whether the certificate is checked
  // (nullopt: the tls section's verify_peer).
  std::string tlsServerName;
  std::optional<bool> tlsVerifyPeer;
  // location: parallel by default; forward: serial by default.
  Forking forking = Forking::parallel;

  // reject: status 400..699 and reason phrase.
  int status = 404;
  std::string reason = "Not Found";

  // Record-Route on dialog-creating requests: nullopt = the default (on).
  std::optional<bool> recordRoute;

  // An initial request whose Route set names another host (a preloaded Route) may follow
  // it; otherwise it is refused with 403 unless its source is trusted.
  bool allowPreloadedRoute = false;

  // Whether matching requests must authenticate (digest, when a users file is set):
  // nullopt = the auth section's default (REGISTER for served domains, requests from
  // local users); false exempts them (a gateway's calls), true requires it for others.
  std::optional<bool> authenticate;
};

class RuleSet {
 public:
  // The built-in behaviour with no `routing:` section: served domain -> location,
  // anything else -> reject 404 Not Found (no open relay).
  RuleSet();

  // Compiles the `routing:` node of the config file at path. Throws a std::runtime_error
  // (app::ConfigError) whose text is "FILE:LINE:COLUMN: what is wrong" for an unknown key,
  // a bad regex, a bad URI or CIDR, a status out of range...
  static std::shared_ptr<const RuleSet> compile(const YAML::Node& routing, const std::string& path);

  // The first matching rule's decision, else the default (served domain: location;
  // otherwise the configured `default`, 404 unless set).
  const Decision& decide(const RequestFacts& facts) const;

  std::size_t size() const;  // number of rules (not counting defaults)
  // The keys of every mapping under `routing:` (for the configuration reference test).
  static std::vector<const config::KeyTable*> keyTables();
  // What is valid but probably not meant, e.g. `method: invite` (methods are
  // case-sensitive): "FILE:LINE:COLUMN: ..." each, shown by --check-config and logged.
  const std::vector<std::string>& warnings() const { return warnings_; }

  struct Rule;  // compiled conditions + decision; defined in rules.cpp

 private:
  std::vector<std::shared_ptr<const Rule>> rules_;
  Decision servedDefault_;    // location
  Decision unservedDefault_;  // reject 404 unless configured
  std::vector<std::string> warnings_;
};

}  // namespace waypoint::routing
