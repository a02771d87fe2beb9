// Proxy edits on a parsed message, checked against exact wire bytes in tests/golden/.
//
// The golden files were written by editing the sample messages (sip_test_messages.hpp)
// line by line: an edited header is re-encoded as "Name: value" with its canonical name;
// every other line, including its odd spacing, case and compact name, is unchanged. Where
// a new header goes follows sofia-sip's msg_header_insert(): Via and Record-Route at the
// top of the message (the value order is what RFC 3261 §16.6 steps 4 and 8 require; the
// relative order of different header names is not significant, §7.3.1), other new
// headers after the last header.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sip_test_messages.hpp"
#include "waypoint/sip/message.hpp"
#include "waypoint/sip/validation.hpp"

#ifndef WAYPOINT_GOLDEN_DIR
#error "WAYPOINT_GOLDEN_DIR must name tests/golden"
#endif

namespace waypoint::sip {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace testdata;

constexpr std::string_view kOurVia = "SIP/2.0/UDP proxy.example.net:5060;branch=z9hG4bKproxy1";
constexpr std::string_view kOurRecordRoute = "<sip:proxy.example.net;lr>";

std::string golden(std::string_view name) {
  const std::string path = std::string(WAYPOINT_GOLDEN_DIR) + "/" + std::string(name);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read golden file " + path);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

Message parsed(std::string_view bytes) {
  ParseResult result = Message::parse(bytes);
  EXPECT_EQ(result.error, "");
  if (!result.message) throw std::runtime_error("sample did not parse: " + result.error);
  return std::move(*result.message);
}

std::string withoutLine(std::string_view message, std::string_view line) {
  std::string s(message);
  const std::size_t pos = s.find(line);
  if (pos == std::string::npos) throw std::runtime_error("line not in sample");
  s.erase(pos, line.size());
  return s;
}

// "<valid>", or what validation objects to: "400 Missing Via" for a request, the reason
// for a response.
std::string problemOf(const Message& m) {
  if (m.isRequest()) {
    const auto rejection = validateRequest(m);
    return rejection ? std::to_string(rejection->status) + " " + rejection->reason : "<valid>";
  }
  return validateResponse(m).value_or("<valid>");
}

// What went on the wire must parse again, cleanly, with a Content-Length that matches.
void expectWellFormed(const std::string& wire) {
  SCOPED_TRACE(wire);
  const ParseResult again = Message::parse(wire);
  ASSERT_TRUE(again.message.has_value()) << again.error;
  EXPECT_EQ(again.error, "");
  ASSERT_TRUE(again.message->contentLength().has_value());
  EXPECT_EQ(*again.message->contentLength(), again.message->body().size());
  EXPECT_EQ(problemOf(*again.message), "<valid>");
}

// --- Via --------------------------------------------------------------------------------

TEST(SipEditTest, PushViaPutsOurViaAboveTheOthers) {
  Message m = parsed(kOddInvite);
  ASSERT_TRUE(m.pushVia(kOurVia));
  const std::string wire = m.serialize();
  EXPECT_EQ(wire, golden("invite_push_via.sip"));
  expectWellFormed(wire);
  const auto vias = m.vias();
  ASSERT_EQ(vias.size(), 2u);
  EXPECT_EQ(vias[0].host, "proxy.example.net");
  EXPECT_EQ(vias[0].branch, "z9hG4bKproxy1");
  EXPECT_EQ(vias[1].host, "pc33.atlanta.example.com");
}

TEST(SipEditTest, PopViaRemovesTheTopVia) {
  Message m = parsed(kOddInvite);
  ASSERT_TRUE(m.popVia());
  EXPECT_EQ(m.serialize(), golden("invite_pop_via.sip"));
  EXPECT_TRUE(m.vias().empty());
}

TEST(SipEditTest, PopViaWithoutViaChangesNothing) {
  Message m = parsed(kOddInvite);
  ASSERT_TRUE(m.popVia());
  EXPECT_FALSE(m.popVia());
  EXPECT_EQ(m.serialize(), golden("invite_pop_via.sip"));
}

TEST(SipEditTest, PopViaFromASharedLineKeepsTheNextVia) {
  Message ok = parsed(kOkTwoViasOneLine);
  ASSERT_TRUE(ok.popVia());
  const std::string wire = ok.serialize();
  EXPECT_EQ(wire, golden("ok_pop_via.sip"));
  expectWellFormed(wire);
  ASSERT_EQ(ok.vias().size(), 1u);
  EXPECT_EQ(ok.vias()[0].received, "192.0.2.101");
  EXPECT_EQ(ok.vias()[0].rport, 5062);

  Message bye = parsed(kThreeViaBye);
  ASSERT_TRUE(bye.popVia());
  EXPECT_EQ(bye.serialize(), golden("bye_pop_via.sip"));
  const auto vias = bye.vias();
  ASSERT_EQ(vias.size(), 2u);
  EXPECT_EQ(vias[0].host, "proxy1.example.net");
  EXPECT_EQ(vias[1].host, "192.0.2.4");
}

// --- received / rport (RFC 3261 §18.2.1, RFC 3581 §4) ------------------------------------

TEST(SipEditTest, SetTopViaReceivedFillsRportAndAddsReceived) {
  Message m = parsed(kOddInvite);
  ASSERT_TRUE(m.setTopViaReceived("192.0.2.101", 5062));
  const std::string wire = m.serialize();
  EXPECT_EQ(wire, golden("invite_received_rport.sip"));
  expectWellFormed(wire);
  const auto top = m.topVia();
  ASSERT_TRUE(top.has_value());
  EXPECT_EQ(top->received, "192.0.2.101");
  EXPECT_TRUE(top->hasRport);
  EXPECT_EQ(top->rport, 5062);
}

TEST(SipEditTest, SetTopViaReceivedAddsReceivedWithRportEvenWhenAddressMatches) {
  Message m = parsed(kRegister);  // Via: SIP/2.0/UDP 192.0.2.101:5060;...;rport
  ASSERT_TRUE(m.setTopViaReceived("192.0.2.101", 5060));
  EXPECT_EQ(m.serialize(), golden("register_received_rport_same.sip"));
  ASSERT_TRUE(m.topVia().has_value());
  EXPECT_EQ(m.topVia()->received, "192.0.2.101");
  EXPECT_EQ(m.topVia()->rport, 5060);
}

TEST(SipEditTest, SetTopViaReceivedAddsReceivedWhenSentByIsADomainName) {
  Message m = parsed(kCompactInvite);  // v: SIP/2.0/TCP pc33.atlanta.example.com:5070;...
  ASSERT_TRUE(m.setTopViaReceived("192.0.2.101", 5070));
  EXPECT_EQ(m.serialize(), golden("compact_received_domain.sip"));
  ASSERT_TRUE(m.topVia().has_value());
  EXPECT_EQ(m.topVia()->received, "192.0.2.101");
  EXPECT_FALSE(m.topVia()->hasRport) << "rport is added only when the client asked for it";
}

TEST(SipEditTest, SetTopViaReceivedAddsReceivedWhenAddressDiffers) {
  Message m = parsed(kMessageNoMaxForwards);  // Via: SIP/2.0/UDP 192.0.2.101:5060;...
  ASSERT_TRUE(m.setTopViaReceived("203.0.113.9", 5060));
  EXPECT_EQ(m.serialize(), golden("message_received_differs.sip"));
  ASSERT_TRUE(m.topVia().has_value());
  EXPECT_EQ(m.topVia()->received, "203.0.113.9");
  EXPECT_FALSE(m.topVia()->hasRport);
}

TEST(SipEditTest, SetTopViaReceivedLeavesViaAloneWhenAddressMatchesWithoutRport) {
  Message m = parsed(kMessageNoMaxForwards);
  EXPECT_TRUE(m.setTopViaReceived("192.0.2.101", 5060));
  EXPECT_EQ(m.serialize(), kMessageNoMaxForwards);
  // Without rport only the host is compared (§18.2.1); a different source port is normal.
  EXPECT_TRUE(m.setTopViaReceived("192.0.2.101", 40000));
  EXPECT_EQ(m.serialize(), kMessageNoMaxForwards);
  ASSERT_TRUE(m.topVia().has_value());
  EXPECT_EQ(m.topVia()->received, "");
}

TEST(SipEditTest, SetTopViaReceivedWithoutViaFails) {
  Message m = parsed(kOddInvite);
  ASSERT_TRUE(m.popVia());
  EXPECT_FALSE(m.setTopViaReceived("192.0.2.101", 5062));
  EXPECT_EQ(m.serialize(), golden("invite_pop_via.sip"));
}

// --- Max-Forwards (RFC 3261 §16.6 step 3) -----------------------------------------------

TEST(SipEditTest, DecrementMaxForwardsRewritesTheHeaderInPlace) {
  Message m = parsed(kOddInvite);  // max-forwards:   70
  ASSERT_TRUE(m.decrementMaxForwards());
  const std::string wire = m.serialize();
  EXPECT_EQ(wire, golden("invite_max_forwards.sip"));
  expectWellFormed(wire);
  EXPECT_EQ(m.maxForwards(), 69u);
}

TEST(SipEditTest, DecrementMaxForwardsInserts70WhenMissing) {
  Message m = parsed(kMessageNoMaxForwards);
  ASSERT_TRUE(m.decrementMaxForwards());
  const std::string wire = m.serialize();
  EXPECT_EQ(wire, golden("message_max_forwards_inserted.sip"));
  expectWellFormed(wire);
  EXPECT_EQ(m.maxForwards(), 70u);
}

TEST(SipEditTest, DecrementMaxForwardsInsertsTheGivenInitialValue) {
  Message m = parsed(kMessageNoMaxForwards);
  ASSERT_TRUE(m.decrementMaxForwards(20));
  EXPECT_EQ(m.maxForwards(), 20u);
  EXPECT_THAT(m.serialize(), HasSubstr("\r\nMax-Forwards: 20\r\n"));
}

TEST(SipEditTest, DecrementMaxForwardsRefusesToGoBelowZero) {
  const std::string zero = [] {
    std::string s(kInvite);
    s.replace(s.find("Max-Forwards: 70"), 16, "Max-Forwards: 0");
    return s;
  }();
  Message m = parsed(zero);
  EXPECT_FALSE(m.decrementMaxForwards());
  EXPECT_EQ(m.maxForwards(), 0u);
  EXPECT_EQ(m.serialize(), zero);
}

// --- Route / Record-Route ---------------------------------------------------------------

TEST(SipEditTest, PopRouteRemovesTheFirstRouteLine) {
  Message m = parsed(kOddInvite);
  ASSERT_TRUE(m.popRoute());
  const std::string wire = m.serialize();
  EXPECT_EQ(wire, golden("invite_pop_route.sip"));
  expectWellFormed(wire);
  const auto routes = m.routes();
  ASSERT_EQ(routes.size(), 1u);
  EXPECT_EQ(routes[0].uri, "sip:edge.biloxi.example.com;lr");
}

TEST(SipEditTest, PopRouteFromASharedLineKeepsTheNextRoute) {
  Message m = parsed(kMessageNoMaxForwards);
  ASSERT_TRUE(m.popRoute());
  EXPECT_EQ(m.serialize(), golden("message_pop_route.sip"));
  const auto routes = m.routes();
  ASSERT_EQ(routes.size(), 1u);
  EXPECT_EQ(routes[0].uri, "sip:edge.biloxi.example.com;lr");
}

TEST(SipEditTest, PopRouteWithoutRouteChangesNothing) {
  Message m = parsed(kInvite);
  EXPECT_FALSE(m.popRoute());
  EXPECT_EQ(m.serialize(), kInvite);
}

TEST(SipEditTest, PushRecordRouteAddsOurEntry) {
  Message m = parsed(kOddInvite);
  ASSERT_TRUE(m.pushRecordRoute(kOurRecordRoute));
  const std::string wire = m.serialize();
  EXPECT_EQ(wire, golden("invite_record_route.sip"));
  expectWellFormed(wire);
  const auto rr = m.recordRoutes();
  ASSERT_EQ(rr.size(), 1u);
  EXPECT_EQ(rr[0].uri, "sip:proxy.example.net;lr");
}

TEST(SipEditTest, PushRecordRoutePutsOurEntryBeforeEarlierOnes) {
  Message m = parsed(kMessageNoMaxForwards);
  ASSERT_TRUE(m.pushRecordRoute(kOurRecordRoute));
  EXPECT_EQ(m.serialize(), golden("message_record_route.sip"));
  const auto rr = m.recordRoutes();
  ASSERT_EQ(rr.size(), 2u);
  EXPECT_EQ(rr[0].uri, "sip:proxy.example.net;lr");
  EXPECT_EQ(rr[1].uri, "sip:earlier.example.org;lr");
}

// --- generic header edits ---------------------------------------------------------------

TEST(SipEditTest, AddHeaderAppendsAfterTheLastHeader) {
  Message m = parsed(kOddInvite);
  ASSERT_TRUE(m.addHeader("X-Waypoint-Trace", "abc123"));
  ASSERT_TRUE(m.addHeader("X-Odd-Header", "second"));
  const std::string wire = m.serialize();
  EXPECT_EQ(wire, golden("invite_add_header.sip"));
  expectWellFormed(wire);
  EXPECT_THAT(m.headerValues("X-Waypoint-Trace"), ElementsAre("abc123"));
  EXPECT_THAT(m.headerValues("X-Odd-Header"), ElementsAre("keep   this", "second"));
}

TEST(SipEditTest, SetHeaderReplacesEveryInstance) {
  Message m = parsed(kOddInvite);
  ASSERT_TRUE(m.setHeader("Subject", "dinner"));
  ASSERT_TRUE(m.setHeader("X-Odd-Header", "new value"));
  const std::string wire = m.serialize();
  EXPECT_EQ(wire, golden("invite_set_header.sip"));
  expectWellFormed(wire);
  EXPECT_THAT(m.headerValues("Subject"), ElementsAre("dinner"));
  EXPECT_THAT(m.headerValues("X-Odd-Header"), ElementsAre("new value"));
}

TEST(SipEditTest, RemoveHeaderRemovesEveryInstanceByAnyCase) {
  Message m = parsed(kOddInvite);
  ASSERT_TRUE(m.removeHeader("Subject"));
  ASSERT_TRUE(m.removeHeader("x-odd-header"));
  const std::string wire = m.serialize();
  EXPECT_EQ(wire, golden("invite_remove_header.sip"));
  expectWellFormed(wire);
  EXPECT_FALSE(m.hasHeader("Subject"));
  EXPECT_FALSE(m.hasHeader("X-Odd-Header"));
  EXPECT_FALSE(m.removeHeader("Subject"));
  EXPECT_EQ(m.serialize(), golden("invite_remove_header.sip"));
}

TEST(SipEditTest, RemoveHeaderRemovesACompactFormLine) {
  Message m = parsed(kCompactInvite);
  ASSERT_TRUE(m.removeHeader("Subject"));
  EXPECT_EQ(m.serialize(), withoutLine(kCompactInvite, "s: lunch\r\n"));
}

TEST(SipEditTest, RemoveHeaderRemovesAllLinesOfAListHeader) {
  Message m = parsed(kRegister);
  ASSERT_TRUE(m.removeHeader("Contact"));
  EXPECT_TRUE(m.contacts().empty());
  const std::string expected =
      withoutLine(withoutLine(kRegister,
                              "Contact: <sip:alice@192.0.2.101:5060>;q=0.7;expires=3600, "
                              "<sip:alice@198.51.100.7;transport=tcp>;q=1.0\r\n"),
                  "Contact: \"Desk\" <sips:alice@desk.atlanta.example.com:5061>;+sip.instance="
                  "\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\"\r\n");
  EXPECT_EQ(m.serialize(), expected);
}

// --- the whole forwarding sequence (RFC 3261 §16.6) --------------------------------------

TEST(SipEditTest, ProxiedInviteMatchesGolden) {
  Message m = parsed(kOddInvite);
  ASSERT_TRUE(m.setTopViaReceived("192.0.2.101", 5062));
  ASSERT_TRUE(m.decrementMaxForwards());
  ASSERT_TRUE(m.popRoute());
  ASSERT_TRUE(m.pushRecordRoute(kOurRecordRoute));
  ASSERT_TRUE(m.pushVia(kOurVia));
  const std::string wire = m.serialize();
  EXPECT_EQ(wire, golden("invite_proxied.sip"));
  expectWellFormed(wire);
  EXPECT_EQ(m.body(), kSdpOffer);
  EXPECT_EQ(m.contentLength(), 241u);
  // Serializing twice gives the same bytes.
  EXPECT_EQ(m.serialize(), wire);
}

TEST(SipEditTest, ProxiedInviteKeepsEveryUntouchedLine) {
  Message m = parsed(kOddInvite);
  ASSERT_TRUE(m.setTopViaReceived("192.0.2.101", 5062));
  ASSERT_TRUE(m.decrementMaxForwards());
  ASSERT_TRUE(m.popRoute());
  ASSERT_TRUE(m.pushRecordRoute(kOurRecordRoute));
  ASSERT_TRUE(m.pushVia(kOurVia));
  const std::string wire = m.serialize();
  for (std::string_view line :
       {"\r\nROUTE: <sip:edge.biloxi.example.com;lr>\r\n",
        "\r\nf: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n",
        "\r\nt:<sip:bob@biloxi.example.com>\r\n",
        "\r\ncAlL-iD:   a84b4c76e66710@pc33.atlanta.example.com\r\n",
        "\r\nCSeq:314159   INVITE\r\n",
        "\r\nm: <sip:alice@pc33.atlanta.example.com:5060;transport=udp>\r\n",
        "\r\nSubject:   lunch?  \r\n", "\r\nX-Odd-Header :  keep   this\r\n",
        "\r\nc: application/sdp\r\n", "\r\nl: 241\r\n\r\n"}) {
    EXPECT_THAT(wire, HasSubstr(std::string(line)));
  }
  EXPECT_THAT(wire, ::testing::EndsWith(std::string(kSdpOffer)));
}

// --- buildResponse (RFC 3261 §8.2.6) -----------------------------------------------------

TEST(BuildResponseTest, OkToOptionsCopiesViasFromToCallIdAndCSeq) {
  const Message request = parsed(kOptions);
  const std::string text =
      buildResponse(request, 200, "OK", "srv1",
                    {"Allow: INVITE, ACK, CANCEL, OPTIONS, BYE", "Accept: application/sdp"});
  EXPECT_TRUE(text.starts_with("SIP/2.0 200 OK\r\n")) << text;
  EXPECT_TRUE(text.ends_with("\r\n\r\n")) << text;
  EXPECT_THAT(text, HasSubstr("\r\nAllow: INVITE, ACK, CANCEL, OPTIONS, BYE\r\n"));
  EXPECT_THAT(text, HasSubstr("\r\nAccept: application/sdp\r\n"));

  const Message response = parsed(text);
  EXPECT_EQ(response.statusCode(), 200);
  EXPECT_EQ(response.reasonPhrase(), "OK");

  const auto want = request.vias();
  const auto got = response.vias();
  ASSERT_EQ(got.size(), want.size());
  ASSERT_EQ(got.size(), 3u);
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].protocol, want[i].protocol) << i;
    EXPECT_EQ(got[i].host, want[i].host) << i;
    EXPECT_EQ(got[i].port, want[i].port) << i;
    EXPECT_EQ(got[i].branch, want[i].branch) << i;
    EXPECT_EQ(got[i].received, want[i].received) << i;
    EXPECT_EQ(got[i].hasRport, want[i].hasRport) << i;
    EXPECT_EQ(got[i].rport, want[i].rport) << i;
  }

  ASSERT_TRUE(response.from().has_value());
  EXPECT_EQ(response.from()->uri, "sip:alice@atlanta.example.com");
  EXPECT_EQ(response.from()->tag, "opt77");
  ASSERT_TRUE(response.to().has_value());
  EXPECT_EQ(response.to()->uri, "sip:proxy.example.net");
  EXPECT_EQ(response.to()->tag, "srv1");
  EXPECT_EQ(response.callId(), "options-1@192.0.2.101");
  ASSERT_TRUE(response.cseq().has_value());
  EXPECT_EQ(response.cseq()->number, 63104u);
  EXPECT_EQ(response.cseq()->method, "OPTIONS");
  EXPECT_EQ(response.contentLength(), 0u);
  EXPECT_EQ(response.body(), "");
  EXPECT_THAT(text, HasSubstr("\r\nContent-Length: 0\r\n"));
  EXPECT_EQ(problemOf(response), "<valid>");
}

