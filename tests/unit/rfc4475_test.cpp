// Every RFC 4475 §3.1 message (tests/data/rfc4475/) through the Dispatcher, the daemon's
// own entry point for bytes from the network, with the real proxy, registrar and
// transaction layer behind it and a recording sender: each valid request reaches the
// registered contact with its odd forms intact, each invalid one gets the status the RFC
// asks for (with a reason naming the problem) or is dropped, and none is ever forwarded.
// Issue 8, "Correct on torture input".

#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>

#include "fakes.hpp"
#include "waypoint/app/dispatcher.hpp"
#include "waypoint/proxy/proxy.hpp"
#include "waypoint/registrar/location_store.hpp"
#include "waypoint/registrar/registrar.hpp"

namespace waypoint::testkit {
namespace {

using transport::Protocol;
using transport::Source;

// Where the registered contacts are; nothing outside it may ever receive a request.
constexpr const char* kContactHost = "198.51.100.7";
constexpr std::uint16_t kContactPort = 5070;

std::string rfc4475(const std::string& name) {
  const std::string path =
      std::string(WAYPOINT_SOURCE_DIR) + "/tests/data/rfc4475/" + name + ".sip";
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::string bytes(std::istreambuf_iterator<char>(in), {});
  if (name == "mpart01") {
    // Its Route names 127.0.0.1:5080, another proxy: mpart01 is about its binary body,
    // not about preloaded Routes (whose policy is not RFC 4475's), so the Route goes.
    const std::string route = "Route: <sip:127.0.0.1:5080>\r\n";
    const std::size_t at = bytes.find(route);
    EXPECT_NE(at, std::string::npos);
    if (at != std::string::npos) bytes.erase(at, route.size());
  }
  return bytes;
}

enum class Outcome {
  proxied,     // a request forwarded to the contact registered for its Request-URI
  registered,  // a REGISTER taken by the registrar (200 OK), nothing forwarded
  response,    // a response that parses and validates (then dropped as stray: not our Via)
  rejected,    // a request answered with `status` and a reason naming the problem
  dropped,     // a message no response can be given to: dropped and counted
};

struct Case {
  const char* name;     // file under tests/data/rfc4475/
  const char* section;  // RFC 4475
  Outcome outcome;
  int status = 0;                   // rejected: the status line's code
  const char* reason = "";          // rejected: a word the reason phrase must contain
  std::vector<std::string> kept{};  // proxied: bytes the forwarded request still carries
};

std::ostream& operator<<(std::ostream& out, const Case& c) {
  return out << c.name << " (RFC 4475 §" << c.section << ")";
}

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      // §3.1.1 Valid messages.
      {"wsinv",
       "3.1.1.1",
       Outcome::proxied,
       0,
       "",
       {"NewFangledHeader:   newfangled value\r\n continued newfangled value\r\n",
        "UnknownHeaderWithUnusualValue: ;;,,;;,;\r\n",
        "from   : \"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = "
        "98asjd8\r\n",
        "\r\n\r\nv=0\r\n"}},
      {"intmeth",
       "3.1.1.2",
       Outcome::proxied,
       0,
       "",
       {"!interesting-Method0123456789_*+`.%indeed'~ sip:",
        "CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~\r\n",
        std::string("To: \"BEL:\\\x07 NUL:\\\0 DEL:\\\x7f\" <sip:1_unusual.URI~", 31),
        "extensionHeader-!.%*+_`'~:\xEF\xBB\xBF\xE5\xA4\xA7\xE5\x81\x9C\xE9\x9B\xBB\r\n",
        "Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{\r\n"}},
      {"esc01",
       "3.1.1.3",
       Outcome::proxied,
       0,
       "",
       {"To: sip:%75se%72@example.com\r\n", "From: <sip:I%20have%20spaces@example.net>;tag=938\r\n",
        "<sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>\r\n"}},
      {"escnull", "3.1.1.4", Outcome::registered},
      {"esc02",
       "3.1.1.5",
       Outcome::proxied,
       0,
       "",
       {"RE%47IST%45R sip:", "CSeq: 29344 RE%47IST%45R\r\n",
        "C%6Fntact: <sip:alias2@host2.example.com>\r\n", "branch=z9hG4bK209%fzsnel234"}},
      {"lwsdisp",
       "3.1.1.6",
       Outcome::proxied,
       0,
       "",
       {"From: caller<sip:caller@example.com>;tag=323\r\n"}},
      {"longreq",
       "3.1.1.7",
       Outcome::proxied,
       0,
       "",
       {"Call-ID: longreq.onereallyreallyreally", "v: SIP/2.0/TCP sip32.example.com\r\n",
        "V  : SIP/2.0/TCP sip20.example.com\r\n", "Via: SIP/2.0/TCP sip1.example.com\r\n"}},
      {"dblreq", "3.1.1.8", Outcome::registered},
      {"semiuri",
       "3.1.1.9",
       Outcome::proxied,
       0,
       "",
       {"Accept: application/sdp, application/pkcs7-mime,\r\n        multipart/mixed, "
        "multipart/signed,\r\n        message/sip, message/sipfrag\r\n"}},
      {"transports",
       "3.1.1.10",
       Outcome::proxied,
       0,
       "",
       {"Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf\r\n",
        "Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en\r\n"}},
      {"mpart01",
       "3.1.1.11",
       Outcome::proxied,
       0,
       "",
       {"Content-Type: multipart/mixed;boundary=7a9cbec02ceef655\r\n"}},
      {"unreason", "3.1.1.12", Outcome::response},
      {"noreason", "3.1.1.13", Outcome::response},
      // §3.1.2 Invalid messages.
      // Its only Via does not parse: there is nowhere to send the 400 the RFC asks for.
      {"badinv01", "3.1.2.1", Outcome::dropped},
      {"clerr", "3.1.2.2", Outcome::rejected, 400, "Content-Length"},
      {"ncl", "3.1.2.3", Outcome::rejected, 400, "Content-Length"},
      {"scalar02", "3.1.2.4", Outcome::rejected, 400, "CSeq"},
      {"scalarlg", "3.1.2.5", Outcome::dropped},
      {"quotbal", "3.1.2.6", Outcome::rejected, 400, "To"},
      {"ltgtruri", "3.1.2.7", Outcome::rejected, 400, "Request-URI"},
      {"lwsruri", "3.1.2.8", Outcome::rejected, 400, "Request-Line"},
      {"lwsstart", "3.1.2.9", Outcome::rejected, 400, "Request-Line"},
      {"trws", "3.1.2.10", Outcome::rejected, 400, "Request-Line"},
      {"escruri", "3.1.2.11", Outcome::rejected, 400, "Request-URI"},
      {"baddate", "3.1.2.12", Outcome::rejected, 400, "Date"},
      {"regbadct", "3.1.2.13", Outcome::rejected, 400, "Contact"},
      {"badaspec", "3.1.2.14", Outcome::rejected, 400, "To"},
      {"baddn", "3.1.2.15", Outcome::rejected, 400, "From"},
      {"badvers", "3.1.2.16", Outcome::rejected, 505, "Version"},
      {"mismatch01", "3.1.2.17", Outcome::rejected, 400, "CSeq"},
      {"mismatch02", "3.1.2.18", Outcome::rejected, 400, "CSeq"},
      {"bigcode", "3.1.2.19", Outcome::dropped},
  };
  return all;
}

