// The proxy core (RFC 3261 §16) through its transaction layer, with a fake clock and a
// recording sender: what goes where, and when. Addresses are documentation ranges; nothing
// is sent anywhere.

#include "waypoint/proxy/proxy.hpp"

#include <yaml-cpp/yaml.h>

#include <memory>

#include "fakes.hpp"
#include "waypoint/registrar/location_store.hpp"
#include "waypoint/registrar/registrar.hpp"

namespace waypoint::testkit {
namespace {

using transport::Protocol;
using transport::Source;

constexpr const char* kProxyHost = "203.0.113.1";

// Bob's phones, each behind its own NAT mapping: the Contact says 192.168.1.x, the
// packets come from 198.51.100.x.
Source phoneFlow(const char* address, std::uint16_t port, Protocol protocol = Protocol::udp,
                 std::uint64_t connection = 0) {
  return Source{protocol, endpoint(kProxyHost, 5060), endpoint(address, port), connection};
}

class ProxyTest : public ::testing::Test {
 protected:
  ProxyTest() {
    identity.addName("biloxi.example.com");
    identity.addListener(Protocol::udp, endpoint(kProxyHost, 5060));
    identity.addListener(Protocol::tcp, endpoint(kProxyHost, 5060));
    identity.addListener(Protocol::tls, endpoint(kProxyHost, 5061));
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

  void registerContact(const std::string& user, const std::string& contact, const Source& flow,
                       const std::string& params = "") {
    const std::string n = std::to_string(++registrations_);
    receive(
        "REGISTER sip:biloxi.example.com SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bKreg" +
            n +
            ";rport\r\n"
            "Max-Forwards: 70\r\n"
            "From: <sip:" +
            user + "@biloxi.example.com>;tag=r" + n +
            "\r\n"
            "To: <sip:" +
            user +
            "@biloxi.example.com>\r\n"
            "Call-ID: reg" +
            n +
            "@phone\r\nCSeq: 1 REGISTER\r\n"
            "Contact: <" +
            contact + ">" + params + "\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n",
        flow);
    ASSERT_EQ(firstLine(sender.last().bytes), "SIP/2.0 200 OK");
  }

  void useRules(const std::string& yaml) {
    proxy->setRules(routing::RuleSet::compile(YAML::Load(yaml), "rules.yaml"));
  }
  // Users starting with 9 go to these next hops ("'sip:...', 'sip:...'"), in order.
  void forwardNinesTo(const std::string& targets) {
    useRules("rules:\n  - match: { user: { prefix: '9' } }\n    forward: { to: [" + targets +
             "] }\n");
  }

  // Every message sent so far whose first line starts with prefix, in order.
  // Alice calls bob over TCP; what the proxy forwarded.
  std::vector<SentMessage> inviteFromTcpCaller() {
    RequestSpec s = invite();
    s.viaTransport = "TCP";
    receive(requestText(s), tcpSource());
    return sent("INVITE ");
  }
  std::vector<SentMessage> sent(std::string_view prefix) const {
    std::vector<SentMessage> matching;
    for (const auto& m : sender.sent()) {
      if (std::string_view(m.bytes).starts_with(prefix)) matching.push_back(m);
    }
    return matching;
  }
  std::vector<SentMessage> sentTo(std::string_view prefix, const char* address) const {
    std::vector<SentMessage> matching;
    for (const auto& m : sent(prefix)) {
      if (m.destination.remote.address.to_string() == address) matching.push_back(m);
    }
    return matching;
  }
  // The responses Alice (192.0.2.10) got, as status lines.
  std::vector<std::string> upstream() const {
    std::vector<std::string> lines;
    for (const auto& m : sentTo("SIP/2.0 ", "192.0.2.10")) lines.push_back(firstLine(m.bytes));
    return lines;
  }
  void answer(const SentMessage& request, int status, std::string_view reason, const Source& from,
              std::string_view toTag = "bobtag") {
    receive(responseText(request.bytes, status, reason, toTag), from);
  }
  void advance(Duration total) {
    for (Duration done{0}; done < total; done += 10ms) {
      clock.advance(10ms);
      proxy->fireDueTimers();
    }
  }

  // A request inside the call set up by invite(): To tag, Route set, its own branch.
  static RequestSpec inDialog(std::string method, std::string uri, std::string branch,
                              std::vector<std::string> routes, std::string toTag = "bobtag") {
    RequestSpec s;
    s.method = std::move(method);
    s.requestUri = std::move(uri);
    s.branch = std::move(branch);
    s.toTag = std::move(toTag);
    s.routes = std::move(routes);
    s.cseq = 314160;
    return s;
  }

  // sip:user@<the proxy's address> belongs to biloxi.example.com.
  registrar::RegistrarSettings registrarSettings() {
    registrar::RegistrarSettings s;
    s.defaultDomain = "biloxi.example.com";
    s.isThisServer = [this](const sip::Uri& uri) { return identity.isThisServer(uri); };
    return s;
  }

  // The proxy again, with other settings (trusted sources, secrets).
  void restartWith(proxy::ProxySettings changed) {
    settings = std::move(changed);
    proxy = std::make_unique<proxy::Proxy>(clock, sender, transaction::LayerSettings{}, identity,
                                           registrar, settings);
  }

  // Bob registered and Alice's INVITE forwarded to him: our Record-Route URI.
  std::string callAndRecordRoute() {
    registerContact("bob", "sip:bob@192.168.1.20:5060", bob1);
    receive(requestText(invite()), udpSource());
    return parse(sent("INVITE ").at(0).bytes).recordRoutes().at(0).uri;
  }

  RequestSpec invite(const std::string& uri = "sip:bob@biloxi.example.com") {
    RequestSpec s;
    s.requestUri = uri;
    return s;
  }

  FakeClock clock;
  FakeSender sender{clock};
  proxy::LocalIdentity identity;
  registrar::InMemoryLocationStore store;
  registrar::Registrar registrar{store, {"biloxi.example.com"}, registrarSettings()};
  proxy::ProxySettings settings;
  std::unique_ptr<proxy::Proxy> proxy;
  const Source bob1 = phoneFlow("198.51.100.20", 40000);
  const Source bob2 = phoneFlow("198.51.100.21", 40001);

 private:
  int registrations_ = 0;
};

TEST_F(ProxyTest, InviteToRegisteredPhoneGoesToItsSourceAddressWithRecordRouteAndOurVia) {
  registerContact("bob", "sip:bob@192.168.1.20:5060", bob1);
  receive(requestText(invite()), udpSource());

  EXPECT_EQ(upstream(), std::vector<std::string>{"SIP/2.0 100 Trying"});
  const auto forwarded = sent("INVITE ");
  ASSERT_EQ(forwarded.size(), 1u);
  // NAT: the private Contact is only the Request-URI; the packet goes to the flow.
  EXPECT_EQ(transport::toString(forwarded[0].destination), "UDP 198.51.100.20:40000");
  sip::Message out = parse(forwarded[0].bytes);
  EXPECT_EQ(out.requestUri(), "sip:bob@192.168.1.20:5060");
  const auto vias = out.vias();
  ASSERT_EQ(vias.size(), 2u);
  EXPECT_EQ(vias[0].host, kProxyHost);
  EXPECT_TRUE(vias[0].branch.starts_with("z9hG4bK"));
  EXPECT_EQ(vias[1].host, "192.0.2.10");
  EXPECT_EQ(out.maxForwards(), 69u);
  const auto rr = out.recordRoutes();
  ASSERT_EQ(rr.size(), 1u);  // UDP in, UDP out, same listener: one entry
  const auto rrUri = sip::parseUri(rr[0].uri);
  ASSERT_TRUE(rrUri);
  EXPECT_EQ(rrUri->host, kProxyHost);
  EXPECT_EQ(rrUri->port, 5060);
  EXPECT_TRUE(rrUri->lr);
  EXPECT_TRUE(rrUri->transport.empty());
}

TEST_F(ProxyTest, ContactRegisteredByAnotherSocketIsReachedAtTheContact) {
  // Not NAT: the REGISTER's Via matches its source and the Contact is a public address
  // (a registration made for another socket or device).
  receive(
      "REGISTER sip:biloxi.example.com SIP/2.0\r\n"
      "Via: SIP/2.0/UDP 198.51.100.20:40000;branch=z9hG4bKthirdparty\r\n"
      "Max-Forwards: 70\r\nFrom: <sip:bob@biloxi.example.com>;tag=tp\r\n"
      "To: <sip:bob@biloxi.example.com>\r\nCall-ID: tp@phone\r\nCSeq: 1 REGISTER\r\n"
      "Contact: <sip:bob@198.51.100.99:5062>\r\nContent-Length: 0\r\n\r\n",
      bob1);
  receive(requestText(invite()), udpSource());
  EXPECT_EQ(transport::toString(sent("INVITE ").at(0).destination), "UDP 198.51.100.99:5062");
}

TEST(ContactBehindNat, PrivateContactOrVia) {
  const Source from = phoneFlow("198.51.100.20", 40000);
  auto registerWith = [](const std::string& via) {
    return parse("REGISTER sip:biloxi.example.com SIP/2.0\r\nVia: SIP/2.0/UDP " + via +
                 ";branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\n"
                 "CSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n");
  };
  const sip::Message viaIsSource = registerWith("198.51.100.20:40000");
  const sip::Message viaPrivate = registerWith("192.168.1.20:5060");
  EXPECT_FALSE(registrar::contactBehindNat("sip:a@198.51.100.20:40000", viaPrivate,
                                           from));  // same as source
  EXPECT_TRUE(registrar::contactBehindNat("sip:a@192.168.1.20:5060", viaPrivate, from));
  EXPECT_TRUE(registrar::contactBehindNat("sip:a@192.168.1.20:5060", viaIsSource,
                                          from));  // private Contact
  EXPECT_FALSE(
      registrar::contactBehindNat("sip:a@198.51.100.99:5062", viaIsSource, from));  // third party
  EXPECT_TRUE(registrar::contactBehindNat("sip:a@phone.example.com", viaIsSource, from));  // no DNS
  EXPECT_TRUE(registrar::contactBehindNat("sip:a@[fd00::1]:5060", viaIsSource, from));
}

TEST_F(ProxyTest, ResponsesComeBackWithoutOurViaAnd2xxIsForwardedAtOnce) {
  registerContact("bob", "sip:bob@192.168.1.20:5060", bob1);
  receive(requestText(invite()), udpSource());
  const auto forwarded = sent("INVITE ").at(0);
  answer(forwarded, 100, "Trying", bob1);
  answer(forwarded, 180, "Ringing", bob1);
  answer(forwarded, 200, "OK", bob1);
  EXPECT_EQ(upstream(), (std::vector<std::string>{"SIP/2.0 100 Trying", "SIP/2.0 180 Ringing",
                                                  "SIP/2.0 200 OK"}));
  sip::Message ok = parse(sentTo("SIP/2.0 200", "192.0.2.10").at(0).bytes);
  ASSERT_EQ(ok.vias().size(), 1u);
  EXPECT_EQ(ok.vias()[0].host, "192.0.2.10");
  EXPECT_EQ(proxy->counters().liveContexts, 0u);
}

TEST_F(ProxyTest, DrainLetsALiveCallFinishAndRefusesNewRequestsWith503RetryAfter) {
  registerContact("bob", "sip:bob@192.168.1.20:5060", bob1);
  receive(requestText(invite()), udpSource());
  const auto forwarded = sent("INVITE ").at(0);
  proxy->startDrain(std::chrono::seconds(30));
  RequestSpec second = invite();
  second.branch = "z9hG4bKdrain2";
  second.callId = "drain2@alice";
  receive(requestText(second), udpSource());
  const sip::Message refused = parse(sentTo("SIP/2.0 503", "192.0.2.10").at(0).bytes);
  EXPECT_EQ(refused.headerValues("Retry-After"), std::vector<std::string>{"30"});
  EXPECT_EQ(proxy->counters().drainRefused, 1u);
  EXPECT_EQ(sent("INVITE ").size(), 1u);  // the new one went nowhere
  EXPECT_FALSE(proxy->drained());
  answer(forwarded, 200, "OK", bob1);
  EXPECT_EQ(sentTo("SIP/2.0 200", "192.0.2.10").size(), 1u);
  // Done once the 200 is forwarded: what lingers (Timer L) only absorbs retransmissions.
  EXPECT_TRUE(proxy->drained());
}

TEST_F(ProxyTest, ResponseWithoutTheCallersViaIsNotForwarded) {
  registerContact("bob", "sip:bob@192.168.1.20:5060", bob1);
  receive(requestText(invite()), udpSource());
  std::string busy = responseText(sent("INVITE ").at(0).bytes, 486, "Busy Here");
  const std::size_t callerVia = busy.find("Via: SIP/2.0/UDP 192.0.2.10");
  ASSERT_NE(callerVia, std::string::npos);
  busy.erase(callerVia, busy.find("\r\n", callerVia) + 2 - callerVia);
  receive(busy, bob1);
  EXPECT_EQ(sentTo("SIP/2.0 486", "192.0.2.10").size(), 0u);
  EXPECT_EQ(upstream().back(), "SIP/2.0 500 Server Internal Error");  // the branch failed
}

TEST_F(ProxyTest, UnknownUserIs404AndUserWithoutBindingIs480) {
  receive(requestText(invite("sip:carol@biloxi.example.com")), udpSource());
  EXPECT_EQ(upstream().back(), "SIP/2.0 404 Not Found");

  registerContact("dave", "sip:dave@192.168.1.30", bob1);
  store.replace("sip:dave@biloxi.example.com", {});  // unregistered since
  RequestSpec s = invite("sip:dave@biloxi.example.com");
  s.branch = "z9hG4bKdave";
  receive(requestText(s), udpSource());
  EXPECT_EQ(upstream().back(), "SIP/2.0 480 Temporarily Unavailable");
  EXPECT_EQ(sent("INVITE ").size(), 0u);
}

TEST_F(ProxyTest, UnservedDomainIsRefusedByDefault) {
  receive(requestText(invite("sip:bob@elsewhere.example.org")), udpSource());
  EXPECT_EQ(upstream().back(), "SIP/2.0 404 Not Found");
  EXPECT_EQ(proxy->counters().rulesRejected, 1u);
}

TEST_F(ProxyTest, ExplainRouteGivesTheRuleAndTargetsAndCountsAndSendsNothing) {
  registerContact("bob", "sip:bob@192.168.1.20", bob1);
  forwardNinesTo("'sip:192.0.2.50:5070', 'sip:192.0.2.51'");
  const auto sentBefore = sender.sent().size();

  const auto located = proxy->explainRoute(parse(requestText(invite())), udpSource());
  EXPECT_EQ(located.rule, "default");
  ASSERT_EQ(located.groups.size(), 1u);
  EXPECT_EQ(located.groups[0][0].requestUri, "sip:bob@192.168.1.20");
  EXPECT_EQ(transport::toString(located.groups[0][0].destination), "UDP 198.51.100.20:40000");

  const auto forwarded =
      proxy->explainRoute(parse(requestText(invite("sip:900@biloxi.example.com"))), udpSource());
  EXPECT_EQ(forwarded.rule, "rule 1");
  ASSERT_EQ(forwarded.groups.size(), 2u);  // serial: one next hop at a time
  EXPECT_EQ(transport::toString(forwarded.groups[1][0].destination), "UDP 192.0.2.51:5060");

  const auto missing =
      proxy->explainRoute(parse(requestText(invite("sip:carol@biloxi.example.com"))), udpSource());
  EXPECT_EQ(missing.status, 404);
  EXPECT_FALSE(missing.rejectedByRule);
  const auto refused =
      proxy->explainRoute(parse(requestText(invite("sip:bob@elsewhere.example.org"))), udpSource());
  EXPECT_TRUE(refused.rejectedByRule);

  EXPECT_EQ(sender.sent().size(), sentBefore);
  EXPECT_EQ(proxy->counters().rulesRejected, 0u);
  EXPECT_EQ(proxy->counters().locationNotFound, 0u);
  EXPECT_EQ(proxy->counters().requestsForwarded, 0u);
}

TEST_F(ProxyTest, MaxForwardsZeroIs483) {
  std::string text = requestText(invite());
  text.replace(text.find("Max-Forwards: 70"), 16, "Max-Forwards: 0");
  receive(text, udpSource());
  EXPECT_EQ(upstream().back(), "SIP/2.0 483 Too Many Hops");
}

TEST_F(ProxyTest, MissingMaxForwardsIsInsertedWith70) {
  registerContact("bob", "sip:bob@192.168.1.20:5060", bob1);
  std::string text = requestText(invite());
  text.erase(text.find("Max-Forwards: 70\r\n"), 18);
  receive(text, udpSource());
  EXPECT_EQ(parse(sent("INVITE ").at(0).bytes).maxForwards(), 70u);
}

TEST_F(ProxyTest, UnsupportedProxyRequireIs420WithUnsupported) {
  std::string text = requestText(invite());
  text.insert(text.find("Max-Forwards"), "Proxy-Require: foo, bar\r\n");
  receive(text, udpSource());
  ASSERT_EQ(upstream().back(), "SIP/2.0 420 Bad Extension");
  EXPECT_EQ(parse(sent("SIP/2.0 420").at(0).bytes).headerValues("Unsupported"),
            std::vector<std::string>{"foo, bar"});
}

TEST_F(ProxyTest, RequestComingBackUnchangedIsALoop482) {
  useRules(
      "rules:\n  - match: { host: loop.example.org }\n    forward: { to: ['sip:203.0.113.1:5060'] "
      "}\n");
  receive(requestText(invite("sip:x@loop.example.org")), udpSource());
  const auto first = sent("INVITE ").at(0);
  EXPECT_EQ(transport::toString(first.destination), "UDP 203.0.113.1:5060");
  // It arrives at the proxy again.
  receive(first.bytes, phoneFlow(kProxyHost, 5060));
  const auto loopAnswer = sent("SIP/2.0 482");
  ASSERT_EQ(loopAnswer.size(), 1u);
  EXPECT_EQ(firstLine(loopAnswer[0].bytes), "SIP/2.0 482 Loop Detected");
  EXPECT_EQ(proxy->counters().loopsDetected, 1u);
}

TEST_F(ProxyTest, SpiralWithAnotherRequestUriIsNotALoop) {
  registerContact("bob", "sip:bob@192.168.1.20:5060", bob1);
  useRules(
      "rules:\n  - match: { host: alias.example.org }\n    forward: { to: ['sip:203.0.113.1:5060'] "
      "}\n");
  receive(requestText(invite("sip:bob@alias.example.org")), udpSource());
  std::string again = sent("INVITE ").at(0).bytes;
  again.replace(0, again.find(" SIP/2.0"), "INVITE sip:bob@biloxi.example.com");
  receive(again, phoneFlow(kProxyHost, 5060));
  EXPECT_EQ(sent("SIP/2.0 482").size(), 0u);
  EXPECT_EQ(sentTo("INVITE ", "198.51.100.20").size(), 1u);
}

TEST_F(ProxyTest, ParallelForkFirst2xxWinsAndTheOtherBranchIsCancelled) {
  registerContact("bob", "sip:bob@192.168.1.20", bob1);
  registerContact("bob", "sip:bob@192.168.1.21", bob2);
  receive(requestText(invite()), udpSource());
  const auto one = sentTo("INVITE ", "198.51.100.20");
  const auto two = sentTo("INVITE ", "198.51.100.21");
  ASSERT_EQ(one.size(), 1u);
  ASSERT_EQ(two.size(), 1u);
  EXPECT_NE(parse(one[0].bytes).topVia()->branch, parse(two[0].bytes).topVia()->branch);
  answer(one[0], 180, "Ringing", bob1, "t1");
  answer(two[0], 180, "Ringing", bob2, "t2");
  answer(two[0], 200, "OK", bob2, "t2");
  EXPECT_EQ(upstream().back(), "SIP/2.0 200 OK");
  const auto cancels = sent("CANCEL ");
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0].destination.remote, bob1.remote);
  sip::Message cancel = parse(cancels[0].bytes);
  EXPECT_EQ(cancel.topVia()->branch, parse(one[0].bytes).topVia()->branch);  // §9.1
  EXPECT_EQ(cancel.requestUri(), "sip:bob@192.168.1.20");
  EXPECT_EQ(cancel.cseq()->method, "CANCEL");
  answer(one[0], 487, "Request Terminated", bob1, "t1");
  EXPECT_EQ(sentTo("ACK ", "198.51.100.20").size(), 1u);  // hop by hop, by the layer
  EXPECT_EQ(upstream().back(), "SIP/2.0 200 OK");         // the 487 stays here
  EXPECT_EQ(proxy->counters().liveContexts, 0u);
}

TEST_F(ProxyTest, CancelWaitsForAProvisionalResponseOnThatBranch) {
  registerContact("bob", "sip:bob@192.168.1.20", bob1);
  registerContact("bob", "sip:bob@192.168.1.21", bob2);
  receive(requestText(invite()), udpSource());
  const auto one = sentTo("INVITE ", "198.51.100.20").at(0);
  const auto two = sentTo("INVITE ", "198.51.100.21").at(0);
  answer(two, 200, "OK", bob2, "t2");
  EXPECT_EQ(sent("CANCEL ").size(), 0u);  // bob1 has not answered at all yet
  answer(one, 100, "Trying", bob1, "");
  EXPECT_EQ(sentTo("CANCEL ", "198.51.100.20").size(), 1u);
}

TEST_F(ProxyTest, SerialForkTriesLowerQOnlyAfterTheHigherFails) {
  registerContact("bob", "sip:bob@192.168.1.20", bob1, ";q=1.0");
  registerContact("bob", "sip:bob@192.168.1.21", bob2, ";q=0.5");
  receive(requestText(invite()), udpSource());
  ASSERT_EQ(sent("INVITE ").size(), 1u);
  const auto first = sent("INVITE ").at(0);
  EXPECT_EQ(first.destination.remote, bob1.remote);
  answer(first, 486, "Busy Here", bob1);
  const auto second = sentTo("INVITE ", "198.51.100.21");
  ASSERT_EQ(second.size(), 1u);
  answer(second[0], 200, "OK", bob2, "t2");
  EXPECT_EQ(upstream().back(), "SIP/2.0 200 OK");
  EXPECT_EQ(sentTo("SIP/2.0 486", "192.0.2.10").size(), 0u);
}

TEST_F(ProxyTest, BestResponseIsChosenWhenEveryBranchHasEnded) {
  registerContact("bob", "sip:bob@192.168.1.20", bob1);
  registerContact("bob", "sip:bob@192.168.1.21", bob2);
  receive(requestText(invite()), udpSource());
  answer(sentTo("INVITE ", "198.51.100.20").at(0), 503, "Service Unavailable", bob1, "t1");
  EXPECT_EQ(upstream().back(), "SIP/2.0 100 Trying");  // waits for the other branch
  answer(sentTo("INVITE ", "198.51.100.21").at(0), 486, "Busy Here", bob2, "t2");
  EXPECT_EQ(upstream().back(), "SIP/2.0 486 Busy Here");  // 4xx beats 5xx
}

TEST_F(ProxyTest, Downstream503BecomesA500) {
  registerContact("bob", "sip:bob@192.168.1.20", bob1);
  receive(requestText(invite()), udpSource());
  answer(sent("INVITE ").at(0), 503, "Service Unavailable", bob1);
  EXPECT_EQ(upstream().back(), "SIP/2.0 500 Server Internal Error");
}

TEST_F(ProxyTest, SixHundredCancelsTheOthersAndWins) {
  registerContact("bob", "sip:bob@192.168.1.20", bob1);
  registerContact("bob", "sip:bob@192.168.1.21", bob2);
  receive(requestText(invite()), udpSource());
  const auto one = sentTo("INVITE ", "198.51.100.20").at(0);
  answer(one, 180, "Ringing", bob1, "t1");
  answer(sentTo("INVITE ", "198.51.100.21").at(0), 603, "Decline", bob2, "t2");
  EXPECT_EQ(sentTo("CANCEL ", "198.51.100.20").size(), 1u);
  answer(one, 487, "Request Terminated", bob1, "t1");
  EXPECT_EQ(upstream().back(), "SIP/2.0 603 Decline");
}

TEST_F(ProxyTest, ChallengesOfSeveralBranchesAreMerged) {
  registerContact("bob", "sip:bob@192.168.1.20", bob1);
  registerContact("bob", "sip:bob@192.168.1.21", bob2);
  receive(requestText(invite()), udpSource());
  auto challenge = [&](const SentMessage& request, const char* header, const char* realm,
                       const Source& from) {
    std::string text =
        responseText(request.bytes, std::string(header) == "WWW-Authenticate" ? 401 : 407,
                     std::string(header) == "WWW-Authenticate" ? "Unauthorized"
                                                               : "Proxy Authentication Required");
    text.insert(text.find("Content-Length"),
                std::string(header) + ": Digest realm=\"" + realm + "\", nonce=\"n\"\r\n");
    receive(text, from);
  };
  challenge(sentTo("INVITE ", "198.51.100.20").at(0), "WWW-Authenticate", "one", bob1);
  challenge(sentTo("INVITE ", "198.51.100.21").at(0), "Proxy-Authenticate", "two", bob2);
  const auto last = sentTo("SIP/2.0 40", "192.0.2.10");
  ASSERT_EQ(last.size(), 1u);
  sip::Message merged = parse(last[0].bytes);
  EXPECT_EQ(merged.headerValues("WWW-Authenticate").size(), 1u);
  EXPECT_EQ(merged.headerValues("Proxy-Authenticate").size(), 1u);
}

TEST_F(ProxyTest, SilentNextHopGives408AtTimerB) {
  registerContact("bob", "sip:bob@192.168.1.20", bob1);
  const auto start = clock.elapsed();
  receive(requestText(invite()), udpSource());
  advance(31990ms);
  EXPECT_EQ(upstream().back(), "SIP/2.0 100 Trying");
  advance(20ms);
  EXPECT_EQ(upstream().back(), "SIP/2.0 408 Request Timeout");
  EXPECT_EQ(sentTo("SIP/2.0 408", "192.0.2.10").at(0).at - start, 32000ms);  // 64*T1
}

TEST_F(ProxyTest, TimerCCancelsARingingBranchAndAnswers408) {
  settings.timerC = 181s;
  proxy = std::make_unique<proxy::Proxy>(clock, sender, transaction::LayerSettings{}, identity,
                                         registrar, settings);
  registerContact("bob", "sip:bob@192.168.1.20", bob1);
  receive(requestText(invite()), udpSource());
  const auto start = clock.elapsed();
  const auto forwarded = sent("INVITE ").at(0);
  advance(20s);
  answer(forwarded, 180, "Ringing", bob1);  // restarts Timer C
  advance(180s);
  EXPECT_EQ(sent("CANCEL ").size(), 0u);
  advance(2s);
  ASSERT_GE(sent("CANCEL ").size(), 1u);  // then Timer E retransmits it over UDP
  EXPECT_EQ(sent("CANCEL ").at(0).at - start, 201000ms);
  EXPECT_EQ(upstream().back(), "SIP/2.0 408 Request Timeout");
  EXPECT_EQ(proxy->counters().timerCFired, 1u);
}

TEST_F(ProxyTest, CallerCancelIsAnsweredHereAndCancelsEveryBranch) {
  registerContact("bob", "sip:bob@192.168.1.20", bob1);
  RequestSpec s = invite();
  receive(requestText(s), udpSource());
  const auto forwarded = sent("INVITE ").at(0);
  answer(forwarded, 180, "Ringing", bob1);
  RequestSpec cancel = s;
  cancel.method = "CANCEL";
  receive(requestText(cancel), udpSource());
  EXPECT_EQ(sentTo("SIP/2.0 200 OK", "192.0.2.10").size(), 1u);  // hop by hop
  ASSERT_EQ(sentTo("CANCEL ", "198.51.100.20").size(), 1u);
  answer(forwarded, 487, "Request Terminated", bob1);
  EXPECT_EQ(upstream().back(), "SIP/2.0 487 Request Terminated");
}

TEST_F(ProxyTest, CancelWithoutItsInviteIsPassedOnAndTheAnswerComesBack) {
  useRules(
      "rules:\n  - match: { host: gw.example.org }\n    forward: { to: ['sip:198.51.100.50:5060'] "
      "}\n");
  RequestSpec cancel = invite("sip:9123@gw.example.org");
  cancel.method = "CANCEL";
  receive(requestText(cancel), udpSource());
  const auto forwarded = sent("CANCEL ");
  ASSERT_EQ(forwarded.size(), 1u);
  EXPECT_EQ(transport::toString(forwarded[0].destination), "UDP 198.51.100.50:5060");
  answer(forwarded[0], 481, "Call/Transaction Does Not Exist", phoneFlow("198.51.100.50", 5060));
  EXPECT_EQ(upstream().back(), "SIP/2.0 481 Call/Transaction Does Not Exist");
}

TEST_F(ProxyTest, InDialogByeFollowsTheFlowTokensOfOurRecordRoute) {
  registerContact("bob", "sip:bob@192.168.1.20:5060", bob1);
  receive(requestText(invite()), udpSource());
  const std::string rr = parse(sent("INVITE ").at(0).bytes).recordRoutes().at(0).uri;

  // Alice hangs up: Route is our Record-Route, Request-URI Bob's (private) Contact.
  const RequestSpec bye =
      inDialog("BYE", "sip:bob@192.168.1.20:5060", "z9hG4bKbye1", {"<" + rr + ">"});
  receive(requestText(bye), udpSource());
  const auto toBob = sent("BYE ");
  ASSERT_EQ(toBob.size(), 1u);
  EXPECT_EQ(toBob[0].destination.remote, bob1.remote);
  sip::Message out = parse(toBob[0].bytes);
  EXPECT_TRUE(out.routes().empty());
  EXPECT_EQ(out.requestUri(), "sip:bob@192.168.1.20:5060");

  // Bob hangs up another call the same way: it goes to Alice's source address.
  RequestSpec back =
      inDialog("BYE", "sip:alice@10.0.0.5:5060", "z9hG4bKbye2", {"<" + rr + ">"}, "alicetag");
  back.sentBy = "192.168.1.20:5060";
  receive(requestText(back), bob1);
  EXPECT_EQ(sent("BYE ").at(1).destination.remote, udpSource().remote);
}

TEST_F(ProxyTest, AckFor2xxIsForwardedStatelessly) {
  registerContact("bob", "sip:bob@192.168.1.20:5060", bob1);
  receive(requestText(invite()), udpSource());
  const std::string rr = parse(sent("INVITE ").at(0).bytes).recordRoutes().at(0).uri;
  RequestSpec ack = inDialog("ACK", "sip:bob@192.168.1.20:5060", "z9hG4bKack1", {"<" + rr + ">"});
  ack.cseq = 314159;
  receive(requestText(ack), udpSource());
  receive(requestText(ack), udpSource());  // a retransmission: same branch again
  const auto acks = sent("ACK ");
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_EQ(acks[0].destination.remote, bob1.remote);
  EXPECT_EQ(parse(acks[0].bytes).topVia()->branch, parse(acks[1].bytes).topVia()->branch);
  EXPECT_EQ(proxy->counters().statelessForwarded, 2u);
}

TEST_F(ProxyTest, TcpCallerToUdpCalleeGetsTwoRecordRoutes) {
  registerContact("bob", "sip:bob@192.168.1.20:5060", bob1);
  const auto forwarded = inviteFromTcpCaller();
  ASSERT_EQ(forwarded.size(), 1u);
  const auto rr = parse(forwarded[0].bytes).recordRoutes();
  ASSERT_EQ(rr.size(), 2u);
  EXPECT_TRUE(sip::parseUri(rr[0].uri)->transport.empty());  // Bob's side: UDP
  EXPECT_EQ(sip::parseUri(rr[1].uri)->transport, "tcp");     // Alice's side
  EXPECT_EQ(parse(forwarded[0].bytes).topVia()->protocol, "UDP");

  // Alice's BYE (over TCP) pops both entries and reaches Bob over UDP.
  // The caller's route set is the Record-Route reversed.
  RequestSpec bye = inDialog("BYE", "sip:bob@192.168.1.20:5060", "z9hG4bKbye3",
                             {"<" + rr[1].uri + ">", "<" + rr[0].uri + ">"});
  bye.viaTransport = "TCP";
  receive(requestText(bye), tcpSource());
  const auto byes = sent("BYE ");
  ASSERT_EQ(byes.size(), 1u);
  EXPECT_EQ(byes[0].destination.protocol, Protocol::udp);
  EXPECT_TRUE(parse(byes[0].bytes).routes().empty());
}

// RFC 3261 §16.6 step 4 and RFC 5658: a TLS caller's request for a SIPS URI, to a UDP
// callee, is Record-Routed twice with SIPS URIs, the caller's side naming our TLS listener.
TEST_F(ProxyTest, SipsRequestFromATlsCallerGetsSipsRecordRoutes) {
  registerContact("bob", "sip:bob@192.168.1.20:5060", bob1);
  RequestSpec s = invite("sips:bob@biloxi.example.com");
  s.viaTransport = "TLS";
  const transport::Source tls{Protocol::tls, endpoint("203.0.113.1", 5061),
                              endpoint("192.0.2.10", 49153), 9};
  receive(requestText(s), tls);
  const auto forwarded = sent("INVITE ");
  ASSERT_EQ(forwarded.size(), 1u);
  const auto rr = parse(forwarded[0].bytes).recordRoutes();
  ASSERT_EQ(rr.size(), 2u);
  EXPECT_EQ(rr[0].uri.rfind("sips:203.0.113.1:5060;", 0), 0u) << rr[0].uri;
  EXPECT_EQ(rr[1].uri.rfind("sips:203.0.113.1:5061;transport=tls;", 0), 0u) << rr[1].uri;
  // A sip: request from the same caller keeps sip: entries.
  RequestSpec plain = invite();
  plain.viaTransport = "TLS";
  plain.callId = "plain-call";
  plain.branch = "z9hG4bKplain";
  receive(requestText(plain), tls);
  const auto second = sent("INVITE ");
  ASSERT_EQ(second.size(), 2u);
  EXPECT_EQ(parse(second[1].bytes).recordRoutes().at(0).uri.rfind("sip:", 0), 0u);
}

// RFC 5658 across TCP and TLS: a TCP caller's INVITE for a phone registered over TLS goes
// over the phone's own TLS connection with a tls Record-Route above the tcp one; the
// callee's BYE, routed by them, comes back to the caller over TCP.
TEST_F(ProxyTest, TcpCallerToTlsCalleeGetsTwoRecordRoutesAndTheByeCrossesBack) {
  const Source bobTls{Protocol::tls, endpoint("203.0.113.1", 5061),
                      endpoint("198.51.100.20", 40001), 12};
  registerContact("bob", "sip:bob@192.168.1.20:5061;transport=tls", bobTls);
  const auto forwarded = inviteFromTcpCaller();
  ASSERT_EQ(forwarded.size(), 1u);
  EXPECT_EQ(forwarded[0].destination.protocol, Protocol::tls);
  EXPECT_EQ(forwarded[0].destination.connectionId, 12u);
  EXPECT_EQ(parse(forwarded[0].bytes).topVia()->protocol, "TLS");
  const auto rr = parse(forwarded[0].bytes).recordRoutes();
  ASSERT_EQ(rr.size(), 2u);
  EXPECT_EQ(sip::parseUri(rr[0].uri)->transport, "tls");  // Bob's side
  EXPECT_EQ(sip::parseUri(rr[0].uri)->port, 5061);
  EXPECT_EQ(sip::parseUri(rr[1].uri)->transport, "tcp");  // Alice's side

  // Bob's BYE (over TLS), with the Record-Route as his route set, reaches Alice over TCP.
  RequestSpec bye = inDialog("BYE", "sip:alice@192.0.2.10:49152;transport=tcp", "z9hG4bKbye4",
                             {"<" + rr[0].uri + ">", "<" + rr[1].uri + ">"});
  bye.viaTransport = "TLS";
  bye.sentBy = "192.168.1.20:5061";
  receive(requestText(bye), bobTls);
  const auto byes = sent("BYE ");
  ASSERT_EQ(byes.size(), 1u);
  EXPECT_EQ(byes[0].destination.protocol, Protocol::tcp);
  // The flow token names Alice's flow; the transports find her connection by it.
  EXPECT_EQ(byes[0].destination.remote, tcpSource().remote);
  EXPECT_TRUE(parse(byes[0].bytes).routes().empty());
}

TEST_F(ProxyTest, TransportErrorOnABranchTriesTheNextSerialTarget) {
  registerContact("bob", "sip:bob@192.168.1.20", bob1, ";q=0.9");
  registerContact("bob", "sip:bob@192.168.1.21", bob2, ";q=0.1");
  receive(requestText(invite()), udpSource());
  sender.failLater(sender.count());  // the INVITE to bob1 could not be sent
  ASSERT_EQ(sentTo("INVITE ", "198.51.100.21").size(), 1u);
  answer(sentTo("INVITE ", "198.51.100.21").at(0), 200, "OK", bob2);
  EXPECT_EQ(upstream().back(), "SIP/2.0 200 OK");
}

TEST_F(ProxyTest, ForwardRuleFailsOverOn5xxButNotOn486) {
  forwardNinesTo("'sip:198.51.100.50:5060', 'sip:198.51.100.51:5070'");
  receive(requestText(invite("sip:9123@gw.example.org")), udpSource());
  const auto first = sent("INVITE ");
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(transport::toString(first[0].destination), "UDP 198.51.100.50:5060");
  EXPECT_EQ(parse(first[0].bytes).requestUri(), "sip:9123@gw.example.org");
  answer(first[0], 503, "Service Unavailable", phoneFlow("198.51.100.50", 5060));
  const auto second = sent("INVITE ");
  ASSERT_EQ(second.size(), 2u);
  EXPECT_EQ(transport::toString(second[1].destination), "UDP 198.51.100.51:5070");
  answer(second[1], 486, "Busy Here", phoneFlow("198.51.100.51", 5070));
  EXPECT_EQ(upstream().back(), "SIP/2.0 486 Busy Here");

  RequestSpec s = invite("sip:9456@gw.example.org");
  s.branch = "z9hG4bKsecond";
  s.callId = "second@call";
  receive(requestText(s), udpSource());
  answer(sent("INVITE ").back(), 486, "Busy Here", phoneFlow("198.51.100.50", 5060));
  EXPECT_EQ(sent("INVITE ").size(), 3u);  // no failover on a 486
  EXPECT_EQ(upstream().back(), "SIP/2.0 486 Busy Here");
}

// The proxy listening on 0.0.0.0 (issue 9): requests reach it at 203.0.113.1, and the
// kernel would send from 203.0.113.2 towards anything it was not contacted from.
class WildcardProxyTest : public ProxyTest {
 protected:
  WildcardProxyTest() {
    identity = proxy::LocalIdentity();
    identity.addName("biloxi.example.com");
    identity.addName(kProxyHost);
    identity.addName("203.0.113.2");
    identity.addListener(Protocol::udp, endpoint("0.0.0.0", 5060));
    identity.addListener(Protocol::tcp, endpoint("0.0.0.0", 5060));
    identity.setSourceResolver([](const transport::Endpoint&) {
      return std::optional(boost::asio::ip::make_address("203.0.113.2"));
    });
    restartWith(settings);
  }
};

TEST_F(WildcardProxyTest, RegisteredPhoneIsReachedFromTheAddressItRegisteredTo) {
  registerContact("bob", "sip:bob@192.168.1.20:5060", bob1);
  receive(requestText(invite()), udpSource());
  const auto forwarded = sent("INVITE ");
  ASSERT_EQ(forwarded.size(), 1u);
  EXPECT_EQ(forwarded[0].destination.local, endpoint(kProxyHost, 5060));
  sip::Message out = parse(forwarded[0].bytes);
  EXPECT_EQ(out.vias().at(0).host, kProxyHost);
  const auto rr = out.recordRoutes();
  ASSERT_EQ(rr.size(), 1u);
  EXPECT_EQ(sip::parseUri(rr[0].uri)->host, kProxyHost);
}

TEST_F(WildcardProxyTest, ForwardedElsewhereNamesTheRoutedAddressAndRecordRoutesBoth) {
  forwardNinesTo("'sip:198.51.100.50:5060'");
  receive(requestText(invite("sip:9123@gw.example.org")), udpSource());
  const auto forwarded = sent("INVITE ");
  ASSERT_EQ(forwarded.size(), 1u);
  EXPECT_EQ(forwarded[0].destination.local, endpoint("203.0.113.2", 5060));
  sip::Message out = parse(forwarded[0].bytes);
  EXPECT_EQ(out.vias().at(0).host, "203.0.113.2");
  const auto rr = out.recordRoutes();
  ASSERT_EQ(rr.size(), 2u);  // in by one address, out by another: one entry for each side
  EXPECT_EQ(sip::parseUri(rr[0].uri)->host, "203.0.113.2");
  EXPECT_EQ(sip::parseUri(rr[1].uri)->host, kProxyHost);
  // The answer comes back to the Via we wrote and goes on to Alice.
  answer(forwarded[0], 200, "OK", phoneFlow("198.51.100.50", 5060));
  EXPECT_EQ(upstream().back(), "SIP/2.0 200 OK");
}

TEST_F(ProxyTest, RejectRuleAnswersItsStatus) {
  useRules(
      "rules:\n  - match: { user: blocked }\n    reject: { status: 403, reason: Forbidden }\n");
  receive(requestText(invite("sip:blocked@biloxi.example.com")), udpSource());
  EXPECT_EQ(upstream().back(), "SIP/2.0 403 Forbidden");
}

TEST_F(ProxyTest, StrictRouterUpstreamIsUndone) {
  registerContact("bob", "sip:bob@192.168.1.20:5060", bob1);
  receive(requestText(invite()), udpSource());
  const std::string rr = parse(sent("INVITE ").at(0).bytes).recordRoutes().at(0).uri;
  // A strict router put our Record-Route URI into the Request-URI and the remote target
  // last in Route.
  const RequestSpec bye = inDialog("BYE", rr, "z9hG4bKstrict", {"<sip:bob@192.168.1.20:5060>"});
  receive(requestText(bye), udpSource());
  const auto byes = sent("BYE ");
  ASSERT_EQ(byes.size(), 1u);
  EXPECT_EQ(parse(byes[0].bytes).requestUri(), "sip:bob@192.168.1.20:5060");
  EXPECT_EQ(byes[0].destination.remote, bob1.remote);
}

TEST_F(ProxyTest, OptionsAndRegisterForUsAreAnsweredHere) {
  RequestSpec options;
  options.method = "OPTIONS";
  options.requestUri = "sip:203.0.113.1:5060";
  receive(requestText(options), udpSource());
  EXPECT_EQ(upstream().back(), "SIP/2.0 200 OK");
  EXPECT_EQ(proxy->counters().optionsAnswered, 1u);
}

// ---------------------------------------------------------------- no open relay (issue 8)

constexpr const char* kVictim = "198.51.100.99";

TEST_F(ProxyTest, PreloadedRouteToAnotherHostIsRefusedAndNothingIsSent) {
  RequestSpec s = invite("sip:victim@evil.example");
  s.routes = {"<sip:198.51.100.99:26999;lr>"};
  receive(requestText(s), udpSource());
  EXPECT_EQ(upstream().back(), "SIP/2.0 403 Preload Route denied");
  EXPECT_TRUE(sentTo("", kVictim).empty());
  EXPECT_EQ(proxy->counters().preloadedRoutesDenied, 1u);
  EXPECT_EQ(proxy->counters().requestsForwarded, 0u);
}

TEST_F(ProxyTest, PreloadedRouteBehindOurOwnRouteIsRefusedToo) {
  RequestSpec s = invite("sip:victim@evil.example");
  s.routes = {"<sip:203.0.113.1:5060;lr>", "<sip:198.51.100.99:26999;lr>"};
  receive(requestText(s), udpSource());
  EXPECT_EQ(upstream().back(), "SIP/2.0 403 Preload Route denied");
  EXPECT_TRUE(sentTo("", kVictim).empty());
}

TEST_F(ProxyTest, RejectRuleStillDecidesARequestWithAPreloadedRoute) {
  useRules("rules:\n  - match: { from_host: atlanta.example.com }\n    reject: { status: 603 }\n");
  RequestSpec s = invite("sip:victim@evil.example");
  s.routes = {"<sip:198.51.100.99:26999;lr>"};
  receive(requestText(s), udpSource());
  EXPECT_EQ(upstream().back(), "SIP/2.0 603 Decline");
  EXPECT_TRUE(sentTo("", kVictim).empty());
}

TEST_F(ProxyTest, TrustedSourceMayPreloadARoute) {
  proxy::ProxySettings trusting;
  trusting.trusted = {*transport::parseAddressBlock("192.0.2.0/24")};
  restartWith(trusting);
  RequestSpec s = invite("sip:carol@pstn.example");
  s.routes = {"<sip:198.51.100.99:26999;lr>"};
  receive(requestText(s), udpSource());
  const auto out = sentTo("INVITE ", kVictim);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].destination.remote.port, 26999);
}

