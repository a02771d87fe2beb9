#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "waypoint/app/config.hpp"
#include "waypoint/routing/rules.hpp"

namespace waypoint::routing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using Kind = Decision::Kind;

// Two lines, so the `routing:` text of each test starts on line 3.
constexpr const char* kListen = "listen:\n  - { transport: udp, address: 127.0.0.1, port: 5070 }\n";

// A request as the proxy describes it; each test changes what it looks at.
RequestFacts request(std::string_view method = "INVITE", std::string_view user = "alice",
                     std::string_view host = "example.com") {
  RequestFacts facts;
  facts.method = method;
  facts.uriUser = user;
  facts.uriHost = host;
  facts.fromHost = "example.org";
  facts.sourceAddress = boost::asio::ip::make_address("192.0.2.10");
  facts.transport = transport::Protocol::udp;
  return facts;
}

class RoutingRulesTest : public ::testing::Test {
 protected:
  // The rules compiled from `routing` (the text after the listeners) through loadConfig.
  std::shared_ptr<const RuleSet> load(const std::string& routing) {
    std::ofstream(path_) << kListen << routing;
    return app::loadConfig(path_).routing;
  }
  // The message of the ConfigError that loading `routing` throws.
  std::string errorFor(const std::string& routing) {
    try {
      load(routing);
    } catch (const app::ConfigError& e) {
      return e.what();
    }
    ADD_FAILURE() << "no ConfigError for:\n" << routing;
    return {};
  }
  void TearDown() override { std::filesystem::remove(path_); }

  std::string path_ = (std::filesystem::temp_directory_path() /
                       ("waypoint-routing-test-" + std::to_string(::getpid()) + ".yaml"))
                          .string();
};

// ---------------------------------------------------------------- defaults

TEST_F(RoutingRulesTest, WithoutRulesAServedDomainGoesToLocationAndAnythingElseGets404) {
  for (const auto& rules :
       {RuleSet(), *load(""), *load("routing:\n"), *load("routing: { rules: [] }\n")}) {
    EXPECT_EQ(rules.size(), 0u);
    RequestFacts served = request();
    served.servedDomain = true;
    const Decision& location = rules.decide(served);
    EXPECT_EQ(location.kind, Kind::location);
    EXPECT_EQ(location.rule, "default");
    EXPECT_EQ(location.forking, Forking::parallel);
    EXPECT_FALSE(location.recordRoute);

    const Decision& reject = rules.decide(request());
    EXPECT_EQ(reject.kind, Kind::reject);
    EXPECT_EQ(reject.rule, "default");
    EXPECT_EQ(reject.status, 404);
    EXPECT_EQ(reject.reason, "Not Found");
  }
}

TEST_F(RoutingRulesTest, ConfiguredDefaultForwardsRequestsForOtherDomains) {
  const auto rules = load("routing:\n  default: { forward: { to: sip:192.0.2.1:5060 } }\n");
  const Decision& forward = rules->decide(request());
  EXPECT_EQ(forward.kind, Kind::forward);
  EXPECT_EQ(forward.rule, "default");
  EXPECT_THAT(forward.nextHops, ElementsAre("sip:192.0.2.1:5060"));
  EXPECT_EQ(forward.forking, Forking::serial);

  RequestFacts served = request();
  served.servedDomain = true;
  EXPECT_EQ(rules->decide(served).kind, Kind::location);
}

TEST_F(RoutingRulesTest, ConfiguredDefaultRejectTakesItsStatusAndReason) {
  const auto rules = load("routing:\n  default: { reject: { status: 403, reason: Go Away } }\n");
  const Decision& reject = rules->decide(request());
  EXPECT_EQ(reject.kind, Kind::reject);
  EXPECT_EQ(reject.status, 403);
  EXPECT_EQ(reject.reason, "Go Away");
}