// The Request-URIs of the valid requests, each registered at the contact.
std::vector<std::string> registeredUris() {
  std::ifstream in(std::string(WAYPOINT_SOURCE_DIR) + "/tests/data/rfc4475/registered-uris.txt");
  std::vector<std::string> uris;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) uris.push_back(line);
  }
  EXPECT_EQ(uris.size(), 7u);
  return uris;
}

class Rfc4475Test : public ::testing::TestWithParam<Case> {
 protected:
  Rfc4475Test() {
    // Every domain the messages name is ours, and so is wsinv's Route host: the RFC wants
    // these requests proxied, which needs a Request-URI we serve.
    for (const char* name : {"example.com", "example.net", "example.org", "chair-dnrc.example.com",
                             "registrar.example.com", "services.example.com"}) {
      identity.addName(name);
    }
    identity.addListener(Protocol::udp, endpoint("203.0.113.1", 5060));
    proxy = std::make_unique<proxy::Proxy>(clock, sender, transaction::LayerSettings{}, identity,
                                           registrar, proxy::ProxySettings{});
    dispatcher = std::make_unique<app::Dispatcher>(sender, *proxy, sip::ParseLimits{});
    for (const auto& aor : registeredUris()) {
      registrar::Binding binding;
      binding.contact =
          "sip:phone@" + std::string(kContactHost) + ":" + std::to_string(kContactPort);
      binding.expiresAt = clock.now() + std::chrono::hours(1);
      binding.flow = Source{Protocol::udp, endpoint("203.0.113.1", 5060),
                            endpoint(kContactHost, kContactPort), 0};
      const std::string canonical = registrar::canonicalAor(aor);
      EXPECT_FALSE(canonical.empty()) << aor;
      store.replace(canonical, {binding});
    }
  }

