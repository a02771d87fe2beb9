#include "waypoint/routing/rules.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <set>
#include <string_view>
#include <utility>

#include "waypoint/config/yaml_reader.hpp"
#include "waypoint/sip/message.hpp"
#include "waypoint/sip/text.hpp"

namespace waypoint::routing {

namespace {

// The keys of each mapping of `routing:`, for onlyKeys() and RuleSet::keyTables().
const config::KeyTable kDefaultKeys{"routing", {"reject", "forward"}};
const config::KeyTable kRuleKeys{"routing",
                                 {"name", "match", "location", "forward", "reject", "record_route",
                                  "allow_preloaded_route", "authenticate"}};
const config::KeyTable kLocationKeys{"routing", {"forking"}};
const config::KeyTable kForwardKeys{"routing", {"to", "forking", "tls"}};
const config::KeyTable kForwardTlsKeys{"routing", {"server_name", "verify_peer"}};
const config::KeyTable kRejectKeys{"routing", {"status", "reason"}};
const config::KeyTable kMatchKeys{"routing",
                                  {"method", "user", "host", "from_host", "source", "transport"}};
const config::KeyTable kUserPatternKeys{"routing", {"exact", "prefix", "regex"}};
const config::KeyTable kRoutingKeys{"routing", {"default", "rules"}};

// A user part longer than this never matches a regex. libstdc++'s std::regex recurses once
// per character and overflows the stack on a user part of some ten thousand characters,
// which any client can send; real user parts (numbers, names) are far shorter.
constexpr std::size_t kMaxRegexSubject = 256;

// "[::1]" -> "::1": a Request-URI carries IPv6 hosts in brackets, a rule may be written
// either way.
std::string_view withoutBrackets(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    return host.substr(1, host.size() - 2);
  return host;
}

unsigned transportBit(transport::Protocol protocol) {
  return 1u << static_cast<unsigned>(protocol);
}

}  // namespace

struct RuleSet::Rule {
  struct UserPattern {
    enum class Kind : std::uint8_t { exact, prefix, regex };
    Kind kind = Kind::exact;
    std::string text;
    std::regex regex;  // kind regex only

    bool matches(std::string_view user) const {
      switch (kind) {
        case Kind::exact:
          return user == text;
        case Kind::prefix:
          return user.substr(0, text.size()) == text;
        case Kind::regex:
          return user.size() <= kMaxRegexSubject &&
                 std::regex_match(user.begin(), user.end(), regex);
      }
      return false;
    }
  };

  // Each list is "any of"; an empty list matches everything.
  std::vector<std::string> methods;
  std::vector<UserPattern> users;
  std::vector<std::string> hosts;      // lower-case, IPv6 without brackets
  std::vector<std::string> fromHosts;  // lower-case, IPv6 without brackets
  std::vector<transport::AddressBlock> sources;
  unsigned transports = 0;  // transportBit() of each allowed transport; 0: any
  Decision decision;

  static bool anyHost(const std::vector<std::string>& patterns, std::string_view host) {
    host = withoutBrackets(host);
    return patterns.empty() ||
           std::any_of(patterns.begin(), patterns.end(),
                       [host](const std::string& p) { return sip::equalsIgnoringCase(host, p); });
  }

