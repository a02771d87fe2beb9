// Memory per live server transaction at 100,000 transactions, and the cost of the timer
// service (schedule + fire), measured on the transaction layer with a manual clock and a
// sender that discards. Heap bytes from mallinfo2(), so only our allocations count.
//
//   build/bench/waypoint_transaction_cost [transactions]

#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "waypoint/sip/message.hpp"
#include "waypoint/transaction/transaction_layer.hpp"

namespace {

using namespace waypoint;

class ManualClock final : public transaction::Clock {
 public:
  transaction::TimePoint now() const override { return now_; }
  void advance(std::chrono::milliseconds d) { now_ += d; }

 private:
  transaction::TimePoint now_{};
};

class DiscardingSender final : public transaction::Sender {
 public:
  void send(const transport::Destination&, const std::string&, ErrorHandler) override { ++sent; }
  std::size_t sent = 0;
};

// Answers every request with a final response at once, like the daemon's OPTIONS path.
class AnsweringUser final : public transaction::TransactionUser {
 public:
  transaction::TransactionLayer* layer = nullptr;
  void onRequest(transaction::TransactionId id, sip::Message& request,
                 const transport::Source&) override {
    layer->respond(id, 200, sip::buildResponse(request, 200, "OK", "5f2a9c7e11d04b83"));
  }
  void onAck(sip::Message&, const transport::Source&) override {}
  void onResponse(transaction::TransactionId, sip::Message&) override {}
  void onStrayResponse(sip::Message&, const transport::Source&) override {}
  void onClientTimeout(transaction::TransactionId) override {}
  void onClientTransportError(transaction::TransactionId) override {}
  void onServerFailure(transaction::TransactionId) override {}
};

std::string request(std::size_t i) {
  const std::string n = std::to_string(i);
  return "OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-bench-" +
         n +
         ";rport\r\n"
         "Max-Forwards: 70\r\nFrom: <sip:bench@127.0.0.1:5070>;tag=" +
         n +
         "\r\n"
         "To: <sip:127.0.0.1:5060>\r\nCall-ID: bench-" +
         n +
         "@127.0.0.1\r\nCSeq: 1 OPTIONS\r\n"
         "Content-Length: 0\r\n\r\n";
}

std::size_t heapBytes() { return mallinfo2().uordblks; }

}  // namespace

int main(int argc, char** argv) {
  const std::size_t count = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100000;
  ManualClock clock;
  DiscardingSender sender;
  AnsweringUser user;
  transaction::TransactionLayer layer(clock, sender, user, transaction::LayerSettings{});
  user.layer = &layer;
  const transport::Source source{transport::Protocol::udp,
                                 {boost::asio::ip::make_address("127.0.0.1"), 5060},
                                 {boost::asio::ip::make_address("127.0.0.1"), 5070},
                                 0};

  // Parse outside the measured region: the message is not kept by the layer.
  std::vector<std::string> texts;
  texts.reserve(count);
  for (std::size_t i = 0; i < count; ++i) texts.push_back(request(i));

  const std::size_t before = heapBytes();
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < count; ++i) {
    sip::ParseResult parsed = sip::Message::parse(texts[i]);
    layer.receiveRequest(*parsed.message, source);
  }
  const auto created = std::chrono::steady_clock::now();
  const std::size_t after = heapBytes();
  const auto live = layer.counters().liveServerTransactions;

  // Every transaction now waits in Completed for Timer J (64*T1): fire them all.
  clock.advance(std::chrono::seconds(33));
  const auto fireStart = std::chrono::steady_clock::now();
  layer.fireDueTimers();
  const auto fired = std::chrono::steady_clock::now();

  const double bytesPer = static_cast<double>(after - before) / static_cast<double>(live);
  const auto ns = [](auto d) { return std::chrono::duration<double, std::nano>(d).count(); };
  std::printf(
      "live server transactions: %llu (non-INVITE, Completed, holding a %zu-byte response)\n",
      static_cast<unsigned long long>(live),
      sip::buildResponse(*sip::Message::parse(texts[0]).message, 200, "OK", "5f2a9c7e11d04b83")
          .size());
  std::printf("heap per live transaction: %.0f bytes (%.1f MiB for %zu)\n", bytesPer,
              static_cast<double>(after - before) / (1024.0 * 1024.0), count);
  std::printf("parse + match + create + respond: %.0f ns per request\n",
              ns(created - start) / count);
  std::printf(
      "timer service: %.0f ns per expiry fired (Timer J, incl. destroying the transaction)\n",
      ns(fired - fireStart) / count);
  std::printf("left after expiry: %llu live, %llu pending timers\n",
              static_cast<unsigned long long>(layer.counters().liveServerTransactions),
              static_cast<unsigned long long>(layer.counters().pendingTimers));
  return layer.counters().liveServerTransactions == 0 ? 0 : 1;
}
