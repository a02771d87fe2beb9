// Message traces: which messages a trace matches (peer address, address:port, Call-ID),
// how they are written, and that a trace ends by itself after its count or its time.
#include "waypoint/app/message_trace.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "fakes.hpp"
#include "waypoint/app/diagnostics.hpp"

namespace waypoint::testkit {
namespace {

using namespace std::chrono_literals;
using app::MessageTracer;
using app::TraceFilter;
using app::TraceLimits;
using transport::Protocol;

std::string options(const std::string& callId) {
  return "OPTIONS sip:203.0.113.1 SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK-1\r\n"
         "From: <sip:a@example.com>;tag=1\r\nTo: <sip:203.0.113.1>\r\n"
         "Call-ID: " +
         callId + "\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
}

class MessageTraceTest : public ::testing::Test {
 protected:
  MessageTracer tracer{[this] { return clock.now(); },
                       [this](const std::string& text) { lines.push_back(text); }};
  void in(const char* address, std::uint16_t port, const std::string& bytes) {
    tracer.observe(MessageTracer::Direction::received, Protocol::udp, endpoint(address, port),
                   bytes);
  }
  // How many traced messages (not start/end notices) were logged.
  std::size_t tracedCount() const {
    std::size_t n = 0;
    for (const auto& line : lines) n += line.find(" bytes):\n") != std::string::npos ? 1 : 0;
    return n;
  }
  FakeClock clock;
  std::vector<std::string> lines;
};

TEST(TraceFilterTest, SourceIsAnAddressWithAnOptionalPort) {
  const auto plain = TraceFilter::forSource("192.0.2.7");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->address, boost::asio::ip::make_address("192.0.2.7"));
  EXPECT_EQ(plain->port, std::nullopt);
  const auto withPort = TraceFilter::forSource("192.0.2.7:5070");
  ASSERT_TRUE(withPort);
  EXPECT_EQ(withPort->port, 5070);
  const auto v6 = TraceFilter::forSource("[2001:db8::1]:5060");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->describe(), "source [2001:db8::1]:5060");
  EXPECT_TRUE(TraceFilter::forSource("::1"));
  EXPECT_FALSE(TraceFilter::forSource("phone.example.com"));
  EXPECT_FALSE(TraceFilter::forSource("192.0.2.7:99999"));
  EXPECT_FALSE(TraceFilter::forSource(""));
}

TEST(CallIdOfTest, FindsTheLongOrCompactHeaderAndStopsAtTheBody) {
  EXPECT_EQ(app::callIdOf(options("abc@host")), "abc@host");
  EXPECT_EQ(app::callIdOf("INVITE sip:b SIP/2.0\r\ni:   compact-1  \r\n\r\n"), "compact-1");
  EXPECT_EQ(app::callIdOf("INVITE sip:b SIP/2.0\ncall-id: bare-lf\n\n"), "bare-lf");
  EXPECT_EQ(app::callIdOf("INVITE sip:b SIP/2.0\r\nTo: x\r\n\r\nCall-ID: in-body\r\n"), "");
  EXPECT_EQ(app::callIdOf("garbage"), "");
  EXPECT_EQ(app::callIdOf(""), "");
}

TEST_F(MessageTraceTest, BySourceAddressMatchesEveryPortOfIt) {
  ASSERT_TRUE(tracer.start(*TraceFilter::forSource("192.0.2.7"), TraceLimits{}));
  in("192.0.2.7", 5060, options("a"));
  in("192.0.2.7", 5070, options("b"));
  in("192.0.2.8", 5060, options("c"));
  EXPECT_EQ(tracedCount(), 2u);
}

TEST_F(MessageTraceTest, BySourceAndPortMatchesOnlyThatPortInBothDirections) {
  ASSERT_TRUE(tracer.start(*TraceFilter::forSource("192.0.2.7:5070"), TraceLimits{}));
  in("192.0.2.7", 5060, options("a"));
  in("192.0.2.7", 5070, options("b"));
  tracer.observe(MessageTracer::Direction::sent, Protocol::tcp, endpoint("192.0.2.7", 5070),
                 "SIP/2.0 200 OK\r\nCall-ID: b\r\n\r\n");
  ASSERT_EQ(tracedCount(), 2u);
  EXPECT_NE(
      lines[2].find("trace 1 send to TCP 192.0.2.7:5070 (30 bytes):\ntrace 1| SIP/2.0 200 OK"),
      std::string::npos)
      << lines[2];
}

TEST_F(MessageTraceTest, ByCallIdShowsTheWholeMessageLineByLine) {
  ASSERT_TRUE(tracer.start(TraceFilter::forCallId("call-42"), TraceLimits{}));
  in("192.0.2.7", 5060, options("call-41"));
  in("192.0.2.7", 5060, options("call-42"));
  ASSERT_EQ(tracedCount(), 1u);
  EXPECT_EQ(lines[1],
            "trace 1 recv from UDP 192.0.2.7:5060 (195 bytes):\n"
            "trace 1| OPTIONS sip:203.0.113.1 SIP/2.0\n"
            "trace 1| Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK-1\n"
            "trace 1| From: <sip:a@example.com>;tag=1\n"
            "trace 1| To: <sip:203.0.113.1>\n"
            "trace 1| Call-ID: call-42\n"
            "trace 1| CSeq: 1 OPTIONS\n"
            "trace 1| Content-Length: 0\n"
            "trace 1| ");
}

