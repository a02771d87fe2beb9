// Registrar: REGISTER processing per RFC 3261 §10.3, with Path (RFC 3327) and
// +sip.instance/reg-id (RFC 5626). Sans-I/O: a request, its source and a time go in, a
// reply comes out, and the bindings are read back from the store.
#include "waypoint/registrar/registrar.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fakes.hpp"
#include "waypoint/registrar/location_store.hpp"
#include "waypoint/sip/message.hpp"
#include "waypoint/transport/address.hpp"

namespace waypoint::registrar {
namespace {

using std::chrono::seconds;
using Headers = std::vector<std::string>;

const TimePoint kStart = TimePoint{} + std::chrono::hours(1000);
TimePoint at(int secondsFromStart) { return kStart + seconds(secondsFromStart); }

constexpr const char* kAor = "sip:alice@localhost";
constexpr const char* kPhone = "sip:alice@192.168.1.20:5060";
constexpr const char* kLaptop = "sip:alice@192.168.1.21:5062";
constexpr const char* kTablet = "sip:alice@192.168.1.22:5064";
constexpr const char* kDesk = "sip:alice@192.168.1.23:5066";

// A REGISTER written out header by header; each test sets what it is about.
struct Register {
  std::string requestUri_ = "sip:localhost";
  std::string to_ = "<sip:alice@localhost>";
  std::string callId_ = "843817637684230@192.168.1.20";
  std::uint32_t cseq_ = 1;
  Headers contacts_;                      // Contact header values, one header each
  std::optional<std::uint32_t> expires_;  // Expires header
  Headers extra_;                         // further "Name: value" lines

  Register& requestUri(std::string v) {
    requestUri_ = std::move(v);
    return *this;
  }
  Register& to(std::string v) {
    to_ = std::move(v);
    return *this;
  }
  Register& callId(std::string v) {
    callId_ = std::move(v);
    return *this;
  }
  Register& cseq(std::uint32_t v) {
    cseq_ = v;
    return *this;
  }
  Register& contacts(Headers v) {
    contacts_ = std::move(v);
    return *this;
  }
  Register& expires(std::uint32_t v) {
    expires_ = v;
    return *this;
  }
  Register& extra(Headers v) {
    extra_ = std::move(v);
    return *this;
  }
};

sip::Message make(const Register& r) {
  std::string text = "REGISTER " + r.requestUri_ + " SIP/2.0\r\n";
  text += "Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bKnashds7-" + std::to_string(r.cseq_) +
          "\r\n";
  text += "Max-Forwards: 70\r\n";
  text += "From: Alice <sip:alice@localhost>;tag=456248\r\n";
  text += "To: Alice " + r.to_ + "\r\n";
  text += "Call-ID: " + r.callId_ + "\r\n";
  text += "CSeq: " + std::to_string(r.cseq_) + " REGISTER\r\n";
  for (const std::string& c : r.contacts_) text += "Contact: " + c + "\r\n";
  if (r.expires_) text += "Expires: " + std::to_string(*r.expires_) + "\r\n";
  for (const std::string& line : r.extra_) text += line + "\r\n";
  text += "Content-Length: 0\r\n\r\n";
  return testkit::parse(text);
}

// Alice's phone behind a NAT: its Contact says 192.168.1.20, the packets come from
// 127.0.0.1:40123.
transport::Source natSource() {
  transport::Source source;
  source.protocol = transport::Protocol::udp;
  source.local = testkit::endpoint("127.0.0.1", 5060);
  source.remote = testkit::endpoint("127.0.0.1", 40123);
  return source;
}

RegistrarSettings testSettings() {
  RegistrarSettings settings;
  settings.minExpires = seconds(60);
  settings.maxExpires = seconds(3600);
  settings.defaultExpires = seconds(3600);
  settings.maxContacts = 3;
  return settings;
}

std::string contactLine(const std::string& uri, int expires) {
  return "Contact: <" + uri + ">;expires=" + std::to_string(expires);
}

std::vector<std::string> contactsOf(const std::vector<Binding>& bindings) {
  std::vector<std::string> contacts;
  for (const Binding& b : bindings) contacts.push_back(b.contact);
  return contacts;
}

class RegistrarTest : public ::testing::Test {
 protected:
  RegistrarReply send(const Register& r, TimePoint now = kStart) {
    return registrar.handle(make(r), natSource(), now);
  }
  std::vector<Binding> bindings() const { return store.lookup(kAor); }