TEST_F(ProxyTest, RuleMayAllowAPreloadedRoute) {
  useRules(
      "rules:\n  - match: { source: 192.0.2.10 }\n    location: {}\n"
      "    allow_preloaded_route: true\n");
  RequestSpec s = invite("sip:carol@pstn.example");
  s.routes = {"<sip:198.51.100.99:26999;lr>"};
  receive(requestText(s), udpSource());
  EXPECT_EQ(sentTo("INVITE ", kVictim).size(), 1u);
  s.branch = "z9hG4bKfromelsewhere";
  s.sentBy = "198.51.100.66:5060";
  receive(requestText(s), phoneFlow("198.51.100.66", 5060));  // another source: refused
  EXPECT_EQ(proxy->counters().preloadedRoutesDenied, 1u);
}

TEST_F(ProxyTest, ForgedFlowTokenIsRefusedAndNothingIsSent) {
  const std::string rr = callAndRecordRoute();
  const auto uri = sip::parseUri(rr);
  ASSERT_TRUE(uri);
  const std::string mac(*sip::uriParam(uri->params, proxy::kFlowMacParam));
  const std::vector<std::string> forgeries = {
      // wpb pointed at the victim, the MAC left as it was
      "<sip:203.0.113.1:5060;lr;wpa=udp~192.0.2.10~5060;wpb=udp~198.51.100.99~26999;wpm=" + mac +
          ">",
      // no MAC at all
      "<sip:203.0.113.1:5060;lr;wpa=udp~192.0.2.10~5060;wpb=udp~198.51.100.99~26999>",
      // a MAC of the right length that no secret of ours made
      "<sip:203.0.113.1:5060;lr;wpa=udp~192.0.2.10~5060;wpb=udp~198.51.100.99~26999;"
      "wpm=AAAAAAAAAAAAAAAA>",
  };
  int n = 0;
  for (const auto& route : forgeries) {
    const RequestSpec bye = inDialog("BYE", "sip:victim@198.51.100.99:26999",
                                     "z9hG4bKforged" + std::to_string(++n), {route});
    receive(requestText(bye), udpSource());
    EXPECT_EQ(upstream().back(), "SIP/2.0 403 Invalid Route Token") << route;
  }
  RequestSpec ack =
      inDialog("ACK", "sip:victim@198.51.100.99:26999", "z9hG4bKforgedack", {forgeries[0]});
  receive(requestText(ack), udpSource());
  EXPECT_TRUE(sentTo("", kVictim).empty());
  EXPECT_EQ(proxy->counters().routeTokensRejected, 4u);
}

