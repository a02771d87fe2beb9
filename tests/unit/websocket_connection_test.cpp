// The WebSocket transport (RFC 7118) without sockets: the opening handshake and the
// framing of a StreamConnection over a Beast WebSocket stream over Beast's test stream.
// The peer side writes raw client frames (masked with a zero key, which leaves the payload
// as it is) so fragmentation and control frames are exact.

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <deque>
#include <string>
#include <vector>

#include "../../src/transport/framers.hpp"
#include "../../src/transport/websocket_handshake.hpp"
#include "../../src/transport/websocket_stream_ops.hpp"
#include "transport_fakes.hpp"

namespace waypoint::transport {
namespace {

using namespace std::chrono_literals;
using testing_fakes::FakeHost;
using TestStream = boost::beast::test::stream;
using WsTestStream = boost::beast::websocket::stream<TestStream>;
using WsTestConnection = StreamConnection<WsTestStream, WebSocketFramer>;

const Endpoint kLocal{boost::asio::ip::make_address("127.0.0.1"), 8080};
const Endpoint kPeer{boost::asio::ip::make_address("127.0.0.1"), 40000};

std::string upgradeRequest(const std::string& extraHeaders) {
  return "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\n"
         "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
         "Sec-WebSocket-Version: 13\r\n" +
         extraHeaders + "\r\n";
}

enum Opcode : unsigned char { continuation = 0, text = 1, binary = 2, close = 8, ping = 9 };

// A client frame (RFC 6455 §5.2), masked with the key 0.
std::string clientFrame(Opcode opcode, const std::string& payload, bool fin = true) {
  std::string frame;
  frame.push_back(static_cast<char>((fin ? 0x80 : 0x00) | opcode));
  if (payload.size() < 126) {
    frame.push_back(static_cast<char>(0x80 | payload.size()));
  } else {
    frame.push_back(static_cast<char>(0x80 | 126));
    frame.push_back(static_cast<char>(payload.size() >> 8));
    frame.push_back(static_cast<char>(payload.size() & 0xff));
  }
  frame.append(4, '\0');
  return frame + payload;
}

struct ServerFrame {
  unsigned opcode = 0;
  bool fin = false;
  std::string payload;
};

// The unmasked frames the server wrote (payloads under 64 KiB).
std::vector<ServerFrame> serverFrames(std::string_view bytes) {
  std::vector<ServerFrame> frames;
  while (bytes.size() >= 2) {
    const auto b0 = static_cast<unsigned char>(bytes[0]);
    std::size_t length = static_cast<unsigned char>(bytes[1]) & 0x7f;
    std::size_t header = 2;
    if (length == 126) {
      length = static_cast<std::size_t>(static_cast<unsigned char>(bytes[2])) << 8 |
               static_cast<unsigned char>(bytes[3]);
      header = 4;
    }
    if (bytes.size() < header + length) break;
    frames.push_back(
        ServerFrame{b0 & 0x0fu, (b0 & 0x80u) != 0, std::string(bytes.substr(header, length))});
    bytes.remove_prefix(header + length);
  }
  return frames;
}

std::string options(int n) {
  return testing_fakes::optionsRequest("SIP/2.0/WS df7jal23ls0d.invalid", n);
}

class WebSocketConnectionTest : public ::testing::Test {
 protected:
  std::shared_ptr<WsTestConnection> open(std::vector<std::string> origins = {}) {
    TestStream ours(io_);
    ours.connect(peers_.emplace_back(io_));
    auto connection = std::make_shared<WsTestConnection>(host_, WsTestStream(std::move(ours)),
                                                         host_.table.nextId(), Protocol::ws, kLocal,
                                                         kPeer, ConnectionState::handshaking);
    host_.table.add(connection);
    WebSocketHandshake<WsTestConnection>::start(
        connection, host_, std::make_shared<const WebSocketPolicy>(WebSocketPolicy{origins}));
    return connection;
  }
  // Writes bytes as the peer and returns what the connection wrote back since last time.
  std::string exchange(const std::string& bytes) {
    if (!bytes.empty()) peers_.back().write_some(boost::asio::buffer(bytes));
    run();
    std::string written(peers_.back().str());
    peers_.back().clear();
    return written;
  }
  std::shared_ptr<WsTestConnection> openAccepted() {
    auto connection = open();
    const std::string response = exchange(upgradeRequest("Sec-WebSocket-Protocol: sip\r\n"));
    EXPECT_EQ(response.rfind("HTTP/1.1 101", 0), 0u) << response;
    return connection;
  }
  void run() {
    io_.restart();
    io_.poll();
  }

