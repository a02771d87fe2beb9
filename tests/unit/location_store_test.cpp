// InMemoryLocationStore: the location service behind the registrar (RFC 3261 §10).
#include "waypoint/registrar/location_store.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace waypoint::registrar {
namespace {

using std::chrono::seconds;

const TimePoint kStart = TimePoint{} + std::chrono::hours(1000);

TimePoint at(int secondsFromStart) { return kStart + seconds(secondsFromStart); }

Binding binding(std::string contact, int expiresInSeconds) {
  Binding b;
  b.contact = std::move(contact);
  b.callId = "call-" + b.contact;
  b.cseq = 1;
  b.expiresAt = at(expiresInSeconds);
  return b;
}

std::vector<std::string> contactsOf(const std::vector<Binding>& bindings) {
  std::vector<std::string> contacts;
  for (const Binding& b : bindings) contacts.push_back(b.contact);
  return contacts;
}

TEST(LocationStoreTest, LookupReturnsTheBindingsLastReplaced) {
  InMemoryLocationStore store;
  store.replace("sip:alice@localhost",
                {binding("sip:alice@192.168.1.20", 60), binding("sip:alice@10.0.0.5", 120)});

  const std::vector<Binding> found = store.lookup("sip:alice@localhost");
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].contact, "sip:alice@192.168.1.20");
  EXPECT_EQ(found[0].expiresAt, at(60));
  EXPECT_EQ(found[1].contact, "sip:alice@10.0.0.5");
  EXPECT_EQ(found[1].expiresAt, at(120));

  store.replace("sip:alice@localhost", {binding("sip:alice@172.16.0.9", 300)});
  EXPECT_EQ(contactsOf(store.lookup("sip:alice@localhost")),
            std::vector<std::string>{"sip:alice@172.16.0.9"});
}

TEST(LocationStoreTest, ForEachVisitsEveryAorWithItsBindingsOnce) {
  InMemoryLocationStore store;
  store.replace("sip:alice@example.com", {binding("sip:a1@192.0.2.1", 60)});
  store.replace("sip:bob@example.com",
                {binding("sip:b1@192.0.2.2", 60), binding("sip:b2@192.0.2.3", 60)});
  store.replace("sip:gone@example.com", {});
  std::map<std::string, std::vector<std::string>> seen;
  store.forEach([&](std::string_view aor, const std::vector<Binding>& bindings) {
    EXPECT_TRUE(seen.emplace(std::string(aor), contactsOf(bindings)).second);
  });
  const std::map<std::string, std::vector<std::string>> expected{
      {"sip:alice@example.com", {"sip:a1@192.0.2.1"}},
      {"sip:bob@example.com", {"sip:b1@192.0.2.2", "sip:b2@192.0.2.3"}}};
  EXPECT_EQ(seen, expected);
}

TEST(LocationStoreTest, LookupOfUnknownAorIsEmpty) {
  InMemoryLocationStore store;
  store.replace("sip:alice@localhost", {binding("sip:alice@192.168.1.20", 60)});
  EXPECT_TRUE(store.lookup("sip:bob@localhost").empty());
}

TEST(LocationStoreTest, ReplaceWithEmptyListRemovesTheAor) {
  InMemoryLocationStore store;
  store.replace("sip:alice@localhost",
                {binding("sip:alice@192.168.1.20", 60), binding("sip:alice@10.0.0.5", 120)});

  store.replace("sip:alice@localhost", {});

  EXPECT_TRUE(store.lookup("sip:alice@localhost").empty());
  EXPECT_EQ(store.aorCount(), 0u);
  EXPECT_EQ(store.bindingCount(), 0u);
  EXPECT_EQ(store.nextExpiry(), std::nullopt);
}

TEST(LocationStoreTest, ReplaceWithEmptyListForUnknownAorChangesNothing) {
  InMemoryLocationStore store;
  store.replace("sip:alice@localhost", {binding("sip:alice@192.168.1.20", 60)});
  store.replace("sip:bob@localhost", {});
  EXPECT_EQ(store.aorCount(), 1u);
  EXPECT_EQ(store.bindingCount(), 1u);
}

TEST(LocationStoreTest, AorAndBindingCountsFollowReplacements) {
  InMemoryLocationStore store;
  EXPECT_EQ(store.aorCount(), 0u);
  EXPECT_EQ(store.bindingCount(), 0u);

  store.replace("sip:alice@localhost",
                {binding("sip:alice@192.168.1.20", 60), binding("sip:alice@10.0.0.5", 120)});
  store.replace("sip:bob@localhost", {binding("sip:bob@192.168.1.30", 60)});
  EXPECT_EQ(store.aorCount(), 2u);
  EXPECT_EQ(store.bindingCount(), 3u);

  store.replace("sip:alice@localhost", {binding("sip:alice@192.168.1.20", 60)});
  EXPECT_EQ(store.aorCount(), 2u);
  EXPECT_EQ(store.bindingCount(), 2u);

  store.replace("sip:bob@localhost", {});
  EXPECT_EQ(store.aorCount(), 1u);
  EXPECT_EQ(store.bindingCount(), 1u);
}