TEST_F(RoutingRulesTest, TheSampleConfigurationServesLocalhostFromTheLocationService) {
  const app::Config config =
      app::loadConfig(std::string(WAYPOINT_SOURCE_DIR) + "/config/waypoint.yaml");
  RequestFacts facts = request("INVITE", "bob", "localhost");
  facts.sourceAddress = boost::asio::ip::make_address("127.0.0.1");
  facts.servedDomain = true;
  EXPECT_EQ(config.routing->decide(facts).kind, Kind::location);
  EXPECT_EQ(config.routing->decide(request("INVITE", "bob", "example.net")).kind, Kind::reject);
}

// ---------------------------------------------------------------- conditions

// A routing section with one location rule whose `match` holds `conditions`.
std::string oneRule(const std::string& conditions) {
  return "routing:\n  rules:\n  - match: { " + conditions + " }\n    location: {}\n";
}

using Values = std::initializer_list<std::string_view>;

// Which of `values` a rule (not a default) decides, each put in `field` of a request.
std::vector<std::string> matched(const RuleSet& rules, std::string_view RequestFacts::*field,
                                 Values values) {
  std::vector<std::string> result;
  for (const std::string_view value : values) {
    RequestFacts facts = request();
    facts.*field = value;
    if (rules.decide(facts).rule != "default") result.emplace_back(value);
  }
  return result;
}
std::vector<std::string> methods(const RuleSet& rules, Values values) {
  return matched(rules, &RequestFacts::method, values);
}
std::vector<std::string> users(const RuleSet& rules, Values values) {
  return matched(rules, &RequestFacts::uriUser, values);
}
std::vector<std::string> hosts(const RuleSet& rules, Values values) {
  return matched(rules, &RequestFacts::uriHost, values);
}

// Which of the source addresses `values` a rule decides.
std::vector<std::string> sources(const RuleSet& rules, Values values) {
  std::vector<std::string> result;
  for (const std::string_view value : values) {
    RequestFacts facts = request();
    facts.sourceAddress = boost::asio::ip::make_address(value);
    if (rules.decide(facts).rule != "default") result.emplace_back(value);
  }
  return result;
}

TEST_F(RoutingRulesTest, AuthenticateExemptsOrRequiresPerRule) {
  const auto rules = load(
      "routing:\n  rules:\n"
      "    - { name: gateway, match: { source: 192.0.2.0/24 }, location: {}, authenticate: false "
      "}\n"
      "    - { name: strict, match: { method: MESSAGE }, location: {}, authenticate: true }\n");
  EXPECT_EQ(rules->decide(request()).authenticate, false);
  RequestFacts message = request("MESSAGE");
  message.sourceAddress = boost::asio::ip::make_address("198.51.100.1");
  EXPECT_EQ(rules->decide(message).authenticate, true);
  message.method = "INVITE";
  EXPECT_EQ(rules->decide(message).authenticate, std::nullopt);  // the default rule
  EXPECT_THAT(errorFor("routing:\n  rules:\n    - { location: {}, authenticate: maybe }\n"),
              ::testing::AllOf(StartsWith(path_ + ":5:"), HasSubstr("authenticate")));
}

TEST_F(RoutingRulesTest, MethodIsOneNameOrAListAndCaseSensitive) {
  EXPECT_THAT(methods(*load(oneRule("method: INVITE")), {"INVITE", "invite", "MESSAGE"}),
              ElementsAre("INVITE"));
  EXPECT_THAT(
      methods(*load(oneRule("method: [INVITE, MESSAGE]")), {"INVITE", "MESSAGE", "SUBSCRIBE"}),
      ElementsAre("INVITE", "MESSAGE"));
}

TEST_F(RoutingRulesTest, UserAsAStringIsAnExactMatch) {
  EXPECT_THAT(users(*load(oneRule("user: alice")), {"alice", "alice2", "Alice", "alic"}),
              ElementsAre("alice"));
  EXPECT_THAT(users(*load(oneRule("user: { exact: alice }")), {"alice", "alice2", "alic"}),
              ElementsAre("alice"));
}

