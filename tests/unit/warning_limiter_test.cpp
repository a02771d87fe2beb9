// The warning limiter: per reason, the first `burst` warnings of an interval pass, the rest
// are counted and reported in one line when the interval is over (exact schedule, fake
// clock).
#include "waypoint/log/warning_limiter.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "fakes.hpp"

namespace waypoint::testkit {
namespace {

using namespace std::chrono_literals;

class WarningLimiterTest : public ::testing::Test {
 protected:
  log::WarningLimiter make(std::size_t burst, std::chrono::seconds interval) {
    return log::WarningLimiter(
        log::WarningLimits{burst, interval}, [this] { return clock.now(); },
        [this](const std::string& line) { lines.push_back(line); },
        [this](log::SteadyTime due) { wakeups.push_back(due); });
  }
  // How many of n warnings of `reason` pass.
  static int passed(log::WarningLimiter& limiter, std::string_view reason, int n) {
    int allowed = 0;
    for (int i = 0; i < n; ++i) allowed += limiter.allow(reason) ? 1 : 0;
    return allowed;
  }

  FakeClock clock;
  std::vector<std::string> lines;
  std::vector<log::SteadyTime> wakeups;
};

TEST_F(WarningLimiterTest, FirstBurstPassesThenOneSummaryWhenTheIntervalEnds) {
  auto limiter = make(3, 10s);
  EXPECT_EQ(passed(limiter, "bad packet", 3), 3);
  EXPECT_EQ(wakeups.size(), 0u);
  EXPECT_EQ(passed(limiter, "bad packet", 97), 0);
  // The first suppressed warning asks for a wake-up at the end of the window, once.
  ASSERT_EQ(wakeups.size(), 1u);
  EXPECT_EQ(wakeups[0], clock.start() + 10s);
  EXPECT_EQ(limiter.nextFlush(), clock.start() + 10s);

  clock.advance(9999ms);
  limiter.flush();
  EXPECT_TRUE(lines.empty());  // not over yet
  clock.advance(1ms);
  limiter.flush();
  EXPECT_EQ(lines, std::vector<std::string>{
                       "97 similar warnings suppressed in the last 10 s (bad packet)"});
  EXPECT_EQ(limiter.suppressedTotal(), 97u);
  EXPECT_EQ(limiter.nextFlush(), std::nullopt);
  limiter.flush();
  EXPECT_EQ(lines.size(), 1u);  // reported once

  // A new window: the burst passes again.
  EXPECT_EQ(passed(limiter, "bad packet", 4), 3);
}

TEST_F(WarningLimiterTest, ReasonsAreLimitedApart) {
  auto limiter = make(2, 60s);
  EXPECT_EQ(passed(limiter, "bad packet", 5), 2);
  EXPECT_EQ(passed(limiter, "flood ban", 5), 2);
  clock.advance(30s);
  EXPECT_EQ(passed(limiter, "refused connection", 1), 1);
  clock.advance(30s);
  limiter.flush();
  EXPECT_EQ(lines, (std::vector<std::string>{
                       "3 similar warnings suppressed in the last 60 s (bad packet)",
                       "3 similar warnings suppressed in the last 60 s (flood ban)"}));
  // "refused connection" started 30 s later: its window is still open, nothing to report.
  EXPECT_EQ(limiter.nextFlush(), std::nullopt);
}

TEST_F(WarningLimiterTest, NoSummaryWhenNothingWasSuppressed) {
  auto limiter = make(3, 10s);
  EXPECT_EQ(passed(limiter, "bad packet", 3), 3);
  clock.advance(10s);
  limiter.flush();
  EXPECT_TRUE(lines.empty());
  EXPECT_TRUE(wakeups.empty());
}

TEST_F(WarningLimiterTest, AWarningAfterTheWindowReportsTheOldOneFirstWithoutAFlush) {
  auto limiter = make(1, 10s);
  EXPECT_EQ(passed(limiter, "bad packet", 3), 1);
  clock.advance(25s);  // the timer did not run
  EXPECT_TRUE(limiter.allow("bad packet"));
  EXPECT_EQ(lines, std::vector<std::string>{
                       "2 similar warnings suppressed in the last 10 s (bad packet)"});
  // The new window started at this warning.
  EXPECT_FALSE(limiter.allow("bad packet"));
  EXPECT_EQ(limiter.nextFlush(), clock.now() + 10s);
}

TEST_F(WarningLimiterTest, DefaultLimitsAreFivePerMinute) {
  log::WarningLimiter limiter(
      log::WarningLimits{}, [this] { return clock.now(); },
      [this](const std::string& line) { lines.push_back(line); });
  EXPECT_EQ(passed(limiter, "bad packet", 1000), 5);
  clock.advance(59s);
  EXPECT_EQ(passed(limiter, "bad packet", 10), 0);
  clock.advance(1s);
  limiter.flush();
  EXPECT_EQ(lines, std::vector<std::string>{
                       "1005 similar warnings suppressed in the last 60 s (bad packet)"});
}

TEST_F(WarningLimiterTest, FlushAllAtShutdownReportsOpenWindowsWithTheirTimeSoFar) {
  auto limiter = make(1, 60s);
  EXPECT_EQ(passed(limiter, "bad packet", 4), 1);
  EXPECT_EQ(passed(limiter, "flood ban", 1), 1);  // nothing suppressed: no line
  clock.advance(2500ms);
  limiter.flushAll();
  EXPECT_EQ(lines,
            std::vector<std::string>{"3 similar warnings suppressed in the last 3 s (bad packet)"});
  EXPECT_EQ(limiter.nextFlush(), std::nullopt);
  limiter.flushAll();
  EXPECT_EQ(lines.size(), 1u);
}

}  // namespace
}  // namespace waypoint::testkit
