// SourceGuard: flood protection per source address, before anything is parsed.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>

#include "waypoint/auth/source_guard.hpp"

namespace waypoint::auth {
namespace {

using boost::asio::ip::address;
using boost::asio::ip::make_address;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Verdict = SourceGuard::Verdict;

const SteadyTime kStart = SteadyTime{} + std::chrono::hours(1000);

FloodSettings settings(double rate, double burst, std::size_t maxSources = 1000) {
  FloodSettings s;
  s.rate = rate;
  s.burst = burst;
  s.banTime = seconds(60);
  s.maxSources = maxSources;
  return s;
}

// Sends `count` messages at `when`; returns how many passed.
int sendMany(SourceGuard& guard, const address& source, int count, SteadyTime when) {
  int passed = 0;
  for (int i = 0; i < count; ++i) passed += guard.admit(source, when) == Verdict::pass;
  return passed;
}

// A distinct IPv4 address for each n, from 10.0.0.0 up.
address spoofed(std::uint32_t n) { return boost::asio::ip::address_v4(0x0A000000u + n); }

const address kFlooder = make_address("192.0.2.7");
const address kPhone = make_address("198.51.100.20");

TEST(SourceGuardTest, PassesTheBurstThenStartsABanWithTheNextMessage) {
  SourceGuard guard(settings(200, 400));
  EXPECT_EQ(sendMany(guard, kFlooder, 400, kStart), 400);
  EXPECT_EQ(guard.admit(kFlooder, kStart), Verdict::banStarted);
  EXPECT_EQ(guard.admit(kFlooder, kStart), Verdict::drop);
  EXPECT_TRUE(guard.banned(kFlooder, kStart));
  EXPECT_EQ(guard.counters().floodBans, 1u);
  EXPECT_EQ(guard.counters().dropped, 2u);  // the message that started the ban and one more
  EXPECT_EQ(guard.counters().activeBans, 1u);
}

TEST(SourceGuardTest, RefillsAtTheRateUpToTheBurst) {
  SourceGuard guard(settings(200, 400));
  EXPECT_EQ(sendMany(guard, kPhone, 400, kStart), 400);
  // 200/s: one token every 5 ms.
  EXPECT_EQ(guard.admit(kPhone, kStart + milliseconds(5)), Verdict::pass);
  EXPECT_EQ(sendMany(guard, kPhone, 10, kStart + milliseconds(55)), 10);
  EXPECT_FALSE(guard.banned(kPhone, kStart + milliseconds(55)));
  // A long pause refills only up to the burst.
  EXPECT_EQ(sendMany(guard, kPhone, 400, kStart + seconds(100)), 400);
  EXPECT_EQ(guard.admit(kPhone, kStart + seconds(100)), Verdict::banStarted);
}

TEST(SourceGuardTest, SustainedRateAtTheLimitIsNeverBanned) {
  SourceGuard guard(settings(200, 400));
  SteadyTime now = kStart;
  for (int i = 0; i < 20000; ++i, now += milliseconds(5)) {
    ASSERT_EQ(guard.admit(kPhone, now), Verdict::pass) << i;
  }
}

TEST(SourceGuardTest, SourcesHaveTheirOwnBuckets) {
  SourceGuard guard(settings(10, 5));
  EXPECT_EQ(sendMany(guard, kFlooder, 6, kStart), 5);
  EXPECT_EQ(guard.admit(kPhone, kStart), Verdict::pass);
  EXPECT_FALSE(guard.banned(kPhone, kStart));
}

TEST(SourceGuardTest, BanEndsAfterBanTimeWithAFullBucket) {
  SourceGuard guard(settings(10, 5));
  sendMany(guard, kFlooder, 6, kStart);
  EXPECT_EQ(guard.admit(kFlooder, kStart + seconds(59)), Verdict::drop);
  EXPECT_TRUE(guard.banned(kFlooder, kStart + milliseconds(59999)));
  EXPECT_FALSE(guard.banned(kFlooder, kStart + seconds(60)));
  EXPECT_EQ(sendMany(guard, kFlooder, 5, kStart + seconds(60)), 5);
  EXPECT_EQ(guard.admit(kFlooder, kStart + seconds(60)), Verdict::banStarted);
}

TEST(SourceGuardTest, SweepReportsEachEndedBanOnceWithItsDrops) {
  SourceGuard guard(settings(10, 5));
  sendMany(guard, kFlooder, 6 + 3, kStart);  // ban start and 3 more dropped
  ASSERT_EQ(guard.nextExpiry(), kStart + seconds(60));
  EXPECT_TRUE(guard.sweep(kStart + seconds(59)).empty());

  const auto ended = guard.sweep(kStart + seconds(60));
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].source, kFlooder);
  EXPECT_EQ(ended[0].dropped, 4u);
  EXPECT_TRUE(guard.sweep(kStart + seconds(61)).empty());
  EXPECT_EQ(guard.nextExpiry(), std::nullopt);
  EXPECT_EQ(guard.counters().activeBans, 0u);
}

