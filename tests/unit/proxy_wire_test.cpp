// The bytes production sends, from the production path: the Proxy and its TransactionLayer
// with the fake clock and sender, the random parts (tags, branch numbers) seeded. Each
// message is compared with a file in tests/golden/ (issue 8, "one message, one writer").
// WAYPOINT_UPDATE_GOLDEN=1 rewrites the files from what the code sends now; read the diff.
//
// Also issue 8's LF-only bug: an INVITE with bare LF line ends (which the parser accepts on
// purpose) lost the caller's Via on the way through, so Bob's answer could not go back.

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>

#include "fakes.hpp"
#include "waypoint/proxy/proxy.hpp"
#include "waypoint/registrar/location_store.hpp"
#include "waypoint/registrar/registrar.hpp"

#ifndef WAYPOINT_GOLDEN_DIR
#error "WAYPOINT_GOLDEN_DIR must name tests/golden"
#endif

namespace waypoint::testkit {
namespace {

using transport::Protocol;
using transport::Source;

std::string golden(const std::string& name, const std::string& actual) {
  const std::string path = std::string(WAYPOINT_GOLDEN_DIR) + "/" + name;
  if (const char* update = std::getenv("WAYPOINT_UPDATE_GOLDEN"); update && *update == '1') {
    std::ofstream(path, std::ios::binary) << actual;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return "(cannot read golden file " + path + ")";
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

class ProxyWireTest : public ::testing::Test {
 protected:
  ProxyWireTest() {
    identity.addName("biloxi.example.com");
    identity.addListener(Protocol::udp, endpoint("203.0.113.1", 5060));
    identity.addListener(Protocol::tcp, endpoint("203.0.113.1", 5060));
    settings.randomSeed = 8;
    settings.routeSecrets = {"golden-files-route-secret"};  // fixed, so the wpm MAC is too
    proxy = std::make_unique<proxy::Proxy>(clock, sender, transaction::LayerSettings{}, identity,
                                           registrar, settings);
  }

  void receive(std::string_view bytes, const Source& source) {
    sip::Message message = parse(bytes);
    if (message.isRequest()) {
      message.setTopViaReceived(source.remote.address.to_string(), source.remote.port);
      proxy->transactions().receiveRequest(message, source);
    } else {
      proxy->transactions().receiveResponse(message, source);
    }
  }

  // Bob registers from `flow` (UDP 198.51.100.20:40000, or a TCP connection).
  void registerBob(const Source& flow, const std::string& contact) {
    const std::string transport = flow.protocol == Protocol::tcp ? "TCP" : "UDP";
    receive(
        "REGISTER sip:biloxi.example.com SIP/2.0\r\n"
        "Via: SIP/2.0/" +
            transport + " " + transport::toString(flow.remote) +
            ";branch=z9hG4bKreg1\r\n"
            "Max-Forwards: 70\r\n"
            "From: <sip:bob@biloxi.example.com>;tag=r1\r\n"
            "To: <sip:bob@biloxi.example.com>\r\n"
            "Call-ID: reg1@phone\r\nCSeq: 1 REGISTER\r\n"
            "Contact: <" +
            contact + ">\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n",
        flow);
    ASSERT_EQ(firstLine(sender.last().bytes), "SIP/2.0 200 OK");
  }

  std::vector<SentMessage> sent(std::string_view prefix) const {
    std::vector<SentMessage> matching;
    for (const auto& m : sender.sent()) {
      if (std::string_view(m.bytes).starts_with(prefix)) matching.push_back(m);
    }
    return matching;
  }

  // Alice's INVITE, with an SDP body and a header the proxy must pass on untouched.
  static std::string aliceInvite() {
    const std::string sdp =
        "v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\n"
        "c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 49172 RTP/AVP 0\r\n";
    return "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
           "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n"
           "Max-Forwards: 70\r\n"
           "To: Bob <sip:bob@biloxi.example.com>\r\n"
           "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
           "Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
           "CSeq: 314159 INVITE\r\n"
           "Contact: <sip:alice@192.0.2.10:5060>\r\n"
           "X-Odd-Header :  keep   this\r\n"
           "Content-Type: application/sdp\r\n"
           "Content-Length: " +
           std::to_string(sdp.size()) + "\r\n\r\n" + sdp;
  }

  // Bare LF ends the start line and the header lines; the body stays as it is (opaque).
  static std::string asLfOnly(std::string text) {
    const std::size_t bodyStart = text.find("\r\n\r\n") + 4;
    std::string head = text.substr(0, bodyStart);
    for (std::size_t at = head.find("\r\n"); at != std::string::npos; at = head.find("\r\n", at))
      head.erase(at, 1);
    return head + text.substr(bodyStart);
  }

  FakeClock clock;
  FakeSender sender{clock};
  proxy::LocalIdentity identity;
  registrar::InMemoryLocationStore store;
  registrar::Registrar registrar{store, {"biloxi.example.com"}, registrar::RegistrarSettings{}};
  proxy::ProxySettings settings;
  std::unique_ptr<proxy::Proxy> proxy;
  const Source alice = udpSource();
  const Source bobUdp{Protocol::udp, endpoint("203.0.113.1", 5060),
                      endpoint("198.51.100.20", 40000), 0};
  const Source bobTcp{Protocol::tcp, endpoint("203.0.113.1", 5060),
                      endpoint("198.51.100.20", 40001), 9};
};

// RFC 5658: in over UDP, out over TCP, so two Record-Route entries (the callee side's on
// top); our Via on top of Alice's (with received/rport), Max-Forwards 69, the Request-URI
// Bob's Contact, every other byte as Alice sent it.
TEST_F(ProxyWireTest, ForwardedInviteUdpToTcpWithDoubleRecordRoute) {
  registerBob(bobTcp, "sip:bob@198.51.100.20:40001;transport=tcp");
  receive(aliceInvite(), alice);
  const auto invites = sent("INVITE ");
  ASSERT_EQ(invites.size(), 1u);
  EXPECT_EQ(invites[0].destination.protocol, Protocol::tcp);
  EXPECT_EQ(invites[0].bytes, golden("wire_invite_udp_to_tcp.sip", invites[0].bytes));
}

TEST_F(ProxyWireTest, HundredTryingToTheCaller) {
  registerBob(bobUdp, "sip:bob@198.51.100.20:40000");
  receive(aliceInvite(), alice);
  const auto trying = sent("SIP/2.0 100 ");
  ASSERT_EQ(trying.size(), 1u);
  EXPECT_EQ(trying[0].destination.remote, alice.remote);
  EXPECT_EQ(trying[0].bytes, golden("wire_100_trying.sip", trying[0].bytes));
}

TEST_F(ProxyWireTest, CancelOfARingingBranch) {
  registerBob(bobUdp, "sip:bob@198.51.100.20:40000");
  const std::string invite = aliceInvite();
  receive(invite, alice);
  const auto forwarded = sent("INVITE ").at(0);
  receive(responseText(forwarded.bytes, 180, "Ringing", "bobtag"), bobUdp);
  std::string cancel = invite.substr(0, invite.find("Contact:"));
  cancel.replace(0, 6, "CANCEL");
  cancel.replace(cancel.find("314159 INVITE"), 13, "314159 CANCEL");
  receive(cancel + "Content-Length: 0\r\n\r\n", alice);
  const auto cancels = sent("CANCEL ");
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0].destination.remote, bobUdp.remote);
  EXPECT_EQ(cancels[0].bytes, golden("wire_cancel.sip", cancels[0].bytes));
}

TEST_F(ProxyWireTest, AckForANon2xxFinal) {
  registerBob(bobUdp, "sip:bob@198.51.100.20:40000");
  receive(aliceInvite(), alice);
  const auto forwarded = sent("INVITE ").at(0);
  receive(responseText(forwarded.bytes, 486, "Busy Here", "bobtag"), bobUdp);
  const auto acks = sent("ACK ");
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].destination.remote, bobUdp.remote);
  EXPECT_EQ(acks[0].bytes, golden("wire_ack_486.sip", acks[0].bytes));
  const auto busy = sent("SIP/2.0 486 ");
  ASSERT_EQ(busy.size(), 1u);
  EXPECT_EQ(busy[0].destination.remote, alice.remote);
}