TEST(BuildResponseTest, KeepsAnExistingToTag) {
  const Message bye = parsed(kThreeViaBye);
  const Message response = parsed(buildResponse(bye, 200, "OK", "other"));
  ASSERT_TRUE(response.to().has_value());
  EXPECT_EQ(response.to()->tag, "1928301774");
  EXPECT_EQ(response.vias().size(), 3u);
}

TEST(BuildResponseTest, TryingGetsNoToTag) {
  const Message invite = parsed(kInvite);
  const Message response = parsed(buildResponse(invite, 100, "Trying", "srv1"));
  EXPECT_EQ(response.statusCode(), 100);
  ASSERT_TRUE(response.to().has_value());
  EXPECT_EQ(response.to()->tag, "");
}

TEST(BuildResponseTest, CopiesNoBodyContactRouteOrMaxForwards) {
  const Message invite = parsed(kOddInvite);
  const std::string text = buildResponse(invite, 400, "Malformed Via", "t400");
  EXPECT_TRUE(text.starts_with("SIP/2.0 400 Malformed Via\r\n")) << text;
  const Message response = parsed(text);
  EXPECT_EQ(response.reasonPhrase(), "Malformed Via");
  EXPECT_EQ(response.body(), "");
  EXPECT_EQ(response.contentLength(), 0u);
  EXPECT_FALSE(response.hasHeader("Content-Type"));
  EXPECT_FALSE(response.hasHeader("Contact"));
  EXPECT_FALSE(response.hasHeader("Route"));
  EXPECT_FALSE(response.hasHeader("Max-Forwards"));
  EXPECT_EQ(response.callId(), "a84b4c76e66710@pc33.atlanta.example.com");
  ASSERT_TRUE(response.cseq().has_value());
  EXPECT_EQ(response.cseq()->method, "INVITE");
  ASSERT_TRUE(response.topVia().has_value());
  EXPECT_EQ(response.topVia()->branch, "z9hG4bK776asdhds");
  EXPECT_TRUE(response.topVia()->hasRport);
}

}  // namespace
}  // namespace waypoint::sip
