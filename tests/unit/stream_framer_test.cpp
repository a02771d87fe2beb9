// Cutting a TCP/TLS byte stream into SIP messages (RFC 3261 §18.3) and recognising
// RFC 5626 §4.4.1 CRLF keepalives.
//
// Keepalive contract (stream_framer.hpp): "\r\n\r\n" is a ping (answer with "\r\n"). A
// single "\r\n" is a pong, reported once a message follows it; until then it may still
// be the first half of a ping split across reads, so a lone "\r\n" (or "\r") is needMore.
// Hence a ping torn apart at any point is still one ping.

#include "waypoint/sip/stream_framer.hpp"

#include <gtest/gtest.h>

#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "sip_test_messages.hpp"

namespace waypoint::sip {
namespace {

using Kind = StreamFramer::Kind;
using namespace testdata;

constexpr std::size_t kMax = 65536;

const char* kindName(Kind k) {
  switch (k) {
    case Kind::needMore:
      return "needMore";
    case Kind::message:
      return "message";
    case Kind::ping:
      return "ping";
    case Kind::pong:
      return "pong";
    case Kind::error:
      return "error";
  }
  return "?";
}

struct Event {
  Kind kind;
  std::string frame;  // message frames only
  friend bool operator==(const Event&, const Event&) = default;
};

void PrintTo(const Event& e, std::ostream* os) {
  *os << kindName(e.kind);
  if (e.kind == Kind::message)
    *os << "(" << e.frame.size() << " bytes: " << e.frame.substr(0, 40) << "...)";
}

Event msg(std::string_view frame) { return {Kind::message, std::string(frame)}; }
const Event kPing{Kind::ping, ""};
const Event kPong{Kind::pong, ""};
const Event kError{Kind::error, ""};

// Takes events until the framer needs more bytes or fails.
std::vector<Event> drain(StreamFramer& framer) {
  std::vector<Event> events;
  for (int guard = 0; guard < 1000; ++guard) {
    const Kind k = framer.next();
    if (k == Kind::needMore) return events;
    events.push_back({k, k == Kind::message ? std::string(framer.frame()) : std::string()});
    if (k == Kind::error) return events;
  }
  ADD_FAILURE() << "next() never returned needMore or error";
  return events;
}

std::vector<Event> feedAll(StreamFramer& framer, std::string_view bytes) {
  framer.feed(bytes);
  return drain(framer);
}

std::string replaced(std::string_view message, std::string_view from, std::string_view to) {
  std::string s(message);
  const std::size_t pos = s.find(from);
  if (pos == std::string::npos) throw std::runtime_error("sample does not contain text");
  s.replace(pos, from.size(), to);
  return s;
}

std::string cat(std::string_view a, std::string_view b, std::string_view c = {}) {
  return std::string(a) + std::string(b) + std::string(c);
}

// --- messages -------------------------------------------------------------------------

TEST(StreamFramerTest, CutsOneCompleteMessage) {
  StreamFramer f(kMax);
  EXPECT_EQ(feedAll(f, kInvite), std::vector<Event>{msg(kInvite)});
  EXPECT_EQ(f.buffered(), 0u);
  EXPECT_EQ(f.next(), Kind::needMore);
}

TEST(StreamFramerTest, CutsTwoMessagesFromOneFeed) {
  StreamFramer f(kMax);
  EXPECT_EQ(feedAll(f, cat(kInvite, kRinging)), (std::vector<Event>{msg(kInvite), msg(kRinging)}));
  EXPECT_EQ(f.buffered(), 0u);
}

TEST(StreamFramerTest, MessageFedByteByByteCompletesOnItsLastByte) {
  StreamFramer f(kMax);
  for (std::size_t i = 0; i + 1 < kInvite.size(); ++i) {
    f.feed(kInvite.substr(i, 1));
    ASSERT_EQ(f.next(), Kind::needMore) << "after byte " << i;
    EXPECT_EQ(f.buffered(), i + 1);
  }
  f.feed(kInvite.substr(kInvite.size() - 1));
  ASSERT_EQ(f.next(), Kind::message);
  EXPECT_EQ(f.frame(), kInvite);
  EXPECT_EQ(f.next(), Kind::needMore);
  EXPECT_EQ(f.buffered(), 0u);
}

TEST(StreamFramerTest, SplitAtEveryPositionYieldsTheSameFrames) {
  const std::string stream = cat(kInvite, kRinging);
  const std::vector<Event> expected{msg(kInvite), msg(kRinging)};
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    StreamFramer f(kMax);
    std::vector<Event> events = feedAll(f, std::string_view(stream).substr(0, cut));
    const std::vector<Event> rest = feedAll(f, std::string_view(stream).substr(cut));
    events.insert(events.end(), rest.begin(), rest.end());
    ASSERT_EQ(events, expected) << "split at " << cut;
    ASSERT_EQ(f.buffered(), 0u) << "split at " << cut;
  }
}

TEST(StreamFramerTest, SplitInThreeAtManyPositionsYieldsTheSameFrames) {
  const std::string stream = cat(kCompactInvite, "\r\n\r\n", kRinging);
  const std::vector<Event> expected{msg(kCompactInvite), kPing, msg(kRinging)};
  for (std::size_t a = 0; a <= stream.size(); a += 5) {
    for (std::size_t b = a; b <= stream.size(); b += 11) {
      StreamFramer f(kMax);
      std::vector<Event> events;
      for (auto part :
           {std::string_view(stream).substr(0, a), std::string_view(stream).substr(a, b - a),
            std::string_view(stream).substr(b)}) {
        const auto got = feedAll(f, part);
        events.insert(events.end(), got.begin(), got.end());
      }
      ASSERT_EQ(events, expected) << "cuts at " << a << ", " << b;
    }
  }
}

TEST(StreamFramerTest, BodyContainingABlankLineIsCutByContentLength) {
  const std::string body = "line\r\n\r\nmore";  // 12 bytes
  const std::string m =
      replaced(replaced(kMessageNoMaxForwards, "Content-Length: 5", "Content-Length: 12"),
               "\r\n\r\nhello", "\r\n\r\n" + body);
  StreamFramer f(kMax);
  EXPECT_EQ(feedAll(f, cat(m, kRinging)), (std::vector<Event>{msg(m), msg(kRinging)}));
}

TEST(StreamFramerTest, ReadsCompactContentLength) {
  StreamFramer f(kMax);
  EXPECT_EQ(feedAll(f, cat(kCompactInvite, kRinging)),
            (std::vector<Event>{msg(kCompactInvite), msg(kRinging)}));
}

TEST(StreamFramerTest, ReadsContentLengthWithSpacesAroundTheValue) {
  for (std::string_view header :
       {"Content-Length:    5", "Content-Length :5", "Content-Length\t:\t5", "Content-Length: 5   ",
        "content-length: 5", "CONTENT-LENGTH:5", "L: 5", "l:5"}) {
    const std::string m = replaced(kMessageNoMaxForwards, "Content-Length: 5", header);
    StreamFramer f(kMax);
    EXPECT_EQ(feedAll(f, cat(m, kRinging)), (std::vector<Event>{msg(m), msg(kRinging)})) << header;
  }
}

TEST(StreamFramerTest, IgnoresHeadersThatOnlyEndInContentLength) {
  const std::string m = replaced(kMessageNoMaxForwards, "Content-Length: 5",
                                 "X-Content-Length: 99\r\nContent-Length: 5");
  StreamFramer f(kMax);
  EXPECT_EQ(feedAll(f, cat(m, kRinging)), (std::vector<Event>{msg(m), msg(kRinging)}));
}

TEST(StreamFramerTest, MessageExactlyAtMaxSizeIsAccepted) {
  StreamFramer f(kInvite.size());
  EXPECT_EQ(feedAll(f, kInvite), std::vector<Event>{msg(kInvite)});
}

// --- keepalives (RFC 5626 §4.4.1) --------------------------------------------------------

TEST(StreamFramerTest, DoubleCrlfIsPing) {
  StreamFramer f(kMax);
  EXPECT_EQ(feedAll(f, "\r\n\r\n"), std::vector<Event>{kPing});
  EXPECT_EQ(f.buffered(), 0u);
}

TEST(StreamFramerTest, TwoPingsInARow) {
  StreamFramer f(kMax);
  EXPECT_EQ(feedAll(f, "\r\n\r\n\r\n\r\n"), (std::vector<Event>{kPing, kPing}));
}

TEST(StreamFramerTest, LoneCrlfWaitsForWhatFollows) {
  StreamFramer f(kMax);
  EXPECT_EQ(feedAll(f, "\r\n"), std::vector<Event>{});
  EXPECT_EQ(f.buffered(), 2u);
  EXPECT_EQ(feedAll(f, kRinging), (std::vector<Event>{kPong, msg(kRinging)}));
  EXPECT_EQ(f.buffered(), 0u);
}

TEST(StreamFramerTest, PingSplitIntoTwoCrlfReadsIsOnePing) {
  StreamFramer f(kMax);
  EXPECT_EQ(feedAll(f, "\r\n"), std::vector<Event>{});
  EXPECT_EQ(feedAll(f, "\r\n"), std::vector<Event>{kPing});
  EXPECT_EQ(f.buffered(), 0u);
}

TEST(StreamFramerTest, PingSplitAfterThreeBytesIsOnePing) {
  StreamFramer f(kMax);
  EXPECT_EQ(feedAll(f, "\r\n\r"), std::vector<Event>{});
  EXPECT_EQ(feedAll(f, "\n"), std::vector<Event>{kPing});
}

TEST(StreamFramerTest, CrlfFollowedByAMessageIsPongThenMessage) {
  StreamFramer f(kMax);
  EXPECT_EQ(feedAll(f, cat("\r\n", kRinging)), (std::vector<Event>{kPong, msg(kRinging)}));
}

TEST(StreamFramerTest, LoneCrIsNotYetAnything) {
  StreamFramer f(kMax);
  EXPECT_EQ(feedAll(f, "\r"), std::vector<Event>{});
  EXPECT_EQ(feedAll(f, "\n\r\n"), std::vector<Event>{kPing});
}

TEST(StreamFramerTest, PingBetweenMessages) {
  StreamFramer f(kMax);
  EXPECT_EQ(feedAll(f, cat(kInvite, "\r\n\r\n", kRinging)),
            (std::vector<Event>{msg(kInvite), kPing, msg(kRinging)}));
}

TEST(StreamFramerTest, PingBeforeTheFirstMessageIsNotPartOfItsFrame) {
  StreamFramer f(kMax);
  EXPECT_EQ(feedAll(f, cat("\r\n\r\n", kInvite)), (std::vector<Event>{kPing, msg(kInvite)}));
}

TEST(StreamFramerTest, PingArrivingWhileAMessageIsIncomplete) {
  StreamFramer f(kMax);
  EXPECT_EQ(feedAll(f, "\r\n\r\n"), std::vector<Event>{kPing});
  EXPECT_EQ(feedAll(f, kInvite.substr(0, 100)), std::vector<Event>{});
  EXPECT_EQ(feedAll(f, kInvite.substr(100)), std::vector<Event>{msg(kInvite)});
  EXPECT_EQ(feedAll(f, "\r\n\r\n"), std::vector<Event>{kPing});
}

// --- broken streams -------------------------------------------------------------------

TEST(StreamFramerTest, MissingContentLengthIsAnError) {
  const std::string m = replaced(kOptions, "Content-Length: 0\r\n", "");
  StreamFramer f(kMax);
  EXPECT_EQ(feedAll(f, m), std::vector<Event>{kError});
  EXPECT_FALSE(f.reason().empty());
  EXPECT_FALSE(f.oversize());  // broken framing, not size
}

TEST(StreamFramerTest, MalformedContentLengthIsAnError) {
  for (std::string_view value : {"Content-Length: abc", "Content-Length: -1", "Content-Length: ",
                                 "Content-Length: 5 5", "Content-Length: 0x10"}) {
    const std::string m = replaced(kMessageNoMaxForwards, "Content-Length: 5", value);
    StreamFramer f(kMax);
    EXPECT_EQ(feedAll(f, m), std::vector<Event>{kError}) << value;
    EXPECT_FALSE(f.reason().empty()) << value;
    EXPECT_FALSE(f.oversize()) << value;
  }
}

TEST(StreamFramerTest, ContentLengthBeyondMaxSizeIsAnErrorBeforeTheBodyArrives) {
  for (std::string_view value :
       {"Content-Length: 100000", "Content-Length: 2147483648", "Content-Length: 4294967296",
        "Content-Length: 99999999999", "Content-Length: 18446744073709551616",
        "Content-Length: 18446744073709551621"}) {
    std::string m = replaced(kMessageNoMaxForwards, "Content-Length: 5", value);
    m.resize(m.size() - 5);  // headers only: nothing of the announced body yet
    StreamFramer f(kMax);
    EXPECT_EQ(feedAll(f, m), std::vector<Event>{kError}) << value;
    EXPECT_FALSE(f.reason().empty()) << value;
  }
}

TEST(StreamFramerTest, MessageOneByteOverMaxSizeIsAnError) {
  StreamFramer f(kInvite.size() - 1);
  EXPECT_EQ(feedAll(f, kInvite), std::vector<Event>{kError});
  EXPECT_TRUE(f.oversize());
}

TEST(StreamFramerTest, HeadersGrowingPastMaxSizeWithoutBlankLineIsAnError) {
  StreamFramer f(1024);
  const std::string_view startLine = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n";
  EXPECT_EQ(feedAll(f, startLine), std::vector<Event>{});
  const std::string pad = "X-Pad: " + std::string(90, 'a') + "\r\n";  // 99 bytes
  std::vector<Event> events;
  std::size_t fed = startLine.size();
  while (events.empty() && fed < 4096) {
    events = feedAll(f, pad);
    fed += pad.size();
  }
  EXPECT_EQ(events, std::vector<Event>{kError});
  EXPECT_LE(fed, 1024u + pad.size()) << "error must come once the buffer passes the limit";
  EXPECT_FALSE(f.reason().empty());
  EXPECT_TRUE(f.oversize());
}

TEST(StreamFramerTest, GarbageWithoutLineEndsPastMaxSizeIsAnError) {
  StreamFramer f(1024);
  EXPECT_EQ(feedAll(f, std::string(2000, 'x')), std::vector<Event>{kError});
  EXPECT_TRUE(f.oversize());
}

TEST(StreamFramerTest, StaysBrokenAfterAnError) {
  StreamFramer f(kMax);
  EXPECT_EQ(feedAll(f, replaced(kOptions, "Content-Length: 0\r\n", "")),
            std::vector<Event>{kError});
  const std::string reason = f.reason();
  f.feed(kInvite);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(f.next(), Kind::error);
  f.feed("\r\n\r\n");
  EXPECT_EQ(f.next(), Kind::error);
  EXPECT_EQ(f.reason(), reason);
}

TEST(StreamFramerTest, ErrorAfterAGoodMessageStillDeliversTheGoodOne) {
  StreamFramer f(kMax);
  const std::string bad = replaced(kOptions, "Content-Length: 0\r\n", "");
  EXPECT_EQ(feedAll(f, cat(kRinging, bad)), (std::vector<Event>{msg(kRinging), kError}));
}

// --- cost (issue 8) ---------------------------------------------------------------------

// A large header block dripped one byte per read: every byte is searched a bounded number
// of times (the scan resumes where it stopped), not the whole buffer again on each read.
TEST(StreamFramerTest, DrippedHeaderBlockIsScannedInLinearTime) {
  std::string message = "OPTIONS sip:bob@example.com SIP/2.0\r\n";
  for (int i = 0; message.size() < 60000; ++i) {
    message += "X-Filler-" + std::to_string(i) + ": " + std::string(40, 'f') + "\r\n";
  }
  message += "Content-Length: 0\r\n\r\n";
  StreamFramer f(kMax);
  for (std::size_t i = 0; i + 1 < message.size(); ++i) {
    f.feed(std::string_view(message).substr(i, 1));
    ASSERT_EQ(f.next(), Kind::needMore) << "after byte " << i;
  }
  f.feed(std::string_view(message).substr(message.size() - 1));
  ASSERT_EQ(f.next(), Kind::message);
  EXPECT_EQ(f.frame(), message);
  // Each read looks at its new byte and the three before it (a split "\r\n\r\n").
  EXPECT_LE(f.bytesScanned(), 4 * message.size());
}

TEST(StreamFramerTest, MessageWaitingForItsBodyIsNotRescanned) {
  StreamFramer f(kMax);
  const std::size_t headerEnd = kInvite.find("\r\n\r\n") + 4;
  ASSERT_LT(headerEnd, kInvite.size());
  f.feed(std::string_view(kInvite).substr(0, headerEnd));
  ASSERT_EQ(f.next(), Kind::needMore);
  const std::size_t afterHeaders = f.bytesScanned();
  for (std::size_t i = headerEnd; i + 1 < kInvite.size(); ++i) {
    f.feed(std::string_view(kInvite).substr(i, 1));
    ASSERT_EQ(f.next(), Kind::needMore);
  }
  f.feed(std::string_view(kInvite).substr(kInvite.size() - 1));
  ASSERT_EQ(f.next(), Kind::message);
  EXPECT_EQ(f.bytesScanned(), afterHeaders) << "body bytes were searched for a header end";
}

// Stray line ends between messages are skipped in a loop: hundreds of thousands of them in
// one read neither overflow the stack nor lose the message after them.
TEST(StreamFramerTest, ManyStrayLineEndsInOneReadAreSkipped) {
  StreamFramer f(kMax * 8);
  f.feed(std::string(200000, '\n') + std::string(200000, '\r') + std::string(kInvite));
  ASSERT_EQ(f.next(), Kind::message);
  EXPECT_EQ(f.frame(), kInvite);
  EXPECT_EQ(f.next(), Kind::needMore);
  EXPECT_EQ(f.buffered(), 0u);
}

TEST(StreamFramerTest, ManyThousandCrlfsInOneReadArePingsThenTheMessage) {
  std::string crlfs;
  for (int i = 0; i < 20001; ++i) crlfs += "\r\n";
  StreamFramer g(kMax);
  g.feed(crlfs + std::string(kInvite));
  int pings = 0;
  int pongs = 0;
  for (int guard = 0; guard < 20002; ++guard) {
    const Kind k = g.next();
    if (k == Kind::ping) {
      ++pings;
      continue;
    }
    if (k == Kind::pong) {
      ++pongs;
      continue;
    }
    ASSERT_EQ(k, Kind::message);
    break;
  }
  EXPECT_EQ(pings, 10000);
  EXPECT_EQ(pongs, 1);
  EXPECT_EQ(g.frame(), kInvite);
  EXPECT_EQ(g.buffered(), 0u);
}

}  // namespace
}  // namespace waypoint::sip