TEST_F(ProxyTest, TokenFromAnotherDeploymentIsRefused) {
  const std::string rr = callAndRecordRoute();
  proxy::ProxySettings other;
  other.routeSecrets = {"a-different-secret-of-32-chars!!"};
  restartWith(other);
  const RequestSpec bye =
      inDialog("BYE", "sip:bob@192.168.1.20:5060", "z9hG4bKother", {"<" + rr + ">"});
  receive(requestText(bye), udpSource());
  EXPECT_EQ(upstream().back(), "SIP/2.0 403 Invalid Route Token");
}

TEST_F(ProxyTest, ValidTokenRoutesOnlyToAFlowItNames) {
  const std::string rr = callAndRecordRoute();
  // Alice aims the BYE of her own call at a victim: it still goes only to Bob.
  const RequestSpec aimed =
      inDialog("BYE", "sip:victim@198.51.100.99:26999", "z9hG4bKaimed", {"<" + rr + ">"});
  receive(requestText(aimed), udpSource());
  ASSERT_EQ(sent("BYE ").size(), 1u);
  EXPECT_EQ(sent("BYE ").at(0).destination.remote, bob1.remote);
  // A stranger holding the token: neither side of the call, next hop not in it.
  RequestSpec stranger =
      inDialog("BYE", "sip:victim@198.51.100.99:26999", "z9hG4bKstranger", {"<" + rr + ">"});
  stranger.sentBy = "198.51.100.66:5060";
  const Source strangerFlow = phoneFlow("198.51.100.66", 5060);
  receive(requestText(stranger), strangerFlow);
  EXPECT_TRUE(sentTo("", kVictim).empty());
  EXPECT_EQ(sent("BYE ").size(), 1u);
  EXPECT_EQ(proxy->counters().dialogRequestsRefused, 1u);
  const auto toStranger = sentTo("SIP/2.0 403", "198.51.100.66");
  ASSERT_EQ(toStranger.size(), 1u);
  EXPECT_EQ(firstLine(toStranger[0].bytes), "SIP/2.0 403 Route Token Not For This Request");
}