  InMemoryLocationStore store;
  Registrar registrar{store, {"localhost"}, testSettings()};
};

// ---- Adding, refreshing, removing (§10.3 steps 6-8) ----

TEST_F(RegistrarTest, RegisterAddsABindingAndListsItWithItsExpiry) {
  const RegistrarReply reply = send(Register().contacts(Headers{"<sip:alice@192.168.1.20:5060>"}));

  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.reason, "OK");
  EXPECT_EQ(reply.headers, (Headers{"Contact: <sip:alice@192.168.1.20:5060>;expires=3600"}));
  const auto found = bindings();
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].contact, kPhone);
  EXPECT_EQ(found[0].qMilli, 1000);
  EXPECT_EQ(found[0].callId, "843817637684230@192.168.1.20");
  EXPECT_EQ(found[0].cseq, 1u);
  EXPECT_EQ(found[0].expiresAt, at(3600));
  EXPECT_TRUE(found[0].instance.empty());
  EXPECT_TRUE(found[0].regId.empty());
  EXPECT_TRUE(found[0].path.empty());
  EXPECT_EQ(store.aorCount(), 1u);
  EXPECT_EQ(store.bindingCount(), 1u);
}

TEST_F(RegistrarTest, TwoContactsWithQValuesAreBothStoredAndListed) {
  const RegistrarReply reply = send(Register()
                                        .contacts(Headers{"<sip:alice@192.168.1.20:5060>;q=0.5",
                                                          "<sip:alice@192.168.1.21:5062>;q=0.25"})
                                        .expires(3600));

  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.headers, (Headers{"Contact: <sip:alice@192.168.1.20:5060>;expires=3600;q=0.5",
                                    "Contact: <sip:alice@192.168.1.21:5062>;expires=3600;q=0.25"}));
  const auto found = bindings();
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].contact, kPhone);
  EXPECT_EQ(found[0].qMilli, 500);
  EXPECT_EQ(found[1].contact, kLaptop);
  EXPECT_EQ(found[1].qMilli, 250);
}

TEST_F(RegistrarTest, QValueOfOneIsNotPrinted) {
  const RegistrarReply reply =
      send(Register().contacts(Headers{"<sip:alice@192.168.1.20:5060>;q=1.0"}));
  EXPECT_EQ(reply.headers, (Headers{contactLine(kPhone, 3600)}));
  EXPECT_EQ(bindings().at(0).qMilli, 1000);
}

TEST_F(RegistrarTest, RefreshWithHigherCSeqKeepsOneBindingAndResetsItsExpiry) {
  send(Register().cseq(1).contacts(Headers{"<sip:alice@192.168.1.20:5060>"}).expires(600));

  const RegistrarReply reply = send(
      Register().cseq(2).contacts(Headers{"<sip:alice@192.168.1.20:5060>"}).expires(600), at(500));

  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.headers, (Headers{contactLine(kPhone, 600)}));
  const auto found = bindings();
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].cseq, 2u);
  EXPECT_EQ(found[0].expiresAt, at(1100));
  EXPECT_EQ(store.bindingCount(), 1u);
  EXPECT_EQ(store.nextExpiry(), at(1100));
}

TEST_F(RegistrarTest, ContactExpiresZeroRemovesOnlyThatBinding) {
  send(Register()
           .cseq(1)
           .contacts(Headers{"<sip:alice@192.168.1.20:5060>", "<sip:alice@192.168.1.21:5062>"})
           .expires(600));

  const RegistrarReply reply = send(
      Register().cseq(2).contacts(Headers{"<sip:alice@192.168.1.20:5060>;expires=0"}), at(100));

  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.headers, (Headers{contactLine(kLaptop, 500)}));
  EXPECT_EQ(contactsOf(bindings()), (Headers{kLaptop}));
  EXPECT_EQ(store.bindingCount(), 1u);
}

TEST_F(RegistrarTest, ContactExpiresZeroForAnUnknownContactChangesNothing) {
  send(Register().cseq(1).contacts(Headers{"<sip:alice@192.168.1.20:5060>"}).expires(600));

  const RegistrarReply reply = send(
      Register().cseq(2).contacts(Headers{"<sip:alice@192.168.1.21:5062>;expires=0"}), at(100));

  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.headers, (Headers{contactLine(kPhone, 500)}));
  EXPECT_EQ(contactsOf(bindings()), (Headers{kPhone}));
}

TEST_F(RegistrarTest, WildcardContactWithExpiresZeroRemovesEveryBinding) {
  send(Register().cseq(1).contacts(
      Headers{"<sip:alice@192.168.1.20:5060>", "<sip:alice@192.168.1.21:5062>"}));

  const RegistrarReply reply = send(Register().cseq(2).contacts(Headers{"*"}).expires(0), at(10));

  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.headers, Headers{});
  EXPECT_TRUE(bindings().empty());
  EXPECT_EQ(store.aorCount(), 0u);
  EXPECT_EQ(store.bindingCount(), 0u);
}

