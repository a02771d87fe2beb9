// Parse cost of a typical ~700-byte INVITE: parse alone, and parse + the edits a proxy
// makes on the way through + serialize. Prints the median of several runs in ns/message.
//
//   build/bench/waypoint_parse_cost [iterations-per-run] [runs]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "waypoint/sip/message.hpp"
#include "waypoint/sip/validation.hpp"

namespace {

const std::string kInvite =
    "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport\r\n"
    "Max-Forwards: 70\r\n"
    "Route: <sip:127.0.0.1:5060;lr>\r\n"
    "To: Bob <sip:bob@biloxi.example.com>\r\n"
    "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    "Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Contact: <sip:alice@192.0.2.101:5060>\r\n"
    "User-Agent: Example/1.0\r\n"
    "Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY\r\n"
    "Supported: replaces, 100rel, timer\r\n"
    "Accept: application/sdp\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: 142\r\n"
    "\r\n"
    "v=0\r\n"
    "o=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\n"
    "s=-\r\n"
    "c=IN IP4 192.0.2.101\r\n"
    "t=0 0\r\n"
    "m=audio 49172 RTP/AVP 0\r\n"
    "a=rtpmap:0 PCMU/8000\r\n";

template <typename Work>
double medianNanos(int iterations, int runs, Work work) {
  std::vector<double> perMessage;
  for (int r = 0; r < runs; ++r) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < iterations; ++i) work();
    const auto elapsed = std::chrono::steady_clock::now() - start;
    perMessage.push_back(std::chrono::duration<double, std::nano>(elapsed).count() / iterations);
  }
  std::sort(perMessage.begin(), perMessage.end());
  return perMessage[perMessage.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  using namespace waypoint::sip;
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 20000;
  const int runs = argc > 2 ? std::atoi(argv[2]) : 7;
  std::size_t sink = 0;

  const double parse = medianNanos(iterations, runs, [&] {
    ParseResult result = Message::parse(kInvite);
    sink += result.message->callId().size();
  });
  const double proxied = medianNanos(iterations, runs, [&] {
    ParseResult result = Message::parse(kInvite);
    Message& m = *result.message;
    if (validateRequest(m)) std::abort();
    m.setTopViaReceived("203.0.113.7", 40123);
    m.decrementMaxForwards();
    m.popRoute();
    m.pushRecordRoute("<sip:127.0.0.1:5060;lr>");
    m.pushVia("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-wp-0123456789abcdef");
    sink += m.serialize().size();
  });
  std::printf("message: INVITE with SDP, %zu bytes; %d runs x %d messages, median\n",
              kInvite.size(), runs, iterations);
  std::printf("parse:                               %8.0f ns/message\n", parse);
  std::printf("parse + validate + edits + serialize: %8.0f ns/message\n", proxied);
  return sink == 0 ? 1 : 0;
}