TEST_F(RoutingRulesTest, EmptyExactUserMatchesARequestUriWithoutUser) {
  EXPECT_THAT(users(*load(oneRule("user: \"\"")), {"", "alice"}), ElementsAre(""));
}

TEST_F(RoutingRulesTest, UserPrefix) {
  EXPECT_THAT(users(*load(oneRule("user: { prefix: \"00\" }")), {"0049301234", "00", "0", "049"}),
              ElementsAre("0049301234", "00"));
}

TEST_F(RoutingRulesTest, UserRegexMustMatchTheWholeUser) {
  EXPECT_THAT(users(*load(oneRule("user: { regex: \"1[0-9]{3}\" }")), {"1234", "12345", "01234"}),
              ElementsAre("1234"));
}

// std::regex recurses per character: a user part of tens of thousands of characters, which
// anyone can send, overflowed the stack. Such users never match a regex.
TEST_F(RoutingRulesTest, AVeryLongUserNeverMatchesARegexInsteadOfOverflowingTheStack) {
  const auto rules = load(oneRule("user: { regex: \".*\" }"));
  const std::string shortUser(256, 'a');
  const std::string longUser(60000, 'a');
  EXPECT_THAT(users(*rules, {shortUser, longUser}), ElementsAre(shortUser));
}

TEST_F(RoutingRulesTest, UserListMatchesAnyOfItsPatterns) {
  const auto rules = load(oneRule("user: [bob, { prefix: \"+49\" }, { regex: \"[0-9]{3}\" }]"));
  EXPECT_THAT(users(*rules, {"bob", "+4930", "123", "1234"}), ElementsAre("bob", "+4930", "123"));
}

TEST_F(RoutingRulesTest, HostIgnoresCaseOnBothSides) {
  const auto rules = load(oneRule("host: [Example.COM, other.net]"));
  EXPECT_THAT(
      hosts(*rules, {"example.com", "EXAMPLE.com", "OTHER.NET", "example.co", "sub.example.com"}),
      ElementsAre("example.com", "EXAMPLE.com", "OTHER.NET"));
}

TEST_F(RoutingRulesTest, Ipv6HostMatchesWithOrWithoutBrackets) {
  for (const char* written : {"\"[2001:DB8::1]\"", "\"2001:db8::1\""}) {
    EXPECT_THAT(hosts(*load(oneRule(std::string("host: ") + written)),
                      {"[2001:db8::1]", "2001:db8::1", "[::1]"}),
                ElementsAre("[2001:db8::1]", "2001:db8::1"))
        << written;
  }
}

TEST_F(RoutingRulesTest, FromHost) {
  EXPECT_THAT(matched(*load(oneRule("from_host: LocalHost")), &RequestFacts::fromHost,
                      {"localhost", "LOCALHOST", "example.org"}),
              ElementsAre("localhost", "LOCALHOST"));
}

TEST_F(RoutingRulesTest, SourceIpv4Cidr) {
  EXPECT_THAT(sources(*load(oneRule("source: 10.1.0.0/16")),
                      {"10.1.0.1", "10.1.255.255", "10.2.0.1", "::ffff:10.1.2.3", "2001:db8::1"}),
              ElementsAre("10.1.0.1", "10.1.255.255",
                          "::ffff:10.1.2.3"));  // v4 client on a dual-stack socket
  // Host bits after the prefix are ignored.
  EXPECT_THAT(sources(*load(oneRule("source: 192.168.1.130/25")),
                      {"192.168.1.128", "192.168.1.255", "192.168.1.127"}),
              ElementsAre("192.168.1.128", "192.168.1.255"));
}

TEST_F(RoutingRulesTest, SourceIpv4BareAddressAndZeroPrefix) {
  EXPECT_THAT(sources(*load(oneRule("source: 127.0.0.1")), {"127.0.0.1", "127.0.0.2"}),
              ElementsAre("127.0.0.1"));
  // /0 of IPv4 is every IPv4 address, and no IPv6 one.
  EXPECT_THAT(sources(*load(oneRule("source: 0.0.0.0/0")), {"203.0.113.9", "0.0.0.0", "::1"}),
              ElementsAre("203.0.113.9", "0.0.0.0"));
}

