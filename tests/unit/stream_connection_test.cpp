// The stream connection and the connection table, without sockets: a Beast test stream
// for the bytes (split reads, failing writes, the peer closing) and a fake clock for the
// idle and establish timeouts.

#include "../../src/transport/stream_connection.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <deque>
#include <string>
#include <vector>

#include "../../src/transport/connection_table.hpp"
#include "../../src/transport/framers.hpp"
#include "transport_fakes.hpp"

namespace waypoint::transport {

namespace {

using testing_fakes::FakeClock;
using testing_fakes::FakeHost;

using namespace std::chrono_literals;
using TestStream = boost::beast::test::stream;
using TestConnection = StreamConnection<TestStream, ContentLengthFramer>;

const Endpoint kLocal{boost::asio::ip::make_address("127.0.0.1"), 5060};
const Endpoint kPeer{boost::asio::ip::make_address("127.0.0.1"), 40000};

std::string options(int n) {
  return testing_fakes::optionsRequest("SIP/2.0/TCP 127.0.0.1:40000", n);
}

class StreamConnectionTest : public ::testing::Test {
 protected:
  std::shared_ptr<TestConnection> open(ConnectionState state = ConnectionState::open,
                                       boost::beast::test::fail_count* failCount = nullptr) {
    TestStream ours(io_, failCount != nullptr ? *failCount : neverFail_);
    // A test stream has one remote: a second connection gets a peer of its own.
    ours.connect(peerUsed_ ? extraPeers_.emplace_back(io_) : peer_);
    peerUsed_ = true;
    auto connection = std::make_shared<TestConnection>(host_, std::move(ours), host_.table.nextId(),
                                                       Protocol::tcp, kLocal, kPeer, state);
    host_.table.add(connection);
    return connection;
  }
  void run() {
    io_.restart();
    io_.poll();
  }

  boost::asio::io_context io_;
  boost::beast::test::fail_count neverFail_{1000000};
  TestStream peer_{io_};
  std::deque<TestStream> extraPeers_;
  bool peerUsed_ = false;
  FakeHost host_;
};

TEST_F(StreamConnectionTest, ReadsAMessageDeliveredOneByteAtATime) {
  auto connection = open();
  connection->stream().read_size(1);
  connection->start();
  peer_.write_some(boost::asio::buffer(options(1)));
  run();
  ASSERT_EQ(host_.messages.size(), 1u);
  EXPECT_EQ(host_.messages[0], options(1));
  EXPECT_EQ(host_.sources[0].protocol, Protocol::tcp);
  EXPECT_EQ(host_.sources[0].remote, kPeer);
  EXPECT_EQ(host_.sources[0].local, kLocal);
  EXPECT_EQ(host_.sources[0].connectionId, connection->id());
  EXPECT_EQ(host_.transportCounters.tcpMessagesReceived, 1u);
}

TEST_F(StreamConnectionTest, CutsTwoMessagesOutOfOneReadAndAnswersAKeepalive) {
  auto connection = open();
  connection->start();
  peer_.write_some(boost::asio::buffer(options(1) + "\r\n\r\n" + options(2)));
  run();
  ASSERT_EQ(host_.messages.size(), 2u);
  EXPECT_EQ(host_.messages[1], options(2));
  EXPECT_EQ(peer_.str(), "\r\n");  // the pong (RFC 5626 §4.4.1)
  EXPECT_EQ(host_.transportCounters.keepalivesReceived, 1u);
}

TEST_F(StreamConnectionTest, QueuesWhileConnectingAndWritesInOrderOnceUp) {
  auto connection = open(ConnectionState::connecting);
  connection->send(Destination{Protocol::tcp, kPeer, 0, {}, {}, {}}, "first", {});
  connection->send(Destination{Protocol::tcp, kPeer, 0, {}, {}, {}}, "second", {});
  run();
  EXPECT_EQ(peer_.str(), "");
  EXPECT_EQ(connection->queuedBytes(), 11u);
  connection->start();
  run();
  EXPECT_EQ(peer_.str(), "firstsecond");
  EXPECT_EQ(connection->queuedBytes(), 0u);
  EXPECT_EQ(host_.transportCounters.tcpMessagesSent, 2u);
}

TEST_F(StreamConnectionTest, OurOwnWritesDoNotKeepAConnectionAlive) {
  host_.transportSettings.tcpIdleTimeout = 600s;
  auto connection = open();
  connection->start();
  host_.fakeClock.advance(599s);
  connection->send(Destination{Protocol::tcp, kPeer, 0, {}, {}, {}}, options(1), {});
  run();
  EXPECT_TRUE(host_.table.expired(host_.fakeClock.now(), host_.transportSettings).empty());
  host_.fakeClock.advance(1s);
  const auto expired = host_.table.expired(host_.fakeClock.now(), host_.transportSettings);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0]->id(), connection->id());
}