TEST_F(RegistrarTest, WildcardContactWithoutExpiresIsRejectedWith400) {
  send(Register().cseq(1).contacts(Headers{"<sip:alice@192.168.1.20:5060>"}));

  const RegistrarReply reply = send(Register().cseq(2).contacts(Headers{"*"}), at(10));

  EXPECT_EQ(reply.status, 400);
  EXPECT_EQ(contactsOf(bindings()), (Headers{kPhone}));
  EXPECT_EQ(bindings().at(0).cseq, 1u);
}

TEST_F(RegistrarTest, WildcardContactWithNonZeroExpiresIsRejectedWith400) {
  send(Register().cseq(1).contacts(Headers{"<sip:alice@192.168.1.20:5060>"}));

  const RegistrarReply reply =
      send(Register().cseq(2).contacts(Headers{"*"}).expires(3600), at(10));

  EXPECT_EQ(reply.status, 400);
  EXPECT_EQ(contactsOf(bindings()), (Headers{kPhone}));
}

TEST_F(RegistrarTest, WildcardContactBesideAnotherContactIsRejectedWith400) {
  send(Register().cseq(1).contacts(Headers{"<sip:alice@192.168.1.20:5060>"}));

  const RegistrarReply reply =
      send(Register().cseq(2).contacts(Headers{"*", "<sip:alice@192.168.1.21:5062>"}).expires(0),
           at(10));

  EXPECT_EQ(reply.status, 400);
  EXPECT_EQ(contactsOf(bindings()), (Headers{kPhone}));
}

// ---- Ordering by Call-ID and CSeq (§10.3 step 7) ----

TEST_F(RegistrarTest, SameCallIdWithEqualCSeqIsRejectedWith500AndChangesNothing) {
  send(Register().cseq(5).contacts(Headers{"<sip:alice@192.168.1.20:5060>"}).expires(600));

  const RegistrarReply reply = send(
      Register().cseq(5).contacts(Headers{"<sip:alice@192.168.1.20:5060>"}).expires(120), at(10));

  EXPECT_EQ(reply.status, 500);
  EXPECT_EQ(reply.headers, Headers{});
  const auto found = bindings();
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].cseq, 5u);
  EXPECT_EQ(found[0].expiresAt, at(600));
}

TEST_F(RegistrarTest, SameCallIdWithLowerCSeqIsRejectedWith500AndChangesNothing) {
  send(Register().cseq(5).contacts(Headers{"<sip:alice@192.168.1.20:5060>"}).expires(600));

  const RegistrarReply reply =
      send(Register().cseq(4).contacts(Headers{"<sip:alice@192.168.1.20:5060>;expires=0"}), at(10));

  EXPECT_EQ(reply.status, 500);
  const auto found = bindings();
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].cseq, 5u);
  EXPECT_EQ(found[0].expiresAt, at(600));
}

TEST_F(RegistrarTest, OutOfOrderContactAbortsTheWholeRequest) {
  // The first contact is new, the second one is an out-of-order refresh: neither applies.
  send(Register().cseq(5).contacts(Headers{"<sip:alice@192.168.1.20:5060>"}).expires(600));

  const RegistrarReply reply =
      send(Register()
               .cseq(4)
               .contacts(Headers{"<sip:alice@192.168.1.21:5062>", "<sip:alice@192.168.1.20:5060>"})
               .expires(120),
           at(10));

  EXPECT_EQ(reply.status, 500);
  EXPECT_EQ(contactsOf(bindings()), (Headers{kPhone}));
  EXPECT_EQ(bindings().at(0).expiresAt, at(600));
}

TEST_F(RegistrarTest, WildcardRemovalWithSameCallIdAndLowerCSeqIsRejectedWith500) {
  send(Register().cseq(5).contacts(Headers{"<sip:alice@192.168.1.20:5060>"}).expires(600));

  const RegistrarReply reply = send(Register().cseq(4).contacts(Headers{"*"}).expires(0), at(10));

  EXPECT_EQ(reply.status, 500);
  EXPECT_EQ(contactsOf(bindings()), (Headers{kPhone}));
}

