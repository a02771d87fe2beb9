#include <gtest/gtest.h>

#include <string>

#include "waypoint/auth/nonce.hpp"

namespace waypoint::auth {
namespace {

using std::chrono::seconds;

const WallTime kT0{seconds(1'800'000'000)};  // 2027-01-15
const std::string kSecret = "0123456789abcdef0123456789abcdef";
const std::string kOldSecret = "fedcba9876543210fedcba9876543210";

NonceCodec codec(std::vector<std::string> secrets = {kSecret}) {
  return NonceCodec(std::move(secrets), seconds(300));
}

// One codec and a nonce it issued at kT0 for example.com.
class NonceCodecTest : public ::testing::Test {
 protected:
  NonceCodec::Check checkAt(WallTime now, std::string_view realm = "example.com") const {
    return codec_.check(nonce_, realm, now).check;
  }
  NonceCodec codec_ = codec();
  std::string nonce_ = codec_.issue("example.com", kT0);
};

TEST_F(NonceCodecTest, IssuedNonceVerifiesForItsRealm) {
  const auto verdict = codec_.check(nonce_, "example.com", kT0 + seconds(10));
  EXPECT_EQ(verdict.check, NonceCodec::Check::valid);
  EXPECT_EQ(verdict.issued, kT0);
}

TEST_F(NonceCodecTest, NonceIsUrlSafeWithoutQuotesOrCommas) {
  EXPECT_EQ(nonce_.size(), 45u);
  EXPECT_EQ(
      nonce_.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."),
      std::string::npos);
}

TEST_F(NonceCodecTest, TwoNoncesOfTheSameSecondDiffer) {
  EXPECT_NE(codec_.issue("example.com", kT0), nonce_);
}

TEST_F(NonceCodecTest, NonceOlderThanTheLifetimeIsStale) {
  EXPECT_EQ(checkAt(kT0 + seconds(300)), NonceCodec::Check::valid);
  const auto verdict = codec_.check(nonce_, "example.com", kT0 + seconds(301));
  EXPECT_EQ(verdict.check, NonceCodec::Check::stale);
  EXPECT_EQ(verdict.issued, kT0);
}

TEST_F(NonceCodecTest, NonceFromTheFutureIsInvalid) {
  EXPECT_EQ(checkAt(kT0 - seconds(5)), NonceCodec::Check::valid);
  EXPECT_EQ(checkAt(kT0 - seconds(6)), NonceCodec::Check::invalid);
}

TEST_F(NonceCodecTest, NonceForAnotherRealmIsInvalid) {
  EXPECT_EQ(checkAt(kT0, "example.org"), NonceCodec::Check::invalid);
}

TEST(NonceCodecSecretsTest, NonceUnderAnotherSecretIsInvalid) {
  NonceCodec other = codec({kOldSecret});
  const std::string nonce = other.issue("example.com", kT0);
  EXPECT_EQ(codec().check(nonce, "example.com", kT0).check, NonceCodec::Check::invalid);
}

TEST(NonceCodecSecretsTest, SecondSecretStillVerifiesAfterRotation) {
  NonceCodec before = codec({kOldSecret});
  NonceCodec after = codec({kSecret, kOldSecret});
  const std::string nonce = before.issue("example.com", kT0);
  EXPECT_EQ(after.check(nonce, "example.com", kT0).check, NonceCodec::Check::valid);
  // The new one signs: the old instance does not know its nonces.
  EXPECT_EQ(before.check(after.issue("example.com", kT0), "example.com", kT0).check,
            NonceCodec::Check::invalid);
}

TEST_F(NonceCodecTest, DamagedNoncesAreInvalid) {
  for (std::size_t i = 0; i < nonce_.size(); ++i) {
    std::string damaged = nonce_;
    damaged[i] = damaged[i] == 'A' ? 'B' : 'A';
    EXPECT_EQ(codec_.check(damaged, "example.com", kT0).check, NonceCodec::Check::invalid) << i;
  }
  for (const std::string& bad :
       {std::string(), nonce_.substr(1), nonce_ + "A", std::string(45, '.'),
        nonce_.substr(0, 22) + "," + nonce_.substr(23)}) {
    EXPECT_EQ(codec_.check(bad, "example.com", kT0).check, NonceCodec::Check::invalid) << bad;
  }
}

TEST(NonceCodecSecretsTest, RefusesAnEmptySecretList) {
  EXPECT_THROW(NonceCodec({}, seconds(300)), std::invalid_argument);
}

const WallTime kExpires = kT0 + seconds(300);
using Use = NonceCounts::Use;

// What each count in turn gets with the nonce "n", issued and used at kT0.
std::vector<Use> uses(NonceCounts& counts, std::initializer_list<std::uint32_t> sequence) {
  std::vector<Use> result;
  for (const std::uint32_t count : sequence)
    result.push_back(counts.use("n", count, kT0, kExpires, kT0));
  return result;
}

TEST(NonceCountsTest, FirstUseOfACountIsFreshItsRepeatIsReplayed) {
  NonceCounts counts;
  using enum NonceCounts::Use;
  EXPECT_EQ(uses(counts, {1, 1, 2}), (std::vector{fresh, replayed, fresh}));
  EXPECT_EQ(counts.use("other", 1, kT0, kExpires, kT0), fresh);
  EXPECT_EQ(counts.size(), 2u);
}

TEST(NonceCountsTest, CountZeroIsRefused) {
  NonceCounts counts;
  EXPECT_EQ(uses(counts, {0}), std::vector{Use::replayed});
}

TEST(NonceCountsTest, CountsOutOfOrderWithinTheWindowAreFreshOnce) {
  NonceCounts counts;
  using enum NonceCounts::Use;
  EXPECT_EQ(uses(counts, {5, 3, 4, 3, 5, 1}),
            (std::vector{fresh, fresh, fresh, replayed, replayed, fresh}));
}

TEST(NonceCountsTest, CountsFarBelowTheHighestAreReplayed) {
  NonceCounts counts;
  using enum NonceCounts::Use;
  // 37 is 63 below 100, in the window; 36 is 64 below, out of it.
  EXPECT_EQ(uses(counts, {100, 37, 36}), (std::vector{fresh, fresh, replayed}));
  // A jump beyond the window forgets it: only the new highest's window counts.
  EXPECT_EQ(uses(counts, {1000, 999, 100}), (std::vector{fresh, fresh, replayed}));
}

TEST(NonceCountsTest, ExpiredNonceIsStaleAndDroppedLazily) {
  NonceCounts counts;
  EXPECT_EQ(counts.use("old", 1, kT0, kExpires, kT0), NonceCounts::Use::fresh);
  const WallTime later = kExpires + seconds(1);
  EXPECT_EQ(counts.use("old", 2, kT0, kExpires, later), NonceCounts::Use::stale);
  EXPECT_EQ(counts.size(), 0u);
  EXPECT_EQ(counts.use("new", 1, later, later + seconds(300), later), NonceCounts::Use::fresh);
  EXPECT_EQ(counts.size(), 1u);
}

TEST(NonceCountsTest, WhenFullTheOldestIssuedIsForgottenAndOlderUnknownNoncesAreStale) {
  NonceCounts counts(2);
  const auto at = [](int s) { return kT0 + seconds(s); };
  EXPECT_EQ(counts.use("b", 1, at(2), kExpires, at(3)), NonceCounts::Use::fresh);
  EXPECT_EQ(counts.use("a", 1, at(1), kExpires, at(3)), NonceCounts::Use::fresh);
  EXPECT_EQ(counts.use("c", 1, at(3), kExpires, at(3)), NonceCounts::Use::fresh);
  EXPECT_EQ(counts.size(), 2u);
  // "a" (issued first) was forgotten: it cannot be replayed, it is stale.
  EXPECT_EQ(counts.use("a", 1, at(1), kExpires, at(3)), NonceCounts::Use::stale);
  // Another unknown nonce issued at or before the forgotten one: stale too.
  EXPECT_EQ(counts.use("d", 1, at(1), kExpires, at(3)), NonceCounts::Use::stale);
  // The ones remembered still work.
  EXPECT_EQ(counts.use("b", 1, at(2), kExpires, at(3)), NonceCounts::Use::replayed);
  EXPECT_EQ(counts.use("b", 2, at(2), kExpires, at(3)), NonceCounts::Use::fresh);
  EXPECT_EQ(counts.size(), 2u);
}

TEST(NonceCountsTest, StaysWithinItsCapacity) {
  NonceCounts counts(16);
  for (int i = 0; i < 100; ++i) {
    const WallTime issued = kT0 + seconds(i);
    EXPECT_EQ(counts.use(std::string("n").append(std::to_string(i)), 1, issued,
                         issued + seconds(300), issued),
              NonceCounts::Use::fresh);
    EXPECT_LE(counts.size(), 16u);
  }
}

}  // namespace
}  // namespace waypoint::auth