TEST(LocationStoreTest, ExpireRemovesExactlyTheBindingsDueAtOrBeforeNow) {
  InMemoryLocationStore store;
  store.replace("sip:alice@localhost",
                {binding("sip:alice@192.168.1.20", 10), binding("sip:alice@10.0.0.5", 20)});

  EXPECT_EQ(store.expire(at(9)), 0u);
  EXPECT_EQ(store.bindingCount(), 2u);

  EXPECT_EQ(store.expire(at(15)), 1u);
  EXPECT_EQ(contactsOf(store.lookup("sip:alice@localhost")),
            std::vector<std::string>{"sip:alice@10.0.0.5"});
  EXPECT_EQ(store.aorCount(), 1u);
  EXPECT_EQ(store.bindingCount(), 1u);
  EXPECT_EQ(store.nextExpiry(), at(20));

  EXPECT_EQ(store.expire(at(20)), 1u);  // expiresAt == now counts as expired
  EXPECT_TRUE(store.lookup("sip:alice@localhost").empty());
  EXPECT_EQ(store.aorCount(), 0u);
  EXPECT_EQ(store.bindingCount(), 0u);
  EXPECT_EQ(store.nextExpiry(), std::nullopt);
}

TEST(LocationStoreTest, ExpireLeavesOtherAorsAlone) {
  InMemoryLocationStore store;
  store.replace("sip:alice@localhost", {binding("sip:alice@192.168.1.20", 10)});
  store.replace("sip:bob@localhost", {binding("sip:bob@192.168.1.30", 30)});

  EXPECT_EQ(store.expire(at(10)), 1u);

  EXPECT_TRUE(store.lookup("sip:alice@localhost").empty());
  EXPECT_EQ(contactsOf(store.lookup("sip:bob@localhost")),
            std::vector<std::string>{"sip:bob@192.168.1.30"});
  EXPECT_EQ(store.aorCount(), 1u);
  EXPECT_EQ(store.bindingCount(), 1u);
}

TEST(LocationStoreTest, NextExpiryIsEmptyForAnEmptyStore) {
  InMemoryLocationStore store;
  EXPECT_EQ(store.nextExpiry(), std::nullopt);
}

TEST(LocationStoreTest, NextExpiryReportsTheEarliestExpiryAcrossAors) {
  InMemoryLocationStore store;
  store.replace("sip:alice@localhost",
                {binding("sip:alice@192.168.1.20", 30), binding("sip:alice@10.0.0.5", 40)});
  store.replace("sip:bob@localhost", {binding("sip:bob@192.168.1.30", 10)});
  EXPECT_EQ(store.nextExpiry(), at(10));
}

TEST(LocationStoreTest, NextExpirySkipsTheStaleEntryAfterARefreshMovesTheExpiryLater) {
  InMemoryLocationStore store;
  store.replace("sip:alice@localhost", {binding("sip:alice@192.168.1.20", 10)});
  // Refreshed at +5 s for another 60 s.
  store.replace("sip:alice@localhost", {binding("sip:alice@192.168.1.20", 65)});

  EXPECT_EQ(store.nextExpiry(), at(65));
  // The old +10 s expiry removes nothing.
  EXPECT_EQ(store.expire(at(10)), 0u);
  EXPECT_EQ(store.bindingCount(), 1u);
  EXPECT_EQ(store.nextExpiry(), at(65));
  EXPECT_EQ(store.expire(at(65)), 1u);
  EXPECT_EQ(store.bindingCount(), 0u);
}

TEST(LocationStoreTest, ExpireAfterARefreshRemovesNothingAtTheOldExpiry) {
  InMemoryLocationStore store;
  store.replace("sip:alice@localhost", {binding("sip:alice@192.168.1.20", 10)});
  store.replace("sip:alice@localhost", {binding("sip:alice@192.168.1.20", 65)});

  EXPECT_EQ(store.expire(at(64)), 0u);
  EXPECT_EQ(contactsOf(store.lookup("sip:alice@localhost")),
            std::vector<std::string>{"sip:alice@192.168.1.20"});
  EXPECT_EQ(store.lookup("sip:alice@localhost")[0].expiresAt, at(65));
}

TEST(LocationStoreTest, NextExpiryIsEmptyOnceTheAorIsRemoved) {
  InMemoryLocationStore store;
  store.replace("sip:alice@localhost", {binding("sip:alice@192.168.1.20", 10)});
  store.replace("sip:alice@localhost", {});
  EXPECT_EQ(store.nextExpiry(), std::nullopt);
  EXPECT_EQ(store.expire(at(10)), 0u);
}

TEST(LocationStoreTest, HundredThousandAorsRegisteredThenAllExpiredLeavesNoBindings) {
  constexpr int kAors = 100000;
  InMemoryLocationStore store;
  for (int i = 0; i < kAors; ++i) {
    const std::string user = "user" + std::to_string(i);
    store.replace("sip:" + user + "@localhost",
                  {binding("sip:" + user + "@192.168.1.20", 60 + i % 3600)});
  }
  EXPECT_EQ(store.aorCount(), static_cast<std::size_t>(kAors));
  EXPECT_EQ(store.bindingCount(), static_cast<std::size_t>(kAors));
  EXPECT_EQ(store.nextExpiry(), at(60));

  EXPECT_EQ(store.expire(at(60 + 3599)), static_cast<std::size_t>(kAors));

  EXPECT_EQ(store.aorCount(), 0u);
  EXPECT_EQ(store.bindingCount(), 0u);
  EXPECT_EQ(store.nextExpiry(), std::nullopt);
}

}  // namespace
}  // namespace waypoint::registrar