TEST_F(RegistrarTest, DifferentCallIdWithLowerCSeqUpdatesTheBinding) {
  send(Register()
           .callId("first@192.168.1.20")
           .cseq(10)
           .contacts(Headers{"<sip:alice@192.168.1.20:5060>"})
           .expires(600));

  const RegistrarReply reply = send(Register()
                                        .callId("second@192.168.1.20")
                                        .cseq(1)
                                        .contacts(Headers{"<sip:alice@192.168.1.20:5060>"})
                                        .expires(120),
                                    at(10));

  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.headers, (Headers{contactLine(kPhone, 120)}));
  const auto found = bindings();
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].callId, "second@192.168.1.20");
  EXPECT_EQ(found[0].cseq, 1u);
  EXPECT_EQ(found[0].expiresAt, at(130));
}

TEST_F(RegistrarTest, DifferentCallIdWithExpiresZeroRemovesTheBinding) {
  send(Register()
           .callId("first@192.168.1.20")
           .cseq(10)
           .contacts(Headers{"<sip:alice@192.168.1.20:5060>"}));

  const RegistrarReply reply = send(Register()
                                        .callId("second@192.168.1.20")
                                        .cseq(1)
                                        .contacts(Headers{"<sip:alice@192.168.1.20:5060>"})
                                        .expires(0),
                                    at(10));

  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.headers, Headers{});
  EXPECT_TRUE(bindings().empty());
}

// ---- Expiry intervals (§10.3 steps 6 and 7, §10.2.8) ----

TEST_F(RegistrarTest, ContactExpiresBelowMinimumIsRejectedWith423AndMinExpires) {
  const RegistrarReply reply =
      send(Register().contacts(Headers{"<sip:alice@192.168.1.20:5060>;expires=30"}));

  EXPECT_EQ(reply.status, 423);
  EXPECT_EQ(reply.headers, (Headers{"Min-Expires: 60"}));
  EXPECT_TRUE(bindings().empty());
  EXPECT_EQ(store.bindingCount(), 0u);
}

TEST_F(RegistrarTest, NewLimitsApplyToTheNextRegisterAndKeepTheDomainSettings) {
  RegistrarSettings reloaded = testSettings();
  reloaded.minExpires = seconds(20);
  reloaded.maxExpires = seconds(600);
  reloaded.defaultExpires = seconds(300);
  reloaded.maxContacts = 1;
  reloaded.defaultDomain = "ignored.example.com";
  registrar.setLimits(reloaded);

  const RegistrarReply reply =
      send(Register().contacts(Headers{"<sip:alice@192.168.1.20:5060>;expires=30"}));
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(bindings().at(0).expiresAt, at(30));
  EXPECT_EQ(send(Register().cseq(2).contacts(Headers{"<sip:alice@192.168.1.20:5060>"})).headers,
            (Headers{"Contact: <sip:alice@192.168.1.20:5060>;expires=300"}));
  EXPECT_EQ(send(Register().cseq(3).contacts(Headers{"<sip:alice@192.168.1.21:5062>"})).status,
            403);
  EXPECT_EQ(registrar.settings().defaultDomain, testSettings().defaultDomain);
}

TEST_F(RegistrarTest, ExpiresHeaderBelowMinimumIsRejectedWith423AndMinExpires) {
  const RegistrarReply reply =
      send(Register().contacts(Headers{"<sip:alice@192.168.1.20:5060>"}).expires(59));

  EXPECT_EQ(reply.status, 423);
  EXPECT_EQ(reply.headers, (Headers{"Min-Expires: 60"}));
  EXPECT_TRUE(bindings().empty());
}

TEST_F(RegistrarTest, ExpiresEqualToMinimumIsAccepted) {
  const RegistrarReply reply =
      send(Register().contacts(Headers{"<sip:alice@192.168.1.20:5060>;expires=60"}));

  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.headers, (Headers{contactLine(kPhone, 60)}));
  EXPECT_EQ(bindings().at(0).expiresAt, at(60));
}

TEST_F(RegistrarTest, OneTooBriefContactRejectsTheWholeRequest) {
  const RegistrarReply reply = send(Register().contacts(Headers{
      "<sip:alice@192.168.1.20:5060>;expires=3600", "<sip:alice@192.168.1.21:5062>;expires=30"}));

  EXPECT_EQ(reply.status, 423);
  EXPECT_EQ(reply.headers, (Headers{"Min-Expires: 60"}));
  EXPECT_TRUE(bindings().empty());
  EXPECT_EQ(store.aorCount(), 0u);
}

TEST_F(RegistrarTest, ExpiresAboveMaximumIsClampedToMaximum) {
  const RegistrarReply reply =
      send(Register().contacts(Headers{"<sip:alice@192.168.1.20:5060>;expires=7200"}));

  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.headers, (Headers{contactLine(kPhone, 3600)}));
  EXPECT_EQ(bindings().at(0).expiresAt, at(3600));
}