TEST_F(ProxyTest, CallerWhosePortChangedStillReachesTheCallee) {
  const std::string rr = callAndRecordRoute();
  const RequestSpec bye =
      inDialog("BYE", "sip:bob@192.168.1.20:5060", "z9hG4bKrebound", {"<" + rr + ">"});
  receive(requestText(bye), udpSource(5099));  // a NAT rebinding: same address, new port
  ASSERT_EQ(sent("BYE ").size(), 1u);
  EXPECT_EQ(sent("BYE ").at(0).destination.remote, bob1.remote);
}

TEST_F(ProxyTest, InDialogRequestWithoutOurRouteIsRoutedByTheRules) {
  const RequestSpec bye = inDialog("BYE", "sip:victim@198.51.100.99:26999", "z9hG4bKnoroute", {});
  receive(requestText(bye), udpSource());
  EXPECT_EQ(upstream().back(), "SIP/2.0 404 Not Found");
  RequestSpec routed = inDialog("BYE", "sip:victim@198.51.100.99:26999", "z9hG4bKforeign",
                                {"<sip:198.51.100.99:26999;lr>"});
  receive(requestText(routed), udpSource());
  EXPECT_EQ(upstream().back(), "SIP/2.0 403 Preload Route denied");
  EXPECT_TRUE(sentTo("", kVictim).empty());
}

