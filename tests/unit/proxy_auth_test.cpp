// Admission through digest authentication (issue 10), through the proxy and its
// transaction layer with a fake clock and a user store that answers later: challenges,
// the request resuming when the lookup completes, identical answers for unknown users
// and wrong passwords, identity checks, credentials removed, the back-off holding
// answers, CANCEL while a lookup is pending. Addresses are documentation ranges.

#include <deque>
#include <memory>
#include <set>

#include "fakes.hpp"
#include "waypoint/auth/authenticator.hpp"
#include "waypoint/proxy/proxy.hpp"
#include "waypoint/registrar/location_store.hpp"
#include "waypoint/registrar/registrar.hpp"

namespace waypoint::testkit {
namespace {

using transport::Protocol;
using transport::Source;

constexpr const char* kRealm = "biloxi.example.com";

// A store whose lookups complete only when the test says so, as a database's would.
class LaterUserStore final : public auth::UserStore {
 public:
  void add(const std::string& user, const std::string& password) {
    auth::UserRecord record;
    record.user = user;
    record.realm = kRealm;
    record.ha1Md5 = auth::ha1(auth::Algorithm::md5, user, kRealm, password);
    record.ha1Sha256 = auth::ha1(auth::Algorithm::sha256, user, kRealm, password);
    users_[user] = record;
  }
  void lookup(std::string_view, std::string_view user, Done done) override {
    pending_.emplace_back(std::string(user), std::move(done));
  }
  std::size_t pending() const { return pending_.size(); }
  void answerAll() {
    while (!pending_.empty()) {
      auto [user, done] = std::move(pending_.front());
      pending_.pop_front();
      const auto found = users_.find(user);
      done(found == users_.end() ? std::nullopt : std::optional<auth::UserRecord>(found->second));
    }
  }

 private:
  std::map<std::string, auth::UserRecord> users_;
  std::deque<std::pair<std::string, Done>> pending_;
};

class FakeWallClock final : public auth::WallClock {
 public:
  auth::WallTime now() const override { return now_; }
  void advance(std::chrono::seconds by) { now_ += by; }

 private:
  auth::WallTime now_ = auth::WallTime{} + std::chrono::hours(24 * 365 * 56);
};

std::string headerOf(const std::string& bytes, std::string_view name) {
  const auto values = parse(bytes).headerValues(name);
  return values.empty() ? std::string() : values.front();
}

std::string paramOf(std::string_view challenge, std::string_view name) {
  const std::string key = std::string(name) + "=\"";
  const auto at = challenge.find(key);
  if (at == std::string_view::npos) return {};
  const auto start = at + key.size();
  return std::string(challenge.substr(start, challenge.find('"', start) - start));
}

std::set<std::string> headerNames(const std::string& bytes) {
  std::set<std::string> names;
  std::string_view text(bytes);
  text.remove_prefix(text.find("\r\n") + 2);
  while (!text.empty() && !text.starts_with("\r\n")) {
    names.emplace(text.substr(0, text.find(':')));
    text.remove_prefix(text.find("\r\n") + 2);
  }
  return names;
}

class ProxyAuthTest : public ::testing::Test {
 protected:
  ProxyAuthTest() {
    identity.addName(kRealm);
    identity.addListener(Protocol::udp, endpoint("203.0.113.1", 5060));
    users.add("alice", "alice-secret");
    users.add("bob", "bob-secret");
    auth::AuthSettings authSettings;
    authSettings.failures.freeFailures = 2;
    authSettings.failures.backoff = 1000ms;
    authenticator = std::make_unique<auth::Authenticator>(
        users, std::vector<std::string>{"a nonce secret of thirty-two b"}, wall, nullptr,
        authSettings);
    settings.trusted = {*transport::parseAddressBlock("198.51.100.99/32")};
    proxy = std::make_unique<proxy::Proxy>(clock, sender, transaction::LayerSettings{}, identity,
                                           registrar, settings, authenticator.get());
  }

  registrar::RegistrarSettings registrarSettings() {
    registrar::RegistrarSettings s;
    s.defaultDomain = kRealm;
    s.isThisServer = [this](const sip::Uri& uri) { return identity.isThisServer(uri); };
    return s;
  }

