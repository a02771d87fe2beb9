#include "waypoint/app/route_explain.hpp"

#include <gtest/gtest.h>

#include "fakes.hpp"

namespace waypoint::app {
namespace {

using transport::Protocol;

const std::vector<std::pair<Protocol, transport::Endpoint>> kListeners{
    {Protocol::udp, testkit::endpoint("203.0.113.1", 5060)},
    {Protocol::tcp, testkit::endpoint("203.0.113.1", 5062)}};

std::optional<ExplainedRequest> build(const RouteQuestion& question, std::string& why) {
  return explainedRequest(question, kListeners, why);
}

TEST(RouteExplainTest, TheRequestIsAnInitialRequestFromTheGivenSourceToItsListener) {
  std::string why;
  const auto request =
      build({"INVITE sip:bob@example.com", "sip:alice@example.org", "192.0.2.7:5080", "tcp"}, why);
  ASSERT_TRUE(request) << why;
  EXPECT_EQ(request->message.method(), "INVITE");
  EXPECT_EQ(request->message.requestUri(), "sip:bob@example.com");
  EXPECT_EQ(request->message.from()->uri, "sip:alice@example.org");
  EXPECT_TRUE(request->message.routes().empty());
  EXPECT_EQ(request->source.protocol, Protocol::tcp);
  EXPECT_EQ(transport::toString(request->source.remote), "192.0.2.7:5080");
  EXPECT_EQ(transport::toString(request->source.local), "203.0.113.1:5062");
}

TEST(RouteExplainTest, DefaultsAreUdpFromLoopbackAndACallerOfTheSameDomain) {
  std::string why;
  const auto request = build({"OPTIONS sip:example.com", "", "", ""}, why);
  ASSERT_TRUE(request) << why;
  EXPECT_EQ(request->source.protocol, Protocol::udp);
  EXPECT_EQ(transport::toString(request->source.remote), "127.0.0.1:5060");
  EXPECT_EQ(request->message.from()->uri, "sip:caller@example.com");
}

TEST(RouteExplainTest, BadQuestionsSayWhatIsWrong) {
  std::string why;
  EXPECT_FALSE(build({"INVITE", "", "", ""}, why));
  EXPECT_EQ(why, "the request must be 'METHOD URI', e.g. 'INVITE sip:bob@example.com'");
  EXPECT_FALSE(build({"INVITE sip:bob@example.com\r\nRoute: <sip:evil>", "", "", ""}, why));
  EXPECT_FALSE(build({"INVITE sip:bob@example.com", "sip:a@b>\r\nX: y", "", ""}, why));
  EXPECT_EQ(why, "the request must be 'METHOD URI', e.g. 'INVITE sip:bob@example.com'");
  EXPECT_FALSE(build({"INVITE bob", "", "", ""}, why));
  EXPECT_EQ(why, "not a SIP URI: bob");
  EXPECT_FALSE(build({"INVITE sip:bob@example.com", "", "", "sctp"}, why));
  EXPECT_EQ(why, "unknown transport 'sctp' (udp, tcp, tls, ws or wss)");
  EXPECT_FALSE(build({"INVITE sip:bob@example.com", "", "phone.example.com", ""}, why));
  EXPECT_EQ(why, "the source must be an IP address or IP:port, not 'phone.example.com'");
}

TEST(RouteExplainTest, TheReplyListsTargetGroupsInOrderOrTheAnswer) {
  std::string why;
  const auto request = build({"invite sip:bob@example.com", "", "", ""}, why);
  ASSERT_TRUE(request) << why;
  proxy::Routed routed;
  routed.rule = "to-gateways";
  routed.authenticate = false;
  transport::Destination first{Protocol::udp, testkit::endpoint("192.0.2.50", 5070), 0, {}, {}, {}};
  transport::Destination second{
      Protocol::tcp, testkit::endpoint("192.0.2.51", 5060), 0, {}, {}, {}};
  routed.groups = {{proxy::Target{"sip:bob@example.com", first, {}}},
                   {proxy::Target{"sip:bob@example.com", second, {"<sip:edge.example.com;lr>"}}}};
  const auto reply = describeRouted(*request, routed);
  EXPECT_EQ(reply["rule"], "to-gateways");
  EXPECT_EQ(reply["request"], "invite sip:bob@example.com");
  ASSERT_EQ(reply["target_groups"].size(), 2u);
  EXPECT_EQ(reply["target_groups"][0][0]["destination"], "UDP 192.0.2.50:5070");
  EXPECT_EQ(reply["target_groups"][1][0]["destination"], "TCP 192.0.2.51:5060");
  EXPECT_EQ(reply["target_groups"][1][0]["path"][0], "<sip:edge.example.com;lr>");
  EXPECT_EQ(reply["authenticate"], "no");
  EXPECT_FALSE(reply.contains("status"));
  // A lower-case method is an extension method (RFC 3261 §7.1): a rule for INVITE
  // does not match it, which the reply says.
  EXPECT_NE(reply["note"].get<std::string>().find("case-sensitive"), std::string::npos);

  proxy::Routed refused;
  refused.rule = "default";
  refused.status = 404;
  refused.reason = "Not Found";
  const auto answer = describeRouted(*request, refused);
  EXPECT_EQ(answer["status"], 404);
  EXPECT_EQ(answer["reason"], "Not Found");
  EXPECT_TRUE(answer["target_groups"].empty());
  EXPECT_FALSE(answer.contains("record_route"));  // nothing is forwarded
  EXPECT_FALSE(answer.contains("authenticate"));
  EXPECT_FALSE(describeRouted(*request, proxy::Routed{}).contains("rule"));
}

}  // namespace
}  // namespace waypoint::app