TEST_F(RoutingRulesTest, SourceIpv6Cidr) {
  EXPECT_THAT(
      sources(*load(oneRule("source: \"2001:db8:0:12::/63\"")),
              {"2001:db8:0:12::1", "2001:db8:0:13:ffff::1", "2001:db8:0:14::1", "10.0.0.1"}),
      ElementsAre("2001:db8:0:12::1", "2001:db8:0:13:ffff::1"));
  EXPECT_THAT(sources(*load(oneRule("source: \"::1\"")), {"::1", "::2"}), ElementsAre("::1"));
  EXPECT_THAT(sources(*load(oneRule("source: \"::/0\"")), {"2001:db8::1", "::", "192.0.2.1"}),
              ElementsAre("2001:db8::1", "::"));
}

TEST_F(RoutingRulesTest, SourceListMatchesAnyBlock) {
  EXPECT_THAT(sources(*load(oneRule("source: [127.0.0.0/8, \"::1/128\"]")),
                      {"127.3.2.1", "::1", "192.0.2.1"}),
              ElementsAre("127.3.2.1", "::1"));
}

TEST_F(RoutingRulesTest, TransportInAnyCaseOrAList) {
  const auto transports = [](const RuleSet& rules) {
    std::vector<transport::Protocol> result;
    for (auto protocol :
         {transport::Protocol::udp, transport::Protocol::tcp, transport::Protocol::tls,
          transport::Protocol::ws, transport::Protocol::wss}) {
      RequestFacts facts = request();
      facts.transport = protocol;
      if (rules.decide(facts).rule != "default") result.push_back(protocol);
    }
    return result;
  };
  EXPECT_THAT(transports(*load(oneRule("transport: TCP"))), ElementsAre(transport::Protocol::tcp));
  EXPECT_THAT(
      transports(*load(oneRule("transport: [udp, Tls, wss]"))),
      ElementsAre(transport::Protocol::udp, transport::Protocol::tls, transport::Protocol::wss));
}

TEST_F(RoutingRulesTest, EveryConditionGivenMustHold) {
  const auto rules =
      load(oneRule("method: INVITE, user: { prefix: \"9\" }, host: example.com,\n"
                   "             from_host: example.org, source: 192.0.2.0/24, transport: udp"));
  const RequestFacts all = request("INVITE", "912");
  EXPECT_EQ(rules->decide(all).rule, "rule 1");
  RequestFacts facts = all;
  facts.method = "MESSAGE";
  EXPECT_EQ(rules->decide(facts).rule, "default");
  (facts = all).uriUser = "812";
  EXPECT_EQ(rules->decide(facts).rule, "default");
  (facts = all).uriHost = "example.net";
  EXPECT_EQ(rules->decide(facts).rule, "default");
  (facts = all).fromHost = "example.net";
  EXPECT_EQ(rules->decide(facts).rule, "default");
  (facts = all).sourceAddress = boost::asio::ip::make_address("198.51.100.1");
  EXPECT_EQ(rules->decide(facts).rule, "default");
  (facts = all).transport = transport::Protocol::tcp;
  EXPECT_EQ(rules->decide(facts).rule, "default");
}

TEST_F(RoutingRulesTest, RuleWithoutMatchMatchesEverything) {
  const auto rules = load("routing:\n  rules:\n  - reject: { status: 503 }\n");
  RequestFacts served = request();
  served.servedDomain = true;
  EXPECT_EQ(rules->decide(served).kind, Kind::reject);  // rules come before the defaults
  EXPECT_EQ(rules->decide(served).status, 503);
  EXPECT_EQ(rules->decide(served).reason, "Service Unavailable");
}

// ---------------------------------------------------------------- order and decisions

