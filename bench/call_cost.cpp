// CPU of one proxied call through the production path: the dispatcher's parse and checks,
// the transaction layer and the proxy, with a manual clock and a sender that keeps only
// the last message. One call is an INVITE from Alice (answered 100, forwarded to Bob's
// registered phone), Bob's 180 and 200 (forwarded up). Prints ns per forwarded INVITE and
// per call; for instruction counts run it under callgrind, collecting only forwardInvite():
//
//   build/bench/waypoint_call_cost [calls]
//   valgrind --tool=callgrind --toggle-collect='*forwardInvite*' build/bench/waypoint_call_cost
//   1000

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "waypoint/app/dispatcher.hpp"
#include "waypoint/proxy/local_identity.hpp"
#include "waypoint/proxy/proxy.hpp"
#include "waypoint/registrar/location_store.hpp"
#include "waypoint/registrar/registrar.hpp"

namespace {

using namespace waypoint;

class ManualClock final : public transaction::Clock {
 public:
  transaction::TimePoint now() const override { return now_; }
  void advance(std::chrono::milliseconds d) { now_ += d; }

 private:
  transaction::TimePoint now_{};
};

class LastMessageSender final : public transaction::Sender {
 public:
  void send(const transport::Destination&, const std::string& bytes, ErrorHandler) override {
    last = bytes;
    ++sent;
  }
  std::string last;
  std::size_t sent = 0;
};

transport::Endpoint at(const char* address, std::uint16_t port) {
  return transport::Endpoint{boost::asio::ip::make_address(address), port};
}

const transport::Source kAlice{transport::Protocol::udp, at("127.0.0.1", 5060),
                               at("127.0.0.1", 5070), 0};
const transport::Source kBob{transport::Protocol::udp, at("127.0.0.1", 5060), at("127.0.0.1", 5080),
                             0};

std::string invite(std::size_t i) {
  const std::string n = std::to_string(i);
  const std::string sdp =
      "v=0\r\no=alice 2890844526 2890844526 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
      "t=0 0\r\nm=audio 49172 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
  return "INVITE sip:bob@bench.test SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-call-" +
         n +
         ";rport\r\n"
         "Max-Forwards: 70\r\n"
         "To: Bob <sip:bob@bench.test>\r\n"
         "From: Alice <sip:alice@bench.test>;tag=a" +
         n +
         "\r\n"
         "Call-ID: call-" +
         n +
         "@127.0.0.1\r\n"
         "CSeq: 1 INVITE\r\n"
         "Contact: <sip:alice@127.0.0.1:5070>\r\n"
         "User-Agent: Example/1.0\r\n"
         "Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY\r\n"
         "Supported: replaces, 100rel, timer\r\n"
         "Content-Type: application/sdp\r\n"
         "Content-Length: " +
         std::to_string(sdp.size()) + "\r\n\r\n" + sdp;
}

// Bob's answer to the INVITE the proxy sent him (its bytes, as the sender saw them).
std::string answer(const std::string& forwarded, const char* statusLine) {
  std::string response = statusLine;
  response.append("\r\n");
  std::size_t pos = forwarded.find("\r\n") + 2;
  while (pos < forwarded.size()) {
    const std::size_t end = forwarded.find("\r\n", pos);
    const std::string_view line(forwarded.data() + pos, end - pos);
    if (line.empty()) break;
    for (const char* name : {"Via:", "Record-Route:", "From:", "Call-ID:", "CSeq:"}) {
      if (line.starts_with(name)) response.append(line).append("\r\n");
    }
    if (line.starts_with("To:")) response.append(line).append(";tag=b0b\r\n");
    pos = end + 2;
  }
  response.append("Contact: <sip:bob@127.0.0.1:5080>\r\nContent-Length: 0\r\n\r\n");
  return response;
}

[[gnu::noinline]] void forwardInvite(app::Dispatcher& dispatcher, const std::string& bytes) {
  dispatcher.onMessage(kAlice, bytes);
}

[[gnu::noinline]] void forwardResponse(app::Dispatcher& dispatcher, const std::string& bytes) {
  dispatcher.onMessage(kBob, bytes);
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t calls = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 20000;
  ManualClock clock;
  LastMessageSender sender;
  proxy::LocalIdentity identity;
  identity.addName("bench.test");
  identity.addListener(transport::Protocol::udp, at("127.0.0.1", 5060));
  registrar::InMemoryLocationStore store;
  registrar::Registrar registrar(store, {"bench.test"}, registrar::RegistrarSettings{});
  proxy::Proxy proxy(clock, sender, transaction::LayerSettings{}, identity, registrar,
                     proxy::ProxySettings{});
  app::Dispatcher dispatcher(sender, proxy, sip::ParseLimits{});
  dispatcher.onMessage(kBob,
                       "REGISTER sip:bench.test SIP/2.0\r\n"
                       "Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-reg;rport\r\n"
                       "Max-Forwards: 70\r\nFrom: <sip:bob@bench.test>;tag=r\r\n"
                       "To: <sip:bob@bench.test>\r\nCall-ID: reg@127.0.0.1\r\nCSeq: 1 REGISTER\r\n"
                       "Contact: <sip:bob@127.0.0.1:5080>\r\nExpires: 3600\r\n"
                       "Content-Length: 0\r\n\r\n");
  if (!sender.last.starts_with("SIP/2.0 200")) {
    std::fprintf(stderr, "REGISTER failed: %s\n", sender.last.c_str());
    return 1;
  }

  std::chrono::nanoseconds inviteTime{0};
  std::chrono::nanoseconds callTime{0};
  for (std::size_t i = 0; i < calls; ++i) {
    const std::string request = invite(i);
    const auto start = std::chrono::steady_clock::now();
    forwardInvite(dispatcher, request);
    const auto forwarded = std::chrono::steady_clock::now();
    inviteTime += forwarded - start;
    if (!sender.last.starts_with("INVITE ")) {
      std::fprintf(stderr, "INVITE %zu not forwarded: %s\n", i, sender.last.c_str());
      return 1;
    }
    const std::string ringing = answer(sender.last, "SIP/2.0 180 Ringing");
    const std::string ok = answer(sender.last, "SIP/2.0 200 OK");
    const auto answered = std::chrono::steady_clock::now();
    forwardResponse(dispatcher, ringing);
    forwardResponse(dispatcher, ok);
    callTime += std::chrono::steady_clock::now() - answered + (forwarded - start);
    if (!sender.last.starts_with("SIP/2.0 200")) {
      std::fprintf(stderr, "200 of call %zu not forwarded: %s\n", i, sender.last.c_str());
      return 1;
    }
    clock.advance(std::chrono::milliseconds(1));
    proxy.fireDueTimers();
  }
  std::printf("%zu calls (INVITE with SDP, %zu bytes; 180; 200)\n", calls, invite(0).size());
  std::printf("forwarded INVITE (parse, 100, forward): %8.0f ns\n",
              static_cast<double>(inviteTime.count()) / static_cast<double>(calls));
  std::printf("call (INVITE, 180, 200):               %8.0f ns\n",
              static_cast<double>(callTime.count()) / static_cast<double>(calls));
  return proxy.counters().requestsForwarded == calls ? 0 : 1;
}