TEST_F(StreamConnectionTest, BytesFromThePeerRestartTheIdleTime) {
  host_.transportSettings.tcpIdleTimeout = 600s;
  auto connection = open();
  connection->start();
  host_.fakeClock.advance(500s);
  peer_.write_some(boost::asio::buffer(std::string("\r\n\r\n")));
  run();
  host_.fakeClock.advance(500s);
  EXPECT_TRUE(host_.table.expired(host_.fakeClock.now(), host_.transportSettings).empty());
  host_.fakeClock.advance(100s);
  EXPECT_EQ(host_.table.expired(host_.fakeClock.now(), host_.transportSettings).size(), 1u);
}

TEST_F(StreamConnectionTest, AConnectionNotEstablishedInTimeExpires) {
  host_.transportSettings.tcpConnectTimeout = 10s;
  host_.transportSettings.handshakeTimeout = 5s;
  auto connecting = open(ConnectionState::connecting);
  auto handshaking = open(ConnectionState::handshaking);
  host_.fakeClock.advance(4s);
  EXPECT_TRUE(host_.table.expired(host_.fakeClock.now(), host_.transportSettings).empty());
  host_.fakeClock.advance(1s);
  auto expired = host_.table.expired(host_.fakeClock.now(), host_.transportSettings);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0]->id(), handshaking->id());
  host_.fakeClock.advance(5s);
  EXPECT_EQ(host_.table.expired(host_.fakeClock.now(), host_.transportSettings).size(), 2u);
}

TEST_F(StreamConnectionTest, OutputOverTheCapClosesTheConnectionAndFailsEverySend) {
  host_.transportSettings.maxQueuedBytes = 250;
  auto connection = open(ConnectionState::connecting);  // nothing leaves: the queue grows
  std::vector<std::error_code> reported;
  const auto onError = [&](const Destination&, std::error_code ec) { reported.push_back(ec); };
  connection->send(Destination{Protocol::tcp, kPeer, 0, {}, {}, {}}, std::string(100, 'a'),
                   onError);
  connection->send(Destination{Protocol::tcp, kPeer, 0, {}, {}, {}}, std::string(100, 'b'),
                   onError);
  EXPECT_TRUE(reported.empty());
  connection->send(Destination{Protocol::tcp, kPeer, 0, {}, {}, {}}, std::string(100, 'c'),
                   onError);
  EXPECT_EQ(connection->state(), ConnectionState::closed);
  EXPECT_EQ(host_.transportCounters.tcpConnectionsClosedBackpressure, 1u);
  ASSERT_EQ(reported.size(), 3u);
  for (const auto& ec : reported) EXPECT_EQ(ec, std::errc::no_buffer_space);
  EXPECT_EQ(host_.closedCount, 1);
  EXPECT_TRUE(host_.table.empty());
  EXPECT_EQ(connection->queuedBytes(), 0u);
}

TEST_F(StreamConnectionTest, AFailingWriteClosesTheConnectionAndReportsTheSend) {
  boost::beast::test::fail_count failOnWrite(2);  // the read is operation 1, the write 2
  auto connection = open(ConnectionState::open, &failOnWrite);
  connection->start();
  std::vector<std::error_code> reported;
  connection->send(Destination{Protocol::tcp, kPeer, 0, {}, {}, {}}, options(1),
                   [&](const Destination&, std::error_code ec) { reported.push_back(ec); });
  run();
  EXPECT_EQ(connection->state(), ConnectionState::closed);
  EXPECT_EQ(reported.size(), 1u);
  EXPECT_EQ(host_.closedCount, 1);
  EXPECT_TRUE(host_.table.empty());
}

TEST_F(StreamConnectionTest, ThePeerClosingClosesOursAndLeavesTheTable) {
  auto connection = open();
  connection->start();
  peer_.write_some(boost::asio::buffer(options(1)));
  peer_.close();
  run();
  EXPECT_EQ(host_.messages.size(), 1u);  // what came before the close is delivered
  EXPECT_EQ(connection->state(), ConnectionState::closed);
  EXPECT_EQ(host_.closedCount, 1);
  EXPECT_TRUE(host_.table.empty());
  std::vector<std::error_code> reported;
  connection->send(Destination{Protocol::tcp, kPeer, 0, {}, {}, {}}, "late",
                   [&](const Destination&, std::error_code ec) { reported.push_back(ec); });
  EXPECT_EQ(reported.size(), 1u);
}