TEST_F(ProxyWireTest, LocallyMade404WithItsTag) {
  std::string invite = aliceInvite();
  invite.replace(invite.find("sip:bob@"), 8, "sip:carol@");
  receive(invite, alice);
  const auto notFound = sent("SIP/2.0 404 ");
  ASSERT_EQ(notFound.size(), 1u);
  EXPECT_EQ(notFound[0].bytes, golden("wire_404.sip", notFound[0].bytes));
}

// The proxy's own final response when the only branch failed (503 from Bob): 500, made
// from the parsed request the context keeps.
TEST_F(ProxyWireTest, LocallyMade500FromTheKeptRequest) {
  registerBob(bobUdp, "sip:bob@198.51.100.20:40000");
  receive(aliceInvite(), alice);
  receive(responseText(sent("INVITE ").at(0).bytes, 503, "Service Unavailable", "bobtag"), bobUdp);
  const auto failed = sent("SIP/2.0 500 ");
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].bytes, golden("wire_500.sip", failed[0].bytes));
}

TEST_F(ProxyWireTest, SameSeedSameBytes) {
  registerBob(bobUdp, "sip:bob@198.51.100.20:40000");
  receive(aliceInvite(), alice);
  const std::string first = sent("INVITE ").at(0).bytes;
  FakeSender otherSender{clock};
  proxy::Proxy other(clock, otherSender, transaction::LayerSettings{}, identity, registrar,
                     settings);
  sip::Message again = parse(aliceInvite());
  again.setTopViaReceived(alice.remote.address.to_string(), alice.remote.port);
  other.transactions().receiveRequest(again, alice);
  ASSERT_GE(otherSender.count(), 2u);
  EXPECT_EQ(otherSender.last().bytes, first);
}