  // Cheapest conditions first; a regex is the last thing tried.
  bool matches(const RequestFacts& facts) const {
    if (transports != 0 && (transports & transportBit(facts.transport)) == 0) return false;
    if (!methods.empty() && std::none_of(methods.begin(), methods.end(),
                                         [&](const std::string& m) { return m == facts.method; })) {
      return false;
    }
    if (!anyHost(hosts, facts.uriHost) || !anyHost(fromHosts, facts.fromHost)) return false;
    if (!sources.empty() &&
        std::none_of(sources.begin(), sources.end(), [&](const transport::AddressBlock& c) {
          return c.contains(facts.sourceAddress);
        })) {
      return false;
    }
    return users.empty() || std::any_of(users.begin(), users.end(), [&](const UserPattern& u) {
             return u.matches(facts.uriUser);
           });
  }
};

namespace {

using config::Reader;
using Rule = RuleSet::Rule;

std::string_view standardReason(int status) {
  static constexpr std::pair<int, std::string_view> kPhrases[] = {
      {400, "Bad Request"},
      {402, "Payment Required"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {406, "Not Acceptable"},
      {408, "Request Timeout"},
      {410, "Gone"},
      {413, "Request Entity Too Large"},
      {414, "Request-URI Too Long"},
      {415, "Unsupported Media Type"},
      {416, "Unsupported URI Scheme"},
      {480, "Temporarily Unavailable"},
      {481, "Call/Transaction Does Not Exist"},
      {482, "Loop Detected"},
      {483, "Too Many Hops"},
      {484, "Address Incomplete"},
      {485, "Ambiguous"},
      {486, "Busy Here"},
      {487, "Request Terminated"},
      {488, "Not Acceptable Here"},
      {491, "Request Pending"},
      {493, "Undecipherable"},
      {500, "Server Internal Error"},
      {501, "Not Implemented"},
      {502, "Bad Gateway"},
      {503, "Service Unavailable"},
      {504, "Server Time-out"},
      {505, "Version Not Supported"},
      {513, "Message Too Large"},
      {600, "Busy Everywhere"},
      {603, "Decline"},
      {604, "Does Not Exist Anywhere"},
      {606, "Not Acceptable"},
  };
  for (const auto& [code, phrase] : kPhrases) {
    if (code == status) return phrase;
  }
  return "Rejected";
}

// Statuses that RFC 3261 says must carry a header a reject rule has no way to fill in.
const char* headerRequiredBy(int status) {
  switch (status) {
    case 401:
      return "WWW-Authenticate";
    case 405:
      return "Allow";
    case 407:
      return "Proxy-Authenticate";
    case 420:
      return "Unsupported";
    case 421:
      return "Require";
    case 423:
      return "Min-Expires";
    default:
      return nullptr;
  }
}

// Compiles one `routing:` section; every error names the offending node.
class Compiler {
 public:
  explicit Compiler(const std::string& path) : r_(path) {}

  const Reader& reader() const { return r_; }
  std::vector<std::string> takeWarnings() { return std::move(warnings_); }

  Decision defaultDecision(const YAML::Node& node) const {
    r_.expectMap(node, "routing default");
    r_.onlyKeys(node, "routing default", kDefaultKeys);
    const auto [key, value] = onlyAction(node, "routing default", "reject or forward");
    Decision decision = action(key, value);
    decision.rule = "default";
    return decision;
  }

  std::shared_ptr<const Rule> rule(const YAML::Node& node, std::size_t number) {
    const std::string label = "rule " + std::to_string(number);
    r_.expectMap(node, label);
    r_.onlyKeys(node, label, kRuleKeys);
    std::string name = label;
    if (const auto given = node["name"]) {
      name = r_.string(given, "rule name");
      if (name.empty()) r_.fail(given.Mark(), "rule name must not be empty");
      if (name == "default") {
        r_.fail(given.Mark(),
                "rule name 'default' is reserved for the decision when no rule matches");
      }
      if (!names_.insert(name).second) {
        r_.fail(given.Mark(), "rule name '" + name + "' is used by an earlier rule");
      }
    }
    auto result = std::make_shared<Rule>();
    if (const auto match = node["match"]) conditions(match, *result);
    const auto [key, value] = onlyAction(node, label, "location, forward or reject");
    result->decision = action(key, value);
    result->decision.rule = std::move(name);
    if (const auto recordRoute = node["record_route"]) {
      if (result->decision.kind == Decision::Kind::reject) {
        r_.fail(recordRoute.Mark(), "record_route has no meaning in a reject rule");
      }
      result->decision.recordRoute = r_.boolean(recordRoute, "record_route");
    }
    if (const auto authenticate = node["authenticate"]) {
      result->decision.authenticate = r_.boolean(authenticate, "authenticate");
    }
    if (const auto preloaded = node["allow_preloaded_route"]) {
      if (result->decision.kind == Decision::Kind::reject) {
        r_.fail(preloaded.Mark(), "allow_preloaded_route has no meaning in a reject rule");
      }
      result->decision.allowPreloadedRoute = r_.boolean(preloaded, "allow_preloaded_route");
    }
    return result;
  }

 private:
  // The single action key of a rule or of `default`, with its value.
  std::pair<std::string, YAML::Node> onlyAction(const YAML::Node& map, const std::string& owner,
                                                const std::string& choices) const {
    static const std::set<std::string> kActions{"location", "forward", "reject"};
    std::pair<std::string, YAML::Node> found;
    for (const auto& entry : map) {
      const std::string key = entry.first.Scalar();
      if (kActions.count(key) == 0) continue;
      if (!found.first.empty()) {
        r_.fail(entry.first.Mark(), owner + " has two actions, '" + found.first + "' and '" + key +
                                        "': give exactly one of " + choices);
      }
      if (entry.second.IsNull() && key != "location") {  // its own mark lies past the line
        r_.fail(entry.first.Mark(), key + " must be a mapping");
      }
      found = {key, entry.second};
    }
    if (found.first.empty()) r_.fail(map.Mark(), owner + " needs an action: one of " + choices);
    return found;
  }

  Decision action(const std::string& kind, const YAML::Node& node) const {
    if (kind == "location") return location(node);
    if (kind == "forward") return forward(node);
    return reject(node);
  }

  Forking forking(const YAML::Node& node) const {
    const std::string value = r_.string(node, "forking");
    if (value == "parallel") return Forking::parallel;
    if (value != "serial")
      r_.fail(node.Mark(), "forking must be parallel or serial (got '" + value + "')");
    return Forking::serial;
  }

  Decision location(const YAML::Node& node) const {
    Decision decision;
    decision.kind = Decision::Kind::location;
    decision.forking = Forking::parallel;
    if (node.IsNull()) return decision;  // `location:` with nothing after it
    r_.expectMap(node, "location");
    r_.onlyKeys(node, "location", kLocationKeys);
    if (node["forking"]) decision.forking = forking(node["forking"]);
    return decision;
  }

  Decision forward(const YAML::Node& node) const {
    Decision decision;
    decision.kind = Decision::Kind::forward;
    decision.forking = Forking::serial;
    r_.expectMap(node, "forward");
    r_.onlyKeys(node, "forward", kForwardKeys);
    if (!node["to"]) r_.fail(node.Mark(), "forward needs 'to': one next hop URI or a list of them");
    for (const auto& hop : r_.oneOrMany(node["to"], "forward to"))
      decision.nextHops.push_back(nextHop(hop));
    if (node["forking"]) decision.forking = forking(node["forking"]);
    if (node["tls"]) forwardTls(node["tls"], decision);
    return decision;
  }

  // How the TLS next hops of a forward rule are checked (RFC 5922): the name their
  // certificate must carry, and whether it is checked at all.
  void forwardTls(const YAML::Node& node, Decision& decision) const {
    r_.expectMap(node, "forward tls");
    r_.onlyKeys(node, "forward tls", kForwardTlsKeys);
    if (node["server_name"]) {
      decision.tlsServerName = r_.string(node["server_name"], "server_name");
      if (decision.tlsServerName.empty() ||
          decision.tlsServerName.find_first_of(" \t\r\n") != std::string::npos) {
        r_.fail(node["server_name"].Mark(), "server_name must be a host name");
      }
    }
    if (node["verify_peer"])
      decision.tlsVerifyPeer = r_.boolean(node["verify_peer"], "verify_peer");
  }

  std::string nextHop(const YAML::Node& node) const {
    const std::string text = r_.string(node, "next hop");
    const auto uri = sip::parseUri(text);
    if (!uri || (!sip::equalsIgnoringCase(uri->scheme, "sip") &&
                 !sip::equalsIgnoringCase(uri->scheme, "sips"))) {
      r_.fail(node.Mark(),
              "next hop must be a sip: or sips: URI like sip:192.0.2.1:5060 (got '" + text + "')");
    }
    if (!uri->user.empty()) {
      r_.fail(node.Mark(), "next hop must not have a user part (got '" + text +
                               "'): the request keeps its own Request-URI");
    }
    if (!transport::parseIpAddress(uri->host)) {
      r_.fail(node.Mark(),
              "next hop host must be a numeric IP address: DNS resolution of next hops is not "
              "supported (got '" +
                  text + "')");
    }
    if (!uri->transport.empty() && !transport::protocolFromString(uri->transport)) {
      r_.fail(node.Mark(),
              "next hop transport must be udp, tcp, tls, ws or wss (got '" + uri->transport + "')");
    }
    return text;
  }

  Decision reject(const YAML::Node& node) const {
    Decision decision;
    decision.kind = Decision::Kind::reject;
    r_.expectMap(node, "reject");
    r_.onlyKeys(node, "reject", kRejectKeys);
    if (!node["status"])
      r_.fail(node.Mark(), "reject needs 'status': a response code from 400 to 699");
    decision.status = static_cast<int>(r_.unsignedValue(node["status"], "reject status", 400, 699));
    if (const char* header = headerRequiredBy(decision.status)) {
      r_.fail(node["status"].Mark(), "reject status " + std::to_string(decision.status) +
                                         " needs a " + header +
                                         " header, which a routing rule cannot supply");
    }
    decision.reason = std::string(standardReason(decision.status));
    if (const auto reason = node["reason"]) {
      decision.reason = r_.string(reason, "reject reason");
      if (decision.reason.empty())
        r_.fail(reason.Mark(),
                "reject reason must not be empty (leave it out for the standard phrase)");
      if (std::any_of(decision.reason.begin(), decision.reason.end(),
                      [](unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7f; })) {
        r_.fail(reason.Mark(), "reject reason must not contain line breaks or control characters");
      }
    }
    return decision;
  }

  void conditions(const YAML::Node& match, Rule& rule) {
    if (match.IsNull()) return;  // `match:` with nothing after it matches everything
    r_.expectMap(match, "match");
    r_.onlyKeys(match, "match", kMatchKeys);
    if (const auto node = match["method"]) {
      for (const auto& item : r_.oneOrMany(node, "method")) rule.methods.push_back(method(item));
    }
    if (const auto node = match["user"]) {
      for (const auto& item : r_.oneOrMany(node, "user")) rule.users.push_back(user(item));
    }
    if (const auto node = match["host"]) {
      for (const auto& item : r_.oneOrMany(node, "host")) rule.hosts.push_back(host(item, "host"));
    }
    if (const auto node = match["from_host"]) {
      for (const auto& item : r_.oneOrMany(node, "from_host"))
        rule.fromHosts.push_back(host(item, "from_host"));
    }
    if (const auto node = match["source"]) {
      for (const auto& item : r_.oneOrMany(node, "source")) rule.sources.push_back(cidr(item));
    }
    if (const auto node = match["transport"]) {
      for (const auto& item : r_.oneOrMany(node, "transport")) {
        const std::string name = r_.string(item, "transport");
        const auto protocol = transport::protocolFromString(name);
        if (!protocol)
          r_.fail(item.Mark(), "transport must be udp, tcp, tls, ws or wss (got '" + name + "')");
        rule.transports |= transportBit(*protocol);
      }
    }
  }

  std::string method(const YAML::Node& node) {
    const std::string text = r_.string(node, "method");
    const bool token = !text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) {
      return std::isalnum(c) != 0 ||
             std::string_view("-.!%*_+`'~").find(static_cast<char>(c)) != std::string_view::npos;
    });
    if (!token)
      r_.fail(node.Mark(), "method must be a SIP method name like INVITE (got '" + text + "')");
    std::string upper = text;
    std::transform(upper.begin(), upper.end(), upper.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    if (upper != text && isStandardMethod(upper)) {
      warnings_.push_back(r_.where(node.Mark()) + "method '" + text +
                          "' matches only requests whose method is written exactly so; "
                          "method names are case-sensitive (RFC 3261 section 7.1): write '" +
                          upper + "'");
    }
    return text;
  }

  static bool isStandardMethod(std::string_view method) {
    static const std::set<std::string_view> kMethods{
        "ACK",     "BYE",   "CANCEL",  "INFO",  "INVITE",   "MESSAGE",   "NOTIFY",
        "OPTIONS", "PRACK", "PUBLISH", "REFER", "REGISTER", "SUBSCRIBE", "UPDATE"};
    return kMethods.count(method) != 0;
  }

  Rule::UserPattern user(const YAML::Node& node) const {
    Rule::UserPattern pattern;
    if (node.IsScalar()) {
      pattern.text = node.Scalar();
      return pattern;
    }
    if (!node.IsMap() || node.size() != 1) {
      r_.fail(node.Mark(),
              "user must be a string or one of { exact: ... }, { prefix: ... }, { regex: ... }");
    }
    r_.onlyKeys(node, "user", kUserPatternKeys);
    const auto entry = *node.begin();
    const std::string kind = entry.first.Scalar();
    pattern.text = r_.string(entry.second, "user " + kind);
    if (kind == "prefix") {
      pattern.kind = Rule::UserPattern::Kind::prefix;
      if (pattern.text.empty()) r_.fail(entry.second.Mark(), "user prefix must not be empty");
    } else if (kind == "regex") {
      pattern.kind = Rule::UserPattern::Kind::regex;
      try {
        pattern.regex = std::regex(pattern.text, std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        r_.fail(entry.second.Mark(), "bad user regex '" + pattern.text + "': " + e.what());
      }
    }
    return pattern;
  }

  std::string host(const YAML::Node& node, const std::string& what) const {
    const std::string text = r_.string(node, what);
    const std::string_view bare = withoutBrackets(text);
    const bool name = !bare.empty() && std::all_of(bare.begin(), bare.end(), [](unsigned char c) {
      return std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_';
    });
    if (!name && !transport::parseIpAddress(bare)) {
      r_.fail(node.Mark(),
              what +
                  " must be a host name or a numeric IP address, without port or wildcard (got '" +
                  text + "')");
    }
    return sip::lowerAscii(bare);
  }

  transport::AddressBlock cidr(const YAML::Node& node) const {
    const std::string text = r_.string(node, "source");
    const auto block = transport::parseAddressBlock(text);
    if (block) return *block;
    const auto address = transport::parseIpAddress(text.substr(0, text.find('/')));
    if (!address) {
      r_.fail(node.Mark(),
              "source must be an IP address or a CIDR block like 10.0.0.0/8 or fd00::/8 (got '" +
                  text + "')");
    }
    r_.fail(node.Mark(), "source prefix length must be a number from 0 to " +
                             std::to_string(address->is_v6() ? 128 : 32) + " (got '" + text + "')");
  }

  Reader r_;

  // Valid but probably not meant ("FILE:LINE:COLUMN: ..."), for --check-config and the log.

  std::vector<std::string> warnings_;
  std::set<std::string> names_;  // rule names given so far
};

}  // namespace

RuleSet::RuleSet() {
  servedDefault_.kind = Decision::Kind::location;
  servedDefault_.rule = "default";
  servedDefault_.forking = Forking::parallel;
  unservedDefault_.kind = Decision::Kind::reject;
  unservedDefault_.rule = "default";
  unservedDefault_.status = 404;
  unservedDefault_.reason = "Not Found";
}

std::shared_ptr<const RuleSet> RuleSet::compile(const YAML::Node& routing,
                                                const std::string& path) {
  auto result = std::make_shared<RuleSet>();
  if (routing.IsNull()) return result;  // `routing:` with nothing after it
  Compiler compiler(path);
  const Reader& r = compiler.reader();
  r.expectMap(routing, "routing");
  r.onlyKeys(routing, "routing", kRoutingKeys);
  if (const auto node = routing["default"])
    result->unservedDefault_ = compiler.defaultDecision(node);
  if (const auto rules = routing["rules"]) {
    if (!rules.IsSequence() && !rules.IsNull())
      r.fail(rules.Mark(), "routing rules must be a list");
    for (const auto& node : rules)
      result->rules_.push_back(compiler.rule(node, result->rules_.size() + 1));
  }
  result->warnings_ = compiler.takeWarnings();
  return result;
}

std::vector<const config::KeyTable*> RuleSet::keyTables() {
  return {&kDefaultKeys, &kRuleKeys,  &kLocationKeys,    &kForwardKeys, &kForwardTlsKeys,
          &kRejectKeys,  &kMatchKeys, &kUserPatternKeys, &kRoutingKeys};
}

const Decision& RuleSet::decide(const RequestFacts& facts) const {
  for (const auto& rule : rules_) {
    if (rule->matches(facts)) return rule->decision;
  }
  return facts.servedDomain ? servedDefault_ : unservedDefault_;
}

std::size_t RuleSet::size() const { return rules_.size(); }

}  // namespace waypoint::routing
