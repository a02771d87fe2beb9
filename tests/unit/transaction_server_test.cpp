// RFC 3261 §17.2 server transactions (with RFC 6026's Accepted state): the two state
// machines on their own, then through the TransactionLayer with a fake clock, where every
// response retransmission and timer is checked to the millisecond.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fakes.hpp"
#include "waypoint/transaction/server_transactions.hpp"
#include "waypoint/transaction/transaction_layer.hpp"

namespace waypoint::testkit {
namespace {

using ::testing::Contains;
using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::UnorderedElementsAre;
using transaction::InviteServerTransaction;
using transaction::NonInviteServerTransaction;
using transaction::TimerName;
using transaction::TimerSettings;
using transport::Protocol;
using Event = UserEvent::Kind;

constexpr bool kUdp = false;
constexpr bool kTcp = true;

RequestSpec overTcp(RequestSpec spec) {
  spec.viaTransport = "TCP";
  return spec;
}

class ServerLayerTest : public ::testing::Test {
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
  std::size_t live() const { return layer.counters().liveServerTransactions; }
  static std::string answer(const std::string& requestBytes, int status, std::string_view reason) {
    return sip::buildResponse(parse(requestBytes), status, reason, "srv-tag-1");
  }

  FakeClock clock;
  FakeSender sender{clock};
  RecordingUser user{clock};
  transaction::TransactionLayer layer{clock, sender, user, transaction::LayerSettings{}};
};

class InviteServerTransactionTest : public ServerLayerTest {};
class NonInviteServerTransactionTest : public ServerLayerTest {};

// ======== INVITE server: the state machine (Figure 7, RFC 6026 §8.5-8.7) ========

TEST_F(InviteServerTransactionTest, StartPassesTheInviteUp) {
  InviteServerTransaction t(TimerSettings{}, kUdp);
  EXPECT_THAT(describe(t.start()), ElementsAre("deliver"));
  EXPECT_EQ(t.state(), InviteServerTransaction::State::proceeding);
  // Nothing sent yet, so a retransmission has nothing to be answered with.
  EXPECT_THAT(describe(t.onRequestRetransmission()), IsEmpty());
}

TEST_F(InviteServerTransactionTest, ProvisionalIsResentForRetransmissions) {
  InviteServerTransaction t(TimerSettings{}, kUdp);
  t.start();
  EXPECT_THAT(describe(t.onTuResponse(100)), ElementsAre("sendResponse"));
  EXPECT_EQ(t.state(), InviteServerTransaction::State::proceeding);
  EXPECT_THAT(describe(t.onRequestRetransmission()), ElementsAre("sendResponse"));
}

TEST_F(InviteServerTransactionTest, NonSuccessFinalOverUdpArmsTimersGAndH) {
  InviteServerTransaction t(TimerSettings{}, kUdp);
  t.start();
  EXPECT_THAT(describe(t.onTuResponse(486)),
              UnorderedElementsAre("sendResponse", "start G 500ms", "start H 32000ms"));
  EXPECT_EQ(t.state(), InviteServerTransaction::State::completed);
  for (const char* next :
       {"start G 1000ms", "start G 2000ms", "start G 4000ms", "start G 4000ms", "start G 4000ms"}) {
    EXPECT_THAT(describe(t.onTimer(TimerName::G)), UnorderedElementsAre("sendResponse", next));
  }
  EXPECT_THAT(describe(t.onRequestRetransmission()), ElementsAre("sendResponse"));
}

TEST_F(InviteServerTransactionTest, AckInCompletedMovesToConfirmedAndArmsTimerI) {
  InviteServerTransaction t(TimerSettings{}, kUdp);
  t.start();
  t.onTuResponse(486);
  const auto actions = describe(t.onAck());
  EXPECT_THAT(actions, Contains("stop G"));
  EXPECT_THAT(actions, Contains("start I 5000ms"));
  EXPECT_THAT(actions, Not(Contains("deliver")));
  EXPECT_EQ(t.state(), InviteServerTransaction::State::confirmed);
  EXPECT_THAT(describe(t.onAck()), IsEmpty());  // a retransmitted ACK is absorbed
  EXPECT_THAT(describe(t.onRequestRetransmission()), IsEmpty());
  EXPECT_THAT(describe(t.onTimer(TimerName::G)), IsEmpty());
  EXPECT_THAT(describe(t.onTimer(TimerName::H)), IsEmpty());
  EXPECT_THAT(describe(t.onTimer(TimerName::I)), ElementsAre("terminate"));
  EXPECT_EQ(t.state(), InviteServerTransaction::State::terminated);
}

TEST_F(InviteServerTransactionTest, TimerHWithoutAckTerminates) {
  InviteServerTransaction t(TimerSettings{}, kUdp);
  t.start();
  t.onTuResponse(500);
  const auto actions = describe(t.onTimer(TimerName::H));
  EXPECT_THAT(actions, Contains("timeout"));  // §17.2.1: "MUST indicate to the TU that a
                                              // transaction failure has occurred"
  EXPECT_THAT(actions, Contains("terminate"));
  EXPECT_THAT(actions, Not(Contains("sendResponse")));
  EXPECT_EQ(t.state(), InviteServerTransaction::State::terminated);
}

TEST_F(InviteServerTransactionTest, NonSuccessFinalOverTcpHasNoTimerGAndAckTerminates) {
  InviteServerTransaction t(TimerSettings{}, kTcp);
  t.start();
  EXPECT_THAT(describe(t.onTuResponse(486)),
              UnorderedElementsAre("sendResponse", "start H 32000ms"));
  EXPECT_THAT(describe(t.onAck()), Contains("terminate"));
  EXPECT_EQ(t.state(), InviteServerTransaction::State::terminated);
}

TEST_F(InviteServerTransactionTest, SuccessMovesToAcceptedUntilTimerL) {
  InviteServerTransaction t(TimerSettings{}, kUdp);
  t.start();
  EXPECT_THAT(describe(t.onTuResponse(200)),
              UnorderedElementsAre("sendResponse", "start L 32000ms"));
  EXPECT_EQ(t.state(), InviteServerTransaction::State::accepted);
  EXPECT_THAT(describe(t.onRequestRetransmission()), IsEmpty());  // RFC 6026 §8.7: absorbed
  EXPECT_THAT(describe(t.onAck()), ElementsAre("deliver"));       // the 2xx ACK is the TU's
  EXPECT_THAT(describe(t.onTuResponse(200)), ElementsAre("sendResponse"));  // RFC 6026 §8.6
  EXPECT_THAT(describe(t.onTimer(TimerName::L)), ElementsAre("terminate"));
  EXPECT_EQ(t.state(), InviteServerTransaction::State::terminated);
}

// ======== INVITE server through the layer ========

TEST_F(InviteServerTransactionTest, Sends100TryingAtOnceAndPassesTheInviteUpOnce) {
  const TransactionId id = receiveNew(requestText(RequestSpec{}));
  EXPECT_NE(id, 0u);
  ASSERT_EQ(sender.count(), 1u);
  EXPECT_EQ(firstLine(sender.last().bytes), "SIP/2.0 100 Trying");
  EXPECT_EQ(sender.last().at.count(), 0);
  EXPECT_EQ(sender.last().destination.protocol, Protocol::udp);
  EXPECT_EQ(sender.last().destination.remote, endpoint("192.0.2.10", 5060));
  const sip::Message trying = parse(sender.last().bytes);
  ASSERT_TRUE(trying.to());
  EXPECT_TRUE(trying.to()->tag.empty());  // §8.2.6.2: a 100 gets no To tag
  EXPECT_EQ(trying.topVia()->branch, "z9hG4bK776asdhds");
  ASSERT_EQ(user.count(Event::request), 1u);
  EXPECT_EQ(user.of(Event::request)[0].method, "INVITE");
  EXPECT_EQ(layer.counters().serverTransactionsCreated, 1u);
}

TEST_F(InviteServerTransactionTest, RetransmittedInviteGetsThe100AgainAndIsNotPassedUp) {
  const std::string invite = requestText(RequestSpec{});
  receiveNew(invite);
  runUntil(clock, layer, 500ms);
  receive(invite);
  EXPECT_THAT(sender.timesOf("SIP/2.0 100 "), ElementsAre(0, 500));
  EXPECT_EQ(sender.sent()[1].bytes, sender.sent()[0].bytes);
  EXPECT_EQ(user.count(Event::request), 1u);
  EXPECT_EQ(layer.counters().requestRetransmissionsAbsorbed, 1u);
  EXPECT_EQ(live(), 1u);
}

TEST_F(InviteServerTransactionTest, RetransmittedInviteGetsTheLatestProvisional) {
  const std::string invite = requestText(RequestSpec{});
  const TransactionId id = receiveNew(invite);
  const std::string ringing = answer(invite, 180, "Ringing");
  ASSERT_TRUE(layer.respond(id, 180, ringing));
  runUntil(clock, layer, 1000ms);
  receive(invite);
  EXPECT_THAT(sender.timesOf("SIP/2.0 180 "), ElementsAre(0, 1000));
  EXPECT_EQ(sender.last().bytes, ringing);
  EXPECT_EQ(sender.countOf("SIP/2.0 100 "), 1u);
  EXPECT_EQ(user.count(Event::request), 1u);
}

TEST_F(InviteServerTransactionTest, WithoutAutomatic100ARetransmissionIsAbsorbedSilently) {
  transaction::LayerSettings settings;
  settings.send100Trying = false;
  transaction::TransactionLayer quiet(clock, sender, user, settings);
  const std::string invite = requestText(RequestSpec{});
  quiet.receiveRequest(parse(invite), udpSource());
  quiet.receiveRequest(parse(invite), udpSource());
  EXPECT_EQ(sender.count(), 0u);
  EXPECT_EQ(user.count(Event::request), 1u);
}

TEST_F(InviteServerTransactionTest, NonSuccessFinalIsRetransmittedByTimerGUntilTimerH) {
  const std::string invite = requestText(RequestSpec{});
  const TransactionId id = receiveNew(invite);
  const std::string busy = answer(invite, 486, "Busy Here");
  ASSERT_TRUE(layer.respond(id, 486, busy));

  runUntil(clock, layer, 31999ms);
  EXPECT_EQ(live(), 1u);
  EXPECT_EQ(layer.counters().serverTimeouts, 0u);
  EXPECT_EQ(user.count(Event::serverFailure), 0u);
  runUntil(clock, layer, 32000ms);  // Timer H = 64*T1: no ACK came
  EXPECT_EQ(live(), 0u);
  EXPECT_EQ(layer.counters().serverTimeouts, 1u);
  // §17.2.1: "the server transaction MUST indicate to the TU that a transaction failure has
  // occurred".
  ASSERT_EQ(user.count(Event::serverFailure), 1u);
  EXPECT_EQ(user.of(Event::serverFailure)[0].id, id);
  EXPECT_EQ(user.timesOf(Event::serverFailure), std::vector<std::int64_t>{32000});
  runUntil(clock, layer, 100s, 10ms);

  EXPECT_THAT(sender.timesOf("SIP/2.0 486 "),
              ElementsAre(0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500));
  for (const SentMessage& m : sender.sent()) {
    if (m.bytes.starts_with("SIP/2.0 486 ")) {
      EXPECT_EQ(m.bytes, busy);
    }
  }
  EXPECT_EQ(layer.counters().responseRetransmissionsSent, 10u);
  EXPECT_EQ(user.count(Event::request), 1u);  // the request once, then only the failure
  EXPECT_EQ(user.events().size(), 2u);
  EXPECT_FALSE(layer.respond(id, 486, busy));
}

TEST_F(InviteServerTransactionTest, RetransmittedInviteInCompletedGetsTheFinalAgain) {
  const std::string invite = requestText(RequestSpec{});
  const TransactionId id = receiveNew(invite);
  const std::string busy = answer(invite, 486, "Busy Here");
  layer.respond(id, 486, busy);
  runUntil(clock, layer, 1000ms);
  receive(invite);
  EXPECT_THAT(sender.timesOf("SIP/2.0 486 "), ElementsAre(0, 500, 1000));
  EXPECT_EQ(sender.last().bytes, busy);
  EXPECT_EQ(user.count(Event::request), 1u);
}

TEST_F(InviteServerTransactionTest, AckStopsRetransmissionsIsAbsorbedAndTimerIEndsIt) {
  const RequestSpec spec;
  const std::string invite = requestText(spec);
  const TransactionId id = receiveNew(invite);
  layer.respond(id, 486, answer(invite, 486, "Busy Here"));
  runUntil(clock, layer, 2000ms);
  receive(ackFor(spec, "srv-tag-1"));
  EXPECT_EQ(layer.counters().acksAbsorbed, 1u);
  EXPECT_EQ(user.count(Event::ack), 0u);

  runUntil(clock, layer, 3000ms);
  receive(ackFor(spec, "srv-tag-1"));  // a retransmitted ACK in Confirmed: absorbed too
  EXPECT_EQ(layer.counters().acksAbsorbed, 2u);
  EXPECT_EQ(user.count(Event::ack), 0u);

  runUntil(clock, layer, 6999ms);  // Timer I = T4 from the ACK at 2 s
  EXPECT_EQ(live(), 1u);
  runUntil(clock, layer, 7000ms);
  EXPECT_EQ(live(), 0u);
  runUntil(clock, layer, 100s, 10ms);
  EXPECT_THAT(sender.timesOf("SIP/2.0 486 "), ElementsAre(0, 500, 1500));
  EXPECT_EQ(layer.counters().serverTimeouts, 0u);
  EXPECT_EQ(user.events().size(), 1u);
}

TEST_F(InviteServerTransactionTest, SuccessIsAcceptedRetransmittedInviteAbsorbedAndAckPassedUp) {
  const RequestSpec spec;
  const std::string invite = requestText(spec);
  const TransactionId id = receiveNew(invite);
  const std::string ok = answer(invite, 200, "OK");
  ASSERT_TRUE(layer.respond(id, 200, ok));
  runUntil(clock, layer, 500ms);
  EXPECT_TRUE(layer.respond(id, 200, ok));  // the TU's own 2xx retransmission goes out
  runUntil(clock, layer, 1000ms);
  const std::size_t sentBefore = sender.count();
  receive(invite);  // RFC 6026 §8.7: absorbed, nothing sent, not passed up
  EXPECT_EQ(sender.count(), sentBefore);
  EXPECT_EQ(user.count(Event::request), 1u);

  runUntil(clock, layer, 2000ms);
  RequestSpec ack = spec;
  ack.branch = "z9hG4bKack4the2xx";  // §17.1.1.3: the ACK for a 2xx is its own transaction
  receive(ackFor(ack, "srv-tag-1"));
  receive(ackFor(spec, "srv-tag-1"));  // one that reuses the INVITE's branch matches Accepted
  EXPECT_THAT(user.timesOf(Event::ack), ElementsAre(2000, 2000));
  EXPECT_EQ(layer.counters().acksAbsorbed, 0u);

  runUntil(clock, layer, 31999ms);  // Timer L = 64*T1 from the 2xx
  EXPECT_EQ(live(), 1u);
  runUntil(clock, layer, 32000ms);
  EXPECT_EQ(live(), 0u);
  EXPECT_FALSE(layer.respond(id, 200, ok));
  runUntil(clock, layer, 100s, 10ms);
  EXPECT_THAT(sender.timesOf("SIP/2.0 200 "), ElementsAre(0, 500));  // only what the TU sent
  EXPECT_EQ(layer.counters().serverTimeouts, 0u);
}

TEST_F(InviteServerTransactionTest, OverTcpFinalIsSentOnceAndAckEndsItAtOnce) {
  const RequestSpec spec = overTcp(RequestSpec{});
  const std::string invite = requestText(spec);
  const TransactionId id = receiveNew(invite, tcpSource(7));
  ASSERT_EQ(sender.count(), 1u);
  EXPECT_EQ(sender.last().destination.protocol, Protocol::tcp);
  EXPECT_EQ(sender.last().destination.connectionId, 7u);
  layer.respond(id, 486, answer(invite, 486, "Busy Here"));
  runUntil(clock, layer, 10s, 10ms);
  EXPECT_THAT(sender.timesOf("SIP/2.0 486 "),
              ElementsAre(0));  // no Timer G on a reliable transport
  EXPECT_EQ(live(), 1u);
  receive(ackFor(spec, "srv-tag-1"), tcpSource(7));
  EXPECT_EQ(layer.counters().acksAbsorbed, 1u);
  EXPECT_EQ(user.count(Event::ack), 0u);
  EXPECT_EQ(live(), 0u);  // Timer I is zero
}

TEST_F(InviteServerTransactionTest, OverTcpTimerHStillEndsItWithoutAck) {
  const std::string invite = requestText(overTcp(RequestSpec{}));
  const TransactionId id = receiveNew(invite, tcpSource());
  layer.respond(id, 480, answer(invite, 480, "Temporarily Unavailable"));
  runUntil(clock, layer, 31999ms, 10ms);
  EXPECT_EQ(live(), 1u);
  runUntil(clock, layer, 32000ms);
  EXPECT_EQ(live(), 0u);
  EXPECT_EQ(layer.counters().serverTimeouts, 1u);
  EXPECT_EQ(sender.countOf("SIP/2.0 480 "), 1u);
}

TEST_F(InviteServerTransactionTest, FailedResponseSendEndsTheTransaction) {
  sender.failNthSend(2);  // the 100 goes, the 486 fails
  const std::string invite = requestText(RequestSpec{});
  const TransactionId id = receiveNew(invite);
  EXPECT_TRUE(layer.respond(id, 486, answer(invite, 486, "Busy Here")));
  EXPECT_EQ(layer.counters().transportErrors, 1u);
  EXPECT_EQ(live(), 0u);
  // §17.2.4: a response that cannot be sent is a transaction failure for the TU.
  ASSERT_EQ(user.count(Event::serverFailure), 1u);
  EXPECT_EQ(user.of(Event::serverFailure)[0].id, id);
  runUntil(clock, layer, 100s, 10ms);
  EXPECT_EQ(sender.count(), 2u);
}

// ======== non-INVITE server: the state machine (Figure 8) ========

TEST_F(NonInviteServerTransactionTest, TryingAbsorbsRetransmissions) {
  NonInviteServerTransaction t(TimerSettings{}, kUdp);
  EXPECT_THAT(describe(t.start()), ElementsAre("deliver"));
  EXPECT_EQ(t.state(), NonInviteServerTransaction::State::trying);
  EXPECT_THAT(describe(t.onRequestRetransmission()), IsEmpty());
}

TEST_F(NonInviteServerTransactionTest, ProceedingAndCompletedResendTheLastResponse) {
  NonInviteServerTransaction t(TimerSettings{}, kUdp);
  t.start();
  EXPECT_THAT(describe(t.onTuResponse(100)), ElementsAre("sendResponse"));
  EXPECT_EQ(t.state(), NonInviteServerTransaction::State::proceeding);
  EXPECT_THAT(describe(t.onRequestRetransmission()), ElementsAre("sendResponse"));
  EXPECT_THAT(describe(t.onTuResponse(200)),
              UnorderedElementsAre("sendResponse", "start J 32000ms"));
  EXPECT_EQ(t.state(), NonInviteServerTransaction::State::completed);
  EXPECT_THAT(describe(t.onRequestRetransmission()), ElementsAre("sendResponse"));
  EXPECT_THAT(describe(t.onTuResponse(500)), IsEmpty());  // one final only
  EXPECT_THAT(describe(t.onTimer(TimerName::J)), ElementsAre("terminate"));
  EXPECT_EQ(t.state(), NonInviteServerTransaction::State::terminated);
}

TEST_F(NonInviteServerTransactionTest, FinalOverTcpTerminatesAtOnce) {
  NonInviteServerTransaction t(TimerSettings{}, kTcp);
  t.start();
  EXPECT_THAT(describe(t.onTuResponse(200)), UnorderedElementsAre("sendResponse", "terminate"));
  EXPECT_EQ(t.state(), NonInviteServerTransaction::State::terminated);
}

// ======== non-INVITE server through the layer ========

TEST_F(NonInviteServerTransactionTest, RetransmissionWhileTryingIsAbsorbed) {
  RequestSpec spec;
  spec.method = "OPTIONS";
  const std::string options = requestText(spec);
  receiveNew(options);
  EXPECT_EQ(sender.count(), 0u);  // no automatic 100 for non-INVITE
  runUntil(clock, layer, 500ms);
  receive(options);
  EXPECT_EQ(sender.count(), 0u);
  EXPECT_EQ(user.count(Event::request), 1u);
  EXPECT_EQ(layer.counters().requestRetransmissionsAbsorbed, 1u);
}

TEST_F(NonInviteServerTransactionTest, RetransmissionInProceedingGetsTheLastProvisional) {
  RequestSpec spec;
  spec.method = "REGISTER";
  spec.requestUri = "sip:biloxi.example.com";
  const std::string reg = requestText(spec);
  const TransactionId id = receiveNew(reg);
  const std::string trying = answer(reg, 100, "Trying");
  ASSERT_TRUE(layer.respond(id, 100, trying));
  runUntil(clock, layer, 500ms);
  receive(reg);
  EXPECT_THAT(sender.timesOf(), ElementsAre(0, 500));
  EXPECT_EQ(sender.last().bytes, trying);
  EXPECT_EQ(user.count(Event::request), 1u);
}

TEST_F(NonInviteServerTransactionTest, RetransmissionInCompletedGetsTheFinalAgain) {
  RequestSpec spec;
  spec.method = "REGISTER";
  spec.requestUri = "sip:biloxi.example.com";
  const std::string reg = requestText(spec);
  const TransactionId id = receiveNew(reg);
  layer.respond(id, 100, answer(reg, 100, "Trying"));
  const std::string ok = answer(reg, 200, "OK");
  layer.respond(id, 200, ok);
  runUntil(clock, layer, 1000ms);
  receive(reg);
  runUntil(clock, layer, 2000ms);
  receive(reg);
  EXPECT_THAT(sender.timesOf("SIP/2.0 200 "), ElementsAre(0, 1000, 2000));
  for (const SentMessage& m : sender.sent()) {
    if (m.bytes.starts_with("SIP/2.0 200 ")) {
      EXPECT_EQ(m.bytes, ok);
    }
  }
  EXPECT_EQ(user.count(Event::request), 1u);
}

TEST_F(NonInviteServerTransactionTest, TimerJIs64T1OverUdp) {
  RequestSpec spec;
  spec.method = "OPTIONS";
  const std::string options = requestText(spec);
  const TransactionId id = receiveNew(options);
  runUntil(clock, layer, 1000ms);
  layer.respond(id, 200, answer(options, 200, "OK"));
  runUntil(clock, layer, 32999ms);
  EXPECT_EQ(live(), 1u);
  receive(options);  // still answered from the transaction
  EXPECT_EQ(user.count(Event::request), 1u);
  runUntil(clock, layer, 33000ms);
  EXPECT_EQ(live(), 0u);
  EXPECT_FALSE(layer.respond(id, 200, answer(options, 200, "OK")));
  EXPECT_THAT(sender.timesOf("SIP/2.0 200 "),
              ElementsAre(1000, 32999));  // the transaction never retransmits on its own
}

TEST_F(NonInviteServerTransactionTest, FinalOverTcpEndsItAtOnce) {
  RequestSpec spec = overTcp(RequestSpec{});
  spec.method = "OPTIONS";
  const std::string options = requestText(spec);
  const TransactionId id = receiveNew(options, tcpSource());
  EXPECT_TRUE(layer.respond(id, 200, answer(options, 200, "OK")));
  EXPECT_EQ(live(), 0u);  // Timer J is zero
  EXPECT_FALSE(layer.respond(id, 200, answer(options, 200, "OK")));
  EXPECT_EQ(sender.count(), 1u);
  EXPECT_EQ(sender.last().destination.connectionId, 7u);
}

TEST_F(NonInviteServerTransactionTest, TuMayAnswerFromInsideOnRequest) {
  RequestSpec spec = overTcp(RequestSpec{});
  spec.method = "OPTIONS";
  const std::string options = requestText(spec);
  bool answered = false;
  user.whenRequest = [&](TransactionId id, const sip::Message& request) {
    answered = layer.respond(id, 200, sip::buildResponse(request, 200, "OK", "srv-tag-1"));
  };
  receiveNew(options, tcpSource());
  EXPECT_TRUE(answered);
  EXPECT_EQ(sender.countOf("SIP/2.0 200 "), 1u);
  EXPECT_EQ(live(), 0u);
}

}  // namespace
}  // namespace waypoint::testkit
