// The transaction table: §17.2.3 server matching (RFC 3261 branches and RFC 2543
// requests), §17.1.3 client matching, CANCEL, and the layer's own bookkeeping (respond()
// on ended transactions, nextExpiry(), reclaiming thousands of transactions).

#include "waypoint/transaction/transaction_layer.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fakes.hpp"

namespace waypoint::testkit {
namespace {

using ::testing::ElementsAre;
using transport::Protocol;
using Event = UserEvent::Kind;

class TransactionLayerTest : public ::testing::Test {
 protected:
  // Feeds a request that must create a server transaction; returns its id.
  TransactionId receiveNew(const std::string& bytes,
                           const transport::Source& source = udpSource()) {
    const std::size_t before = user.count(Event::request);
    layer.receiveRequest(parse(bytes), source);
    EXPECT_EQ(user.count(Event::request), before + 1)
        << "the request made no new server transaction";
    return user.count(Event::request) == 0 ? 0 : user.of(Event::request).back().id;
  }
  void receive(const std::string& bytes, const transport::Source& source = udpSource()) {
    layer.receiveRequest(parse(bytes), source);
  }
  void receiveResponse(std::string_view bytes) {
    layer.receiveResponse(parse(bytes), downstreamSource());
  }
  static std::string answer(const std::string& requestBytes, int status, std::string_view reason) {
    return sip::buildResponse(parse(requestBytes), status, reason, "srv-tag-1");
  }
  std::optional<std::int64_t> nextDueMs() {
    const auto next = layer.nextExpiry();
    if (!next) return std::nullopt;
    return std::chrono::duration_cast<Duration>(*next - clock.start()).count();
  }
  std::size_t liveServers() const { return layer.counters().liveServerTransactions; }
  std::size_t liveClients() const { return layer.counters().liveClientTransactions; }