TEST_F(RegistrarTest, ExpiresHeaderAboveMaximumIsClampedToMaximum) {
  const RegistrarReply reply =
      send(Register().contacts(Headers{"<sip:alice@192.168.1.20:5060>"}).expires(86400));

  EXPECT_EQ(reply.headers, (Headers{contactLine(kPhone, 3600)}));
  EXPECT_EQ(bindings().at(0).expiresAt, at(3600));
}

TEST_F(RegistrarTest, ExpiresHeaderAppliesWhenTheContactHasNoExpiresParameter) {
  const RegistrarReply reply =
      send(Register().contacts(Headers{"<sip:alice@192.168.1.20:5060>"}).expires(120));

  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.headers, (Headers{contactLine(kPhone, 120)}));
  EXPECT_EQ(bindings().at(0).expiresAt, at(120));
}

TEST_F(RegistrarTest, ContactExpiresParameterWinsOverExpiresHeader) {
  const RegistrarReply reply =
      send(Register()
               .contacts(Headers{"<sip:alice@192.168.1.20:5060>;expires=600",
                                 "<sip:alice@192.168.1.21:5062>"})
               .expires(120));

  EXPECT_EQ(reply.headers, (Headers{contactLine(kPhone, 600), contactLine(kLaptop, 120)}));
}

TEST_F(RegistrarTest, DefaultExpiresAppliesWhenNeitherParameterNorHeaderIsGiven) {
  const RegistrarReply reply = send(Register().contacts(Headers{"<sip:alice@192.168.1.20:5060>"}));

  EXPECT_EQ(reply.headers, (Headers{contactLine(kPhone, 3600)}));
  EXPECT_EQ(bindings().at(0).expiresAt, at(3600));
}

TEST(RegistrarDefaultExpiresTest, DefaultBelowMaximumIsUsedWhenNeitherParameterNorHeaderIsGiven) {
  RegistrarSettings settings = testSettings();
  settings.defaultExpires = seconds(1800);
  InMemoryLocationStore store;
  Registrar registrar(store, {"localhost"}, settings);

  const RegistrarReply reply = registrar.handle(
      make(Register().contacts(Headers{"<sip:alice@192.168.1.20:5060>"})), natSource(), kStart);

  EXPECT_EQ(reply.headers, (Headers{contactLine(kPhone, 1800)}));
  EXPECT_EQ(store.lookup(kAor).at(0).expiresAt, at(1800));
}

TEST_F(RegistrarTest, ResponseListsTheTimeEachBindingHasLeft) {
  send(Register()
           .callId("phone@192.168.1.20")
           .contacts(Headers{"<sip:alice@192.168.1.20:5060>"})
           .expires(600));

  const RegistrarReply reply = send(Register()
                                        .callId("laptop@192.168.1.21")
                                        .contacts(Headers{"<sip:alice@192.168.1.21:5062>"})
                                        .expires(3600),
                                    at(200));

  EXPECT_EQ(reply.headers, (Headers{contactLine(kPhone, 400), contactLine(kLaptop, 3600)}));
}

// ---- Query (§10.2.3) ----

TEST_F(RegistrarTest, RegisterWithoutContactListsCurrentBindingsWithoutChangingThem) {
  send(Register().cseq(1).contacts(Headers{"<sip:alice@192.168.1.20:5060>"}).expires(600));

  const RegistrarReply reply = send(Register().cseq(2), at(100));

  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.headers, (Headers{contactLine(kPhone, 500)}));
  const auto found = bindings();
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].cseq, 1u);
  EXPECT_EQ(found[0].expiresAt, at(600));
}

TEST_F(RegistrarTest, QueryForAnAorWithoutBindingsReturns200WithoutContacts) {
  const RegistrarReply reply = send(Register());

  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.headers, Headers{});
  EXPECT_EQ(store.aorCount(), 0u);
}

// ---- Contact limit ----

TEST_F(RegistrarTest, MoreContactsThanTheMaximumIsRejectedWith403AndNothingStored) {
  const RegistrarReply reply = send(Register().contacts(
      Headers{"<sip:alice@192.168.1.20:5060>", "<sip:alice@192.168.1.21:5062>",
              "<sip:alice@192.168.1.22:5064>", "<sip:alice@192.168.1.23:5066>"}));

  EXPECT_EQ(reply.status, 403);
  EXPECT_TRUE(bindings().empty());
  EXPECT_EQ(store.bindingCount(), 0u);
}