TEST_F(ProxyTest, UserAtTheProxysAddressIsServedByTheDefaultDomain) {
  registerContact("bob", "sip:bob@192.168.1.20:5060", bob1);
  receive(requestText(invite("sip:bob@203.0.113.1")), udpSource());
  const auto out = sent("INVITE ");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].destination.remote, bob1.remote);
}

TEST_F(ProxyTest, RegistrationToTheProxysAddressBindsTheDefaultDomain) {
  receive(
      "REGISTER sip:203.0.113.1 SIP/2.0\r\n"
      "Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bKregip;rport\r\n"
      "Max-Forwards: 70\r\nFrom: <sip:carol@203.0.113.1>;tag=ip1\r\n"
      "To: <sip:carol@203.0.113.1>\r\nCall-ID: regip@phone\r\nCSeq: 1 REGISTER\r\n"
      "Contact: <sip:carol@192.168.1.20:5060>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n",
      bob1);
  ASSERT_EQ(firstLine(sender.last().bytes), "SIP/2.0 200 OK");
  EXPECT_EQ(store.lookup("sip:carol@biloxi.example.com").size(), 1u);
  receive(requestText(invite("sip:carol@biloxi.example.com")), udpSource());
  EXPECT_EQ(sent("INVITE ").size(), 1u);
}