  boost::asio::io_context io_;
  std::deque<TestStream> peers_;  // the client side of each connection opened
  FakeHost host_;
};

TEST_F(WebSocketConnectionTest, AcceptsAnUpgradeOfferingSipAndAnswersWithTheSipSubprotocol) {
  auto connection = open();
  EXPECT_EQ(connection->state(), ConnectionState::handshaking);
  const std::string response = exchange(
      upgradeRequest("Sec-WebSocket-Protocol: chat, sip\r\nOrigin: https://a.example\r\n"));
  EXPECT_EQ(response.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0), 0u) << response;
  EXPECT_NE(response.find("\r\nSec-WebSocket-Protocol: sip\r\n"), std::string::npos) << response;
  EXPECT_NE(response.find("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            std::string::npos);
  EXPECT_EQ(connection->state(), ConnectionState::open);
  EXPECT_EQ(host_.transportCounters.wsHandshakesAccepted, 1u);
}

TEST_F(WebSocketConnectionTest, RefusesAnUpgradeWithoutTheSipSubprotocolWith400AndCloses) {
  auto connection = open();
  const std::string response = exchange(upgradeRequest("Sec-WebSocket-Protocol: chat\r\n"));
  EXPECT_EQ(response.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << response;
  EXPECT_NE(response.find("Sec-WebSocket-Protocol must include sip"), std::string::npos);
  EXPECT_EQ(connection->state(), ConnectionState::closed);
  EXPECT_EQ(host_.closedCount, 1);
  EXPECT_TRUE(host_.table.empty());
  EXPECT_EQ(host_.transportCounters.wsHandshakesRefusedSubprotocol, 1u);
  EXPECT_EQ(host_.transportCounters.wsHandshakesAccepted, 0u);
}

TEST_F(WebSocketConnectionTest, RefusesAnOriginNotInTheListWith403) {
  auto refused = open({"https://phone.example.com"});
  const std::string response = exchange(
      upgradeRequest("Sec-WebSocket-Protocol: sip\r\nOrigin: https://evil.example.net\r\n"));
  EXPECT_EQ(response.rfind("HTTP/1.1 403 Forbidden\r\n", 0), 0u) << response;
  EXPECT_EQ(refused->state(), ConnectionState::closed);
  EXPECT_EQ(host_.transportCounters.wsHandshakesRefusedOrigin, 1u);

  auto allowed = open({"https://phone.example.com"});
  const std::string accepted = exchange(
      upgradeRequest("Sec-WebSocket-Protocol: sip\r\nOrigin: https://PHONE.example.com\r\n"));
  EXPECT_EQ(accepted.rfind("HTTP/1.1 101", 0), 0u) << accepted;
  EXPECT_EQ(allowed->state(), ConnectionState::open);
}

TEST_F(WebSocketConnectionTest, APlainHttpRequestGets426AndIsClosed) {
  auto connection = open();
  const std::string response = exchange("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  EXPECT_EQ(response.rfind("HTTP/1.1 426 Upgrade Required\r\n", 0), 0u) << response;
  EXPECT_NE(response.find("\r\nUpgrade: websocket\r\n"), std::string::npos);
  EXPECT_EQ(connection->state(), ConnectionState::closed);
  EXPECT_EQ(host_.transportCounters.wsHandshakesRefusedRequest, 1u);
}

TEST_F(WebSocketConnectionTest, AnOversizeUpgradeRequestIsRefused) {
  auto connection = open();
  const std::string response = exchange(upgradeRequest(
      "Sec-WebSocket-Protocol: sip\r\nX-Filler: " + std::string(9000, 'x') + "\r\n"));
  EXPECT_EQ(response.rfind("HTTP/1.1 400", 0), 0u) << response;
  EXPECT_EQ(connection->state(), ConnectionState::closed);
  EXPECT_EQ(host_.transportCounters.wsHandshakesRefusedRequest, 1u);
}

TEST_F(WebSocketConnectionTest, AHandshakeNotFinishedInTimeExpiresAndClosesSafely) {
  host_.transportSettings.handshakeTimeout = 10s;
  auto connection = open();
  exchange("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n");  // and nothing more
  host_.fakeClock.advance(9s);
  EXPECT_TRUE(host_.table.expired(host_.fakeClock.now(), host_.transportSettings).empty());
  host_.fakeClock.advance(1s);
  const auto expired = host_.table.expired(host_.fakeClock.now(), host_.transportSettings);
  ASSERT_EQ(expired.size(), 1u);
  expired[0]->close(CloseReason::establishTimeout, std::make_error_code(std::errc::timed_out));
  run();  // the pending read completes after the close
  EXPECT_EQ(connection->state(), ConnectionState::closed);
  EXPECT_TRUE(host_.table.empty());
}

TEST_F(WebSocketConnectionTest, DeliversOneSipMessagePerWebSocketMessageTextOrBinary) {
  auto connection = openAccepted();
  exchange(clientFrame(text, options(1)) + clientFrame(binary, options(2)));
  ASSERT_EQ(host_.messages.size(), 2u);
  EXPECT_EQ(host_.messages[0], options(1));
  EXPECT_EQ(host_.messages[1], options(2));
  EXPECT_EQ(host_.sources[0].protocol, Protocol::ws);
  EXPECT_EQ(host_.sources[0].remote, kPeer);
  EXPECT_EQ(host_.sources[0].local, kLocal);
  EXPECT_EQ(host_.sources[0].connectionId, connection->id());
}

TEST_F(WebSocketConnectionTest, JoinsAMessageSplitIntoSeveralFramesAndReads) {
  auto connection = openAccepted();
  connection->stream().next_layer().read_size(7);
  const std::string message = options(1);
  exchange(clientFrame(text, message.substr(0, 10), false) +
           clientFrame(continuation, message.substr(10, 50), false) +
           clientFrame(continuation, message.substr(60), true));
  ASSERT_EQ(host_.messages.size(), 1u);
  EXPECT_EQ(host_.messages[0], message);
}

TEST_F(WebSocketConnectionTest, AMessageOverTheSizeLimitClosesTheConnection) {
  host_.transportSettings.maxMessageSize = 1024;
  auto connection = openAccepted();
  exchange(clientFrame(text, std::string(2000, 'x')));
  EXPECT_EQ(connection->state(), ConnectionState::closed);
  EXPECT_EQ(host_.transportCounters.tcpConnectionsClosedOversize, 1u);
  EXPECT_TRUE(host_.messages.empty());
}

TEST_F(WebSocketConnectionTest, AFragmentedMessageOverTheSizeLimitClosesTheConnection) {
  host_.transportSettings.maxMessageSize = 1024;
  auto connection = openAccepted();
  exchange(clientFrame(text, std::string(600, 'x'), false) +
           clientFrame(continuation, std::string(600, 'x'), true));
  EXPECT_EQ(connection->state(), ConnectionState::closed);
  EXPECT_EQ(host_.transportCounters.tcpConnectionsClosedOversize, 1u);
  EXPECT_TRUE(host_.messages.empty());
}

TEST_F(WebSocketConnectionTest, APingIsAnsweredAndCountsAsPeerActivity) {
  host_.transportSettings.tcpIdleTimeout = 600s;
  auto connection = openAccepted();
  host_.fakeClock.advance(500s);
  const auto frames = serverFrames(exchange(clientFrame(ping, "hi")));
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].opcode, 0xAu);  // pong
  EXPECT_EQ(frames[0].payload, "hi");
  host_.fakeClock.advance(500s);
  EXPECT_TRUE(host_.table.expired(host_.fakeClock.now(), host_.transportSettings).empty());
  host_.fakeClock.advance(100s);
  EXPECT_EQ(host_.table.expired(host_.fakeClock.now(), host_.transportSettings).size(), 1u);
}

TEST_F(WebSocketConnectionTest, SendsEachSipMessageAsOneTextMessage) {
  auto connection = openAccepted();
  connection->send(Destination{Protocol::ws, kPeer, connection->id(), {}, {}, {}}, options(1), {});
  connection->send(Destination{Protocol::ws, kPeer, connection->id(), {}, {}, {}}, options(2), {});
  const auto frames = serverFrames(exchange(""));
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].opcode, 1u);
  EXPECT_TRUE(frames[0].fin);
  EXPECT_EQ(frames[0].payload, options(1));
  EXPECT_EQ(frames[1].payload, options(2));
  EXPECT_EQ(host_.transportCounters.tcpMessagesSent, 2u);
}

TEST_F(WebSocketConnectionTest, ACrlfKeepaliveMessageIsAnsweredWithACrlfMessage) {
  auto connection = openAccepted();
  const auto frames = serverFrames(exchange(clientFrame(text, "\r\n\r\n")));
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].payload, "\r\n");
  EXPECT_TRUE(host_.messages.empty());
  EXPECT_EQ(host_.transportCounters.keepalivesReceived, 1u);
}