  void receive(const std::string& bytes, const Source& source) {
    sip::Message message = parse(bytes);
    message.setTopViaReceived(source.remote.address.to_string(), source.remote.port);
    proxy->transactions().receiveRequest(message, source);
  }

  // A request from `user`'s phone; `credentials` is a whole header line or empty.
  static std::string request(const std::string& method, const std::string& user,
                             const std::string& to, const std::string& branch,
                             const std::string& credentials = "") {
    const std::string uri =
        method == "REGISTER" ? "sip:biloxi.example.com" : "sip:" + to + "@biloxi.example.com";
    return method + " " + uri +
           " SIP/2.0\r\n"
           "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK" +
           branch +
           "\r\n"
           "Max-Forwards: 70\r\n"
           "From: <sip:" +
           user + "@biloxi.example.com>;tag=f" + branch + "\r\nTo: <sip:" + to +
           "@biloxi.example.com>\r\n"
           "Call-ID: call-" +
           branch + "\r\nCSeq: 1 " + method +
           "\r\n"
           "Contact: <sip:" +
           user + "@192.0.2.10:5060>\r\n" + credentials + "Content-Length: 0\r\n\r\n";
  }

  // The credentials line answering `challenge` (a WWW-/Proxy-Authenticate value).
  static std::string credentialsFor(const std::string& challenge, const std::string& header,
                                    const std::string& method, const std::string& uri,
                                    const std::string& user, const std::string& password,
                                    auth::Algorithm algorithm, const std::string& nc = "00000001",
                                    const std::string& realm = kRealm) {
    auth::Credentials c;
    c.username = user;
    c.realm = realm;
    c.nonce = paramOf(challenge, "nonce");
    c.uri = uri;
    c.cnonce = "0a4f113b";
    c.nc = nc;
    c.qop = "auth";
    c.algorithm = std::string(auth::algorithmName(algorithm));
    c.response =
        auth::expectedResponse(algorithm, auth::ha1(algorithm, user, realm, password), c, method);
    return header + ": Digest username=\"" + user + "\", realm=\"" + realm + "\", nonce=\"" +
           c.nonce + "\", uri=\"" + uri + "\", response=\"" + c.response +
           "\", algorithm=" + c.algorithm + ", cnonce=\"" + c.cnonce + "\", qop=auth, nc=" + nc +
           "\r\n";
  }

  std::vector<SentMessage> sent(std::string_view prefix) const {
    std::vector<SentMessage> matching;
    for (const auto& m : sender.sent()) {
      if (std::string_view(m.bytes).starts_with(prefix)) matching.push_back(m);
    }
    return matching;
  }
  std::string lastResponse() const { return sent("SIP/2.0 ").back().bytes; }

  // REGISTER as `user` with `password`: the challenge, then the answer to it.
  std::string registerAs(const std::string& user, const std::string& password,
                         const std::string& branch, const Source& from) {
    receive(request("REGISTER", user, user, branch + "a"), from);
    return answerChallenge(headerOf(lastResponse(), "WWW-Authenticate"), user, password,
                           branch + "b", from);
  }
  // An INVITE from fromUser to toUser from `phone`: its 407, then the INVITE again with
  // `user`'s credentials (the store has not answered yet).
  void inviteWithCredentials(const std::string& fromUser, const std::string& toUser,
                             const std::string& branch, const std::string& user,
                             const std::string& password) {
    receive(request("INVITE", fromUser, toUser, branch + "a"), phone);
    const std::string challenge = headerOf(lastResponse(), "Proxy-Authenticate");
    receive(request("INVITE", fromUser, toUser, branch + "b",
                    credentialsFor(challenge, "Proxy-Authorization", "INVITE",
                                   "sip:" + toUser + "@biloxi.example.com", user, password,
                                   auth::Algorithm::sha256)),
            phone);
  }
  // A REGISTER answering `challenge` as `user` with `password`; the store answers.
  std::string answerChallenge(const std::string& challenge, const std::string& user,
                              const std::string& password, const std::string& branch,
                              const Source& from,
                              auth::Algorithm algorithm = auth::Algorithm::sha256) {
    receive(request("REGISTER", user, user, branch,
                    credentialsFor(challenge, "Authorization", "REGISTER", "sip:biloxi.example.com",
                                   user, password, algorithm)),
            from);
    users.answerAll();
    return lastResponse();
  }