TEST_F(MessageTraceTest, EndsByItselfAfterItsMessageCount) {
  const auto trace = tracer.start(*TraceFilter::forSource("192.0.2.7"), TraceLimits{3, 600s});
  ASSERT_TRUE(trace);
  for (int i = 0; i < 10; ++i) in("192.0.2.7", 5060, options("x"));
  EXPECT_EQ(tracedCount(), 3u);
  EXPECT_FALSE(tracer.active());
  EXPECT_EQ(lines.back(),
            "trace 1 ended (its message count is reached): source 192.0.2.7, 3 messages traced");
}

TEST_F(MessageTraceTest, EndsByItselfWhenItsTimeIsOver) {
  ASSERT_TRUE(tracer.start(*TraceFilter::forSource("192.0.2.7"), TraceLimits{1000, 60s}));
  in("192.0.2.7", 5060, options("x"));
  clock.advance(59s);
  EXPECT_EQ(tracer.list().size(), 1u);
  clock.advance(1s);
  in("192.0.2.7", 5060, options("x"));
  EXPECT_EQ(tracedCount(), 1u);
  EXPECT_FALSE(tracer.active());
  EXPECT_EQ(lines.back(), "trace 1 ended (its time is over): source 192.0.2.7, 1 messages traced");
}

TEST_F(MessageTraceTest, DefaultsAreAThousandMessagesOrTenMinutesAndLimitsAreCapped) {
  const auto byDefault = tracer.start(TraceFilter::forCallId("a"), TraceLimits{});
  ASSERT_TRUE(byDefault);
  EXPECT_EQ(byDefault->maxMessages, 1000u);
  EXPECT_EQ(byDefault->until, clock.now() + 10min);
  const auto huge = tracer.start(TraceFilter::forCallId("b"), TraceLimits{1u << 30, 1000h});
  ASSERT_TRUE(huge);
  EXPECT_EQ(huge->maxMessages, 10000u);
  EXPECT_EQ(huge->until, clock.now() + 100min);
}

TEST_F(MessageTraceTest, StopEndsOneOrAllAndTheTableIsBounded) {
  for (std::size_t i = 0; i < MessageTracer::kMaxTraces; ++i) {
    ASSERT_TRUE(tracer.start(TraceFilter::forCallId(std::string("c").append(std::to_string(i))),
                             TraceLimits{}));
  }
  EXPECT_FALSE(tracer.start(TraceFilter::forCallId("one too many"), TraceLimits{}));
  EXPECT_EQ(tracer.stop(2), 1u);
  EXPECT_EQ(tracer.stop(2), 0u);
  EXPECT_EQ(tracer.list().size(), MessageTracer::kMaxTraces - 1);
  EXPECT_EQ(tracer.stop(), MessageTracer::kMaxTraces - 1);
  EXPECT_FALSE(tracer.active());
}

TEST_F(MessageTraceTest, AMessageTwoTracesMatchIsLoggedOnceAndCountsForBoth) {
  ASSERT_TRUE(tracer.start(*TraceFilter::forSource("192.0.2.7"), TraceLimits{}));
  ASSERT_TRUE(tracer.start(TraceFilter::forCallId("x"), TraceLimits{}));
  in("192.0.2.7", 5060, options("x"));
  ASSERT_EQ(tracedCount(), 1u);
  EXPECT_TRUE(lines.back().starts_with("trace 1,2 recv from")) << lines.back();
  for (const auto& trace : tracer.list()) EXPECT_EQ(trace.traced, 1u);
}

TEST(TraceTextTest, ControlBytesAreEscapedSoTheLogStaysReadable) {
  EXPECT_EQ(app::traceText("t| ", std::string("A\r\nB\x01\x1b[2J\r\n", 11)),
            "t| A\nt| B\\x01\\x1b[2J");
  EXPECT_EQ(app::traceText("t| ", std::string("\0z", 2)), "t| \\x00z");
  EXPECT_EQ(app::traceText("t| ", "caf\xc3\xa9\tx"), "t| caf\xc3\xa9\tx");
}

TEST_F(MessageTraceTest, TraceCommandStartsListsAndEndsTraces) {
  app::TraceRequest start;
  start.action = app::TraceRequest::Action::start;
  start.source = "192.0.2.7:5060";
  start.count = 5;
  start.time = 2min;
  const auto started = app::runTraceRequest(tracer, start);
  EXPECT_EQ(started["trace"]["filter"], "source 192.0.2.7:5060");
  EXPECT_EQ(started["trace"]["max_messages"], 5);
  EXPECT_EQ(started["trace"]["seconds_left"], 120);

  start.source = "phone.example.com";
  const auto refused = app::runTraceRequest(tracer, start);
  EXPECT_FALSE(refused["ok"]);
  EXPECT_EQ(refused["error"], "source 'phone.example.com' is not an IP address or IP:port");

  const auto listed = app::runTraceRequest(tracer, app::TraceRequest{});
  ASSERT_EQ(listed["traces"].size(), 1u);
  EXPECT_EQ(listed["traces"][0]["id"], 1);

  app::TraceRequest off;
  off.action = app::TraceRequest::Action::stop;
  off.id = 7;
  EXPECT_EQ(app::runTraceRequest(tracer, off)["error"], "no trace 7 is running");
  off.id.reset();
  EXPECT_EQ(app::runTraceRequest(tracer, off)["stopped"], 1);
  EXPECT_TRUE(app::runTraceRequest(tracer, app::TraceRequest{})["traces"].empty());
}

}  // namespace
}  // namespace waypoint::testkit