TEST_F(WebSocketConnectionTest, AClosingHandshakeFromThePeerClosesTheConnection) {
  auto connection = openAccepted();
  const auto frames = serverFrames(exchange(clientFrame(close, std::string("\x03\xe8", 2))));
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].opcode, 8u);  // our close frame answers theirs
  EXPECT_EQ(connection->state(), ConnectionState::closed);
  EXPECT_EQ(host_.closedCount, 1);
  EXPECT_TRUE(host_.table.empty());
  EXPECT_EQ(host_.transportCounters.tcpConnectionsClosedFraming, 0u);
}

// The framer alone: what it hands up for the parts of WebSocket messages.
TEST(WebSocketFramerTest, HandsUpOneMessagePerCompletedWebSocketMessage) {
  WebSocketFramer framer(100);
  framer.feed("INVITE ", false);
  EXPECT_EQ(framer.next(), WebSocketFramer::Kind::needMore);
  framer.feed("sip:x SIP/2.0\r\n\r\n", true);
  ASSERT_EQ(framer.next(), WebSocketFramer::Kind::message);
  EXPECT_EQ(framer.frame(), "INVITE sip:x SIP/2.0\r\n\r\n");
  EXPECT_EQ(framer.next(), WebSocketFramer::Kind::needMore);
  framer.feed("\r\n\r\n", true);
  EXPECT_EQ(framer.next(), WebSocketFramer::Kind::ping);
  framer.feed(std::string(101, 'x'), true);
  EXPECT_EQ(framer.next(), WebSocketFramer::Kind::error);
  EXPECT_TRUE(framer.oversize());
}

}  // namespace
}  // namespace waypoint::transport
