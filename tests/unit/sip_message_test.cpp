// Parsing well-formed SIP messages and URIs: every typed accessor of waypoint::sip::Message.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sip_test_messages.hpp"
#include "waypoint/sip/message.hpp"
#include "waypoint/sip/validation.hpp"

namespace waypoint::sip {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using namespace testdata;

// Parses a sample that must be valid. Throws (gtest reports it as a failure of the test)
// when it does not.
Message parsed(std::string_view bytes) {
  ParseResult result = Message::parse(bytes);
  EXPECT_EQ(result.error, "");
  if (!result.message) throw std::runtime_error("sample did not parse: " + result.error);
  return std::move(*result.message);
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

// --- the INVITE -----------------------------------------------------------------------

TEST(SipMessageTest, ParsesInviteRequestLine) {
  const Message m = parsed(kInvite);
  EXPECT_TRUE(m.isRequest());
  EXPECT_FALSE(m.isResponse());
  EXPECT_EQ(m.method(), "INVITE");
  EXPECT_EQ(m.requestUri(), "sip:bob@biloxi.example.com");
  const auto uri = m.requestUriParts();
  ASSERT_TRUE(uri.has_value());
  EXPECT_EQ(uri->scheme, "sip");
  EXPECT_EQ(uri->user, "bob");
  EXPECT_EQ(uri->host, "biloxi.example.com");
  EXPECT_FALSE(uri->port.has_value());
  EXPECT_EQ(uri->transport, "");
  EXPECT_FALSE(uri->lr);
}

TEST(SipMessageTest, ParsesInviteVia) {
  const Message m = parsed(kInvite);
  const std::vector<Via> vias = m.vias();
  ASSERT_EQ(vias.size(), 1u);
  const Via& via = vias[0];
  EXPECT_EQ(via.protocol, "UDP");
  EXPECT_EQ(via.host, "pc33.atlanta.example.com");
  EXPECT_EQ(via.port, 5060);
  EXPECT_EQ(via.branch, "z9hG4bK776asdhds");
  EXPECT_EQ(via.received, "");
  EXPECT_TRUE(via.hasRport);
  EXPECT_FALSE(via.rport.has_value());

  const auto top = m.topVia();
  ASSERT_TRUE(top.has_value());
  EXPECT_EQ(top->host, "pc33.atlanta.example.com");
  EXPECT_EQ(top->branch, "z9hG4bK776asdhds");
}

TEST(SipMessageTest, ParsesInviteFromAndTo) {
  const Message m = parsed(kInvite);
  const auto from = m.from();
  ASSERT_TRUE(from.has_value());
  EXPECT_EQ(from->displayName, "Alice");
  EXPECT_EQ(from->uri, "sip:alice@atlanta.example.com");
  EXPECT_EQ(from->tag, "1928301774");

  const auto to = m.to();
  ASSERT_TRUE(to.has_value());
  EXPECT_EQ(to->displayName, "Bob");
  EXPECT_EQ(to->uri, "sip:bob@biloxi.example.com");
  EXPECT_EQ(to->tag, "");
}

TEST(SipMessageTest, ParsesInviteCallIdCSeqAndMaxForwards) {
  const Message m = parsed(kInvite);
  EXPECT_EQ(m.callId(), "a84b4c76e66710@pc33.atlanta.example.com");
  const auto cseq = m.cseq();
  ASSERT_TRUE(cseq.has_value());
  EXPECT_EQ(cseq->number, 314159u);
  EXPECT_EQ(cseq->method, "INVITE");
  EXPECT_EQ(m.maxForwards(), 70u);
}

TEST(SipMessageTest, ParsesInviteContact) {
  const Message m = parsed(kInvite);
  const std::vector<Contact> contacts = m.contacts();
  ASSERT_EQ(contacts.size(), 1u);
  EXPECT_FALSE(contacts[0].wildcard);
  EXPECT_EQ(contacts[0].address.uri, "sip:alice@pc33.atlanta.example.com:5060;transport=udp");
  EXPECT_EQ(contacts[0].address.displayName, "");
  EXPECT_FALSE(contacts[0].expires.has_value());
  EXPECT_FALSE(contacts[0].q.has_value());
  EXPECT_THAT(contacts[0].params, IsEmpty());
}

TEST(SipMessageTest, ParsesInviteBodyAndContentLength) {
  const Message m = parsed(kInvite);
  EXPECT_EQ(m.contentLength(), 241u);
  EXPECT_EQ(m.body(), kSdpOffer);
}

TEST(SipMessageTest, InviteWithoutRoutesExpiresOrProxyRequireReportsNone) {
  const Message m = parsed(kInvite);
  EXPECT_THAT(m.routes(), IsEmpty());
  EXPECT_THAT(m.recordRoutes(), IsEmpty());
  EXPECT_FALSE(m.expires().has_value());
  EXPECT_THAT(m.proxyRequire(), IsEmpty());
}

// Header values are encoded into a buffer that grows for long ones (a Route with flow
// tokens, a long Via): nothing may be cut off.
TEST(SipMessageTest, LongHeaderValuesAreComplete) {
  const std::string longRoute =
      "<sip:203.0.113.1:5060;lr;wpa=udp~192.0.2.10~5060;x=" + std::string(300, 'r') + ">";
  const std::string longVia = "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK" + std::string(200, 'v');
  const Message m = parsed(
      "OPTIONS sip:bob@biloxi.example.com SIP/2.0\r\nVia: " + longVia + "\r\nRoute: " + longRoute +
      "\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:b@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n"
      "Content-Length: 0\r\n\r\n");
  EXPECT_THAT(m.headerValues("Route"), ElementsAre(longRoute));
  EXPECT_THAT(m.headerValues("Via"), ElementsAre(longVia));
  const Message response = parsed(buildResponse(m, 200, "OK", "t"));
  EXPECT_THAT(response.headerValues("Via"), ElementsAre(longVia));
}

// sofia's auth-param encoder silently leaves out the parameters that do not fit its
// buffer (issue 10: SHA-256 credentials are longer than 256 bytes).
TEST(SipMessageTest, LongCredentialsKeepEveryParameter) {
  const std::string credentials =
      "Digest username=\"alice\", realm=\"biloxi.example.com\", nonce=\"" + std::string(44, 'n') +
      "\", uri=\"sip:biloxi.example.com\", response=\"" + std::string(64, 'a') +
      "\", algorithm=SHA-256, cnonce=\"0a4f113b\", qop=auth, nc=00000001";
  for (const char* name : {"Authorization", "Proxy-Authorization"}) {
    const Message m =
        parsed(std::string("REGISTER sip:biloxi.example.com SIP/2.0\r\n") +
               "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKa\r\n" + name + ": " + credentials +
               "\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\n"
               "CSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n");
    EXPECT_THAT(m.headerValues(name), ElementsAre(credentials)) << name;
  }
}

TEST(SipMessageTest, FindsHeadersByAnyCaseAndCompactName) {
  const Message m = parsed(kInvite);
  EXPECT_THAT(m.headerValues("Content-Type"), ElementsAre("application/sdp"));
  EXPECT_THAT(m.headerValues("content-type"), ElementsAre("application/sdp"));
  EXPECT_THAT(m.headerValues("c"), ElementsAre("application/sdp"));
  EXPECT_THAT(m.headerValues("User-Agent"), ElementsAre("Waypoint-Test-Phone/1.0"));
  EXPECT_THAT(m.headerValues("i"), ElementsAre("a84b4c76e66710@pc33.atlanta.example.com"));
  EXPECT_THAT(m.headerValues("Max-Forwards"), ElementsAre("70"));
  EXPECT_THAT(m.headerValues("Subject"), IsEmpty());
  EXPECT_TRUE(m.hasHeader("call-id"));
  EXPECT_TRUE(m.hasHeader("CALL-ID"));
  EXPECT_TRUE(m.hasHeader("i"));
  EXPECT_TRUE(m.hasHeader("Supported"));
  EXPECT_FALSE(m.hasHeader("Subject"));
  EXPECT_FALSE(m.hasHeader("Route"));
  EXPECT_FALSE(m.hasHeader("X-Not-There"));
}

TEST(SipMessageTest, ValidInvitePassesValidation) {
  const Message m = parsed(kInvite);
  EXPECT_EQ(problemOf(m), "<valid>");
}

TEST(SipMessageTest, SerializesUntouchedMessagesByteForByte) {
  for (std::string_view sample :
       {kInvite, kRinging, kBusyHere, kCompactInvite, kThreeViaBye, kRegister, kRegisterWildcard,
        kOptions, kOddInvite, kMessageNoMaxForwards, kOkTwoViasOneLine}) {
    const Message m = parsed(sample);
    EXPECT_EQ(m.serialize(), sample);
  }
}

TEST(SipMessageTest, MovedMessageKeepsItsContent) {
  Message a = parsed(kInvite);
  Message b = std::move(a);
  EXPECT_EQ(b.callId(), "a84b4c76e66710@pc33.atlanta.example.com");
  Message c = parsed(kBusyHere);
  c = std::move(b);
  EXPECT_EQ(c.method(), "INVITE");
  EXPECT_EQ(c.serialize(), kInvite);
}

// --- responses ------------------------------------------------------------------------

TEST(SipMessageTest, ParsesResponseStatusLine) {
  const Message m = parsed(kRinging);
  EXPECT_TRUE(m.isResponse());
  EXPECT_FALSE(m.isRequest());
  EXPECT_EQ(m.statusCode(), 180);
  EXPECT_EQ(m.reasonPhrase(), "Ringing");
  const auto cseq = m.cseq();
  ASSERT_TRUE(cseq.has_value());
  EXPECT_EQ(cseq->number, 314159u);
  EXPECT_EQ(cseq->method, "INVITE");
}

TEST(SipMessageTest, ParsesReasonPhraseWithSpaces) {
  const Message m = parsed(kBusyHere);
  EXPECT_EQ(m.statusCode(), 486);
  EXPECT_EQ(m.reasonPhrase(), "Busy Here");
}

TEST(SipMessageTest, ParsesResponseViasInOrder) {
  const Message m = parsed(kRinging);
  const std::vector<Via> vias = m.vias();
  ASSERT_EQ(vias.size(), 2u);
  EXPECT_EQ(vias[0].protocol, "UDP");
  EXPECT_EQ(vias[0].host, "proxy.example.net");
  EXPECT_EQ(vias[0].port, 5060);
  EXPECT_EQ(vias[0].branch, "z9hG4bK2d4790.1");
  EXPECT_FALSE(vias[0].hasRport);
  EXPECT_EQ(vias[1].host, "pc33.atlanta.example.com");
  EXPECT_EQ(vias[1].branch, "z9hG4bK776asdhds");
  EXPECT_TRUE(vias[1].hasRport);
  EXPECT_EQ(vias[1].rport, 5062);
  EXPECT_EQ(vias[1].received, "192.0.2.101");
  ASSERT_TRUE(m.topVia().has_value());
  EXPECT_EQ(m.topVia()->host, "proxy.example.net");
}

TEST(SipMessageTest, ParsesResponseToTagRecordRouteAndContact) {
  const Message m = parsed(kRinging);
  ASSERT_TRUE(m.to().has_value());
  EXPECT_EQ(m.to()->tag, "a6c85cf");
  ASSERT_TRUE(m.from().has_value());
  EXPECT_EQ(m.from()->tag, "1928301774");
  const auto rr = m.recordRoutes();
  ASSERT_EQ(rr.size(), 1u);
  EXPECT_EQ(rr[0].uri, "sip:proxy.example.net;lr");
  const auto contacts = m.contacts();
  ASSERT_EQ(contacts.size(), 1u);
  EXPECT_EQ(contacts[0].address.uri, "sip:bob@192.0.2.4");
  EXPECT_EQ(m.contentLength(), 0u);
  EXPECT_EQ(m.body(), "");
  EXPECT_EQ(problemOf(m), "<valid>");
}

// --- compact forms, Via lists, Contacts -------------------------------------------------

TEST(SipMessageTest, ParsesCompactHeaderForms) {
  const Message m = parsed(kCompactInvite);
  const auto via = m.topVia();
  ASSERT_TRUE(via.has_value());
  EXPECT_EQ(via->protocol, "TCP");
  EXPECT_EQ(via->host, "pc33.atlanta.example.com");
  EXPECT_EQ(via->port, 5070);
  EXPECT_EQ(via->branch, "z9hG4bKcompact1");
  EXPECT_FALSE(via->hasRport);

  ASSERT_TRUE(m.from().has_value());
  EXPECT_EQ(m.from()->uri, "sip:alice@atlanta.example.com");
  EXPECT_EQ(m.from()->tag, "88sja8x");
  ASSERT_TRUE(m.to().has_value());
  EXPECT_EQ(m.to()->uri, "sip:bob@biloxi.example.com");
  EXPECT_EQ(m.callId(), "98asjd8@pc33.atlanta.example.com");
  const auto contacts = m.contacts();
  ASSERT_EQ(contacts.size(), 1u);
  EXPECT_EQ(contacts[0].address.uri, "sip:alice@pc33.atlanta.example.com:5070;transport=tcp");
  EXPECT_EQ(m.contentLength(), 241u);
  EXPECT_EQ(m.body(), kSdpOffer);

  EXPECT_THAT(m.headerValues("Subject"), ElementsAre("lunch"));
  EXPECT_THAT(m.headerValues("s"), ElementsAre("lunch"));
  EXPECT_THAT(m.headerValues("Content-Type"), ElementsAre("application/sdp"));
  EXPECT_TRUE(m.hasHeader("Supported"));
  EXPECT_TRUE(m.hasHeader("Via"));
  EXPECT_TRUE(m.hasHeader("From"));
  EXPECT_TRUE(m.hasHeader("Content-Length"));
  EXPECT_EQ(problemOf(m), "<valid>");
}

TEST(SipMessageTest, ParsesViasSharingALineAndOnSeparateLines) {
  const Message m = parsed(kThreeViaBye);
  const std::vector<Via> vias = m.vias();
  ASSERT_EQ(vias.size(), 3u);
  EXPECT_EQ(vias[0].protocol, "UDP");
  EXPECT_EQ(vias[0].host, "proxy2.example.org");
  EXPECT_FALSE(vias[0].port.has_value());
  EXPECT_EQ(vias[0].branch, "z9hG4bKp2a");

  EXPECT_EQ(vias[1].protocol, "TCP");
  EXPECT_EQ(vias[1].host, "proxy1.example.net");
  EXPECT_EQ(vias[1].port, 5070);
  EXPECT_EQ(vias[1].branch, "z9hG4bKp1a");
  EXPECT_EQ(vias[1].received, "198.51.100.1");
  EXPECT_FALSE(vias[1].hasRport);

  EXPECT_EQ(vias[2].host, "192.0.2.4");
  EXPECT_EQ(vias[2].port, 5060);
  EXPECT_EQ(vias[2].branch, "z9hG4bKuac1");
  EXPECT_TRUE(vias[2].hasRport);
  EXPECT_EQ(vias[2].rport, 5060);

  ASSERT_TRUE(m.topVia().has_value());
  EXPECT_EQ(m.topVia()->branch, "z9hG4bKp2a");
  EXPECT_EQ(m.method(), "BYE");
  EXPECT_EQ(m.maxForwards(), 68u);
}

TEST(SipMessageTest, ParsesContactsWithQAndExpiresParameters) {
  const Message m = parsed(kRegister);
  EXPECT_EQ(m.method(), "REGISTER");
  const std::vector<Contact> contacts = m.contacts();
  ASSERT_EQ(contacts.size(), 3u);

  EXPECT_FALSE(contacts[0].wildcard);
  EXPECT_EQ(contacts[0].address.uri, "sip:alice@192.0.2.101:5060");
  ASSERT_TRUE(contacts[0].q.has_value());
  EXPECT_DOUBLE_EQ(*contacts[0].q, 0.7);
  EXPECT_EQ(contacts[0].expires, 3600u);
  EXPECT_THAT(contacts[0].params, Contains("q=0.7"));
  EXPECT_THAT(contacts[0].params, Contains("expires=3600"));

  EXPECT_EQ(contacts[1].address.uri, "sip:alice@198.51.100.7;transport=tcp");
  ASSERT_TRUE(contacts[1].q.has_value());
  EXPECT_DOUBLE_EQ(*contacts[1].q, 1.0);
  EXPECT_FALSE(contacts[1].expires.has_value());

  EXPECT_EQ(contacts[2].address.uri, "sips:alice@desk.atlanta.example.com:5061");
  EXPECT_FALSE(contacts[2].q.has_value());
  EXPECT_THAT(contacts[2].params,
              Contains("+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\""));

  EXPECT_EQ(m.expires(), 7200u);
  EXPECT_EQ(problemOf(m), "<valid>");
}

TEST(SipMessageTest, ParsesWildcardContact) {
  const Message m = parsed(kRegisterWildcard);
  const std::vector<Contact> contacts = m.contacts();
  ASSERT_EQ(contacts.size(), 1u);
  EXPECT_TRUE(contacts[0].wildcard);
  EXPECT_EQ(m.expires(), 0u);
  EXPECT_EQ(problemOf(m), "<valid>");
}

TEST(SipMessageTest, ParsesRoutesFromSeparateLinesAndOneLine) {
  const Message odd = parsed(kOddInvite);
  const auto routes = odd.routes();
  ASSERT_EQ(routes.size(), 2u);
  EXPECT_EQ(routes[0].uri, "sip:proxy.example.net;lr");
  EXPECT_EQ(routes[1].uri, "sip:edge.biloxi.example.com;lr");

  const Message msg = parsed(kMessageNoMaxForwards);
  const auto routes2 = msg.routes();
  ASSERT_EQ(routes2.size(), 2u);
  EXPECT_EQ(routes2[0].uri, "sip:proxy.example.net;lr");
  EXPECT_EQ(routes2[1].uri, "sip:edge.biloxi.example.com;lr");
  const auto rr = msg.recordRoutes();
  ASSERT_EQ(rr.size(), 1u);
  EXPECT_EQ(rr[0].uri, "sip:earlier.example.org;lr");
  EXPECT_FALSE(msg.maxForwards().has_value());
  EXPECT_EQ(msg.body(), "hello");
}

TEST(SipMessageTest, ParsesOddlySpacedAndCasedHeaders) {
  const Message m = parsed(kOddInvite);
  EXPECT_EQ(m.callId(), "a84b4c76e66710@pc33.atlanta.example.com");
  ASSERT_TRUE(m.cseq().has_value());
  EXPECT_EQ(m.cseq()->number, 314159u);
  EXPECT_EQ(m.cseq()->method, "INVITE");
  EXPECT_EQ(m.maxForwards(), 70u);
  ASSERT_TRUE(m.topVia().has_value());
  EXPECT_EQ(m.topVia()->branch, "z9hG4bK776asdhds");
  ASSERT_TRUE(m.to().has_value());
  EXPECT_EQ(m.to()->uri, "sip:bob@biloxi.example.com");
  EXPECT_TRUE(m.hasHeader("X-Odd-Header"));
  EXPECT_TRUE(m.hasHeader("x-odd-header"));
  EXPECT_EQ(m.contentLength(), 241u);
  EXPECT_EQ(problemOf(m), "<valid>");
}

TEST(SipMessageTest, ParsesProxyRequireOptionTags) {
  const std::string bytes =
      "OPTIONS sip:proxy.example.net SIP/2.0\r\n"
      "Via: SIP/2.0/UDP 192.0.2.101:5060;branch=z9hG4bKpr1\r\n"
      "Max-Forwards: 70\r\n"
      "From: <sip:alice@atlanta.example.com>;tag=pr1\r\n"
      "To: <sip:proxy.example.net>\r\n"
      "Call-ID: pr-1@192.0.2.101\r\n"
      "CSeq: 1 OPTIONS\r\n"
      "Proxy-Require: foo, bar\r\n"
      "Proxy-Require: baz\r\n"
      "Content-Length: 0\r\n"
      "\r\n";
  const Message m = parsed(bytes);
  EXPECT_THAT(m.proxyRequire(), ElementsAre("foo", "bar", "baz"));
}

TEST(SipMessageTest, MessageWithoutBodyHasEmptyBody) {
  const Message m = parsed(kOptions);
  EXPECT_EQ(m.method(), "OPTIONS");
  EXPECT_EQ(m.contentLength(), 0u);
  EXPECT_EQ(m.body(), "");
  EXPECT_EQ(m.vias().size(), 3u);
}

// --- parseUri -----------------------------------------------------------------------

TEST(ParseUriTest, ParsesSipUriWithUserAndHost) {
  const auto uri = parseUri("sip:alice@atlanta.example.com");
  ASSERT_TRUE(uri.has_value());
  EXPECT_EQ(uri->scheme, "sip");
  EXPECT_EQ(uri->user, "alice");
  EXPECT_EQ(uri->host, "atlanta.example.com");
  EXPECT_FALSE(uri->port.has_value());
  EXPECT_EQ(uri->transport, "");
  EXPECT_FALSE(uri->lr);
}

TEST(ParseUriTest, ParsesSipsUriWithPortAndTransport) {
  const auto uri = parseUri("sips:bob@biloxi.example.com:5061;transport=tcp");
  ASSERT_TRUE(uri.has_value());
  EXPECT_EQ(uri->scheme, "sips");
  EXPECT_EQ(uri->user, "bob");
  EXPECT_EQ(uri->host, "biloxi.example.com");
  EXPECT_EQ(uri->port, 5061);
  EXPECT_EQ(uri->transport, "tcp");
  EXPECT_FALSE(uri->lr);
}

TEST(ParseUriTest, ParsesLooseRouteParameter) {
  const auto uri = parseUri("sip:proxy.example.net;lr");
  ASSERT_TRUE(uri.has_value());
  EXPECT_EQ(uri->user, "");
  EXPECT_EQ(uri->host, "proxy.example.net");
  EXPECT_TRUE(uri->lr);

  const auto ip = parseUri("sip:192.0.2.4:5080;transport=udp;lr");
  ASSERT_TRUE(ip.has_value());
  EXPECT_EQ(ip->host, "192.0.2.4");
  EXPECT_EQ(ip->port, 5080);
  EXPECT_EQ(ip->transport, "udp");
  EXPECT_TRUE(ip->lr);
}

TEST(ParseUriTest, ParsesUriWithOtherParametersAndHeaders) {
  const auto uri = parseUri("sip:+12015550123@gw.example.com;user=phone;transport=tls?Subject=hi");
  ASSERT_TRUE(uri.has_value());
  EXPECT_EQ(uri->user, "+12015550123");
  EXPECT_EQ(uri->host, "gw.example.com");
  EXPECT_EQ(uri->transport, "tls");
  EXPECT_FALSE(uri->lr);
}

// RFC 3261 §19.1.6: the telephone-subscriber of a tel URI is what a SIP URI carries as
// its user part; a tel URI has no host.
TEST(ParseUriTest, ParsesTelUri) {
  const auto uri = parseUri("tel:+1-201-555-0123");
  ASSERT_TRUE(uri.has_value());
  EXPECT_EQ(uri->scheme, "tel");
  EXPECT_EQ(uri->user, "+1-201-555-0123");
  EXPECT_EQ(uri->host, "");
  EXPECT_FALSE(uri->port.has_value());
}

TEST(ParseUriTest, RejectsOtherSchemes) {
  EXPECT_FALSE(parseUri("http://example.com/").has_value());
  EXPECT_FALSE(parseUri("mailto:alice@atlanta.example.com").has_value());
  EXPECT_FALSE(parseUri("im:alice@atlanta.example.com").has_value());
}

TEST(ParseUriTest, RejectsGarbage) {
  EXPECT_FALSE(parseUri("").has_value());
  EXPECT_FALSE(parseUri("sip:").has_value());
  EXPECT_FALSE(parseUri("not a uri").has_value());
  EXPECT_FALSE(parseUri("sip:alice@").has_value());
  EXPECT_FALSE(parseUri("sip:alice@atlanta.example.com:99999").has_value());
  EXPECT_FALSE(parseUri("sip:alice@atlanta.example.com:port").has_value());
  EXPECT_FALSE(parseUri(std::string_view("sip:al\0ice@atlanta.example.com", 30)).has_value());
}

// Found by fuzzing: sofia's url_has_param() read past the end of this parameter string
// (ASan: heap-buffer-overflow); parameters are read by uriParam() now.
TEST(ParseUri, ParameterTextWithStrayCharactersIsReadInBounds) {
  const auto uri = parseUri("sip:bob@zbil;lr>,oxi.example.com");
  ASSERT_TRUE(uri.has_value());
  EXPECT_EQ(uri->params, "lr>,oxi.example.com");
  EXPECT_FALSE(uri->lr);  // the parameter is named "lr>,oxi.example.com", not "lr"
  const auto withTransport = parseUri("sip:gw@192.0.2.1;Transport=TCP;lr");
  ASSERT_TRUE(withTransport.has_value());
  EXPECT_EQ(withTransport->transport, "TCP");
  EXPECT_TRUE(withTransport->lr);
}

}  // namespace
}  // namespace waypoint::sip