  FakeClock clock;
  FakeSender sender{clock};
  RecordingUser user{clock};
  transaction::TransactionLayer layer{clock, sender, user, transaction::LayerSettings{}};
};

class TransactionLayerMatchingTest : public TransactionLayerTest {};

RequestSpec options(std::string branch = "z9hG4bKopt1") {
  RequestSpec spec;
  spec.method = "OPTIONS";
  spec.branch = std::move(branch);
  return spec;
}

RequestSpec rfc2543Invite() {
  RequestSpec spec;
  spec.branch = std::nullopt;
  return spec;
}

// ======== server side, RFC 3261 (§17.2.3, branch with the magic cookie) ========

TEST_F(TransactionLayerMatchingTest, SameBranchSentByAndMethodIsARetransmission) {
  receiveNew(requestText(options()));
  receive(requestText(options()));
  EXPECT_EQ(user.count(Event::request), 1u);
  EXPECT_EQ(layer.counters().requestRetransmissionsAbsorbed, 1u);
  EXPECT_EQ(liveServers(), 1u);
}

TEST_F(TransactionLayerMatchingTest, OtherSentByPortIsANewTransaction) {
  const TransactionId first = receiveNew(requestText(options()));
  RequestSpec other = options();
  other.sentBy = "192.0.2.10:5062";
  const TransactionId second = receiveNew(requestText(other), udpSource(5062));
  EXPECT_NE(first, second);
  EXPECT_EQ(liveServers(), 2u);
}

TEST_F(TransactionLayerMatchingTest, OtherSentByHostIsANewTransaction) {
  const TransactionId first = receiveNew(requestText(options()));
  RequestSpec other = options();
  other.sentBy = "192.0.2.11:5060";
  EXPECT_NE(receiveNew(requestText(other)), first);
}

TEST_F(TransactionLayerMatchingTest, SameBranchWithOtherMethodIsANewTransaction) {
  const TransactionId first = receiveNew(requestText(options()));
  RequestSpec info = options();
  info.method = "INFO";
  EXPECT_NE(receiveNew(requestText(info)), first);
}

TEST_F(TransactionLayerMatchingTest, AckMatchesItsInviteTransaction) {
  const RequestSpec spec;
  const std::string invite = requestText(spec);
  const TransactionId id = receiveNew(invite);
  layer.respond(id, 486, answer(invite, 486, "Busy Here"));
  runUntil(clock, layer, 1000ms);
  receive(ackFor(spec, "srv-tag-1"));
  EXPECT_EQ(layer.counters().acksAbsorbed, 1u);
  EXPECT_EQ(user.count(Event::ack), 0u);
  runUntil(clock, layer, 10s, 10ms);
  EXPECT_THAT(sender.timesOf("SIP/2.0 486 "), ElementsAre(0, 500));  // Timer G stopped by the ACK
}

TEST_F(TransactionLayerMatchingTest, AckWithAnotherBranchDoesNotMatchTheInvite) {
  const RequestSpec spec;
  const std::string invite = requestText(spec);
  const TransactionId id = receiveNew(invite);
  layer.respond(id, 486, answer(invite, 486, "Busy Here"));
  RequestSpec stranger = spec;
  stranger.branch = "z9hG4bKsomeotherbranch";
  receive(ackFor(stranger, "srv-tag-1"));
  EXPECT_EQ(layer.counters().acksAbsorbed, 0u);
  EXPECT_EQ(user.count(Event::ack), 1u);  // not ours: the TU routes it
  runUntil(clock, layer, 2000ms);
  EXPECT_THAT(sender.timesOf("SIP/2.0 486 "),
              ElementsAre(0, 500, 1500));  // still waiting for our ACK
}

TEST_F(TransactionLayerMatchingTest, CancelWithTheInvitesBranchGetsItsOwnTransaction) {
  const RequestSpec spec;
  const std::string invite = requestText(spec);
  const TransactionId inviteId = receiveNew(invite);
  RequestSpec cancelSpec = spec;
  cancelSpec.method = "CANCEL";
  const std::string cancel = requestText(cancelSpec);
  const TransactionId cancelId = receiveNew(cancel);

  EXPECT_NE(cancelId, inviteId);
  EXPECT_EQ(user.of(Event::request).back().method, "CANCEL");
  EXPECT_EQ(sender.countOf("SIP/2.0 100 "), 1u);  // the CANCEL is no INVITE retransmission
  EXPECT_EQ(layer.inviteForCancel(parse(cancel)), std::optional<TransactionId>(inviteId));

  EXPECT_TRUE(layer.respond(cancelId, 200, answer(cancel, 200, "OK")));
  const sip::Message cancelOk = parse(sender.last().bytes);
  EXPECT_EQ(cancelOk.cseq()->method, "CANCEL");
  EXPECT_TRUE(layer.respond(inviteId, 487, answer(invite, 487, "Request Terminated")));
  receive(ackFor(spec, "srv-tag-1"));
  EXPECT_EQ(layer.counters().acksAbsorbed, 1u);
}

TEST_F(TransactionLayerMatchingTest, InviteForCancelIsEmptyWithoutTheInvite) {
  RequestSpec cancelSpec;
  cancelSpec.method = "CANCEL";
  EXPECT_EQ(layer.inviteForCancel(parse(requestText(cancelSpec))), std::nullopt);

  // An INVITE over TCP that ended (486 + ACK, Timer I is zero) is no longer found.
  RequestSpec inviteSpec;
  inviteSpec.viaTransport = "TCP";
  const std::string invite = requestText(inviteSpec);
  const TransactionId id = receiveNew(invite, tcpSource());
  cancelSpec.viaTransport = "TCP";
  EXPECT_EQ(layer.inviteForCancel(parse(requestText(cancelSpec))),
            std::optional<TransactionId>(id));
  layer.respond(id, 486, answer(invite, 486, "Busy Here"));
  receive(ackFor(inviteSpec, "srv-tag-1"), tcpSource());
  EXPECT_EQ(layer.inviteForCancel(parse(requestText(cancelSpec))), std::nullopt);

  // A CANCEL with another branch is for another INVITE.
  RequestSpec otherInvite;
  otherInvite.branch = "z9hG4bKanotherinvite";
  receiveNew(requestText(otherInvite));
  RequestSpec otherCancel = cancelSpec;
  otherCancel.viaTransport = "UDP";
  otherCancel.branch = "z9hG4bKnotthatone";
  EXPECT_EQ(layer.inviteForCancel(parse(requestText(otherCancel))), std::nullopt);
}

// ======== server side, RFC 2543 requests (no magic cookie) ========

TEST_F(TransactionLayerMatchingTest, Rfc2543RetransmissionMatches) {
  const std::string invite = requestText(rfc2543Invite());
  receiveNew(invite);
  runUntil(clock, layer, 500ms);
  receive(invite);
  EXPECT_EQ(user.count(Event::request), 1u);
  EXPECT_THAT(sender.timesOf("SIP/2.0 100 "), ElementsAre(0, 500));
}

TEST_F(TransactionLayerMatchingTest, Rfc2543RequestWithOtherCSeqIsANewTransaction) {
  const TransactionId first = receiveNew(requestText(rfc2543Invite()));
  RequestSpec next = rfc2543Invite();
  next.cseq += 1;
  EXPECT_NE(receiveNew(requestText(next)), first);
}

TEST_F(TransactionLayerMatchingTest, Rfc2543RequestWithOtherCallIdOrFromTagIsANewTransaction) {
  const TransactionId first = receiveNew(requestText(rfc2543Invite()));
  RequestSpec otherCall = rfc2543Invite();
  otherCall.callId = "another-call@pc33.atlanta.example.com";
  const TransactionId second = receiveNew(requestText(otherCall));
  RequestSpec otherFrom = rfc2543Invite();
  otherFrom.fromTag = "55555";
  const TransactionId third = receiveNew(requestText(otherFrom));
  EXPECT_NE(second, first);
  EXPECT_NE(third, first);
  EXPECT_NE(third, second);
}

TEST_F(TransactionLayerMatchingTest, Rfc2543CancelGetsItsOwnTransactionAndFindsItsInvite) {
  const std::string invite = requestText(rfc2543Invite());
  const TransactionId inviteId = receiveNew(invite);
  RequestSpec cancelSpec = rfc2543Invite();
  cancelSpec.method = "CANCEL";
  const std::string cancel = requestText(cancelSpec);
  const TransactionId cancelId = receiveNew(cancel);
  EXPECT_NE(cancelId, inviteId);
  EXPECT_EQ(layer.inviteForCancel(parse(cancel)), std::optional<TransactionId>(inviteId));
}

TEST_F(TransactionLayerMatchingTest, BranchWithoutMagicCookieIsMatchedByRfc2543Rules) {
  RequestSpec spec = options("1a2b3c4d");  // a branch, but not z9hG4bK...
  const TransactionId first = receiveNew(requestText(spec));
  receive(requestText(spec));
  EXPECT_EQ(user.count(Event::request), 1u);
  spec.cseq += 1;  // same branch, sent-by and method: only RFC 2543 rules tell these apart
  EXPECT_NE(receiveNew(requestText(spec)), first);
}

TEST_F(TransactionLayerMatchingTest, Rfc2543AckMatchesTheInviteAndIsAbsorbedAfterNonSuccess) {
  const RequestSpec spec = rfc2543Invite();
  const std::string invite = requestText(spec);
  const TransactionId id = receiveNew(invite);
  layer.respond(id, 486, answer(invite, 486, "Busy Here"));  // To tag srv-tag-1
  runUntil(clock, layer, 1000ms);
  receive(ackFor(spec, "srv-tag-1"));
  EXPECT_EQ(layer.counters().acksAbsorbed, 1u);
  EXPECT_EQ(user.count(Event::ack), 0u);
  runUntil(clock, layer, 40s, 10ms);
  EXPECT_THAT(sender.timesOf("SIP/2.0 486 "), ElementsAre(0, 500));
  EXPECT_EQ(layer.counters().serverTimeouts, 0u);
  EXPECT_EQ(liveServers(), 0u);
}

// §17.2.3: an RFC 2543 ACK matches only if "the To tag of the ACK matches the To tag of the
// response sent by the server transaction".
TEST_F(TransactionLayerMatchingTest, Rfc2543AckWithAnotherToTagDoesNotMatch) {
  const RequestSpec spec = rfc2543Invite();
  const std::string invite = requestText(spec);
  const TransactionId id = receiveNew(invite);
  layer.respond(id, 486, answer(invite, 486, "Busy Here"));  // To tag srv-tag-1
  receive(ackFor(spec, "someone-else"));
  EXPECT_EQ(layer.counters().acksAbsorbed, 0u);
  EXPECT_EQ(user.count(Event::ack), 1u);
  runUntil(clock, layer, 2000ms);
  EXPECT_THAT(sender.timesOf("SIP/2.0 486 "), ElementsAre(0, 500, 1500));
}

// ======== client side (§17.1.3: top Via branch + CSeq method) ========

TEST_F(TransactionLayerMatchingTest, ResponseMatchesByBranchAndCSeqMethod) {
  const RequestSpec invite = forwarded("INVITE", "z9hG4bKcli1");
  const TransactionId id = layer.startClient(clientRequest(invite));
  receiveResponse(responseText(requestText(invite), 180, "Ringing"));
  ASSERT_EQ(user.count(Event::response), 1u);
  EXPECT_EQ(user.of(Event::response)[0].id, id);
  EXPECT_EQ(user.count(Event::strayResponse), 0u);
}

TEST_F(TransactionLayerMatchingTest, SameBranchWithOtherCSeqMethodIsStray) {
  const RequestSpec invite = forwarded("INVITE", "z9hG4bKcli2");
  layer.startClient(clientRequest(invite));
  RequestSpec cancel = invite;
  cancel.method = "CANCEL";
  receiveResponse(responseText(requestText(cancel), 200, "OK"));
  EXPECT_EQ(user.count(Event::response), 0u);
  ASSERT_EQ(user.count(Event::strayResponse), 1u);
  EXPECT_EQ(user.of(Event::strayResponse)[0].method, "CANCEL");
  EXPECT_EQ(layer.counters().strayResponses, 1u);
  runUntil(clock, layer, 2000ms);
  EXPECT_THAT(sender.timesOf("INVITE "), ElementsAre(0, 500, 1500));  // still Calling
}

TEST_F(TransactionLayerMatchingTest, ResponseWithAnotherBranchIsStray) {
  const RequestSpec invite = forwarded("INVITE", "z9hG4bKcli3");
  layer.startClient(clientRequest(invite));
  RequestSpec other = invite;
  other.branch = "z9hG4bKcli3x";
  receiveResponse(responseText(requestText(other), 180, "Ringing"));
  EXPECT_EQ(user.count(Event::response), 0u);
  EXPECT_EQ(user.count(Event::strayResponse), 1u);
}

TEST_F(TransactionLayerMatchingTest, InviteAndItsCancelAreTwoClientTransactions) {
  const RequestSpec invite = forwarded("INVITE", "z9hG4bKcli4");
  RequestSpec cancel = invite;
  cancel.method = "CANCEL";  // §9.1: the CANCEL carries the INVITE's branch
  const TransactionId inviteId = layer.startClient(clientRequest(invite));
  receiveResponse(responseText(requestText(invite), 180, "Ringing"));
  const TransactionId cancelId = layer.startClient(clientRequest(cancel));
  EXPECT_NE(inviteId, cancelId);
  EXPECT_EQ(liveClients(), 2u);

  receiveResponse(responseText(requestText(cancel), 200, "OK"));
  receiveResponse(responseText(requestText(invite), 487, "Request Terminated"));
  const auto responses = user.of(Event::response);
  ASSERT_EQ(responses.size(), 3u);
  EXPECT_EQ(responses[1].id, cancelId);
  EXPECT_EQ(responses[1].status, 200);
  EXPECT_EQ(responses[2].id, inviteId);
  EXPECT_EQ(responses[2].status, 487);
  ASSERT_EQ(sender.countOf("ACK "), 1u);
  EXPECT_EQ(parse(sender.last().bytes).topVia()->branch, "z9hG4bKcli4");
}

// Issue 8, found by fuzz_core: the callee rang, the INVITE was CANCELled, and neither the
// 487 nor anything else came back; the INVITE client transaction was never reclaimed.
TEST_F(TransactionLayerMatchingTest, Issue8CancelledRingingInviteEndsAt64T1WithoutFinal) {
  const RequestSpec invite = forwarded("INVITE", "z9hG4bKcli5");
  RequestSpec cancel = invite;
  cancel.method = "CANCEL";
  const TransactionId inviteId = layer.startClient(clientRequest(invite));
  receiveResponse(responseText(requestText(invite), 180, "Ringing"));
  runFor(clock, layer, 10s);  // ringing: no Timer B in Proceeding
  ASSERT_EQ(liveClients(), 1u);
  ASSERT_TRUE(layer.cancelClient(inviteId, 70));
  receiveResponse(responseText(requestText(cancel), 200, "OK"));

  runFor(clock, layer, 32s - 1ms);
  EXPECT_EQ(liveClients(), 1u);
  EXPECT_EQ(user.count(Event::clientTimeout), 0u);
  runFor(clock, layer, 1ms);
  EXPECT_EQ(liveClients(), 0u);
  ASSERT_EQ(user.count(Event::clientTimeout), 1u);
  EXPECT_EQ(user.of(Event::clientTimeout)[0].id, inviteId);
  EXPECT_FALSE(layer.nextExpiry());
}

// ======== bookkeeping ========

TEST_F(TransactionLayerTest, RespondOnUnknownTransactionReturnsFalse) {
  EXPECT_FALSE(layer.respond(12345, 200, "SIP/2.0 200 OK\r\n\r\n"));
  EXPECT_EQ(sender.count(), 0u);
}

TEST_F(TransactionLayerTest, RespondOnEndedTransactionReturnsFalse) {
  RequestSpec spec = options();
  spec.viaTransport = "TCP";
  const std::string request = requestText(spec);
  const TransactionId id = receiveNew(request, tcpSource());
  EXPECT_TRUE(layer.respond(id, 200, answer(request, 200, "OK")));
  EXPECT_FALSE(layer.respond(id, 200, answer(request, 200, "OK")));
  EXPECT_EQ(sender.count(), 1u);
}

TEST_F(TransactionLayerTest, NextExpiryReportsTheEarliestLiveTimer) {
  EXPECT_EQ(nextDueMs(), std::nullopt);
  const RequestSpec invite = forwarded("INVITE", "z9hG4bKnext");
  layer.startClient(clientRequest(invite));
  EXPECT_EQ(nextDueMs(), std::optional<std::int64_t>(500));  // Timer A

  clock.advance(100ms);
  const std::string request = requestText(options());
  const TransactionId server = receiveNew(request);
  layer.respond(server, 200, answer(request, 200, "OK"));  // Timer J at 0.1 + 32 s
  EXPECT_EQ(nextDueMs(), std::optional<std::int64_t>(500));

  receiveResponse(responseText(requestText(invite), 180, "Ringing"));  // stops Timers A and B
  EXPECT_EQ(nextDueMs(), std::optional<std::int64_t>(32100));

  runUntil(clock, layer, 32100ms, 100ms);
  EXPECT_EQ(nextDueMs(), std::nullopt);
  EXPECT_EQ(liveServers(), 0u);
}

TEST_F(TransactionLayerTest, LoopDrivenByNextExpiryKeepsTheExactSchedule) {
  // The daemon's way: sleep until nextExpiry(), fire, repeat; no fixed steps.
  layer.startClient(clientRequest(forwarded("INVITE", "z9hG4bKloop")));
  int wakeUps = 0;
  while (const auto next = layer.nextExpiry()) {
    ASSERT_GE(*next, clock.now());
    clock.set(*next);
    layer.fireDueTimers();
    ASSERT_LT(++wakeUps, 100);
  }
  EXPECT_THAT(sender.timesOf(), ElementsAre(0, 500, 1500, 3500, 7500, 15500, 31500));
  EXPECT_THAT(user.timesOf(Event::clientTimeout), ElementsAre(32000));
  EXPECT_EQ(liveClients(), 0u);
}

TEST_F(TransactionLayerTest, TenThousandServerTransactionsAreAllReclaimed) {
  constexpr int kCount = 10000;
  for (int i = 0; i < kCount; ++i) {
    RequestSpec spec;
    spec.branch = "z9hG4bKbulk" + std::to_string(i);
    spec.method = i % 3 == 0 ? "OPTIONS" : "INVITE";
    sip::Message request = parse(requestText(spec));
    layer.receiveRequest(request, udpSource());
    const TransactionId id = user.events().back().id;
    if (i % 3 == 0) {
      layer.respond(id, 200, sip::buildResponse(request, 200, "OK", "t"));  // Timer J
    } else if (i % 3 == 1) {
      layer.respond(id, 486, sip::buildResponse(request, 486, "Busy Here", "t"));
      layer.receiveRequest(parse(ackFor(spec, "t")), udpSource());  // Timer I
    } else {
      layer.respond(id, 200, sip::buildResponse(request, 200, "OK", "t"));  // Timer L
    }
  }
  EXPECT_EQ(layer.counters().serverTransactionsCreated, static_cast<std::uint64_t>(kCount));
  EXPECT_EQ(liveServers(), static_cast<std::size_t>(kCount));
  EXPECT_EQ(user.count(Event::request), static_cast<std::size_t>(kCount));

  runFor(clock, layer, 40s, 500ms);
  EXPECT_EQ(liveServers(), 0u);
  EXPECT_EQ(nextDueMs(), std::nullopt);
  EXPECT_EQ(layer.counters().pendingTimers, 0u);
  EXPECT_EQ(layer.counters().acksAbsorbed, static_cast<std::uint64_t>(kCount / 3));
  EXPECT_EQ(layer.counters().serverTimeouts, 0u);
}

TEST_F(TransactionLayerTest, TenThousandClientTransactionsAreAllReclaimed) {
  constexpr int kCount = 10000;
  for (int i = 0; i < kCount; ++i) {
    const RequestSpec spec = forwarded("OPTIONS", "z9hG4bKout" + std::to_string(i));
    layer.startClient(clientRequest(spec));
    receiveResponse(responseText(requestText(spec), 200, "OK"));  // Timer K
  }
  EXPECT_EQ(liveClients(), static_cast<std::size_t>(kCount));
  EXPECT_EQ(user.count(Event::response), static_cast<std::size_t>(kCount));
  runFor(clock, layer, 40s, 500ms);
  EXPECT_EQ(liveClients(), 0u);
  EXPECT_EQ(nextDueMs(), std::nullopt);
  EXPECT_EQ(layer.counters().pendingTimers, 0u);
  EXPECT_EQ(sender.count(), static_cast<std::size_t>(kCount));  // none retransmitted
}

}  // namespace
}  // namespace waypoint::testkit

