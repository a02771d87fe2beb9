#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <chrono>
#include <filesystem>
#include <functional>

#include "run_until.hpp"
#include "transport_fakes.hpp"
#include "waypoint/transport/address.hpp"
#include "waypoint/transport/self_signed_certificate.hpp"
#include "waypoint/transport/transports.hpp"

namespace waypoint::transport {
namespace {

namespace asio = boost::asio;

Endpoint at(const char* address, std::uint16_t port) {
  return {asio::ip::make_address(address), port};
}

Source udpSource() {
  return Source{Protocol::udp, at("127.0.0.1", 5060), at("192.0.2.1", 40123), 0};
}

TEST(ResponseDestinationTest, UdpWithRportGoesBackToTheSourcePort) {
  const Destination d = responseDestination(ViaSentBy{5062, true}, udpSource());
  EXPECT_EQ(d.protocol, Protocol::udp);
  EXPECT_EQ(d.remote, at("192.0.2.1", 40123));
  EXPECT_EQ(d.local, at("127.0.0.1", 5060));
}

TEST(ResponseDestinationTest, UdpWithoutRportGoesToTheReceivedAddressAndSentByPort) {
  EXPECT_EQ(responseDestination(ViaSentBy{5062, false}, udpSource()).remote, at("192.0.2.1", 5062));
  EXPECT_EQ(responseDestination(ViaSentBy{std::nullopt, false}, udpSource()).remote,
            at("192.0.2.1", 5060));
}

TEST(ResponseDestinationTest, TcpReusesTheConnectionAndFallsBackToSentByPort) {
  const Source source{Protocol::tcp, at("127.0.0.1", 5060), at("192.0.2.1", 50000), 42};
  const Destination d = responseDestination(ViaSentBy{5070, true}, source);
  EXPECT_EQ(d.protocol, Protocol::tcp);
  EXPECT_EQ(d.connectionId, 42u);
  EXPECT_EQ(d.remote, at("192.0.2.1", 5070));
  const Source tls{Protocol::tls, at("127.0.0.1", 5061), at("192.0.2.1", 50000), 7};
  EXPECT_EQ(responseDestination(ViaSentBy{std::nullopt, false}, tls).remote.port, 5061);
}

TEST(ChooseRequestProtocolTest, LargeUdpRequestSwitchesToTcpWhenTheTargetAllows) {
  EXPECT_EQ(chooseRequestProtocol(Protocol::udp, 1300, 1300, true), Protocol::udp);
  EXPECT_EQ(chooseRequestProtocol(Protocol::udp, 1301, 1300, true), Protocol::tcp);
  EXPECT_EQ(chooseRequestProtocol(Protocol::udp, 1301, 1300, false), Protocol::udp);
  EXPECT_EQ(chooseRequestProtocol(Protocol::tcp, 100, 1300, true), Protocol::tcp);
}

TEST(AddressTest, FormatsAndParses) {
  EXPECT_EQ(toString(at("::1", 5060)), "[::1]:5060");
  EXPECT_EQ(toString(at("127.0.0.1", 5060)), "127.0.0.1:5060");
  // Written by hand for v4: the same text as Asio's.
  for (const char* text : {"0.0.0.0", "255.255.255.255", "10.20.3.199", "192.0.2.1", "::1",
                           "2001:db8::5", "::ffff:192.0.2.1"}) {
    const auto address = boost::asio::ip::make_address(text);
    EXPECT_EQ(toString(address), address.to_string());
    EXPECT_EQ(toString(address), text);
  }
  EXPECT_EQ(protocolFromString("tcp"), Protocol::tcp);
  EXPECT_EQ(protocolFromString("UDP"), Protocol::udp);
  EXPECT_EQ(protocolFromString("sctp"), std::nullopt);
  EXPECT_FALSE(isReliable(Protocol::udp));
  EXPECT_TRUE(isReliable(Protocol::tls));
}

constexpr std::string_view kOptions =
    "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK1\r\n"
    "Content-Length: 0\r\n\r\n";

// Two transport stacks on one loop, talking over loopback TCP.
class TransportsLoopbackTest : public ::testing::Test {
 protected:
  // Runs the loop until the condition holds; the deadline only bounds a broken test.
  bool runUntil(const std::function<bool()>& done) { return testkit::runUntil(io_, done); }