  std::vector<SentMessage> requestsSent() const { return sentWhere(false); }
  std::vector<SentMessage> responsesSent() const { return sentWhere(true); }
  std::vector<SentMessage> sentWhere(bool responses) const {
    std::vector<SentMessage> matching;
    for (const auto& m : sender.sent()) {
      if (std::string_view(m.bytes).starts_with("SIP/2.0 ") == responses) matching.push_back(m);
    }
    return matching;
  }

  FakeClock clock;
  FakeSender sender{clock};
  proxy::LocalIdentity identity;
  registrar::InMemoryLocationStore store;
  registrar::Registrar registrar{store,
                                 {"example.com", "example.net", "example.org",
                                  "chair-dnrc.example.com", "registrar.example.com"},
                                 registrar::RegistrarSettings{}};
  std::unique_ptr<proxy::Proxy> proxy;
  std::unique_ptr<app::Dispatcher> dispatcher;
  const Source from =
      Source{Protocol::udp, endpoint("203.0.113.1", 5060), endpoint("192.0.2.99", 5060), 0};
};

TEST_P(Rfc4475Test, GetsTheOutcomeTheRfcAsksOfAProxy) {
  const Case& c = GetParam();
  const std::string bytes = rfc4475(c.name);
  ASSERT_FALSE(bytes.empty());
  dispatcher->onMessage(from, bytes);
  const auto& counters = dispatcher->counters();

  // Whatever the message, no request goes anywhere but the registered contact.
  for (const auto& m : requestsSent()) {
    EXPECT_EQ(m.destination.remote.address.to_string(), kContactHost) << firstLine(m.bytes);
  }
  switch (c.outcome) {
    case Outcome::proxied: {
      const auto requests = requestsSent();
      ASSERT_EQ(requests.size(), 1u) << "not forwarded";
      const std::string& out = requests.front().bytes;
      EXPECT_EQ(requests.front().destination.remote.port, kContactPort);
      EXPECT_EQ(counters.requestsMalformed, 0u);
      for (const auto& kept : c.kept) {
        EXPECT_NE(out.find(kept), std::string::npos) << "lost: " << kept << "\nin:\n" << out;
      }
      // An INVITE server transaction answers 100 at once (RFC 3261 §16.2); an extension
      // method is a non-INVITE request and gets none.
      const bool invite = bytes.starts_with("INVITE ");
      EXPECT_EQ(responsesSent().size(), invite ? 1u : 0u);
      if (invite) {
        EXPECT_EQ(firstLine(responsesSent().front().bytes), "SIP/2.0 100 Trying");
      }
      // The body goes on byte for byte (mpart01's is binary).
      const std::size_t inBody = bytes.find("\r\n\r\n");
      const std::size_t outBody = out.find("\r\n\r\n");
      ASSERT_NE(outBody, std::string::npos);
      EXPECT_EQ(out.substr(outBody), bytes.substr(inBody));
      break;
    }
    case Outcome::registered: {
      EXPECT_TRUE(requestsSent().empty());
      const auto responses = responsesSent();
      ASSERT_EQ(responses.size(), 1u);
      EXPECT_EQ(firstLine(responses.front().bytes), "SIP/2.0 200 OK");
      break;
    }
    case Outcome::response:
      EXPECT_EQ(counters.responsesReceived.total(), 1u);
      EXPECT_EQ(counters.responsesDropped, 0u) << "valid response refused";
      EXPECT_TRUE(sender.sent().empty()) << "a stray response with a Via not ours is not sent on";
      break;
    case Outcome::rejected: {
      EXPECT_TRUE(requestsSent().empty());
      const auto responses = responsesSent();
      ASSERT_EQ(responses.size(), 1u) << "unparseable: " << counters.messagesUnparseable;
      const std::string line = firstLine(responses.front().bytes);
      EXPECT_TRUE(line.starts_with("SIP/2.0 " + std::to_string(c.status) + " ")) << line;
      EXPECT_NE(line.find(c.reason), std::string::npos) << line;
      EXPECT_EQ(counters.requestsMalformed, 1u);
      break;
    }
    case Outcome::dropped:
      EXPECT_TRUE(sender.sent().empty());
      EXPECT_EQ(counters.messagesUnparseable + counters.requestsDropped + counters.responsesDropped,
                1u);
      break;
  }
}

