// RFC 3261 §17.1 client transactions (with RFC 6026's Accepted state): the two state
// machines on their own, then through the TransactionLayer with a fake clock, where every
// retransmission and timer is checked to the millisecond.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fakes.hpp"
#include "waypoint/transaction/client_transactions.hpp"
#include "waypoint/transaction/transaction_layer.hpp"

namespace waypoint::testkit {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::UnorderedElementsAre;
using transaction::InviteClientTransaction;
using transaction::NonInviteClientTransaction;
using transaction::TimerName;
using transaction::TimerSettings;
using transport::Protocol;
using Event = UserEvent::Kind;

constexpr bool kUdp = false;
constexpr bool kTcp = true;

class ClientLayerTest : public ::testing::Test {
 protected:
  void receive(std::string_view bytes, Protocol protocol = Protocol::udp) {
    layer.receiveResponse(parse(bytes), downstreamSource(protocol));
  }
  std::size_t live() const { return layer.counters().liveClientTransactions; }

  FakeClock clock;
  FakeSender sender{clock};
  RecordingUser user{clock};
  transaction::TransactionLayer layer{clock, sender, user, transaction::LayerSettings{}};
};

class InviteClientTransactionTest : public ClientLayerTest {};
class NonInviteClientTransactionTest : public ClientLayerTest {};
class ClientTransactionTransportErrorTest : public ClientLayerTest {};

// ======== INVITE client: the state machine (Figure 5, RFC 6026 §8.4) ========

TEST_F(InviteClientTransactionTest, StartOverUdpSendsAndArmsTimersAAndB) {
  InviteClientTransaction t(TimerSettings{}, kUdp);
  EXPECT_THAT(describe(t.start()),
              UnorderedElementsAre("sendRequest", "start A 500ms", "start B 32000ms"));
  EXPECT_EQ(t.state(), InviteClientTransaction::State::calling);
}

TEST_F(InviteClientTransactionTest, StartOverTcpArmsNoTimerA) {
  InviteClientTransaction t(TimerSettings{}, kTcp);
  EXPECT_THAT(describe(t.start()), UnorderedElementsAre("sendRequest", "start B 32000ms"));
}

TEST_F(InviteClientTransactionTest, TimerADoublesWithoutCapWhileCalling) {
  InviteClientTransaction t(TimerSettings{}, kUdp);
  t.start();
  for (const char* next : {"start A 1000ms", "start A 2000ms", "start A 4000ms", "start A 8000ms",
                           "start A 16000ms"}) {
    EXPECT_THAT(describe(t.onTimer(TimerName::A)), UnorderedElementsAre("sendRequest", next));
  }
}

TEST_F(InviteClientTransactionTest, TimersFollowT1) {
  TimerSettings timers;
  timers.t1 = Duration(100);
  InviteClientTransaction t(timers, kUdp);
  EXPECT_THAT(describe(t.start()),
              UnorderedElementsAre("sendRequest", "start A 100ms", "start B 6400ms"));
}

TEST_F(InviteClientTransactionTest, TimerBInCallingReportsTimeoutAndTerminates) {
  InviteClientTransaction t(TimerSettings{}, kUdp);
  t.start();
  const auto actions = describe(t.onTimer(TimerName::B));
  EXPECT_THAT(actions, Contains("timeout"));
  EXPECT_THAT(actions, Contains("terminate"));
  EXPECT_THAT(actions, Not(Contains("sendRequest")));
  EXPECT_EQ(t.state(), InviteClientTransaction::State::terminated);
}

TEST_F(InviteClientTransactionTest, ProvisionalMovesToProceedingAndStopsRetransmission) {
  InviteClientTransaction t(TimerSettings{}, kUdp);
  t.start();
  const auto actions = describe(t.onResponse(180));
  EXPECT_THAT(actions, Contains("deliver"));
  EXPECT_THAT(actions, Contains("stop A"));
  EXPECT_EQ(t.state(), InviteClientTransaction::State::proceeding);
  // A stale Timer A or B in Proceeding does nothing: no retransmission, no timeout.
  EXPECT_THAT(describe(t.onTimer(TimerName::A)), IsEmpty());
  EXPECT_THAT(describe(t.onTimer(TimerName::B)), IsEmpty());
  EXPECT_THAT(describe(t.onResponse(183)), Contains("deliver"));
  EXPECT_EQ(t.state(), InviteClientTransaction::State::proceeding);
}

// Issue 8 (fuzz_core): §9.1, a CANCELled INVITE without a final response ends at 64*T1.
TEST_F(InviteClientTransactionTest, Issue8CancelSentInProceedingArmsTimerBOnce) {
  InviteClientTransaction t(TimerSettings{}, kUdp);
  t.start();
  t.onResponse(180);
  EXPECT_THAT(describe(t.onCancelSent()), ElementsAre("start B 32000ms"));
  EXPECT_THAT(describe(t.onCancelSent()), IsEmpty());  // a second CANCEL does not extend it
  EXPECT_THAT(describe(t.onTimer(TimerName::B)), ElementsAre("stop A", "timeout", "terminate"));
  EXPECT_EQ(t.state(), InviteClientTransaction::State::terminated);
}

TEST_F(InviteClientTransactionTest, Issue8CancelSentInCallingLeavesTimerBAsItIs) {
  InviteClientTransaction t(TimerSettings{}, kUdp);
  t.start();
  EXPECT_THAT(describe(t.onCancelSent()), IsEmpty());
}

TEST_F(InviteClientTransactionTest, NonSuccessFinalOverUdpAcksDeliversAndArmsTimerD) {
  InviteClientTransaction t(TimerSettings{}, kUdp);
  t.start();
  const auto actions = describe(t.onResponse(486));
  EXPECT_THAT(actions, Contains("sendAck"));
  EXPECT_THAT(actions, Contains("deliver"));
  EXPECT_THAT(actions, Contains("start D 32000ms"));
  EXPECT_THAT(actions, Not(Contains("terminate")));
  EXPECT_EQ(t.state(), InviteClientTransaction::State::completed);
  EXPECT_THAT(describe(t.onResponse(486)),
              ElementsAre("sendAck"));  // retransmission: ACK again, absorbed
  EXPECT_THAT(describe(t.onTimer(TimerName::D)), ElementsAre("terminate"));
  EXPECT_EQ(t.state(), InviteClientTransaction::State::terminated);
}

TEST_F(InviteClientTransactionTest, NonSuccessFinalOverTcpAcksAndTerminatesAtOnce) {
  InviteClientTransaction t(TimerSettings{}, kTcp);
  t.start();
  const auto actions = describe(t.onResponse(603));
  EXPECT_THAT(actions, Contains("sendAck"));
  EXPECT_THAT(actions, Contains("deliver"));
  EXPECT_THAT(actions, Contains("terminate"));
  EXPECT_THAT(actions, Not(Contains("start D 32000ms")));
  EXPECT_EQ(t.state(), InviteClientTransaction::State::terminated);
}

TEST_F(InviteClientTransactionTest, SuccessMovesToAcceptedAndDeliversEveryRetransmission) {
  InviteClientTransaction t(TimerSettings{}, kUdp);
  t.start();
  t.onResponse(180);
  const auto actions = describe(t.onResponse(200));
  EXPECT_THAT(actions, Contains("deliver"));
  EXPECT_THAT(actions, Contains("start M 32000ms"));
  EXPECT_THAT(actions, Not(Contains("sendAck")));  // the ACK for a 2xx is the TU's
  EXPECT_EQ(t.state(), InviteClientTransaction::State::accepted);
  EXPECT_THAT(describe(t.onResponse(200)), ElementsAre("deliver"));
  EXPECT_THAT(describe(t.onTimer(TimerName::M)), ElementsAre("terminate"));
}

TEST_F(InviteClientTransactionTest, TransportErrorWhileCallingInformsTheTu) {
  InviteClientTransaction t(TimerSettings{}, kUdp);
  t.start();
  EXPECT_THAT(describe(t.onTransportError()), UnorderedElementsAre("transportError", "terminate"));
  EXPECT_EQ(t.state(), InviteClientTransaction::State::terminated);
  EXPECT_THAT(describe(t.onTransportError()), IsEmpty());
}

// ======== INVITE client through the layer ========

TEST_F(InviteClientTransactionTest, RetransmitsAtDoublingIntervalsUntilTimerBOverUdp) {
  const RequestSpec invite = forwarded("INVITE", "z9hG4bKinvudp");
  const TransactionId id = layer.startClient(clientRequest(invite));

  runUntil(clock, layer, 31999ms);
  EXPECT_EQ(user.count(Event::clientTimeout), 0u);
  runUntil(clock, layer, 32000ms);
  ASSERT_EQ(user.count(Event::clientTimeout), 1u);
  EXPECT_EQ(user.of(Event::clientTimeout)[0].id, id);
  EXPECT_THAT(user.timesOf(Event::clientTimeout), ElementsAre(32000));
  runUntil(clock, layer, 100s, 10ms);

  EXPECT_THAT(sender.timesOf(), ElementsAre(0, 500, 1500, 3500, 7500, 15500, 31500));
  for (const SentMessage& m : sender.sent()) {
    EXPECT_EQ(m.bytes, requestText(invite));
    EXPECT_EQ(m.destination.remote, downstream().remote);
    EXPECT_EQ(m.destination.protocol, Protocol::udp);
  }
  EXPECT_EQ(user.events().size(), 1u);
  EXPECT_EQ(layer.counters().clientTimeouts, 1u);
  EXPECT_EQ(layer.counters().requestRetransmissionsSent, 6u);
  EXPECT_EQ(live(), 0u);
}

TEST_F(InviteClientTransactionTest, SendsOnceAndTimesOutWithTimerBOverTcp) {
  const TransactionId id =
      layer.startClient(clientRequest(forwarded("INVITE", "z9hG4bKinvtcp", "TCP"), Protocol::tcp));
  runUntil(clock, layer, 31999ms);
  EXPECT_EQ(user.count(Event::clientTimeout), 0u);
  runUntil(clock, layer, 32000ms);
  runUntil(clock, layer, 100s, 10ms);
  EXPECT_THAT(sender.timesOf(), ElementsAre(0));
  EXPECT_EQ(sender.last().destination.protocol, Protocol::tcp);
  ASSERT_EQ(user.count(Event::clientTimeout), 1u);
  EXPECT_EQ(user.of(Event::clientTimeout)[0].id, id);
  EXPECT_THAT(user.timesOf(Event::clientTimeout), ElementsAre(32000));
  EXPECT_EQ(live(), 0u);
}

TEST_F(InviteClientTransactionTest, ProvisionalStopsRetransmissionsAndTimerB) {
  const RequestSpec invite = forwarded("INVITE", "z9hG4bKinv180");
  const TransactionId id = layer.startClient(clientRequest(invite));
  runUntil(clock, layer, 1000ms);
  receive(responseText(requestText(invite), 180, "Ringing"));
  runUntil(clock, layer, 100s, 10ms);

  EXPECT_THAT(sender.timesOf(), ElementsAre(0, 500));
  ASSERT_EQ(user.count(Event::response), 1u);
  EXPECT_EQ(user.of(Event::response)[0].id, id);
  EXPECT_EQ(user.of(Event::response)[0].status, 180);
  // Timer B only bounds Calling (Figure 5); a ringing INVITE is bounded by the proxy's Timer C.
  EXPECT_EQ(user.count(Event::clientTimeout), 0u);
  EXPECT_EQ(live(), 1u);
}

TEST_F(InviteClientTransactionTest, NonSuccessFinalIsAcknowledgedAndDeliveredOnce) {
  RequestSpec invite = forwarded("INVITE", "z9hG4bKinv486");
  invite.routes = {"<sip:edge.biloxi.example.com;lr>", "<sip:core.biloxi.example.com;lr>"};
  const TransactionId id = layer.startClient(clientRequest(invite));
  runUntil(clock, layer, 1000ms);
  const std::string busy = responseText(requestText(invite), 486, "Busy Here", "b0b486");
  receive(busy);

  ASSERT_EQ(sender.countOf("ACK "), 1u);
  const SentMessage sentAck = sender.last();
  EXPECT_EQ(sentAck.at.count(), 1000);
  EXPECT_EQ(sentAck.destination.remote, downstream().remote);
  EXPECT_EQ(firstLine(sentAck.bytes), "ACK sip:bob@biloxi.example.com SIP/2.0");
  const sip::Message ack = parse(sentAck.bytes);
  const sip::Message sentInvite = parse(requestText(invite));
  ASSERT_EQ(ack.vias().size(), 1u);  // §17.1.1.3: only the top Via of the original request
  EXPECT_EQ(ack.vias()[0].branch, "z9hG4bKinv486");
  EXPECT_EQ(ack.vias()[0].host, "203.0.113.1");
  EXPECT_EQ(ack.vias()[0].port, std::optional<std::uint16_t>(5060));
  ASSERT_TRUE(ack.to());
  EXPECT_EQ(ack.to()->tag, "b0b486");
  EXPECT_EQ(ack.to()->uri, "sip:bob@biloxi.example.com");
  ASSERT_TRUE(ack.from());
  EXPECT_EQ(ack.from()->tag, "1928301774");
  EXPECT_EQ(ack.callId(), sentInvite.callId());
  ASSERT_TRUE(ack.cseq());
  EXPECT_EQ(ack.cseq()->number, 314159u);
  EXPECT_EQ(ack.cseq()->method, "ACK");
  EXPECT_EQ(ack.headerValues("Route"), sentInvite.headerValues("Route"));
  EXPECT_EQ(ack.headerValues("Route").size(), 2u);
  EXPECT_TRUE(ack.body().empty());
  EXPECT_EQ(sentAck.bytes,
            "ACK sip:bob@biloxi.example.com SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKinv486\r\n"
            "Route: <sip:edge.biloxi.example.com;lr>\r\n"
            "Route: <sip:core.biloxi.example.com;lr>\r\n"
            "Max-Forwards: 70\r\n"
            "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
            "To: Bob <sip:bob@biloxi.example.com>;tag=b0b486\r\n"
            "Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
            "CSeq: 314159 ACK\r\n"
            "Content-Length: 0\r\n\r\n");

  ASSERT_EQ(user.count(Event::response), 1u);
  EXPECT_EQ(user.of(Event::response)[0].id, id);
  EXPECT_EQ(user.of(Event::response)[0].status, 486);

  // The server retransmits its 486: the same ACK goes again, the TU does not hear of it.
  runUntil(clock, layer, 2000ms);
  receive(busy);
  EXPECT_THAT(sender.timesOf("ACK "), ElementsAre(1000, 2000));
  EXPECT_EQ(sender.last().bytes, sentAck.bytes);
  EXPECT_EQ(user.count(Event::response), 1u);
  EXPECT_EQ(layer.counters().responsesAbsorbed, 1u);

  runUntil(clock, layer, 100s, 10ms);
  EXPECT_THAT(sender.timesOf("INVITE "), ElementsAre(0, 500));  // Timer A stopped by the final
  EXPECT_EQ(user.count(Event::clientTimeout), 0u);
}

TEST_F(InviteClientTransactionTest, TimerDEndsCompletedAfter32sOverUdp) {
  const RequestSpec invite = forwarded("INVITE", "z9hG4bKinvD");
  layer.startClient(clientRequest(invite));
  runUntil(clock, layer, 1000ms);
  const std::string declined = responseText(requestText(invite), 603, "Decline");
  receive(declined);
  runUntil(clock, layer, 32999ms);
  EXPECT_EQ(live(), 1u);
  receive(declined);  // still absorbed at 32.999 s
  EXPECT_EQ(sender.countOf("ACK "), 2u);
  runUntil(clock, layer, 33000ms);
  EXPECT_EQ(live(), 0u);
  receive(declined);  // the transaction is gone: the TU sees a stray response
  EXPECT_EQ(sender.countOf("ACK "), 2u);
  EXPECT_EQ(user.count(Event::strayResponse), 1u);
  EXPECT_EQ(user.count(Event::response), 1u);
}

TEST_F(InviteClientTransactionTest, NonSuccessFinalOverTcpTerminatesAtOnce) {
  const RequestSpec invite = forwarded("INVITE", "z9hG4bKinvtcp486", "TCP");
  layer.startClient(clientRequest(invite, Protocol::tcp));
  runUntil(clock, layer, 1000ms);
  receive(responseText(requestText(invite), 486, "Busy Here"), Protocol::tcp);
  EXPECT_EQ(sender.countOf("ACK "), 1u);
  EXPECT_EQ(sender.last().destination.protocol, Protocol::tcp);
  EXPECT_EQ(user.count(Event::response), 1u);
  EXPECT_EQ(live(), 0u);
}

TEST_F(InviteClientTransactionTest, SuccessIsDeliveredWithEveryRetransmissionUntilTimerM) {
  const RequestSpec invite = forwarded("INVITE", "z9hG4bKinv200");
  const TransactionId id = layer.startClient(clientRequest(invite));
  runUntil(clock, layer, 1000ms);
  const std::string ok = responseText(requestText(invite), 200, "OK");
  receive(ok);
  runUntil(clock, layer, 2000ms);
  receive(ok);  // RFC 6026 §8.4: a retransmitted 2xx goes to the TU, which ACKs it again

  EXPECT_THAT(user.timesOf(Event::response), ElementsAre(1000, 2000));
  for (const UserEvent& e : user.of(Event::response)) {
    EXPECT_EQ(e.id, id);
    EXPECT_EQ(e.status, 200);
  }
  EXPECT_EQ(sender.countOf("ACK "), 0u);  // the ACK for a 2xx is the TU's, not the transaction's
  EXPECT_EQ(layer.counters().responsesAbsorbed, 0u);

  runUntil(clock, layer, 32999ms);  // Timer M = 64*T1 from the first 2xx
  EXPECT_EQ(live(), 1u);
  runUntil(clock, layer, 33000ms);
  EXPECT_EQ(live(), 0u);
  receive(ok);
  EXPECT_EQ(user.count(Event::strayResponse), 1u);
  EXPECT_THAT(sender.timesOf("INVITE "), ElementsAre(0, 500));
  EXPECT_EQ(user.count(Event::clientTimeout), 0u);
}

TEST_F(InviteClientTransactionTest, SuccessOverTcpStillWaitsForTimerM) {
  const RequestSpec invite = forwarded("INVITE", "z9hG4bKinvtcp200", "TCP");
  layer.startClient(clientRequest(invite, Protocol::tcp));
  receive(responseText(requestText(invite), 200, "OK"), Protocol::tcp);
  runUntil(clock, layer, 31999ms, 10ms);
  EXPECT_EQ(live(), 1u);
  receive(responseText(requestText(invite), 200, "OK"), Protocol::tcp);
  EXPECT_EQ(user.count(Event::response), 2u);
  runUntil(clock, layer, 32000ms);
  EXPECT_EQ(live(), 0u);
}

// ======== non-INVITE client: the state machine (Figure 6) ========

TEST_F(NonInviteClientTransactionTest, StartOverUdpSendsAndArmsTimersEAndF) {
  NonInviteClientTransaction t(TimerSettings{}, kUdp);
  EXPECT_THAT(describe(t.start()),
              UnorderedElementsAre("sendRequest", "start E 500ms", "start F 32000ms"));
  EXPECT_EQ(t.state(), NonInviteClientTransaction::State::trying);
}

TEST_F(NonInviteClientTransactionTest, StartOverTcpArmsNoTimerE) {
  NonInviteClientTransaction t(TimerSettings{}, kTcp);
  EXPECT_THAT(describe(t.start()), UnorderedElementsAre("sendRequest", "start F 32000ms"));
}

TEST_F(NonInviteClientTransactionTest, TimerEDoublesUpToT2WhileTrying) {
  NonInviteClientTransaction t(TimerSettings{}, kUdp);
  t.start();
  for (const char* next :
       {"start E 1000ms", "start E 2000ms", "start E 4000ms", "start E 4000ms", "start E 4000ms"}) {
    EXPECT_THAT(describe(t.onTimer(TimerName::E)), UnorderedElementsAre("sendRequest", next));
  }
}

TEST_F(NonInviteClientTransactionTest, TimerEIsT2InProceeding) {
  NonInviteClientTransaction t(TimerSettings{}, kUdp);
  t.start();
  EXPECT_THAT(describe(t.onResponse(100)), Contains("deliver"));
  EXPECT_EQ(t.state(), NonInviteClientTransaction::State::proceeding);
  EXPECT_THAT(describe(t.onTimer(TimerName::E)),
              UnorderedElementsAre("sendRequest", "start E 4000ms"));
  EXPECT_THAT(describe(t.onTimer(TimerName::E)),
              UnorderedElementsAre("sendRequest", "start E 4000ms"));
}

TEST_F(NonInviteClientTransactionTest, FinalOverUdpDeliversAndArmsTimerK) {
  NonInviteClientTransaction t(TimerSettings{}, kUdp);
  t.start();
  const auto actions = describe(t.onResponse(200));
  EXPECT_THAT(actions, Contains("deliver"));
  EXPECT_THAT(actions, Contains("start K 5000ms"));
  EXPECT_THAT(actions, Not(Contains("terminate")));
  EXPECT_EQ(t.state(), NonInviteClientTransaction::State::completed);
  EXPECT_THAT(describe(t.onResponse(200)), IsEmpty());  // absorbed
  EXPECT_THAT(describe(t.onTimer(TimerName::E)), IsEmpty());
  EXPECT_THAT(describe(t.onTimer(TimerName::F)), IsEmpty());
  EXPECT_THAT(describe(t.onTimer(TimerName::K)), ElementsAre("terminate"));
}

TEST_F(NonInviteClientTransactionTest, FinalOverTcpTerminatesAtOnce) {
  NonInviteClientTransaction t(TimerSettings{}, kTcp);
  t.start();
  const auto actions = describe(t.onResponse(404));
  EXPECT_THAT(actions, Contains("deliver"));
  EXPECT_THAT(actions, Contains("terminate"));
  EXPECT_EQ(t.state(), NonInviteClientTransaction::State::terminated);
}

TEST_F(NonInviteClientTransactionTest, TimerFReportsTimeout) {
  NonInviteClientTransaction t(TimerSettings{}, kUdp);
  t.start();
  t.onResponse(100);
  const auto actions = describe(t.onTimer(TimerName::F));  // F still runs in Proceeding
  EXPECT_THAT(actions, Contains("timeout"));
  EXPECT_THAT(actions, Contains("terminate"));
  EXPECT_EQ(t.state(), NonInviteClientTransaction::State::terminated);
}

// ======== non-INVITE client through the layer ========

TEST_F(NonInviteClientTransactionTest, RetransmitsUpToT2UntilTimerFOverUdp) {
  const RequestSpec options = forwarded("OPTIONS", "z9hG4bKoptudp");
  const TransactionId id = layer.startClient(clientRequest(options));
  runUntil(clock, layer, 31999ms);
  EXPECT_EQ(user.count(Event::clientTimeout), 0u);
  runUntil(clock, layer, 32000ms);
  runUntil(clock, layer, 100s, 10ms);

  EXPECT_THAT(sender.timesOf(),
              ElementsAre(0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500));
  for (const SentMessage& m : sender.sent()) EXPECT_EQ(m.bytes, requestText(options));
  ASSERT_EQ(user.count(Event::clientTimeout), 1u);
  EXPECT_EQ(user.of(Event::clientTimeout)[0].id, id);
  EXPECT_THAT(user.timesOf(Event::clientTimeout), ElementsAre(32000));
  EXPECT_EQ(layer.counters().requestRetransmissionsSent, 10u);
  EXPECT_EQ(live(), 0u);
}

TEST_F(NonInviteClientTransactionTest, SendsOnceAndTimesOutWithTimerFOverTcp) {
  layer.startClient(clientRequest(forwarded("REGISTER", "z9hG4bKregtcp", "TCP"), Protocol::tcp));
  runUntil(clock, layer, 31999ms);
  EXPECT_EQ(user.count(Event::clientTimeout), 0u);
  runUntil(clock, layer, 32000ms);
  runUntil(clock, layer, 100s, 10ms);
  EXPECT_THAT(sender.timesOf(), ElementsAre(0));
  EXPECT_THAT(user.timesOf(Event::clientTimeout), ElementsAre(32000));
}

TEST_F(NonInviteClientTransactionTest, RetransmitsEveryT2AfterAProvisional) {
  const RequestSpec options = forwarded("OPTIONS", "z9hG4bKopt100");
  layer.startClient(clientRequest(options));
  runUntil(clock, layer, 1000ms);
  receive(responseText(requestText(options), 100, "Trying"));
  EXPECT_THAT(user.timesOf(Event::response), ElementsAre(1000));
  runUntil(clock, layer, 100s, 10ms);
  // The Timer E armed in Trying (due at 1.5 s) fires, then every T2 (§17.1.2.2).
  EXPECT_THAT(sender.timesOf(),
              ElementsAre(0, 500, 1500, 5500, 9500, 13500, 17500, 21500, 25500, 29500));
  EXPECT_THAT(user.timesOf(Event::clientTimeout), ElementsAre(32000));
}

TEST_F(NonInviteClientTransactionTest, FinalIsDeliveredOnceAndTimerKIsT4OverUdp) {
  const RequestSpec options = forwarded("OPTIONS", "z9hG4bKopt200");
  const TransactionId id = layer.startClient(clientRequest(options));
  runUntil(clock, layer, 1000ms);
  const std::string ok = responseText(requestText(options), 200, "OK");
  receive(ok);
  ASSERT_EQ(user.count(Event::response), 1u);
  EXPECT_EQ(user.of(Event::response)[0].id, id);
  EXPECT_EQ(user.of(Event::response)[0].status, 200);

  runUntil(clock, layer, 2000ms);
  receive(ok);
  EXPECT_EQ(user.count(Event::response), 1u);
  EXPECT_EQ(layer.counters().responsesAbsorbed, 1u);

  runUntil(clock, layer, 5999ms);  // Timer K = T4 from the final at 1 s
  EXPECT_EQ(live(), 1u);
  runUntil(clock, layer, 6000ms);
  EXPECT_EQ(live(), 0u);
  runUntil(clock, layer, 100s, 10ms);
  EXPECT_THAT(sender.timesOf(), ElementsAre(0, 500));
  EXPECT_EQ(user.count(Event::clientTimeout), 0u);
}

TEST_F(NonInviteClientTransactionTest, FinalOverTcpEndsTheTransactionAtOnce) {
  const RequestSpec reg = forwarded("REGISTER", "z9hG4bKreg200", "TCP");
  layer.startClient(clientRequest(reg, Protocol::tcp));
  receive(responseText(requestText(reg), 200, "OK"), Protocol::tcp);
  EXPECT_EQ(user.count(Event::response), 1u);
  EXPECT_EQ(live(), 0u);
}

// ======== transport errors (§17.1.4) ========

TEST_F(ClientTransactionTransportErrorTest, FailedFirstSendIsReportedOnceAndEndsTheTransaction) {
  sender.failNthSend(1);
  const TransactionId id = layer.startClient(clientRequest(forwarded("INVITE", "z9hG4bKfail1")));
  ASSERT_EQ(user.count(Event::clientTransportError), 1u);
  EXPECT_EQ(user.of(Event::clientTransportError)[0].id, id);
  EXPECT_EQ(live(), 0u);
  runUntil(clock, layer, 100s, 10ms);
  EXPECT_EQ(sender.count(), 1u);
  EXPECT_EQ(user.events().size(), 1u);  // no Timer B timeout after the error
  EXPECT_EQ(layer.counters().transportErrors, 1u);
}

TEST_F(ClientTransactionTransportErrorTest, FailedRetransmissionEndsTheTransaction) {
  sender.failNthSend(3);  // the retransmission at 1.5 s
  const TransactionId id = layer.startClient(clientRequest(forwarded("OPTIONS", "z9hG4bKfail3")));
  runUntil(clock, layer, 100s);
  EXPECT_THAT(sender.timesOf(), ElementsAre(0, 500, 1500));
  EXPECT_THAT(user.timesOf(Event::clientTransportError), ElementsAre(1500));
  EXPECT_EQ(user.of(Event::clientTransportError)[0].id, id);
  EXPECT_EQ(user.events().size(), 1u);
}

TEST_F(ClientTransactionTransportErrorTest, FailureReportedLaterIsReportedOnce) {
  const TransactionId id =
      layer.startClient(clientRequest(forwarded("INVITE", "z9hG4bKfaillater")));
  runUntil(clock, layer, 600ms);
  ASSERT_EQ(sender.count(), 2u);
  sender.failLater(1);
  sender.failLater(2);  // both writes failed; the TU hears once
  ASSERT_EQ(user.count(Event::clientTransportError), 1u);
  EXPECT_EQ(user.of(Event::clientTransportError)[0].id, id);
  EXPECT_EQ(live(), 0u);
  runUntil(clock, layer, 100s, 10ms);
  EXPECT_EQ(sender.count(), 2u);
  EXPECT_EQ(user.events().size(), 1u);
}

TEST_F(ClientTransactionTransportErrorTest, FailureOverTcpReportedLaterEndsTheTransaction) {
  const TransactionId id = layer.startClient(
      clientRequest(forwarded("REGISTER", "z9hG4bKfailtcp", "TCP"), Protocol::tcp));
  runUntil(clock, layer, 100ms);
  sender.failLater(1);
  EXPECT_THAT(user.timesOf(Event::clientTransportError), ElementsAre(100));
  EXPECT_EQ(user.of(Event::clientTransportError)[0].id, id);
  runUntil(clock, layer, 100s, 10ms);
  EXPECT_EQ(user.events().size(), 1u);
  EXPECT_EQ(live(), 0u);
}

// RFC 3261 Figure 5 (kept by RFC 6026 §8.4): Completed --"Transport Err. / Inform TU"-->
// Terminated.
TEST_F(ClientTransactionTransportErrorTest, FailedAckInCompletedInformsTheTu) {
  sender.failNthSend(2);  // the INVITE goes; the ACK for the 486 fails
  const RequestSpec invite = forwarded("INVITE", "z9hG4bKfailack");
  const TransactionId id = layer.startClient(clientRequest(invite));
  receive(responseText(requestText(invite), 486, "Busy Here"));
  ASSERT_EQ(sender.countOf("ACK "), 1u);
  EXPECT_EQ(user.count(Event::response), 1u);
  ASSERT_EQ(user.count(Event::clientTransportError), 1u);
  EXPECT_EQ(user.of(Event::clientTransportError)[0].id, id);
  EXPECT_EQ(live(), 0u);
}

}  // namespace
}  // namespace waypoint::testkit