TEST_F(RoutingRulesTest, FirstMatchingRuleWinsAndIsNamedInTheDecision) {
  const auto rules = load(
      "routing:\n"
      "  rules:\n"
      "    - name: blocked\n"
      "      match: { user: mallory }\n"
      "      reject: { status: 603 }\n"
      "    - match: { user: { prefix: \"00\" } }\n"
      "      forward: { to: [\"sip:127.0.0.1:5070\", \"sip:[::1]:5080;transport=tcp\"] }\n"
      "    - name: everyone\n"
      "      location: { forking: serial }\n");
  EXPECT_EQ(rules->size(), 3u);
  const Decision& blocked = rules->decide(request("INVITE", "mallory"));
  EXPECT_EQ(blocked.rule, "blocked");
  EXPECT_EQ(blocked.kind, Kind::reject);
  EXPECT_EQ(blocked.status, 603);
  EXPECT_EQ(blocked.reason, "Decline");

  const Decision& gateway = rules->decide(request("INVITE", "0049"));
  EXPECT_EQ(gateway.rule, "rule 2");
  EXPECT_EQ(gateway.kind, Kind::forward);
  EXPECT_THAT(gateway.nextHops, ElementsAre("sip:127.0.0.1:5070", "sip:[::1]:5080;transport=tcp"));
  EXPECT_EQ(gateway.forking, Forking::serial);

  const Decision& everyone = rules->decide(request("INVITE", "alice"));
  EXPECT_EQ(everyone.rule, "everyone");
  EXPECT_EQ(everyone.kind, Kind::location);
  EXPECT_EQ(everyone.forking, Forking::serial);
}

TEST_F(RoutingRulesTest, ForkingDefaultsToParallelForLocationAndSerialForForward) {
  const auto rules = load(
      "routing:\n"
      "  rules:\n"
      "    - { match: { user: a }, location: {} }\n"
      "    - { match: { user: b }, location: }\n"
      "    - { match: { user: c }, forward: { to: \"sip:192.0.2.1\" } }\n"
      "    - { match: { user: d }, forward: { to: \"sips:192.0.2.1:5061\", forking: parallel } "
      "}\n");
  EXPECT_EQ(rules->decide(request("INVITE", "a")).forking, Forking::parallel);
  EXPECT_EQ(rules->decide(request("INVITE", "b")).forking, Forking::parallel);
  EXPECT_EQ(rules->decide(request("INVITE", "c")).forking, Forking::serial);
  EXPECT_THAT(rules->decide(request("INVITE", "c")).nextHops, ElementsAre("sip:192.0.2.1"));
  EXPECT_EQ(rules->decide(request("INVITE", "d")).forking, Forking::parallel);
}

TEST_F(RoutingRulesTest, RecordRouteIsUnsetUnlessARuleSaysSo) {
  const auto rules = load(
      "routing:\n"
      "  rules:\n"
      "    - { match: { user: on }, location: {}, record_route: true }\n"
      "    - { match: { user: off }, forward: { to: \"sip:192.0.2.1\" }, record_route: false }\n"
      "    - { location: {} }\n");
  EXPECT_EQ(rules->decide(request("INVITE", "on")).recordRoute, std::optional<bool>(true));
  EXPECT_EQ(rules->decide(request("INVITE", "off")).recordRoute, std::optional<bool>(false));
  EXPECT_EQ(rules->decide(request("INVITE", "x")).recordRoute, std::nullopt);
}

TEST_F(RoutingRulesTest, RejectWithoutReasonGetsTheStandardPhrase) {
  const std::pair<int, const char*> expected[] = {{403, "Forbidden"},
                                                  {404, "Not Found"},
                                                  {480, "Temporarily Unavailable"},
                                                  {486, "Busy Here"},
                                                  {488, "Not Acceptable Here"},
                                                  {503, "Service Unavailable"},
                                                  {603, "Decline"},
                                                  {499, "Rejected"},
                                                  {699, "Rejected"}};
  for (const auto& [status, phrase] : expected) {
    const auto rules =
        load("routing:\n  rules:\n    - reject: { status: " + std::to_string(status) + " }\n");
    EXPECT_EQ(rules->decide(request()).status, status);
    EXPECT_EQ(rules->decide(request()).reason, phrase) << status;
  }
}