// SOFIA-NOTES trap 7: a short extension method that starts like a known one was dropped
// as unparseable; it is proxied, as a non-INVITE request (no 100), under its own name.
TEST_F(Rfc4475Test, ShortExtensionMethodIsProxiedAsNonInvite) {
  const std::string request =
      "NEW-M sip:user@example.com SIP/2.0\r\n"
      "Via: SIP/2.0/UDP 192.0.2.99:5060;branch=z9hG4bKnewm1\r\n"
      "Max-Forwards: 70\r\nFrom: <sip:caller@example.net>;tag=n1\r\n"
      "To: <sip:user@example.com>\r\nCall-ID: newm1@192.0.2.99\r\n"
      "CSeq: 7 NEW-M\r\nContent-Length: 0\r\n\r\n";
  dispatcher->onMessage(from, request);
  const auto requests = requestsSent();
  ASSERT_EQ(requests.size(), 1u) << dispatcher->counters().messagesUnparseable;
  EXPECT_TRUE(requests.front().bytes.starts_with("NEW-M sip:phone@198.51.100.7:5070 SIP/2.0\r\n"))
      << requests.front().bytes;
  EXPECT_NE(requests.front().bytes.find("CSeq: 7 NEW-M\r\n"), std::string::npos);
  EXPECT_TRUE(responsesSent().empty());
}

// Issue 8: a folded line right after the Request-Line has no header to continue; such a
// request was forwarded, it is refused.
TEST_F(Rfc4475Test, ContinuationLineAfterRequestLineIsRefusedNotForwarded) {
  const std::string request =
      "OPTIONS sip:user@example.com SIP/2.0\r\n"
      " Via: SIP/2.0/UDP 192.0.2.98:5060;branch=z9hG4bKfold0\r\n"
      "Via: SIP/2.0/UDP 192.0.2.99:5060;branch=z9hG4bKfold1\r\n"
      "Max-Forwards: 70\r\nFrom: <sip:caller@example.net>;tag=f1\r\n"
      "To: <sip:user@example.com>\r\nCall-ID: fold1@192.0.2.99\r\n"
      "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
  dispatcher->onMessage(from, request);
  EXPECT_TRUE(requestsSent().empty());
  const auto responses = responsesSent();
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_EQ(firstLine(responses.front().bytes),
            "SIP/2.0 400 Continuation line after the start line");
}

INSTANTIATE_TEST_SUITE_P(AllOfSection3_1, Rfc4475Test, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& param) {
                           return std::string(param.param.name);
                         });

}  // namespace
}  // namespace waypoint::testkit
