// The Dispatcher's flood check: a banned source's messages are dropped before parsing and
// never answered; trusted sources are never limited.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "fakes.hpp"
#include "proxy_rig.hpp"
#include "waypoint/app/dispatcher.hpp"
#include "waypoint/auth/source_guard.hpp"
#include "waypoint/log/warning_limiter.hpp"

namespace waypoint::testkit {
namespace {

std::string options(int n) {
  return "OPTIONS sip:203.0.113.1 SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 192.0.2.99:5060;branch=z9hG4bK-flood-" +
         std::to_string(n) +
         "\r\n"
         "Max-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:203.0.113.1>\r\n"
         "Call-ID: flood-" +
         std::to_string(n) + "\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
}

auth::FloodSettings threePerSecond() {
  auth::FloodSettings s;
  s.rate = 3;
  s.burst = 3;
  return s;
}

class DispatcherFloodTest : public ::testing::Test, public ProxyRig {
 protected:
  DispatcherFloodTest() {
    dispatcher = std::make_unique<app::Dispatcher>(
        sender, *proxy, sip::ParseLimits{},
        app::SourceFilter{guard, clock, {*transport::parseAddressBlock("198.51.100.0/24")}});
  }

  auth::SourceGuard guard{threePerSecond()};
  std::unique_ptr<app::Dispatcher> dispatcher;
};

TEST_F(DispatcherFloodTest, BannedSourceIsNeitherParsedNorAnswered) {
  for (int n = 0; n < 3; ++n) dispatcher->onMessage(from("192.0.2.99"), options(n));
  EXPECT_EQ(sender.sent().size(), 3u);
  dispatcher->onMessage(from("192.0.2.99"), options(3));  // starts the ban
  dispatcher->onMessage(from("192.0.2.99"), "garbage");
  EXPECT_EQ(sender.sent().size(), 3u);
  EXPECT_EQ(dispatcher->counters().requestsReceived.total(), 3u);
  EXPECT_EQ(dispatcher->counters().messagesUnparseable, 0u);
  EXPECT_EQ(guard.counters().dropped, 2u);
  EXPECT_EQ(guard.counters().floodBans, 1u);
  // Another source is still served.
  dispatcher->onMessage(from("192.0.2.100"), options(4));
  EXPECT_EQ(sender.sent().size(), 4u);
}

TEST_F(DispatcherFloodTest, TrustedSourceIsNeverLimited) {
  for (int n = 0; n < 50; ++n) dispatcher->onMessage(from("198.51.100.9"), options(n));
  EXPECT_EQ(sender.sent().size(), 50u);
  EXPECT_EQ(guard.counters().trackedSources, 0u);
}

TEST_F(DispatcherFloodTest, BanFromOutsideDropsTheSource) {
  guard.ban(boost::asio::ip::make_address("192.0.2.99"), std::chrono::seconds(10), clock.now());
  dispatcher->onMessage(from("192.0.2.99"), options(0));
  EXPECT_TRUE(sender.sent().empty());
  clock.advance(std::chrono::seconds(10));
  dispatcher->onMessage(from("192.0.2.99"), options(1));
  EXPECT_EQ(sender.sent().size(), 1u);
}

// Bad packets are warned about through the limiter: a burst of garbage makes the first
// few warnings and one count, and the counter still counts each.
TEST_F(DispatcherFloodTest, GarbageWarningsAreLimitedButEachIsCounted) {
  std::vector<std::string> summaries;
  log::WarningLimiter warnings(
      log::WarningLimits{2, std::chrono::seconds(60)}, [this] { return clock.now(); },
      [&summaries](const std::string& line) { summaries.push_back(line); });
  app::Dispatcher limited(sender, *proxy, sip::ParseLimits{}, std::nullopt,
                          app::MessageAids{nullptr, &warnings, nullptr});
  for (int n = 0; n < 50; ++n) limited.onMessage(from("192.0.2.99"), "garbage");
  EXPECT_EQ(limited.counters().messagesUnparseable, 50u);
  EXPECT_EQ(warnings.suppressedTotal(), 48u);
  clock.advance(std::chrono::seconds(60));
  warnings.flush();
  EXPECT_EQ(summaries, std::vector<std::string>{
                           "48 similar warnings suppressed in the last 60 s (bad packet)"});
  // Good traffic is still served.
  limited.onMessage(from("192.0.2.99"), options(0));
  EXPECT_EQ(sender.sent().size(), 1u);
}

}  // namespace
}  // namespace waypoint::testkit