TEST_F(RegistrarTest, ContactsBeyondTheMaximumTogetherWithExistingOnesAreRejectedWith403) {
  send(Register()
           .callId("a@192.168.1.20")
           .contacts(Headers{"<sip:alice@192.168.1.20:5060>", "<sip:alice@192.168.1.21:5062>"}));

  const RegistrarReply reply =
      send(Register()
               .callId("b@192.168.1.22")
               .contacts(Headers{"<sip:alice@192.168.1.22:5064>", "<sip:alice@192.168.1.23:5066>"}),
           at(10));

  EXPECT_EQ(reply.status, 403);
  EXPECT_EQ(contactsOf(bindings()), (Headers{kPhone, kLaptop}));
}

TEST_F(RegistrarTest, ExactlyTheMaximumNumberOfContactsIsAccepted) {
  const RegistrarReply reply = send(
      Register().contacts(Headers{"<sip:alice@192.168.1.20:5060>", "<sip:alice@192.168.1.21:5062>",
                                  "<sip:alice@192.168.1.22:5064>"}));

  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(contactsOf(bindings()), (Headers{kPhone, kLaptop, kTablet}));
  (void)kDesk;
}

// ---- Domains and AOR (§10.3 steps 1 and 5) ----

TEST_F(RegistrarTest, RequestUriInADomainNotServedIsRejectedWith404DomainNotServed) {
  const RegistrarReply reply = send(
      Register().requestUri("sip:example.com").contacts(Headers{"<sip:alice@192.168.1.20:5060>"}));

  EXPECT_EQ(reply.status, 404);
  EXPECT_EQ(reply.reason, "Domain Not Served");
  EXPECT_EQ(store.aorCount(), 0u);
}

TEST_F(RegistrarTest, RequestUriDomainIsMatchedWithoutRegardToCase) {
  const RegistrarReply reply = send(
      Register().requestUri("sip:LocalHost").contacts(Headers{"<sip:alice@192.168.1.20:5060>"}));

  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(contactsOf(bindings()), (Headers{kPhone}));
}

TEST_F(RegistrarTest, ToInAnotherDomainIsRejectedWith404) {
  const RegistrarReply reply = send(
      Register().to("<sip:alice@example.com>").contacts(Headers{"<sip:alice@192.168.1.20:5060>"}));

  EXPECT_EQ(reply.status, 404);
  EXPECT_EQ(store.aorCount(), 0u);
  EXPECT_TRUE(store.lookup("sip:alice@example.com").empty());
}

TEST_F(RegistrarTest, ToWithUpperCaseHostAndParametersRegistersTheCanonicalAor) {
  const RegistrarReply reply = send(Register()
                                        .to("<sip:alice@LOCALHOST;transport=tcp>")
                                        .contacts(Headers{"<sip:alice@192.168.1.20:5060>"}));

  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(contactsOf(store.lookup(kAor)), (Headers{kPhone}));
  EXPECT_EQ(store.aorCount(), 1u);
}

TEST_F(RegistrarTest, SipsToRegistersTheSameAorAsSip) {
  send(Register()
           .to("<sips:alice@localhost>")
           .callId("a@192.168.1.20")
           .contacts(Headers{"<sip:alice@192.168.1.20:5060>"}));
  send(Register()
           .to("<sip:alice@localhost>")
           .callId("b@192.168.1.21")
           .contacts(Headers{"<sip:alice@192.168.1.21:5062>"}),
       at(1));

  EXPECT_EQ(store.aorCount(), 1u);
  EXPECT_EQ(contactsOf(store.lookup(kAor)), (Headers{kPhone, kLaptop}));
}

TEST(RegistrarCanonicalAorTest, LowerCasesTheHostAndKeepsTheUserCase) {
  EXPECT_EQ(canonicalAor("sip:Alice@Example.COM"), "sip:Alice@example.com");
}

TEST(RegistrarCanonicalAorTest, DropsUriParameters) {
  EXPECT_EQ(canonicalAor("sip:alice@example.com;transport=tcp;user=phone"),
            "sip:alice@example.com");
}

TEST(RegistrarCanonicalAorTest, MapsSipsToSip) {
  EXPECT_EQ(canonicalAor("sips:alice@example.com"), "sip:alice@example.com");
}

TEST(RegistrarCanonicalAorTest, KeepsAUserlessDomainAor) {
  EXPECT_EQ(canonicalAor("sip:Example.com"), "sip:example.com");
}

