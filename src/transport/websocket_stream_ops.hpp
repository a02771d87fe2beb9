#pragma once
// StreamOps for a Beast WebSocket stream over any next layer (a TCP socket, a test stream,
// an asio::ssl::stream for WSS): what StreamConnection needs to run RFC 7118 over
// it. Private to src/transport.

#include <boost/beast/websocket/stream.hpp>
#include <functional>
#include <utility>

#include "stream_connection.hpp"

namespace waypoint::transport {

template <class NextLayer>
struct StreamOps<boost::beast::websocket::stream<NextLayer>> {
  using Stream = boost::beast::websocket::stream<NextLayer>;

  // No close frame: a connection is closed by us only when it is broken, idle, or the
  // daemon stops; the next layer closes as it closes on its own.
  static void close(Stream& stream) { StreamOps<NextLayer>::close(stream.next_layer()); }
  static bool messageDone(const Stream& stream) { return stream.is_message_done(); }
  // One SIP message, one text message (RFC 7118 §5.1 allows either; text is what browsers
  // hand to JavaScript as a string).
  template <class Buffer, class Handler>
  static void asyncWrite(Stream& stream, const Buffer& buffer, Handler&& handler) {
    stream.text(true);
    stream.async_write(buffer, std::forward<Handler>(handler));
  }
  // Beast answers pings itself and never hands control frames to a read; a ping or pong
  // from the peer is still a sign of life for the idle timeout.
  static void onControlFrame(Stream& stream, std::function<void()> peerActive) {
    stream.control_callback(
        [peerActive = std::move(peerActive)](boost::beast::websocket::frame_type,
                                             boost::beast::string_view) { peerActive(); });
  }
};

}  // namespace waypoint::transport