// ---------------------------------------------------------------- errors

// Each case is valid but for one mistake; the error must point at it.
struct ErrorCase {
  const char* routing;
  const char* position;  // "LINE:COLUMN"
  const char* message;   // a part of the message
};

TEST_F(RoutingRulesTest, EveryMistakeIsReportedWithFileLineAndColumn) {
  const ErrorCase cases[] = {
      // unknown keys, at every level
      {"routing:\n  rule: []\n", "4:3",
       "unknown key 'rule' in routing (expected one of: default, rules)"},
      {"routing:\n  rules:\n    - { location: {}, matches: {} }\n", "5:23",
       "unknown key 'matches' in rule 1"},
      {"routing:\n  rules:\n    - match: { methods: INVITE }\n      location: {}\n", "5:16",
       "unknown key 'methods' in match"},
      {"routing:\n  rules:\n    - location: { fork: serial }\n", "5:19",
       "unknown key 'fork' in location"},
      {"routing:\n  rules:\n    - forward: { to: \"sip:192.0.2.1\", via: x }\n", "5:39",
       "unknown key 'via' in forward"},
      {"routing:\n  rules:\n    - reject: { status: 403, text: x }\n", "5:30",
       "unknown key 'text' in reject"},
      {"routing:\n  rules:\n    - { match: { user: { begins: \"0\" } }, location: {} }\n", "5:26",
       "unknown key 'begins' in user"},
      // actions
      {"routing:\n  rules:\n    - name: x\n      match: { user: a }\n", "5:7",
       "rule 1 needs an action: one of location, forward or reject"},
      {"routing:\n  rules:\n    - { location: {} }\n    - { location: {}, reject: { status: 403 } "
       "}\n",
       "6:23", "rule 2 has two actions, 'location' and 'reject'"},
      {"routing:\n  default: { location: {} }\n", "4:14",
       "unknown key 'location' in routing default"},
      {"routing:\n  default: {}\n", "4:12",
       "routing default needs an action: one of reject or forward"},
      {"routing:\n  rules: { location: {} }\n", "4:10", "routing rules must be a list"},
      // user patterns
      {"routing:\n  rules:\n    - { match: { user: { regex: \"1[0-9\" } }, location: {} }\n",
       "5:33", "bad user regex '1[0-9': "},
      {"routing:\n  rules:\n    - { match: { user: { exact: a, prefix: b } }, location: {} }\n",
       "5:24", "user must be a string or one of"},
      {"routing:\n  rules:\n    - { match: { user: { prefix: \"\" } }, location: {} }\n", "5:34",
       "user prefix must not be empty"},
      // next hops
      {"routing:\n  rules:\n    - forward: { to: \"http://192.0.2.1\" }\n", "5:22",
       "next hop must be a sip: or sips: URI"},
      {"routing:\n  rules:\n    - forward: { to: \"tel:+4930123\" }\n", "5:22",
       "next hop must be a sip: or sips: URI"},
      {"routing:\n  rules:\n    - forward: { to: [\"sip:192.0.2.1\", \"sip:gw.example.com\"] }\n",
       "5:40",
       "next hop host must be a numeric IP address: DNS resolution of next hops is not supported"},
      {"routing:\n  rules:\n    - forward: { to: \"sip:alice@192.0.2.1\" }\n", "5:22",
       "next hop must not have a user part"},
      {"routing:\n  rules:\n    - forward: { to: \"sip:192.0.2.1;transport=sctp\" }\n", "5:22",
       "next hop transport must be udp, tcp, tls, ws or wss (got 'sctp')"},
      {"routing:\n  rules:\n    - forward:\n", "5:7", "forward must be a mapping"},
      {"routing:\n  rules:\n    - forward: { to: [] }\n", "5:22",
       "forward to must not be an empty list"},
      {"routing:\n  rules:\n    - forward: { forking: serial }\n", "5:16", "forward needs 'to'"},
      {"routing:\n  rules:\n    - forward: { to: \"sip:192.0.2.1\", forking: random }\n", "5:48",
       "forking must be parallel or serial (got 'random')"},
      // sources
      {"routing:\n  rules:\n    - { match: { source: 10.0.0.0/33 }, location: {} }\n", "5:26",
       "source prefix length must be a number from 0 to 32 (got '10.0.0.0/33')"},
      {"routing:\n  rules:\n    - { match: { source: \"fd00::/129\" }, location: {} }\n", "5:26",
       "source prefix length must be a number from 0 to 128"},
      {"routing:\n  rules:\n    - { match: { source: [10.0.0.0/8, 10.0.0.0/] }, location: {} }\n",
       "5:39", "source prefix length must be a number"},
      {"routing:\n  rules:\n    - { match: { source: 10.0.0/8 }, location: {} }\n", "5:26",
       "source must be an IP address or a CIDR block"},
      {"routing:\n  rules:\n    - { match: { source: localhost }, location: {} }\n", "5:26",
       "source must be an IP address or a CIDR block"},
      // other conditions
      {"routing:\n  rules:\n    - { match: { transport: [udp, sctp] }, location: {} }\n", "5:35",
       "transport must be udp, tcp, tls, ws or wss (got 'sctp')"},
      {"routing:\n  rules:\n    - { match: { method: [] }, location: {} }\n", "5:26",
       "method must not be an empty list"},
      {"routing:\n  rules:\n    - { match: { method: \"IN VITE\" }, location: {} }\n", "5:26",
       "method must be a SIP method name"},
      {"routing:\n  rules:\n    - { match: { host: \"example.com:5060\" }, location: {} }\n",
       "5:24", "host must be a host name or a numeric IP address"},
      {"routing:\n  rules:\n    - { match: { from_host: \"*.example.com\" }, location: {} }\n",
       "5:29", "from_host must be a host name or a numeric IP address"},
      // reject
      {"routing:\n  rules:\n    - reject: { status: 399 }\n", "5:25",
       "reject status must be between 400 and 699"},
      {"routing:\n  rules:\n    - reject: { status: 700 }\n", "5:25",
       "reject status must be between 400 and 699"},
      {"routing:\n  rules:\n    - reject: { status: busy }\n", "5:25",
       "reject status must be a whole number"},
      {"routing:\n  rules:\n    - reject: { status: 401 }\n", "5:25",
       "reject status 401 needs a WWW-Authenticate header"},
      {"routing:\n  default: { reject: { status: 407 } }\n", "4:32",
       "reject status 407 needs a Proxy-Authenticate header"},
      {"routing:\n  rules:\n    - reject: { reason: Nope }\n", "5:15", "reject needs 'status'"},
      {"routing:\n  rules:\n    - reject: { status: 403, reason: \"a\\r\\nX-Injected: 1\" }\n",
       "5:38", "reject reason must not contain line breaks"},
      // names and record_route
      {"routing:\n  rules:\n    - { name: a, location: {} }\n    - { name: a, location: {} }\n",
       "6:15", "rule name 'a' is used by an earlier rule"},
      {"routing:\n  rules:\n    - { name: default, location: {} }\n", "5:15",
       "rule name 'default' is reserved"},
      {"routing:\n  rules:\n    - { location: {}, record_route: yes }\n", "5:37",
       "record_route must be true or false"},
      {"routing:\n  rules:\n    - { reject: { status: 403 }, record_route: true }\n", "5:48",
       "record_route has no meaning in a reject rule"},
  };
  for (const auto& c : cases) {
    const std::string error = errorFor(c.routing);
    EXPECT_THAT(error, StartsWith(path_ + ":" + c.position + ": ")) << c.routing;
    EXPECT_THAT(error, HasSubstr(c.message)) << c.routing;
  }
}

}  // namespace
}  // namespace waypoint::routing