// Issue 8: the whole path with bare LF line ends, and with both kinds mixed.
class LineEndTest : public ProxyWireTest, public ::testing::WithParamInterface<bool> {};

TEST_P(LineEndTest, InviteIsForwardedWithEveryViaAndTheAnswerReachesTheCaller) {
  registerBob(bobUdp, "sip:bob@198.51.100.20:40000");
  std::string invite = asLfOnly(aliceInvite());
  if (GetParam()) {  // mixed: some lines CRLF, the rest LF
    invite.replace(invite.find("Max-Forwards: 70\n"), 17, "Max-Forwards: 70\r\n");
    invite.replace(invite.find("CSeq: 314159 INVITE\n"), 20, "CSeq: 314159 INVITE\r\n");
  }
  receive(invite, alice);
  const auto forwarded = sent("INVITE ");
  ASSERT_EQ(forwarded.size(), 1u);
  const sip::Message out = parse(forwarded[0].bytes);
  const auto vias = out.vias();
  ASSERT_EQ(vias.size(), 2u) << forwarded[0].bytes;
  EXPECT_EQ(vias[0].host, "203.0.113.1");
  EXPECT_EQ(vias[1].host, "192.0.2.10");
  EXPECT_EQ(vias[1].branch, "z9hG4bK776asdhds");
  EXPECT_EQ(out.requestUri(), "sip:bob@198.51.100.20:40000");
  EXPECT_EQ(out.maxForwards(), 69u);
  EXPECT_EQ(out.callId(), "a84b4c76e66710@pc33.atlanta.example.com");
  EXPECT_EQ(out.body(), parse(invite).body());
  // The lines the proxy did not touch keep their line ends.
  EXPECT_NE(
      forwarded[0].bytes.find("\nFrom: Alice <sip:alice@atlanta.example.com>;tag=1928301774\n"),
      std::string::npos);
  EXPECT_NE(forwarded[0].bytes.find("\nX-Odd-Header :  keep   this\n"), std::string::npos);

  receive(responseText(forwarded[0].bytes, 200, "OK", "bobtag"), bobUdp);
  const auto ok = sent("SIP/2.0 200 ");
  ASSERT_EQ(ok.size(), 2u);  // Bob's REGISTER got one; this is the INVITE's
  EXPECT_EQ(ok[1].destination.remote, alice.remote);
  const sip::Message answer = parse(ok[1].bytes);
  ASSERT_EQ(answer.vias().size(), 1u);
  EXPECT_EQ(answer.vias()[0].host, "192.0.2.10");
  EXPECT_EQ(answer.vias()[0].branch, "z9hG4bK776asdhds");
  EXPECT_EQ(sent("SIP/2.0 500 ").size(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Issue8, LineEndTest, ::testing::Values(false, true),
                         [](const auto& param) { return param.param ? "Mixed" : "LfOnly"; });

}  // namespace
}  // namespace waypoint::testkit