TEST_F(ProxyTest, RegistrationWhoseContactIsTheProxyItselfIsRefused) {
  receive(
      "REGISTER sip:biloxi.example.com SIP/2.0\r\n"
      "Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bKregself;rport\r\n"
      "Max-Forwards: 70\r\nFrom: <sip:bob@biloxi.example.com>;tag=self1\r\n"
      "To: <sip:bob@biloxi.example.com>\r\nCall-ID: regself@phone\r\nCSeq: 1 REGISTER\r\n"
      "Contact: <sip:bob@203.0.113.1:5060>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n",
      bob1);
  EXPECT_EQ(firstLine(sender.last().bytes), "SIP/2.0 403 Contact Must Not Point To This Server");
  EXPECT_TRUE(store.lookup("sip:bob@biloxi.example.com").empty());
}

TEST_F(ProxyTest, ResponsesMadeHereCarryNoServerHeaderUnlessConfigured) {
  receive(requestText(invite("sip:nobody@biloxi.example.com")), udpSource());
  EXPECT_EQ(upstream().back(), "SIP/2.0 404 Not Found");
  EXPECT_FALSE(parse(sentTo("SIP/2.0 404", "192.0.2.10").at(0).bytes).hasHeader("Server"));

  proxy::ProxySettings named;
  named.serverHeader = "edge-1";
  restartWith(named);
  RequestSpec again = invite("sip:nobody@biloxi.example.com");
  again.branch = "z9hG4bKserverheader";
  receive(requestText(again), udpSource());
  const auto responses = sentTo("SIP/2.0 404", "192.0.2.10");
  ASSERT_EQ(responses.size(), 2u);
  EXPECT_EQ(parse(responses[1].bytes).headerValues("Server"), std::vector<std::string>{"edge-1"});
}

