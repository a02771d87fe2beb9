#pragma once
// What the stream connection tests share: StreamOps for Beast's test stream, a fake clock,
// a fake TransportHost that records what the connection reports, and a SIP request to send.

#include <boost/asio/write.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "../../src/transport/connection_table.hpp"
#include "../../src/transport/stream_connection.hpp"

namespace waypoint::transport {

template <>
struct StreamOps<boost::beast::test::stream> {
  static void close(boost::beast::test::stream& stream) { stream.close(); }
  static bool messageDone(const boost::beast::test::stream&) { return false; }
  template <class Buffer, class Handler>
  static void asyncWrite(boost::beast::test::stream& stream, const Buffer& buffer,
                         Handler&& handler) {
    boost::asio::async_write(stream, buffer, std::forward<Handler>(handler));
  }
};

namespace testing_fakes {

class FakeClock final : public TransportClock {
 public:
  SteadyTime now() const override { return now_; }
  void advance(std::chrono::steady_clock::duration d) { now_ += d; }

 private:
  SteadyTime now_{std::chrono::hours(1)};
};

class FakeHost final : public TransportHost {
 public:
  void deliver(const Source& source, std::string_view message) override {
    sources.push_back(source);
    messages.emplace_back(message);
  }
  void sendFailed(const Destination&, std::error_code ec,
                  const SendErrorHandler& onError) override {
    failures.push_back(ec);
    if (onError) onError(Destination{}, ec);
  }
  void unreachable(const Destination&, std::error_code) override {}
  void closed(Connection& connection) override {
    ++closedCount;
    table.remove(connection);
  }
  bool shuttingDown() const override { return false; }
  TransportCounters& counters() override { return transportCounters; }
  const TransportSettings& settings() const override { return transportSettings; }
  const TransportClock& clock() const override { return fakeClock; }

  FakeClock fakeClock;
  TransportSettings transportSettings;
  TransportCounters transportCounters;
  ConnectionTable table;
  std::vector<Source> sources;
  std::vector<std::string> messages;
  std::vector<std::error_code> failures;
  int closedCount = 0;
};

// An OPTIONS whose top Via is "SIP/2.0/<transport> <sent-by>"; n makes branch and Call-ID.
inline std::string optionsRequest(std::string_view via, int n) {
  return "OPTIONS sip:bob@example.com SIP/2.0\r\nVia: " + std::string(via) + ";branch=z9hG4bK-" +
         std::to_string(n) +
         "\r\nMax-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=1\r\n"
         "To: <sip:bob@example.com>\r\nCall-ID: c" +
         std::to_string(n) + "\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
}

}  // namespace testing_fakes

}  // namespace waypoint::transport