TEST(RegistrarCanonicalAorTest, KeepsThePort) {
  // §10.3 step 5 removes parameters, not the port; §19.1.4 compares ports.
  EXPECT_EQ(canonicalAor("sip:alice@example.com:5070"), "sip:alice@example.com:5070");
  EXPECT_NE(canonicalAor("sip:alice@example.com:5070"), canonicalAor("sip:alice@example.com"));
}

TEST(RegistrarCanonicalAorTest, IsEmptyForANonSipUri) {
  EXPECT_EQ(canonicalAor("tel:+15551234567"), "");
  EXPECT_EQ(canonicalAor("not a uri"), "");
}

TEST(RegistrarCanonicalAorTest, UnescapesEscapedCharactersInTheUser) {
  // §10.3 step 5: "any escaped characters MUST be converted to their unescaped form".
  EXPECT_EQ(canonicalAor("sip:%61lice@example.com"), "sip:alice@example.com");
}

// ---- Require (§10.3 step 2, RFC 3327) ----

TEST_F(RegistrarTest, UnsupportedRequireIsRejectedWith420ListingIt) {
  const RegistrarReply reply = send(
      Register().contacts(Headers{"<sip:alice@192.168.1.20:5060>"}).extra(Headers{"Require: foo"}));

  EXPECT_EQ(reply.status, 420);
  EXPECT_EQ(reply.headers, (Headers{"Unsupported: foo"}));
  EXPECT_EQ(store.aorCount(), 0u);
}

TEST_F(RegistrarTest, RequirePathIsAccepted) {
  const RegistrarReply reply = send(
      Register()
          .contacts(Headers{"<sip:alice@192.168.1.20:5060>"})
          .extra(Headers{"Require: path", "Supported: path", "Path: <sip:edge.example.net;lr>"}));

  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(contactsOf(bindings()), (Headers{kPhone}));
}

TEST_F(RegistrarTest, RequirePathWithAnUnsupportedOptionListsOnlyTheUnsupportedOne) {
  const RegistrarReply reply = send(Register()
                                        .contacts(Headers{"<sip:alice@192.168.1.20:5060>"})
                                        .extra(Headers{"Require: path, foo"}));

  EXPECT_EQ(reply.status, 420);
  EXPECT_EQ(reply.headers, (Headers{"Unsupported: foo"}));
}

// ---- Path (RFC 3327 §5.3) ----

TEST_F(RegistrarTest, PathValuesAreStoredInOrderAndEchoedInTheResponse) {
  const RegistrarReply reply =
      send(Register()
               .contacts(Headers{"<sip:alice@192.168.1.20:5060>"})
               .extra(Headers{"Supported: path", "Path: <sip:edge1.example.net;lr>",
                              "Path: <sip:edge2.example.net;lr>"}));

  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.headers, (Headers{contactLine(kPhone, 3600), "Path: <sip:edge1.example.net;lr>",
                                    "Path: <sip:edge2.example.net;lr>"}));
  const auto found = bindings();
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].path, (Headers{"<sip:edge1.example.net;lr>", "<sip:edge2.example.net;lr>"}));
}

TEST_F(RegistrarTest, PathIsStoredButNotEchoedWithoutSupportedPath) {
  const RegistrarReply reply = send(Register()
                                        .contacts(Headers{"<sip:alice@192.168.1.20:5060>"})
                                        .extra(Headers{"Path: <sip:edge1.example.net;lr>"}));
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.headers, (Headers{contactLine(kPhone, 3600)}));  // RFC 3327 §5.3
  EXPECT_EQ(bindings().at(0).path, (Headers{"<sip:edge1.example.net;lr>"}));
}

TEST_F(RegistrarTest, CommaSeparatedPathValuesAreStoredOneEach) {
  send(Register()
           .contacts(Headers{"<sip:alice@192.168.1.20:5060>"})
           .extra(Headers{"Supported: path",
                          "Path: <sip:edge1.example.net;lr>, <sip:edge2.example.net;lr>"}));

  EXPECT_EQ(bindings().at(0).path,
            (Headers{"<sip:edge1.example.net;lr>", "<sip:edge2.example.net;lr>"}));
}

// ---- The flow (RFC 5626; NAT) ----

TEST_F(RegistrarTest, BindingKeepsTheFlowItRegisteredFrom) {
  send(Register().contacts(Headers{"<sip:alice@192.168.1.20:5060>"}));

  const auto found = bindings();
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].contact, "sip:alice@192.168.1.20:5060");
  EXPECT_EQ(found[0].flow.protocol, transport::Protocol::udp);
  EXPECT_EQ(found[0].flow.remote, testkit::endpoint("127.0.0.1", 40123));
  EXPECT_EQ(found[0].flow.local, testkit::endpoint("127.0.0.1", 5060));
  EXPECT_EQ(found[0].flow.connectionId, 0u);
}