TEST(RouteTokenSigner, SignsBothFlowsAndAcceptsEveryConfiguredSecret) {
  using proxy::RouteTokenSigner;
  const proxy::DialogFlows flows{proxy::Flow{Protocol::udp, endpoint("192.0.2.10", 5060)},
                                 proxy::Flow{Protocol::tcp, endpoint("198.51.100.20", 40000)}};
  const RouteTokenSigner old({"the-old-secret-0123456789"});
  const std::string params = old.uriParams(flows);
  EXPECT_EQ(params.substr(0, 49), ";wpa=udp~192.0.2.10~5060;wpb=tcp~198.51.100.20~40");
  const std::string mac(*sip::uriParam(params.substr(1), proxy::kFlowMacParam));
  EXPECT_EQ(mac.size(), 16u);
  EXPECT_EQ(
      mac.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
      std::string::npos);

  const RouteTokenSigner rotated({"the-new-secret-0123456789", "the-old-secret-0123456789"});
  const auto verdict = rotated.verify(params.substr(1));
  EXPECT_EQ(verdict.check, RouteTokenSigner::Check::valid);
  EXPECT_EQ(verdict.flows.callee, flows.callee);
  EXPECT_EQ(verdict.flows.caller, flows.caller);
  EXPECT_NE(rotated.uriParams(flows), params);  // the new secret signs

  const RouteTokenSigner retired({"the-new-secret-0123456789"});
  EXPECT_EQ(retired.verify(params.substr(1)).check, RouteTokenSigner::Check::invalid);
  EXPECT_EQ(old.verify("lr;transport=tcp").check, RouteTokenSigner::Check::absent);
  std::string swapped = params.substr(1);
  swapped.replace(swapped.find("40000"), 5, "40001");
  EXPECT_EQ(old.verify(swapped).check, RouteTokenSigner::Check::invalid);
  EXPECT_THROW(RouteTokenSigner({"short"}), std::invalid_argument);
  EXPECT_THROW(RouteTokenSigner({}), std::invalid_argument);
}

