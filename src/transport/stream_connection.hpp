#pragma once
// One stream connection, generic over the byte stream (a TCP socket, an asio::ssl::stream,
// a Beast websocket over either, a test stream) and over the framer that cuts it into
// messages. It keeps itself alive (shared_from_this) while I/O is pending. Private to
// src/transport.
//
// Output is queued; the queue is capped (TransportSettings::maxQueuedBytes) so a peer that
// never reads cannot make the daemon hold its output without bound: over the cap the
// connection is closed and counted.

#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/websocket/error.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <utility>

#include "connection.hpp"
#include "std_error.hpp"

namespace waypoint::transport {

// What differs between the byte streams, specialised per stream type: a TCP socket here;
// a test stream in the unit tests; TLS and WebSocket streams with their transports. A
// stream with control frames (WebSocket) also has onControlFrame(stream, peerActive).
template <class Stream>
struct StreamOps {
  static void close(Stream& stream) {
    boost::system::error_code ignored;
    stream.shutdown(Stream::shutdown_both, ignored);
    stream.close(ignored);
  }
  // Whether the stream ended a message at the bytes just read; a byte stream never does.
  static bool messageDone(const Stream& /*stream*/) { return false; }
  // One message written (as bytes here; a WebSocket writes one frame per call).
  template <class Buffer, class Handler>
  static void asyncWrite(Stream& stream, const Buffer& buffer, Handler&& handler) {
    boost::asio::async_write(stream, buffer, std::forward<Handler>(handler));
  }
};

template <class Stream, class Framer>
class StreamConnection final
    : public Connection,
      public std::enable_shared_from_this<StreamConnection<Stream, Framer>> {
 public:
  StreamConnection(TransportHost& host, Stream stream, std::uint64_t id, Protocol protocol,
                   Endpoint local, Endpoint remote, ConnectionState state)
      : Connection(id, protocol, local, remote, state, host.clock().now()),
        host_(host),
        stream_(std::move(stream)),
        framer_(host.settings().maxMessageSize) {}

  Stream& stream() { return stream_; }

  // The stream is up (accepted, connected, or its handshake done): reads start and the
  // queued output goes out. local: the local endpoint, when it is known only now.
  void start(const std::optional<Endpoint>& local = std::nullopt) {
    if (state() == ConnectionState::closed) return;
    if (local) setLocal(*local);
    const SteadyTime now = host_.clock().now();
    setState(ConnectionState::open, now);
    notePeerActivity(now);  // the idle time counts from here
    if constexpr (requires {
                    StreamOps<Stream>::onControlFrame(stream_, std::function<void()>());
                  }) {
      // The callback lives in stream_, which this owns: it cannot outlive this.
      StreamOps<Stream>::onControlFrame(stream_, [this] { notePeerActivity(host_.clock().now()); });
    }
    read();
    if (!writing_) writeNext();
  }

  // An outgoing connection is connected and its TLS handshake starts: the handshake
  // timeout counts from here.
  void startHandshake(const Endpoint& local) {
    if (state() == ConnectionState::closed) return;
    setLocal(local);
    setState(ConnectionState::handshaking, host_.clock().now());
  }

  void send(const Destination& destination, std::string bytes, SendErrorHandler onError) override {
    if (state() == ConnectionState::closed) {
      host_.sendFailed(destination, std::make_error_code(std::errc::not_connected), onError);
      return;
    }
    const std::size_t cap = host_.settings().maxQueuedBytes;
    if (cap != 0 && queuedBytes_ + bytes.size() > cap) {
      ++host_.counters().tcpConnectionsClosedBackpressure;
      spdlog::warn("closing {} connection to {}: {} bytes queued, peer is not reading",
                   toString(protocol()), toString(remote()), queuedBytes_ + bytes.size());
      host_.sendFailed(destination, std::make_error_code(std::errc::no_buffer_space), onError);
      close(CloseReason::backpressure, std::make_error_code(std::errc::no_buffer_space));
      return;
    }
    queuedBytes_ += bytes.size();
    queue_.push_back(Pending{destination, std::move(bytes), std::move(onError)});
    if (!writing_ && state() == ConnectionState::open) writeNext();
  }

  void close(CloseReason why, std::error_code reason = {}) override {
    if (state() == ConnectionState::closed) return;
    setState(ConnectionState::closed, host_.clock().now());
    countClose(why);
    StreamOps<Stream>::close(stream_);
    if (reason) {
      for (auto& pending : queue_) host_.sendFailed(pending.destination, reason, pending.onError);
    }
    queue_.clear();
    queuedBytes_ = 0;
    host_.closed(*this);
  }

  // The stream broke (connect, read or write error): queued sends fail with ec.
  void fail(std::error_code ec) {
    close(CloseReason::error, ec ? ec : std::make_error_code(std::errc::connection_reset));
  }

 private:
  struct Pending {
    Destination destination;
    std::string bytes;
    SendErrorHandler onError;
  };

  void countClose(CloseReason why) {
    TransportCounters& c = host_.counters();
    switch (why) {
      case CloseReason::idle:
        ++c.tcpConnectionsClosedIdle;
        break;
      case CloseReason::oversize:
        ++c.tcpConnectionsClosedOversize;
        break;
      case CloseReason::framing:
        ++c.tcpConnectionsClosedFraming;
        break;
      default:
        break;  // backpressure is counted where it is found; the rest need no counter
    }
  }

  void read() {
    auto self = this->shared_from_this();
    stream_.async_read_some(boost::asio::buffer(readBuffer_),
                            [self](boost::system::error_code ec, std::size_t n) {
                              if (self->state() == ConnectionState::closed) return;
                              if (ec) {
                                self->readFailed(ec);
                                return;
                              }
                              self->notePeerActivity(self->host_.clock().now());
                              self->framer_.feed(std::string_view(self->readBuffer_.data(), n),
                                                 StreamOps<Stream>::messageDone(self->stream_));
                              if (self->drainFrames()) self->read();
                            });
  }

  void readFailed(const boost::system::error_code& ec) {
    namespace websocket = boost::beast::websocket;
    if (ec == websocket::error::message_too_big) {  // Beast's read_message_max
      if (host_.warningAllowed(log::reason::badPacket))
        spdlog::warn("closing {} connection from {}: message too large", toString(protocol()),
                     toString(remote()));
      close(CloseReason::oversize, std::make_error_code(std::errc::connection_reset));
      return;
    }
    // The end of the stream, or a WebSocket closing handshake, is a normal close.
    const bool ended = ec == boost::asio::error::eof || ec == websocket::error::closed;
    if (!ended && ec != boost::asio::error::connection_reset) {
      spdlog::warn("{} read from {} failed: {}", toString(protocol()), toString(remote()),
                   ec.message());
    }
    fail(ended ? std::make_error_code(std::errc::connection_reset) : toStdError(ec));
  }

  // Hands every complete message up. False when the connection was closed.
  bool drainFrames() {
    for (;;) {
      switch (framer_.next()) {
        case Framer::Kind::needMore:
          return true;
        case Framer::Kind::message: {
          ++host_.counters().tcpMessagesReceived;
          host_.deliver(Source{protocol(), local(), remote(), id()}, framer_.frame());
          if (state() == ConnectionState::closed) return false;
          break;
        }
        case Framer::Kind::ping:
          ++host_.counters().keepalivesReceived;
          send(Destination{protocol(), remote(), id(), local(), {}, {}}, "\r\n", {});
          if (state() == ConnectionState::closed) return false;
          break;
        case Framer::Kind::pong:
          ++host_.counters().keepalivesReceived;
          break;
        case Framer::Kind::error:
          if (host_.warningAllowed(log::reason::badPacket))
            spdlog::warn("closing {} connection from {}: {}", toString(protocol()),
                         toString(remote()), framer_.reason());
          close(framer_.oversize() ? CloseReason::oversize : CloseReason::framing);
          return false;
      }
    }
  }

  void writeNext() {
    if (queue_.empty() || state() != ConnectionState::open) {
      writing_ = false;
      return;
    }
    writing_ = true;
    auto self = this->shared_from_this();
    StreamOps<Stream>::asyncWrite(stream_, boost::asio::buffer(queue_.front().bytes),
                                  [self](boost::system::error_code ec, std::size_t) {
                                    if (self->state() == ConnectionState::closed) return;
                                    if (ec) {
                                      spdlog::warn("{} write to {} failed: {}",
                                                   toString(self->protocol()),
                                                   toString(self->remote()), ec.message());
                                      self->fail(toStdError(ec));
                                      return;
                                    }
                                    Pending& done = self->queue_.front();
                                    if (done.bytes != "\r\n")
                                      ++self->host_.counters().tcpMessagesSent;
                                    self->queuedBytes_ -= done.bytes.size();
                                    self->queue_.pop_front();
                                    self->writeNext();
                                  });
  }

  TransportHost& host_;
  Stream stream_;
  Framer framer_;
  // Held by every idle connection, so small: 4 KiB cut an idle TCP connection's heap from
  // 18 KB to 6 KB (bench/tls_bench.py) at no cost per call; a bigger message is read in
  // several pieces, which the framer joins anyway.
  std::array<char, 4096> readBuffer_{};
  std::deque<Pending> queue_;
  bool writing_ = false;
};

}  // namespace waypoint::transport
