// The debug line of each message: the fields an operator greps for, and for a request the
// proxy's decision (rule and targets, or why it was answered here). A message in, the
// line out, through the real dispatcher and proxy.
#include "waypoint/app/message_log.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "fakes.hpp"
#include "proxy_rig.hpp"
#include "waypoint/app/dispatcher.hpp"

namespace waypoint::testkit {
namespace {

using transport::Protocol;

const std::string kRegisterBob =
    "REGISTER sip:example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.20:5062;branch=z9hG4bK-reg-1\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:bob@example.com>;tag=bobtag\r\n"
    "To: <sip:bob@example.com>\r\n"
    "Call-ID: reg-1@bob\r\n"
    "CSeq: 1 REGISTER\r\n"
    "Contact: <sip:bob@192.0.2.20:5062>\r\n"
    "Expires: 600\r\n"
    "Content-Length: 0\r\n\r\n";

std::string inviteTo(const std::string& user, const std::string& callId) {
  return "INVITE sip:" + user +
         "@example.com SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-" +
         callId.substr(0, callId.find('@')) +
         "\r\n"
         "Max-Forwards: 70\r\n"
         "From: <sip:alice@example.com>;tag=alicetag\r\n"
         "To: <sip:" +
         user +
         "@example.com>\r\n"
         "Call-ID: " +
         callId +
         "\r\n"
         "CSeq: 7 INVITE\r\n"
         "Contact: <sip:alice@192.0.2.10:5060>\r\n"
         "Content-Length: 0\r\n\r\n";
}

// Routes spdlog's default logger into a string for the test's lifetime.
class CapturedLog {
 public:
  explicit CapturedLog(spdlog::level::level_enum level) : previous_(spdlog::default_logger()) {
    auto logger = std::make_shared<spdlog::logger>(
        "captured", std::make_shared<spdlog::sinks::ostream_sink_st>(out_));
    logger->set_pattern("%v");
    logger->set_level(level);
    spdlog::set_default_logger(logger);
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  CapturedLog(const CapturedLog&) = delete;
  CapturedLog& operator=(const CapturedLog&) = delete;

  std::vector<std::string> lines() const {
    std::vector<std::string> result;
    std::istringstream in(out_.str());
    for (std::string line; std::getline(in, line);) result.push_back(line);
    return result;
  }
  // The lines that contain `needle`.
  std::vector<std::string> grep(std::string_view needle) const {
    std::vector<std::string> found;
    for (auto& line : lines()) {
      if (line.find(needle) != std::string::npos) found.push_back(line);
    }
    return found;
  }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

class MessageLogTest : public ::testing::Test, public ProxyRig {
 protected:
  app::Dispatcher dispatcher{sender, *proxy, sip::ParseLimits{}};
};

TEST(MessageLineTest, NamesTheFieldsOfARequestAndOfAResponse) {
  const sip::Message invite = parse(inviteTo("bob", "line-1@alice"));
  EXPECT_EQ(app::messageLine("recv", invite, Protocol::udp, endpoint("192.0.2.10", 5060)),
            "recv INVITE sip:bob@example.com call-id=line-1@alice cseq=\"7 INVITE\" "
            "from-tag=alicetag to-tag=- peer=192.0.2.10:5060 transport=UDP");
  const sip::Message ringing = parse(responseText(inviteTo("bob", "line-1@alice"), 180, "Ringing"));
  EXPECT_EQ(app::messageLine("send", ringing, Protocol::tcp, endpoint("192.0.2.10", 5060)),
            "send 180 Ringing call-id=line-1@alice cseq=\"7 INVITE\" from-tag=alicetag "
            "to-tag=8321234356 peer=192.0.2.10:5060 transport=TCP");
}

TEST_F(MessageLogTest, EachRequestGetsOneLineWithItsDecision) {
  const CapturedLog log(spdlog::level::debug);
  dispatcher.onMessage(from("192.0.2.20", 5062), kRegisterBob);
  dispatcher.onMessage(from("192.0.2.10", 5060), inviteTo("bob", "call-1@alice"));
  dispatcher.onMessage(from("192.0.2.10", 5060), inviteTo("carol", "call-2@alice"));

  const auto registerLines = log.grep("call-id=reg-1@bob");
  ASSERT_EQ(registerLines.size(), 1u) << log.grep("").size();
  EXPECT_EQ(registerLines[0],
            "recv REGISTER sip:example.com call-id=reg-1@bob cseq=\"1 REGISTER\" from-tag=bobtag "
            "to-tag=- peer=192.0.2.20:5062 transport=UDP decision: registrar 200 OK");

  const auto inviteLines = log.grep("call-id=call-1@alice");
  ASSERT_EQ(inviteLines.size(), 1u);
  EXPECT_EQ(inviteLines[0],
            "recv INVITE sip:bob@example.com call-id=call-1@alice cseq=\"7 INVITE\" "
            "from-tag=alicetag to-tag=- peer=192.0.2.10:5060 transport=UDP decision: rule "
            "\"default\": sip:bob@192.0.2.20:5062 (UDP 192.0.2.20:5062); forwarded");

  const auto unknownLines = log.grep("call-id=call-2@alice");
  ASSERT_EQ(unknownLines.size(), 1u);
  EXPECT_NE(unknownLines[0].find(" decision: rule \"default\": 404 Not Found (no such user); "
                                 "answered 404"),
            std::string::npos)
      << unknownLines[0];
}

TEST_F(MessageLogTest, ARetransmissionIsSaidToBeAbsorbed) {
  const CapturedLog log(spdlog::level::debug);
  dispatcher.onMessage(from("192.0.2.20", 5062), kRegisterBob);
  dispatcher.onMessage(from("192.0.2.20", 5062), kRegisterBob);
  const auto lines = log.grep("call-id=reg-1@bob");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_TRUE(
      lines[1].ends_with("decision: absorbed by its transaction (a retransmission or the "
                         "ACK of a final response)"))
      << lines[1];
}

TEST_F(MessageLogTest, AResponseGetsItsLineToo) {
  const CapturedLog log(spdlog::level::debug);
  dispatcher.onMessage(from("192.0.2.20", 5062), kRegisterBob);
  dispatcher.onMessage(from("192.0.2.10", 5060), inviteTo("bob", "call-3@alice"));
  ASSERT_FALSE(sender.sent().empty());
  const std::string forwarded = sender.sent().back().bytes;
  dispatcher.onMessage(from("192.0.2.20", 5062), responseText(forwarded, 180, "Ringing"));
  const auto lines = log.grep("recv 180 Ringing call-id=call-3@alice");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("peer=192.0.2.20:5062 transport=UDP"), std::string::npos);
}

TEST_F(MessageLogTest, AMalformedRequestSaysWhyInItsDecision) {
  const CapturedLog log(spdlog::level::debug);
  std::string noCseq = inviteTo("bob", "bad-1@alice");
  noCseq.erase(noCseq.find("CSeq: 7 INVITE\r\n"), 16);
  dispatcher.onMessage(from("192.0.2.10", 5060), noCseq);
  const auto lines = log.grep("call-id=bad-1@alice");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("decision: answered 400"), std::string::npos) << lines[0];
}

TEST_F(MessageLogTest, AtInfoLevelNoMessageLineIsWritten) {
  const CapturedLog log(spdlog::level::info);
  dispatcher.onMessage(from("192.0.2.20", 5062), kRegisterBob);
  dispatcher.onMessage(from("192.0.2.10", 5060), inviteTo("bob", "call-4@alice"));
  EXPECT_TRUE(log.grep("call-id=").empty());
  EXPECT_EQ(sender.sent().size(), 3u);  // 200 to the REGISTER, 100 and the INVITE forwarded
}

TEST(DebugLinesTest, LinesOfSendsWhileHeldFollowTheRequestsLine) {
  const CapturedLog log(spdlog::level::debug);
  app::DebugLines lines;
  lines.write("before");
  lines.hold();
  lines.write("send 100 Trying");
  lines.write("send INVITE");
  EXPECT_EQ(log.lines(), std::vector<std::string>{"before"});
  lines.release("recv INVITE decision: forwarded");
  lines.write("after");
  EXPECT_EQ(log.lines(), (std::vector<std::string>{"before", "recv INVITE decision: forwarded",
                                                   "send 100 Trying", "send INVITE", "after"}));
}

}  // namespace
}  // namespace waypoint::testkit