TEST_F(RegistrarTest, RefreshFromANewFlowReplacesTheStoredFlow) {
  send(Register().cseq(1).contacts(Headers{"<sip:alice@192.168.1.20:5060>"}));
  transport::Source rebound = natSource();
  rebound.remote = testkit::endpoint("127.0.0.1", 40999);

  registrar.handle(make(Register().cseq(2).contacts(Headers{"<sip:alice@192.168.1.20:5060>"})),
                   rebound, at(30));

  EXPECT_EQ(bindings().at(0).flow.remote, testkit::endpoint("127.0.0.1", 40999));
}

// ---- +sip.instance and reg-id (RFC 5626 §6) ----

constexpr const char* kInstance = "\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\"";

TEST_F(RegistrarTest, SameInstanceAndRegIdReplacesTheBindingFromAnotherCallId) {
  const std::string params = std::string(";+sip.instance=") + kInstance + ";reg-id=1";
  send(Register()
           .callId("boot1@192.168.1.20")
           .contacts(Headers{"<sip:alice@192.168.1.20:5060>" + params}));

  const RegistrarReply reply =
      send(Register()
               .callId("boot2@192.168.1.21")
               .contacts(Headers{"<sip:alice@192.168.1.21:5062>" + params}),
           at(100));

  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.headers, (Headers{contactLine(kLaptop, 3600) + params}));
  const auto found = bindings();
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].contact, kLaptop);
  EXPECT_EQ(found[0].instance, kInstance);
  EXPECT_EQ(found[0].regId, "1");
  EXPECT_EQ(found[0].callId, "boot2@192.168.1.21");
  EXPECT_EQ(found[0].expiresAt, at(3700));
}

TEST_F(RegistrarTest, SameInstanceWithAnotherRegIdAddsASecondFlow) {
  const std::string instance = std::string(";+sip.instance=") + kInstance;
  send(Register()
           .callId("flow1@192.168.1.20")
           .contacts(Headers{"<sip:alice@192.168.1.20:5060>" + instance + ";reg-id=1"}));

  send(Register()
           .callId("flow2@192.168.1.20")
           .contacts(Headers{"<sip:alice@192.168.1.20:5060>" + instance + ";reg-id=2"}),
       at(1));

  const auto found = bindings();
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].regId, "1");
  EXPECT_EQ(found[1].regId, "2");
}

// ---- Expiry and counters ----

TEST_F(RegistrarTest, ExpireRemovesDueBindingsAndCountsThem) {
  send(Register().contacts(Headers{"<sip:alice@192.168.1.20:5060>;expires=60",
                                   "<sip:alice@192.168.1.21:5062>;expires=120"}));
  EXPECT_EQ(registrar.counters().bindingsExpired, 0u);

  registrar.expire(at(59));
  EXPECT_EQ(registrar.counters().bindingsExpired, 0u);

  registrar.expire(at(60));
  EXPECT_EQ(registrar.counters().bindingsExpired, 1u);
  EXPECT_EQ(contactsOf(bindings()), (Headers{kLaptop}));

  registrar.expire(at(120));
  EXPECT_EQ(registrar.counters().bindingsExpired, 2u);
  EXPECT_TRUE(bindings().empty());
  EXPECT_EQ(store.aorCount(), 0u);
}

TEST_F(RegistrarTest, CountersCountAcceptedAndRejectedRegisters) {
  const std::string phone = "<sip:alice@192.168.1.20:5060>";
  EXPECT_EQ(send(Register().cseq(1).contacts(Headers{phone})).status, 200);
  EXPECT_EQ(send(Register().cseq(2), at(1)).status, 200);  // query: the binding keeps CSeq 1
  EXPECT_EQ(send(Register().cseq(3).contacts(Headers{phone + ";expires=30"}), at(2)).status, 423);
  EXPECT_EQ(send(Register().cseq(1).contacts(Headers{phone}), at(3)).status, 500);
  EXPECT_EQ(send(Register().requestUri("sip:example.com").cseq(4), at(4)).status, 404);
  EXPECT_EQ(send(Register().cseq(5).contacts(Headers{"*"}).expires(0), at(5)).status, 200);

  EXPECT_EQ(registrar.counters().registersAccepted, 3u);
  EXPECT_EQ(registrar.counters().registersRejected, 3u);
  EXPECT_EQ(registrar.counters().bindingsExpired, 0u);
}

}  // namespace
}  // namespace waypoint::registrar