namespace waypoint::testkit {
namespace {

// ======== RFC 3261 §18.1.1: a request over the UDP MTU limit goes over TCP ========

class RequestSizeTest : public TransactionLayerTest {
 protected:
  // A request of `lowerVias` extra Via lines of about 110 bytes each below the proxy's.
  static RequestSpec withVias(std::size_t lowerVias) {
    RequestSpec spec = forwarded("MESSAGE", "z9hG4bKbig1");
    for (std::size_t i = 0; i < lowerVias; ++i) {
      spec.lowerVias.push_back("SIP/2.0/UDP hop" + std::to_string(i) +
                               ".relay.example.com:5060;branch=z9hG4bK" +
                               std::string(60, 'a' + i % 26));
    }
    return spec;
  }
};

TEST_F(RequestSizeTest, BigUdpRequestGoesOverTcpWithItsTopViaChanged) {
  transaction::ClientRequest big = clientRequest(withVias(12));
  const std::string bigBytes = big.request.serialize();
  ASSERT_GT(bigBytes.size(), 1300u);
  layer.startClient(std::move(big));
  runFor(clock, layer, 2000ms);
  ASSERT_EQ(sender.count(), 1u) << "over TCP the request is not retransmitted";
  const SentMessage& sent = sender.sent().at(0);
  EXPECT_EQ(sent.destination.protocol, Protocol::tcp);
  EXPECT_EQ(sent.destination.remote, downstream().remote);
  // Only the top Via changes its transport; every other line stays as it was.
  const std::string expected = [&] {
    std::string text = bigBytes;
    const std::string from = "Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKbig1";
    text.replace(text.find(from), from.size(),
                 "Via: SIP/2.0/TCP 203.0.113.1:5060;branch=z9hG4bKbig1");
    return text;
  }();
  EXPECT_EQ(sent.bytes, expected);
  EXPECT_EQ(layer.counters().requestsMovedToTcp, 1u);

  // The response still matches: branch and CSeq method did not change.
  receiveResponse(responseText(sent.bytes, 200, "OK"));
  EXPECT_EQ(user.count(Event::response), 1u);
}

TEST_F(RequestSizeTest, SmallUdpRequestStaysOnUdp) {
  transaction::ClientRequest small = clientRequest(withVias(2));
  const std::string smallBytes = small.request.serialize();
  ASSERT_LE(smallBytes.size(), 1300u);
  layer.startClient(std::move(small));
  ASSERT_GE(sender.count(), 1u);
  EXPECT_EQ(sender.sent().at(0).destination.protocol, Protocol::udp);
  EXPECT_EQ(sender.sent().at(0).bytes, smallBytes);
  EXPECT_EQ(layer.counters().requestsMovedToTcp, 0u);
}

TEST_F(RequestSizeTest, BigRequestStaysOnUdpWhenTheTargetTakesOnlyUdp) {
  transaction::ClientRequest big = clientRequest(withVias(12));
  big.targetAllowsTcp = false;
  const std::string bigBytes = big.request.serialize();
  layer.startClient(std::move(big));
  runFor(clock, layer, 600ms);
  ASSERT_EQ(sender.count(), 2u) << "over UDP Timer E retransmits at T1";
  EXPECT_EQ(sender.sent().at(0).destination.protocol, Protocol::udp);
  EXPECT_EQ(sender.sent().at(0).bytes, bigBytes);
}

// §18.1.1: "if the attempt to establish the connection generates either an ICMP Protocol
// Not Supported, or results in a TCP reset, the element SHOULD retry the request, using
// UDP" — a UDP-only phone refuses the TCP connection; the request must still reach it.
TEST_F(RequestSizeTest, BigRequestRefusedOverTcpIsRetriedOverUdpWithItsViaBackToUdp) {
  transaction::ClientRequest big = clientRequest(withVias(12));
  const std::string bigBytes = big.request.serialize();
  sender.failNthSend(1);  // connection refused, reported from inside send()
  const TransactionId id = layer.startClient(std::move(big));
  ASSERT_EQ(sender.count(), 2u);
  EXPECT_EQ(sender.sent().at(0).destination.protocol, Protocol::tcp);
  EXPECT_TRUE(sender.sent().at(0).bytes.find(
                  "Via: SIP/2.0/TCP 203.0.113.1:5060;branch=z9hG4bKbig1") != std::string::npos);
  const SentMessage& retry = sender.sent().at(1);
  EXPECT_EQ(retry.destination.protocol, Protocol::udp);
  EXPECT_EQ(retry.destination.remote, downstream().remote);
  EXPECT_EQ(retry.bytes, bigBytes) << "the top Via says UDP again, every other byte as it was";
  EXPECT_EQ(user.count(Event::clientTransportError), 0u);
  EXPECT_EQ(layer.counters().requestsRetriedOverUdp, 1u);
  EXPECT_EQ(layer.counters().transportErrors, 0u);

  // Now an unreliable transaction: Timer E retransmits over UDP, and the answer matches.
  runFor(clock, layer, 600ms);
  ASSERT_EQ(sender.count(), 3u);
  EXPECT_EQ(sender.last().destination.protocol, Protocol::udp);
  EXPECT_EQ(sender.last().bytes, bigBytes);
  receiveResponse(responseText(bigBytes, 200, "OK"));
  ASSERT_EQ(user.count(Event::response), 1u);
  EXPECT_EQ(user.of(Event::response)[0].id, id);
}

TEST_F(RequestSizeTest, BigInviteResetOverTcpLaterIsRetriedOverUdpWithTimerA) {
  RequestSpec spec = withVias(12);
  spec.method = "INVITE";
  transaction::ClientRequest big = clientRequest(spec);
  const std::string bigBytes = big.request.serialize();
  layer.startClient(std::move(big));
  runFor(clock, layer, 100ms);
  ASSERT_EQ(sender.count(), 1u);
  sender.failLater(1, std::make_error_code(std::errc::connection_reset));
  sender.failLater(1, std::make_error_code(std::errc::connection_reset));  // reported twice
  ASSERT_EQ(sender.count(), 2u);
  EXPECT_EQ(sender.last().destination.protocol, Protocol::udp);
  EXPECT_EQ(sender.last().bytes, bigBytes);
  runFor(clock, layer, 600ms);
  EXPECT_THAT(sender.timesOf("INVITE "), ElementsAre(0, 100, 600));  // Timer A from the retry
  EXPECT_EQ(user.count(Event::clientTransportError), 0u);
  EXPECT_EQ(layer.counters().requestsRetriedOverUdp, 1u);
}

TEST_F(RequestSizeTest, TcpFailureAfterAResponseIsATransportErrorNotARetry) {
  transaction::ClientRequest big = clientRequest(withVias(12));
  const std::string bigBytes = big.request.serialize();
  const TransactionId id = layer.startClient(std::move(big));
  layer.receiveResponse(parse(responseText(bigBytes, 100, "Trying")),
                        downstreamSource(Protocol::tcp));
  sender.failLater(1);
  EXPECT_EQ(sender.count(), 1u);
  ASSERT_EQ(user.count(Event::clientTransportError), 1u);
  EXPECT_EQ(user.of(Event::clientTransportError)[0].id, id);
  EXPECT_EQ(layer.counters().requestsRetriedOverUdp, 0u);
}

TEST_F(RequestSizeTest, TcpTimeoutIsNotRetriedOverUdp) {
  const TransactionId id = layer.startClient(clientRequest(withVias(12)));
  sender.failLater(1, std::make_error_code(std::errc::timed_out));  // not a refusal
  EXPECT_EQ(sender.count(), 1u);
  ASSERT_EQ(user.count(Event::clientTransportError), 1u);
  EXPECT_EQ(user.of(Event::clientTransportError)[0].id, id);
}

TEST_F(RequestSizeTest, RequestSentOverTcpByChoiceIsNotRetriedOverUdp) {
  RequestSpec spec = withVias(12);
  spec.viaTransport = "TCP";
  sender.failNthSend(1);
  layer.startClient(clientRequest(spec, Protocol::tcp));
  EXPECT_EQ(sender.count(), 1u);
  EXPECT_EQ(user.count(Event::clientTransportError), 1u);
  EXPECT_EQ(layer.counters().requestsRetriedOverUdp, 0u);
}

}  // namespace
}  // namespace waypoint::testkit

