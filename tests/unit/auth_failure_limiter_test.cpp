// FailureLimiter: back-off and bans after failed authentication attempts.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "waypoint/auth/failure_limiter.hpp"

namespace waypoint::auth {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const SteadyTime kStart = SteadyTime{} + std::chrono::hours(1000);

FailureSettings defaults() { return FailureSettings{}; }

// Fails `count` times at `when`; returns the last outcome.
FailureLimiter::Outcome failMany(FailureLimiter& limiter, const std::string& key, unsigned count,
                                 SteadyTime when) {
  FailureLimiter::Outcome last;
  for (unsigned i = 0; i < count; ++i) last = limiter.failed(key, when);
  return last;
}

TEST(FailureLimiterTest, BackOffDoublesAfterTheFreeFailuresUpToTheMaximum) {
  FailureLimiter limiter(defaults());  // 5 free, 1 s doubling, at most 30 s
  const long expected[] = {0, 0, 0, 0, 0, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000};
  unsigned failures = 0;
  for (const long delay : expected) {
    const auto outcome = limiter.failed("192.0.2.1", kStart);
    EXPECT_EQ(outcome.failures, ++failures);
    EXPECT_EQ(outcome.delay, milliseconds(delay)) << "failure " << failures;
    EXPECT_FALSE(outcome.banStarted);
  }
}

TEST(FailureLimiterTest, StateReportsTheBackOffLeft) {
  FailureLimiter limiter(defaults());
  EXPECT_EQ(limiter.state("alice@example.com", kStart).wait, milliseconds(0));
  failMany(limiter, "alice@example.com", 6, kStart);  // the 6th: 1 s
  auto state = limiter.state("alice@example.com", kStart + milliseconds(400));
  EXPECT_FALSE(state.banned);
  EXPECT_EQ(state.wait, milliseconds(600));
  EXPECT_EQ(state.until, kStart + seconds(1));
  EXPECT_EQ(limiter.state("alice@example.com", kStart + seconds(1)).wait, milliseconds(0));
  limiter.failed("alice@example.com", kStart + seconds(1));  // the 7th: 2 s from now
  EXPECT_EQ(limiter.state("alice@example.com", kStart + seconds(1)).wait, milliseconds(2000));
}

TEST(FailureLimiterTest, BanStartsOnceAtBanAfterFailures) {
  FailureLimiter limiter(defaults());  // ban after 20 for 900 s
  EXPECT_FALSE(failMany(limiter, "192.0.2.1", 19, kStart).banStarted);
  const auto twentieth = limiter.failed("192.0.2.1", kStart);
  EXPECT_TRUE(twentieth.banStarted);
  EXPECT_FALSE(limiter.failed("192.0.2.1", kStart).banStarted);
  const auto state = limiter.state("192.0.2.1", kStart + seconds(100));
  EXPECT_TRUE(state.banned);
  EXPECT_EQ(state.until, kStart + seconds(900));
  EXPECT_EQ(state.wait, seconds(800));
  EXPECT_FALSE(limiter.state("192.0.2.1", kStart + seconds(900)).banned);
}

TEST(FailureLimiterTest, BanAfterZeroNeverBans) {
  FailureSettings s = defaults();
  s.banAfter = 0;
  FailureLimiter limiter(s);
  EXPECT_FALSE(failMany(limiter, "k", 1000, kStart).banStarted);
  EXPECT_FALSE(limiter.state("k", kStart).banned);
}

TEST(FailureLimiterTest, SweepReportsAnEndedBanOnce) {
  FailureLimiter limiter(defaults());
  failMany(limiter, "192.0.2.1", 20, kStart);
  EXPECT_TRUE(limiter.sweep(kStart + seconds(899)).empty());
  EXPECT_EQ(limiter.sweep(kStart + seconds(900)), std::vector<std::string>{"192.0.2.1"});
  EXPECT_TRUE(limiter.sweep(kStart + seconds(901)).empty());
}

TEST(FailureLimiterTest, AKeyWithoutFailuresForForgetAfterStartsAgain) {
  FailureLimiter limiter(defaults());  // forget after 3600 s
  failMany(limiter, "k", 10, kStart);
  EXPECT_EQ(limiter.failed("k", kStart + seconds(3599)).failures, 11u);
  const auto later = kStart + seconds(3599 + 3600);
  EXPECT_EQ(limiter.state("k", later).wait, milliseconds(0));
  const auto outcome = limiter.failed("k", later);
  EXPECT_EQ(outcome.failures, 1u);
  EXPECT_EQ(outcome.delay, milliseconds(0));
}

TEST(FailureLimiterTest, SweepForgetsOldKeys) {
  FailureLimiter limiter(defaults());
  limiter.failed("old", kStart);
  limiter.failed("new", kStart + seconds(1800));
  limiter.sweep(kStart + seconds(3600));
  EXPECT_EQ(limiter.size(), 1u);
}

TEST(FailureLimiterTest, SuccessClearsTheKey) {
  FailureLimiter limiter(defaults());
  failMany(limiter, "alice", 8, kStart);
  limiter.succeeded("alice");
  EXPECT_EQ(limiter.size(), 0u);
  EXPECT_EQ(limiter.state("alice", kStart).wait, milliseconds(0));
  EXPECT_EQ(limiter.failed("alice", kStart).failures, 1u);
}

TEST(FailureLimiterTest, SuccessDoesNotLiftARunningBan) {
  FailureLimiter limiter(defaults());
  failMany(limiter, "alice", 20, kStart);
  limiter.succeeded("alice");
  EXPECT_TRUE(limiter.state("alice", kStart + seconds(1)).banned);
}

TEST(FailureLimiterTest, EvictsTheLeastRecentlyFailedKeyWhenFull) {
  FailureSettings s = defaults();
  s.maxKeys = 2;
  FailureLimiter limiter(s);
  failMany(limiter, "a", 6, kStart);
  failMany(limiter, "b", 6, kStart);
  limiter.failed("a", kStart + seconds(1));  // b is now the least recent
  limiter.failed("c", kStart + seconds(2));
  EXPECT_EQ(limiter.size(), 2u);
  EXPECT_EQ(limiter.state("b", kStart + seconds(2)).wait, milliseconds(0));
  EXPECT_EQ(limiter.failed("a", kStart + seconds(2)).failures, 8u);
}

TEST(FailureLimiterTest, BannedKeysOutliveAFloodOfOtherKeys) {
  FailureSettings s = defaults();
  s.maxKeys = 100;
  FailureLimiter limiter(s);
  failMany(limiter, "victim@example.com", 20, kStart);
  for (int i = 0; i < 10000; ++i)
    limiter.failed(std::string("user").append(std::to_string(i)), kStart);
  EXPECT_LE(limiter.size(), 100u);
  EXPECT_TRUE(limiter.state("victim@example.com", kStart + seconds(1)).banned);
}

TEST(FailureLimiterTest, ReloadWithFewerKeysEvicts) {
  FailureLimiter limiter(defaults());
  for (int i = 0; i < 50; ++i) limiter.failed(std::string("k").append(std::to_string(i)), kStart);
  FailureSettings s = defaults();
  s.maxKeys = 5;
  limiter.setSettings(s);
  EXPECT_EQ(limiter.size(), 5u);
}

}  // namespace
}  // namespace waypoint::auth