TEST_F(StreamConnectionTest, ABrokenStreamIsClosedAndCounted) {
  auto connection = open();
  connection->start();
  peer_.write_some(boost::asio::buffer(std::string("NOT SIP AT ALL\r\nContent-Length: x\r\n\r\n")));
  run();
  EXPECT_EQ(connection->state(), ConnectionState::closed);
  EXPECT_EQ(host_.transportCounters.tcpConnectionsClosedFraming, 1u);
  EXPECT_TRUE(host_.messages.empty());
}

// The table: a flow is (protocol, remote[, local]); connection ids are checked against the
// protocol asked for.
class TableConnection final : public Connection {
 public:
  TableConnection(std::uint64_t id, Protocol protocol, Endpoint local, Endpoint remote)
      : Connection(id, protocol, local, remote, ConnectionState::open, SteadyTime{}) {}
  void send(const Destination&, std::string, SendErrorHandler) override {}
  void close(CloseReason, std::error_code) override {}
};

TEST(ConnectionTableTest, ATlsAndATcpConnectionFromOneAddressNeverMix) {
  ConnectionTable table;
  const Endpoint tlsListener{kLocal.address, 5061};
  auto tcp = std::make_shared<TableConnection>(table.nextId(), Protocol::tcp, kLocal, kPeer);
  auto tls = std::make_shared<TableConnection>(table.nextId(), Protocol::tls, tlsListener, kPeer);
  table.add(tcp);
  table.add(tls);
  EXPECT_EQ(table.find(Destination{Protocol::tcp, kPeer, 0, {}, {}, {}}), tcp);
  EXPECT_EQ(table.find(Destination{Protocol::tls, kPeer, 0, {}, {}, {}}), tls);
  // A connection id of the other protocol is not followed.
  EXPECT_EQ(table.find(Destination{Protocol::tcp, kPeer, tls->id(), {}, {}, {}}), tcp);
  EXPECT_EQ(table.find(Destination{Protocol::ws, kPeer, tcp->id(), {}, {}, {}}), nullptr);
  table.remove(*tcp);
  EXPECT_EQ(table.find(Destination{Protocol::tcp, kPeer, 0, {}, {}, {}}), nullptr);
  EXPECT_EQ(table.find(Destination{Protocol::tls, kPeer, 0, {}, {}, {}}), tls);
}

TEST(ConnectionTableTest, PrefersTheConnectionFromTheNamedListenerElseTheNewest) {
  ConnectionTable table;
  const Endpoint otherListener{boost::asio::ip::make_address("127.0.0.2"), 5060};
  auto first = std::make_shared<TableConnection>(table.nextId(), Protocol::tcp, kLocal, kPeer);
  auto second =
      std::make_shared<TableConnection>(table.nextId(), Protocol::tcp, otherListener, kPeer);
  table.add(first);
  table.add(second);
  EXPECT_EQ(table.find(Destination{Protocol::tcp, kPeer, 0, kLocal, {}, {}}), first);
  EXPECT_EQ(table.find(Destination{Protocol::tcp, kPeer, 0, {}, {}, {}}), second);
}

TEST(ConnectionTableTest, AdmitsUpToThePerSourceAndTheGlobalLimits) {
  ConnectionTable table;
  TransportSettings settings;
  settings.maxConnectionsPerSource = 2;
  settings.maxConnections = 3;
  const Endpoint other{boost::asio::ip::make_address("127.0.0.9"), 1};
  for (std::uint16_t port = 1; port <= 2; ++port) {
    EXPECT_TRUE(table.admits(kPeer.address, settings));
    table.add(std::make_shared<TableConnection>(table.nextId(), Protocol::tcp, kLocal,
                                                Endpoint{kPeer.address, port}));
  }
  EXPECT_FALSE(table.admits(kPeer.address, settings));
  EXPECT_TRUE(table.admits(other.address, settings));
  table.add(std::make_shared<TableConnection>(table.nextId(), Protocol::tcp, kLocal, other));
  EXPECT_FALSE(table.admits(boost::asio::ip::make_address("127.0.0.10"), settings));
}

}  // namespace
}  // namespace waypoint::transport