namespace waypoint::testkit {
namespace {

// ======== §17.1.4: an ICMP error for a UDP destination fails its client transactions ========

TEST_F(TransactionLayerTest, UnreachableDestinationFailsOnlyItsUdpClientTransactions) {
  const TransactionId toBob = layer.startClient(clientRequest(forwarded("INVITE", "z9hG4bKicmp1")));
  transaction::ClientRequest other = clientRequest(forwarded("OPTIONS", "z9hG4bKicmp2"));
  other.destination.remote = endpoint("198.51.100.99", 5060);
  layer.startClient(std::move(other));
  ASSERT_EQ(liveClients(), 2u);

  layer.destinationUnreachable(downstream());
  ASSERT_EQ(user.count(Event::clientTransportError), 1u);
  EXPECT_EQ(user.of(Event::clientTransportError)[0].id, toBob);
  EXPECT_EQ(liveClients(), 1u);
  EXPECT_EQ(layer.counters().transportErrors, 1u);

  // The failed transaction sends nothing more; the other one still retransmits.
  const std::size_t before = sender.countOf("INVITE ");
  runFor(clock, layer, 1000ms);
  EXPECT_EQ(sender.countOf("INVITE "), before);
  EXPECT_GT(sender.countOf("OPTIONS "), 1u);
}

}  // namespace
}  // namespace waypoint::testkit
