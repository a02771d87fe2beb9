// libFuzzer target: what a web phone can send to a WebSocket listener, through the code the
// daemon runs: the HTTP upgrade (fuzzed, or a valid one followed by fuzzed bytes as
// WebSocket frames), Beast's frame parser under our message size limit, our framer, and
// each message handed up parsed. Bytes arrive in reads of fuzzer-chosen sizes.
#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "../../src/transport/framers.hpp"
#include "../../src/transport/websocket_handshake.hpp"
#include "../../src/transport/websocket_stream_ops.hpp"
#include "../unit/transport_fakes.hpp"
#include "waypoint/sip/message.hpp"

namespace {

using namespace waypoint::transport;
using TestStream = boost::beast::test::stream;
using WsTestConnection =
    StreamConnection<boost::beast::websocket::stream<TestStream>, WebSocketFramer>;

constexpr char kUpgrade[] =
    "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Protocol: sip\r\n\r\n";

const Endpoint kLocal{boost::asio::ip::make_address("127.0.0.1"), 8080};
const Endpoint kPeer{boost::asio::ip::make_address("127.0.0.1"), 40000};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t chunk = 1 + (data[0] & 0x3f);
  const bool validUpgrade = (data[0] & 0x40) != 0;
  std::string input = validUpgrade ? std::string(kUpgrade) : std::string();
  input.append(reinterpret_cast<const char*>(data) + 1, size - 1);

  boost::asio::io_context io;
  testing_fakes::FakeHost host;
  host.transportSettings.maxMessageSize = 4096;
  TestStream ours(io);
  TestStream peer(io);
  ours.connect(peer);
  ours.read_size(chunk);
  auto connection = std::make_shared<WsTestConnection>(
      host, boost::beast::websocket::stream<TestStream>(std::move(ours)), host.table.nextId(),
      Protocol::ws, kLocal, kPeer, ConnectionState::handshaking);
  host.table.add(connection);
  WebSocketHandshake<WsTestConnection>::start(
      connection, host, std::make_shared<const WebSocketPolicy>(WebSocketPolicy{}));
  peer.write_some(boost::asio::buffer(input));
  // Until nothing is left to do: the peer stays open (our answers must be writable), so
  // the last read waits for more, and the loop is polled rather than run.
  for (int round = 0; round < 100000; ++round) {
    io.restart();
    if (io.poll() == 0) break;
  }
  for (const auto& message : host.messages) {
    const waypoint::sip::ParseResult parsed =
        waypoint::sip::Message::parse(message, waypoint::sip::ParseLimits{4096});
    if (parsed.message) (void)parsed.message->serialize();
  }
  if (connection->state() != ConnectionState::closed) connection->close(CloseReason::shutdown);
  io.restart();
  io.poll();  // the aborted read
  return 0;
}