TEST(BestResponse, FollowsSection16_7Step6) {
  using proxy::betterFinalResponse;
  EXPECT_TRUE(betterFinalResponse(603, false, 486, false));
  EXPECT_TRUE(betterFinalResponse(486, false, 503, false));
  EXPECT_TRUE(betterFinalResponse(302, false, 404, false));
  EXPECT_TRUE(betterFinalResponse(401, false, 486, false));
  EXPECT_TRUE(betterFinalResponse(408, false, 408, true));
  EXPECT_FALSE(betterFinalResponse(486, false, 404, false));  // a tie keeps the first
  EXPECT_FALSE(betterFinalResponse(500, false, 603, false));
}

// Issue 8, found by fuzz_core: a header line starting with a bare CR ended sofia's header
// block early; the INVITE was forwarded, timed out, and the proxy could not re-parse the
// stored request to build its 408, so the server transaction stayed for ever. Such a
// message is now unparseable (dropped and counted by the dispatcher), never forwarded.
TEST_F(ProxyTest, Issue8BareCrInHeadersIsUnparseableNotForwarded) {
  const std::string bytes =
      "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
      "Via: SIp/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n"
      "Max-Forwards: 70\r\n"
      "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
      "To: Bob <sip:bob@biloxi.example.com>\r\n"
      "Call-ID: a84b4c76e66710@pc33.atla)nta.example.com\r\n"
      "CSeq: 1 INVITE\r\n"
      "Contact: <sip:alice@192.0.2.10:5060>\r\n"
      "Content-Type: application/sdp\r\n"
      "Content-Length: 9\n"
      "\r4\r\n"
      "v=0\r\n"
      "o=alice 1 1 IN IP4 192.0.2.10\r\n"
      "s=-\r\n"
      "c=IN IP4 INVITE192.0.2.10\r\n"
      "t=0 0\r\n"
      "\r\n"
      "\r\n"
      "m=audio 49170 ";
  const sip::ParseResult parsed = sip::Message::parse(bytes);
  EXPECT_FALSE(parsed.message.has_value());
  EXPECT_EQ(parsed.error, "Bare CR in headers");
}

}  // namespace
}  // namespace waypoint::testkit