  FakeClock clock;
  FakeSender sender{clock};
  FakeWallClock wall;
  LaterUserStore users;
  std::unique_ptr<auth::Authenticator> authenticator;
  proxy::LocalIdentity identity;
  registrar::InMemoryLocationStore store;
  registrar::Registrar registrar{store, {kRealm}, registrarSettings()};
  proxy::ProxySettings settings;
  std::unique_ptr<proxy::Proxy> proxy;
  const Source phone{Protocol::udp, endpoint("203.0.113.1", 5060), endpoint("192.0.2.10", 5060), 0};
  const Source otherPhone{Protocol::udp, endpoint("203.0.113.1", 5060),
                          endpoint("192.0.2.11", 5060), 0};
};

TEST_F(ProxyAuthTest, RegisterWithoutCredentialsIsChallengedWithSha256ThenMd5) {
  receive(request("REGISTER", "alice", "alice", "r1"), phone);
  const std::string answer = lastResponse();
  EXPECT_EQ(firstLine(answer), "SIP/2.0 401 Unauthorized");
  const auto challenges = parse(answer).headerValues("WWW-Authenticate");
  ASSERT_EQ(challenges.size(), 2u);
  EXPECT_NE(challenges[0].find("algorithm=SHA-256"), std::string::npos);
  EXPECT_NE(challenges[1].find("algorithm=MD5"), std::string::npos);
  EXPECT_EQ(paramOf(challenges[0], "realm"), kRealm);
  EXPECT_EQ(paramOf(challenges[0], "qop"), "auth");
  EXPECT_EQ(users.pending(), 0u);  // nothing to look up without credentials
}

TEST_F(ProxyAuthTest, RegistrationWaitsForTheStoreAndResumesWhenItAnswers) {
  receive(request("REGISTER", "alice", "alice", "r1"), phone);
  const std::string challenge = headerOf(lastResponse(), "WWW-Authenticate");
  const std::size_t before = sender.sent().size();
  receive(request("REGISTER", "alice", "alice", "r2",
                  credentialsFor(challenge, "Authorization", "REGISTER", "sip:biloxi.example.com",
                                 "alice", "alice-secret", auth::Algorithm::sha256)),
          phone);
  EXPECT_EQ(sender.sent().size(), before);  // parked: the lookup has not answered
  EXPECT_EQ(proxy->counters().waitingRequests, 1u);
  users.answerAll();
  EXPECT_EQ(firstLine(lastResponse()), "SIP/2.0 200 OK");
  EXPECT_EQ(store.lookup("sip:alice@biloxi.example.com").size(), 1u);
  EXPECT_EQ(proxy->counters().waitingRequests, 0u);
  EXPECT_EQ(authenticator->counters().successes, 1u);
}

TEST_F(ProxyAuthTest, Md5CredentialsAreAcceptedToo) {
  receive(request("REGISTER", "bob", "bob", "m1"), phone);
  const std::string challenge = parse(lastResponse()).headerValues("WWW-Authenticate").at(1);
  EXPECT_EQ(
      firstLine(answerChallenge(challenge, "bob", "bob-secret", "m2", phone, auth::Algorithm::md5)),
      "SIP/2.0 200 OK");
}

TEST_F(ProxyAuthTest, UnknownUserAndWrongPasswordGetTheSameAnswer) {
  const std::string wrong = registerAs("alice", "not-her-password", "w", phone);
  const std::string unknown = registerAs("mallory", "whatever", "u", otherPhone);
  EXPECT_EQ(firstLine(wrong), "SIP/2.0 401 Unauthorized");
  EXPECT_EQ(firstLine(unknown), firstLine(wrong));
  EXPECT_EQ(headerNames(unknown), headerNames(wrong));
  EXPECT_EQ(parse(unknown).headerValues("WWW-Authenticate").size(),
            parse(wrong).headerValues("WWW-Authenticate").size());
  EXPECT_EQ(authenticator->counters().failures, 2u);
  EXPECT_TRUE(store.lookup("sip:alice@biloxi.example.com").empty());
}

TEST_F(ProxyAuthTest, ReplayedNonceCountIsChallengedAgain) {
  receive(request("REGISTER", "alice", "alice", "p1"), phone);
  const std::string credentials =
      credentialsFor(headerOf(lastResponse(), "WWW-Authenticate"), "Authorization", "REGISTER",
                     "sip:biloxi.example.com", "alice", "alice-secret", auth::Algorithm::sha256);
  receive(request("REGISTER", "alice", "alice", "p2", credentials), phone);
  users.answerAll();
  EXPECT_EQ(firstLine(lastResponse()), "SIP/2.0 200 OK");
  receive(request("REGISTER", "alice", "alice", "p3", credentials), phone);  // same nc
  users.answerAll();
  EXPECT_EQ(firstLine(lastResponse()), "SIP/2.0 401 Unauthorized");
  EXPECT_EQ(headerOf(lastResponse(), "WWW-Authenticate").find("stale"), std::string::npos);
  EXPECT_EQ(authenticator->counters().replays, 1u);
}

TEST_F(ProxyAuthTest, ExpiredNonceIsStaleAndTheRetrySucceeds) {
  receive(request("REGISTER", "alice", "alice", "s1"), phone);
  const std::string old = headerOf(lastResponse(), "WWW-Authenticate");
  wall.advance(std::chrono::seconds(301));
  answerChallenge(old, "alice", "alice-secret", "s2", phone);
  const std::string fresh = headerOf(lastResponse(), "WWW-Authenticate");
  EXPECT_EQ(firstLine(lastResponse()), "SIP/2.0 401 Unauthorized");
  EXPECT_NE(fresh.find("stale=true"), std::string::npos);
  EXPECT_EQ(firstLine(answerChallenge(fresh, "alice", "alice-secret", "s3", phone)),
            "SIP/2.0 200 OK");
}

TEST_F(ProxyAuthTest, InviteFromLocalUserIsForwardedWithoutOurCredentialsButWithOthers) {
  ASSERT_EQ(firstLine(registerAs("bob", "bob-secret", "b", otherPhone)), "SIP/2.0 200 OK");
  receive(request("INVITE", "alice", "bob", "i1"), phone);
  EXPECT_EQ(firstLine(lastResponse()), "SIP/2.0 407 Proxy Authentication Required");
  const std::string challenge = headerOf(lastResponse(), "Proxy-Authenticate");
  const std::string foreign =
      "Proxy-Authorization: Digest username=\"alice\", realm=\"far.example\", "
      "nonce=\"abc\", uri=\"sip:bob@biloxi.example.com\", response=\"0123\"\r\n";
  receive(request("INVITE", "alice", "bob", "i2",
                  foreign + credentialsFor(challenge, "Proxy-Authorization", "INVITE",
                                           "sip:bob@biloxi.example.com", "alice", "alice-secret",
                                           auth::Algorithm::sha256)),
          phone);
  EXPECT_TRUE(sent("INVITE ").empty());
  users.answerAll();
  const auto forwarded = sent("INVITE ");
  ASSERT_EQ(forwarded.size(), 1u);
  const auto kept = parse(forwarded[0].bytes).headerValues("Proxy-Authorization");
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_NE(kept[0].find("far.example"), std::string::npos);
}

// The receive -> forward histogram (issue 11) includes the wait for the user store.
TEST_F(ProxyAuthTest, ForwardTimeIncludesTheWaitForTheStore) {
  ASSERT_EQ(firstLine(registerAs("bob", "bob-secret", "b", otherPhone)), "SIP/2.0 200 OK");
  inviteWithCredentials("alice", "bob", "t", "alice", "alice-secret");
  clock.advance(30ms);
  users.answerAll();
  ASSERT_EQ(sent("INVITE ").size(), 1u);
  const metrics::Histogram& forward = proxy->counters().requestForward;
  EXPECT_EQ(forward.count, 1u);
  EXPECT_EQ(forward.sum, 30ms);
  // Bounds ..., 10 ms, 25 ms, 50 ms, ...: 30 ms falls in the 50 ms bucket.
  const auto& bounds = metrics::Histogram::boundsMicroseconds;
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    EXPECT_EQ(forward.buckets[i], bounds[i] == 50000 ? 1u : 0u) << "bucket " << bounds[i];
  }
}

TEST_F(ProxyAuthTest, AuthenticatedUserCannotCallAsSomeoneElse) {
  // alice's own credentials, but the From says bob.
  inviteWithCredentials("bob", "alice", "x", "alice", "alice-secret");
  users.answerAll();
  EXPECT_EQ(firstLine(lastResponse()), "SIP/2.0 403 Forbidden");
  EXPECT_EQ(proxy->counters().identityRefused, 1u);
  EXPECT_TRUE(sent("INVITE ").empty());
}

TEST_F(ProxyAuthTest, CancelWhileTheLookupIsPendingEndsTheInviteWith487) {
  receive(request("INVITE", "alice", "bob", "c1"), phone);
  const std::string challenge = headerOf(lastResponse(), "Proxy-Authenticate");
  const std::string invite = request(
      "INVITE", "alice", "bob", "c2",
      credentialsFor(challenge, "Proxy-Authorization", "INVITE", "sip:bob@biloxi.example.com",
                     "alice", "alice-secret", auth::Algorithm::sha256));
  receive(invite, phone);
  std::string cancel = invite;
  cancel.replace(0, 6, "CANCEL");
  cancel.replace(cancel.find("CSeq: 1 INVITE"), 14, "CSeq: 1 CANCEL");
  receive(cancel, phone);
  EXPECT_EQ(firstLine(sent("SIP/2.0 487").at(0).bytes), "SIP/2.0 487 Request Terminated");
  users.answerAll();  // the late answer finds nobody waiting
  EXPECT_TRUE(sent("INVITE ").empty());
  EXPECT_EQ(proxy->counters().waitingRequests, 0u);
}

TEST_F(ProxyAuthTest, AfterTheFreeFailuresTheAnswerIsHeldForTheBackoff) {
  registerAs("alice", "wrong-1", "f1", phone);
  registerAs("alice", "wrong-2", "f2", phone);
  // The third failure is answered only after the first back-off (1 s), to the millisecond.
  receive(request("REGISTER", "alice", "alice", "f3a"), phone);
  const std::string challenge = headerOf(lastResponse(), "WWW-Authenticate");
  const std::size_t before = sent("SIP/2.0 401").size();
  receive(request("REGISTER", "alice", "alice", "f3b",
                  credentialsFor(challenge, "Authorization", "REGISTER", "sip:biloxi.example.com",
                                 "alice", "wrong-3", auth::Algorithm::sha256)),
          phone);
  users.answerAll();
  EXPECT_EQ(sent("SIP/2.0 401").size(), before);
  ASSERT_TRUE(proxy->nextExpiry());
  EXPECT_EQ(*proxy->nextExpiry() - clock.now(), 1000ms);
  clock.advance(999ms);
  proxy->fireDueTimers();
  EXPECT_EQ(sent("SIP/2.0 401").size(), before);
  clock.advance(1ms);
  proxy->fireDueTimers();
  EXPECT_EQ(sent("SIP/2.0 401").size(), before + 1);
}

TEST_F(ProxyAuthTest, TrustedSourcesAndInboundCallsAreNotChallenged) {
  const Source gateway{Protocol::udp, endpoint("203.0.113.1", 5060),
                       endpoint("198.51.100.99", 5060), 0};
  receive(request("INVITE", "alice", "bob", "t1"), gateway);
  EXPECT_EQ(firstLine(lastResponse()), "SIP/2.0 480 Temporarily Unavailable");
  // From another domain to a local user: no challenge, and an unknown user looks the same
  // as a known one that is offline.
  std::string inbound = request("INVITE", "carol", "bob", "t2");
  inbound.replace(inbound.find("carol@biloxi.example.com"), 24, "carol@atlanta.example.com");
  receive(inbound, phone);
  const std::string known = lastResponse();
  std::string toUnknown = request("INVITE", "carol", "nobody", "t3");
  toUnknown.replace(toUnknown.find("carol@biloxi.example.com"), 24, "carol@atlanta.example.com");
  receive(toUnknown, phone);
  EXPECT_EQ(firstLine(known), "SIP/2.0 480 Temporarily Unavailable");
  EXPECT_EQ(firstLine(lastResponse()), firstLine(known));
  EXPECT_EQ(authenticator->counters().challenges, 0u);
}

}  // namespace
}  // namespace waypoint::testkit