  asio::io_context io_;
  std::vector<std::pair<Source, std::string>> serverGot_;
  std::vector<std::pair<Source, std::string>> clientGot_;
  Transports server_{io_, TransportSettings{}, [this](const Source& s, std::string_view b) {
                       serverGot_.emplace_back(s, std::string(b));
                     }};
  Transports client_{io_, TransportSettings{}, [this](const Source& s, std::string_view b) {
                       clientGot_.emplace_back(s, std::string(b));
                     }};
};

TEST_F(TransportsLoopbackTest, OpensOneConnectionReusesItAndRepliesOverIt) {
  server_.listen(ListenerConfig{Protocol::tcp, "127.0.0.1", 0, {}, {}});
  const Endpoint serverAt = server_.boundEndpoints().at(0).second;
  client_.send(Destination{Protocol::tcp, serverAt, 0, std::nullopt, {}, {}},
               std::string(kOptions));
  client_.send(Destination{Protocol::tcp, serverAt, 0, std::nullopt, {}, {}},
               std::string(kOptions));
  ASSERT_TRUE(runUntil([&] { return serverGot_.size() == 2; }));
  EXPECT_EQ(serverGot_[0].second, kOptions);
  EXPECT_EQ(client_.counters().connectionsOpened.total(), 1u);
  EXPECT_EQ(server_.counters().connectionsAccepted.total(), 1u);
  const Source& from = serverGot_[0].first;
  EXPECT_EQ(from.protocol, Protocol::tcp);
  EXPECT_NE(from.connectionId, 0u);
  EXPECT_EQ(from.connectionId, serverGot_[1].first.connectionId);

  // The reply names the connection; its remote port is not listening, so only the
  // connection itself can carry it.
  server_.send(
      Destination{
          Protocol::tcp, Endpoint{from.remote.address, 1}, from.connectionId, std::nullopt, {}, {}},
      std::string(kOptions));
  ASSERT_TRUE(runUntil([&] { return clientGot_.size() == 1; }));
  EXPECT_EQ(clientGot_[0].second, kOptions);
  EXPECT_EQ(server_.counters().connectionsOpened.total(), 0u);
  EXPECT_EQ(server_.counters().sendErrors, 0u);
}

TEST_F(TransportsLoopbackTest, NewLimitsApplyToTheNextConnectionAndBufferSizesStay) {
  server_.listen(ListenerConfig{Protocol::tcp, "127.0.0.1", 0, {}, {}});
  const Endpoint serverAt = server_.boundEndpoints().at(0).second;
  TransportSettings reloaded;
  reloaded.maxConnectionsPerSource = 1;
  reloaded.tcpIdleTimeout = std::chrono::seconds(30);
  reloaded.maxMessageSize = 2048;
  server_.setLimits(reloaded);
  EXPECT_EQ(server_.settings().tcpIdleTimeout, std::chrono::seconds(30));
  EXPECT_EQ(server_.settings().maxMessageSize, TransportSettings{}.maxMessageSize);

  client_.send(Destination{Protocol::tcp, serverAt, 0, std::nullopt, {}, {}},
               std::string(kOptions));
  ASSERT_TRUE(runUntil([&] { return serverGot_.size() == 1; }));
  // A second connection from the same address is over the new limit of one.
  Transports other{io_, TransportSettings{}, [](const Source&, std::string_view) {}};
  other.send(Destination{Protocol::tcp, serverAt, 0, std::nullopt, {}, {}}, std::string(kOptions));
  ASSERT_TRUE(runUntil([&] { return server_.counters().tcpConnectionsRejected == 1; }));
  EXPECT_EQ(serverGot_.size(), 1u);
}

TEST_F(TransportsLoopbackTest, ReportsARefusedConnectionToTheSender) {
  // A port that was just free: bind, read it, close.
  asio::ip::tcp::acceptor probe(io_,
                                asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const std::uint16_t freePort = probe.local_endpoint().port();
  probe.close();
  std::error_code reported;
  client_.send(Destination{Protocol::tcp, at("127.0.0.1", freePort), 0, std::nullopt, {}, {}},
               std::string(kOptions),
               [&](const Destination&, std::error_code ec) { reported = ec; });
  ASSERT_TRUE(runUntil([&] { return static_cast<bool>(reported); }));
  EXPECT_TRUE(reported == std::errc::connection_refused) << reported.message();
  EXPECT_EQ(client_.counters().sendErrors, 1u);
  EXPECT_EQ(client_.counters().tcpOpenConnections, 0u);
}

TEST_F(TransportsLoopbackTest, UdpDatagramsArriveWithTheirSourceAndKeepalivesAreCounted) {
  server_.listen(ListenerConfig{Protocol::udp, "127.0.0.1", 0, {}, {}});
  client_.listen(ListenerConfig{Protocol::udp, "127.0.0.1", 0, {}, {}});
  const Endpoint serverAt = server_.boundEndpoints().at(0).second;
  const Endpoint clientAt = client_.boundEndpoints().at(0).second;
  client_.send(Destination{Protocol::udp, serverAt, 0, std::nullopt, {}, {}}, "\r\n\r\n");
  client_.send(Destination{Protocol::udp, serverAt, 0, std::nullopt, {}, {}},
               "\r\n" + std::string(kOptions));
  ASSERT_TRUE(runUntil([&] { return serverGot_.size() == 1; }));
  EXPECT_EQ(serverGot_[0].second, kOptions);  // leading CRLF stripped before the parser
  EXPECT_EQ(serverGot_[0].first.remote, clientAt);
  EXPECT_EQ(server_.counters().keepalivesReceived, 1u);
}

TEST_F(TransportsLoopbackTest, IcmpPortUnreachableIsReportedWithTheDestination) {
  client_.listen(ListenerConfig{Protocol::udp, "127.0.0.1", 0, {}, {}});
  asio::ip::udp::socket probe(io_, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const Endpoint closed{probe.local_endpoint().address(), probe.local_endpoint().port()};
  probe.close();
  std::vector<Destination> unreachable;
  client_.onUnreachable([&](const Destination& d, std::error_code ec) {
    EXPECT_TRUE(ec == std::errc::connection_refused) << ec.message();
    unreachable.push_back(d);
  });
  client_.send(Destination{Protocol::udp, closed, 0, std::nullopt, {}, {}}, std::string(kOptions));
  ASSERT_TRUE(runUntil([&] { return !unreachable.empty(); }));
  EXPECT_EQ(unreachable[0].protocol, Protocol::udp);
  EXPECT_EQ(unreachable[0].remote, closed);
  EXPECT_EQ(client_.counters().udpUnreachable, 1u);
}

TEST_F(TransportsLoopbackTest, ListenFailureNamesTheAddress) {
  server_.listen(ListenerConfig{Protocol::udp, "127.0.0.1", 0, {}, {}});
  const Endpoint taken = server_.boundEndpoints().at(0).second;
  try {
    client_.listen(ListenerConfig{Protocol::udp, "127.0.0.1", taken.port, {}, {}});
    FAIL() << "a second bind to the same UDP port succeeded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("UDP " + toString(taken)), std::string::npos) << e.what();
  }
}

// TLS between two transport stacks: the server with a self-signed certificate for
// 127.0.0.1, the client trusting exactly that certificate (it is its own root).
class TlsLoopbackTest : public TransportsLoopbackTest {
 protected:
  TlsLoopbackTest() {
    const auto certificate = ensureSelfSignedCertificate(dir_.string(), {"127.0.0.1"});
    tls_.certificateFile = certificate.certificateFile;
    tls_.privateKeyFile = certificate.privateKeyFile;
    tls_.caFile = certificate.certificateFile;
  }
  ~TlsLoopbackTest() override { std::filesystem::remove_all(dir_); }

  Endpoint listenTls(Transports& transports) {
    transports.listen(ListenerConfig{Protocol::tls, "127.0.0.1", 0, {}, tls_});
    return transports.boundEndpoints().back().second;
  }

  std::filesystem::path dir_ =
      std::filesystem::temp_directory_path() / ("waypoint-tls-test-" + std::to_string(::getpid()));
  TlsSettings tls_;
};

TEST_F(TlsLoopbackTest, ConnectsVerifiesTheServerAndRepliesOverTheSameConnection) {
  const Endpoint serverAt = listenTls(server_);
  client_.useClientTls(tls_);
  client_.send(Destination{Protocol::tls, serverAt, 0, std::nullopt, {}, {}},
               std::string(kOptions));
  ASSERT_TRUE(runUntil([&] { return serverGot_.size() == 1; }));
  const Source& from = serverGot_[0].first;
  EXPECT_EQ(from.protocol, Protocol::tls);
  EXPECT_EQ(serverGot_[0].second, kOptions);
  server_.send(Destination{Protocol::tls, from.remote, from.connectionId, std::nullopt, {}, {}},
               std::string(kOptions));
  ASSERT_TRUE(runUntil([&] { return clientGot_.size() == 1; }));
  EXPECT_EQ(clientGot_[0].first.protocol, Protocol::tls);
  EXPECT_EQ(client_.counters().tlsHandshakesCompleted, 1u);
  EXPECT_EQ(server_.counters().tlsHandshakesCompleted, 1u);
  EXPECT_EQ(server_.counters().connectionsOpened.total(), 0u);
  EXPECT_EQ(client_.counters().connectionsOpened.total(), 1u);
}

TEST_F(TlsLoopbackTest, AServerWhoseCertificateNamesAnotherHostIsRefused) {
  const Endpoint serverAt = listenTls(server_);
  client_.useClientTls(tls_);
  std::error_code reported;
  client_.send(Destination{Protocol::tls, serverAt, 0, std::nullopt, "sip.example.com", {}},
               std::string(kOptions),
               [&](const Destination&, std::error_code ec) { reported = ec; });
  ASSERT_TRUE(runUntil([&] { return static_cast<bool>(reported); }));
  EXPECT_EQ(client_.counters().tlsHandshakesFailed, 1u);
  EXPECT_TRUE(serverGot_.empty());
  // The same server without the check (a rule's verify_peer: false) is reached.
  client_.send(Destination{Protocol::tls, serverAt, 0, std::nullopt, "sip.example.com", false},
               std::string(kOptions));
  ASSERT_TRUE(runUntil([&] { return serverGot_.size() == 1; }));
}

TEST_F(TlsLoopbackTest, WithoutClientTlsSendingOverTlsFailsAtOnce) {
  const Endpoint serverAt = listenTls(server_);
  std::error_code reported;
  client_.send(Destination{Protocol::tls, serverAt, 0, std::nullopt, {}, {}}, std::string(kOptions),
               [&](const Destination&, std::error_code ec) { reported = ec; });
  EXPECT_TRUE(reported == std::errc::protocol_not_supported) << reported.message();
}

TEST_F(TlsLoopbackTest, AListenerWithABadCertificateIsRefusedNamingItAndTheFile) {
  tls_.certificateFile = (dir_ / "missing.crt").string();
  try {
    listenTls(server_);
    FAIL() << "a TLS listener started without its certificate";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("TLS 127.0.0.1:0"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("missing.crt: does not exist"), std::string::npos)
        << e.what();
  }
}

// A client that connects and never starts its handshake is closed once the handshake
// timeout has passed on the transports' clock, and not before.
TEST_F(TlsLoopbackTest, AHandshakeThatNeverStartsIsClosedAfterTheHandshakeTimeout) {
  testing_fakes::FakeClock clock;
  TransportSettings settings;
  settings.handshakeTimeout = std::chrono::seconds(10);
  Transports guarded(
      io_, settings, [](const Source&, std::string_view) {}, clock);
  const Endpoint serverAt = listenTls(guarded);
  asio::ip::tcp::socket silent(io_);
  silent.connect(asio::ip::tcp::endpoint(serverAt.address, serverAt.port));
  ASSERT_TRUE(runUntil([&] { return guarded.counters().connectionsAccepted.total() == 1; }));
  clock.advance(std::chrono::seconds(9));
  guarded.sweepNow();
  EXPECT_EQ(guarded.counters().tcpOpenConnections, 1u);
  clock.advance(std::chrono::seconds(1));
  guarded.sweepNow();
  EXPECT_EQ(guarded.counters().tcpOpenConnections, 0u);
  char byte = 0;
  boost::system::error_code ec;
  silent.read_some(asio::buffer(&byte, 1), ec);
  EXPECT_EQ(ec, asio::error::eof);
}

TEST_F(TlsLoopbackTest, HandshakesFromOneSourceAreCapped) {
  TransportSettings settings;
  settings.maxHandshakesPerSource = 2;
  Transports capped(io_, settings, [](const Source&, std::string_view) {});
  const Endpoint serverAt = listenTls(capped);
  std::vector<asio::ip::tcp::socket> silent;
  for (int i = 0; i < 3; ++i) {
    silent.emplace_back(io_).connect(asio::ip::tcp::endpoint(serverAt.address, serverAt.port));
  }
  ASSERT_TRUE(runUntil([&] { return capped.counters().tlsHandshakesRefusedLimit == 1; }));
  EXPECT_EQ(capped.counters().tcpOpenConnections, 2u);
}

}  // namespace
}  // namespace waypoint::transport