TEST(SourceGuardTest, BanThatEndsInAdmitIsStillReportedBySweep) {
  SourceGuard guard(settings(10, 5));
  sendMany(guard, kFlooder, 6, kStart);
  EXPECT_EQ(guard.admit(kFlooder, kStart + seconds(61)), Verdict::pass);
  EXPECT_EQ(guard.nextExpiry(), kStart + seconds(61));
  const auto ended = guard.sweep(kStart + seconds(61));
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].dropped, 1u);
  EXPECT_TRUE(guard.sweep(kStart + seconds(62)).empty());
}

TEST(SourceGuardTest, BanFromOutsideExtendsButNeverShortens) {
  SourceGuard guard(settings(10, 5));
  guard.ban(kPhone, seconds(100), kStart);
  EXPECT_EQ(guard.admit(kPhone, kStart), Verdict::drop);
  guard.ban(kPhone, seconds(10), kStart + seconds(1));  // would end sooner: ignored
  EXPECT_TRUE(guard.banned(kPhone, kStart + seconds(99)));
  guard.ban(kPhone, seconds(200), kStart + seconds(1));
  EXPECT_TRUE(guard.banned(kPhone, kStart + seconds(200)));
  EXPECT_FALSE(guard.banned(kPhone, kStart + seconds(201)));
  EXPECT_EQ(guard.counters().otherBans, 1u);
  EXPECT_EQ(guard.counters().floodBans, 0u);
  EXPECT_EQ(guard.nextExpiry(), kStart + seconds(201));
}

TEST(SourceGuardTest, Ipv4MappedIpv6IsTheIpv4Source) {
  SourceGuard guard(settings(10, 5));
  const address mapped = make_address("::ffff:192.0.2.7");
  EXPECT_EQ(sendMany(guard, mapped, 3, kStart), 3);
  EXPECT_EQ(sendMany(guard, kFlooder, 3, kStart), 2);
  EXPECT_TRUE(guard.banned(mapped, kStart));
  EXPECT_EQ(guard.counters().trackedSources, 1u);
  // Reported as the IPv4 address an operator knows.
  const auto ended = guard.sweep(kStart + seconds(60));
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].source, kFlooder);
}

TEST(SourceGuardTest, Ipv6SourcesAreTrackedByTheirFullAddress) {
  SourceGuard guard(settings(10, 1));
  EXPECT_EQ(guard.admit(make_address("2001:db8::1"), kStart), Verdict::pass);
  EXPECT_EQ(guard.admit(make_address("2001:db8::2"), kStart), Verdict::pass);
  EXPECT_EQ(guard.admit(make_address("2001:db8::1"), kStart), Verdict::banStarted);
}

TEST(SourceGuardTest, EvictsTheLeastRecentlySeenSourceWhenFull) {
  SourceGuard guard(settings(10, 2, 3));
  guard.admit(spoofed(1), kStart);
  guard.admit(spoofed(2), kStart);
  guard.admit(spoofed(3), kStart);
  guard.admit(spoofed(1), kStart);  // 1 is now the most recent, 2 the least
  guard.admit(spoofed(4), kStart);  // evicts 2
  EXPECT_EQ(guard.counters().evictions, 1u);
  EXPECT_EQ(guard.counters().trackedSources, 3u);
  // 1 kept its bucket (one token left); 2 starts again with a full one.
  EXPECT_EQ(guard.admit(spoofed(1), kStart), Verdict::banStarted);
  EXPECT_EQ(sendMany(guard, spoofed(2), 2, kStart), 2);
}

TEST(SourceGuardTest, MillionSpoofedSourcesStayWithinMaxSourcesAndABanHolds) {
  constexpr std::size_t kMax = 1000;
  SourceGuard guard(settings(200, 400, kMax));
  sendMany(guard, kFlooder, 401, kStart);
  ASSERT_TRUE(guard.banned(kFlooder, kStart));
  for (std::uint32_t n = 0; n < 1000000; ++n) {
    const SteadyTime now = kStart + std::chrono::microseconds(n);
    ASSERT_EQ(guard.admit(spoofed(n), now), Verdict::pass);
    ASSERT_LE(guard.counters().trackedSources, kMax);
  }
  const SteadyTime after = kStart + seconds(1);
  EXPECT_TRUE(guard.banned(kFlooder, after));
  EXPECT_EQ(guard.admit(kFlooder, after), Verdict::drop);
  EXPECT_EQ(guard.counters().evictions, 1000000u - (kMax - 1));
  EXPECT_EQ(guard.counters().trackedSources, kMax);
}

TEST(SourceGuardTest, WhenEverySourceIsBannedTheBanEndingSoonestIsEvicted) {
  SourceGuard guard(settings(10, 1, 2));
  guard.ban(spoofed(1), seconds(30), kStart);
  guard.ban(spoofed(2), seconds(10), kStart);
  EXPECT_EQ(guard.admit(spoofed(3), kStart), Verdict::pass);
  EXPECT_TRUE(guard.banned(spoofed(1), kStart));
  EXPECT_FALSE(guard.banned(spoofed(2), kStart));
  EXPECT_EQ(guard.counters().trackedSources, 2u);
  EXPECT_EQ(guard.counters().activeBans, 1u);
  // The evicted ban is reported as over, so its start is never left without an end.
  const auto ended = guard.sweep(kStart);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].source, spoofed(2));
}

TEST(SourceGuardTest, DisabledPassesEverythingButBansFromOutsideHold) {
  FloodSettings off = settings(1, 1);
  off.enabled = false;
  SourceGuard guard(off);
  EXPECT_EQ(sendMany(guard, kFlooder, 1000, kStart), 1000);
  EXPECT_EQ(guard.counters().trackedSources, 0u);
  guard.ban(kPhone, seconds(5), kStart);
  EXPECT_EQ(guard.admit(kPhone, kStart), Verdict::drop);
  EXPECT_EQ(guard.admit(kPhone, kStart + seconds(5)), Verdict::pass);
}

TEST(SourceGuardTest, ReloadKeepsRunningBansAndAppliesTheNewRate) {
  SourceGuard guard(settings(10, 5));
  sendMany(guard, kFlooder, 6, kStart);
  guard.setSettings(settings(1000, 2000));
  EXPECT_TRUE(guard.banned(kFlooder, kStart + seconds(1)));
  EXPECT_EQ(sendMany(guard, kPhone, 2000, kStart), 2000);
  EXPECT_EQ(guard.admit(kPhone, kStart), Verdict::banStarted);
}

TEST(SourceGuardTest, ReloadWithFewerSourcesEvictsDownToTheNewMaximum) {
  SourceGuard guard(settings(10, 5, 100));
  for (std::uint32_t n = 0; n < 100; ++n) guard.admit(spoofed(n), kStart);
  guard.setSettings(settings(10, 5, 10));
  EXPECT_EQ(guard.counters().trackedSources, 10u);
  EXPECT_EQ(guard.counters().evictions, 90u);
}

}  // namespace
}  // namespace waypoint::auth
