#pragma once
// The server side of the WebSocket opening handshake for SIP (RFC 6455 §4.2, RFC 7118
// §4.1), over any next layer: read the HTTP upgrade request (size-limited), check it, and
// either accept with "Sec-WebSocket-Protocol: sip" and start the connection, or answer an
// HTTP error and close. The handshake timeout is the connection table's: the connection
// stays in the handshaking state until it is accepted. Private to src/transport.

#include <spdlog/spdlog.h>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "connection.hpp"

namespace waypoint::transport {

// What a WebSocket listener admits; shared by its connections.
struct WebSocketPolicy {
  std::vector<std::string> origins;  // empty: any Origin, or none
};

using UpgradeRequest = boost::beast::http::request<boost::beast::http::empty_body>;

enum class UpgradeVerdict { accept, notUpgrade, malformed, noSipSubprotocol, originRefused };

// Whether an HTTP request is a WebSocket upgrade we accept. No I/O.
UpgradeVerdict checkUpgrade(const UpgradeRequest& request, const WebSocketPolicy& policy);
// The HTTP answer to a refused handshake: 426, 400 or 403 with the reason as the body.
boost::beast::http::response<boost::beast::http::string_body> refusal(UpgradeVerdict verdict,
                                                                      unsigned httpVersion);
// Counts a handshake's outcome in the transport counters.
void countVerdict(UpgradeVerdict verdict, TransportCounters& counters);

// Biggest upgrade request read; browsers send well under 2 KiB.
inline constexpr std::size_t kMaxUpgradeRequestBytes = 8192;

// Runs the handshake of one accepted connection (Conn: a StreamConnection over a
// boost::beast::websocket::stream, in the handshaking state). Keeps itself and the
// connection alive while its I/O is pending.
template <class Conn>
class WebSocketHandshake : public std::enable_shared_from_this<WebSocketHandshake<Conn>> {
 public:
  WebSocketHandshake(std::shared_ptr<Conn> connection, TransportHost& host,
                     std::shared_ptr<const WebSocketPolicy> policy)
      : connection_(std::move(connection)),
        host_(host),
        policy_(std::move(policy)),
        buffer_(kMaxUpgradeRequestBytes) {
    parser_.header_limit(kMaxUpgradeRequestBytes);
  }

  static void start(std::shared_ptr<Conn> connection, TransportHost& host,
                    std::shared_ptr<const WebSocketPolicy> policy) {
    std::make_shared<WebSocketHandshake>(std::move(connection), host, std::move(policy))->read();
  }

 private:
  void read() {
    auto self = this->shared_from_this();
    boost::beast::http::async_read(
        connection_->stream().next_layer(), buffer_, parser_,
        [self](boost::system::error_code ec, std::size_t) { self->onRequest(ec); });
  }

  void onRequest(boost::system::error_code ec) {
    if (connection_->state() == ConnectionState::closed) return;  // timed out or shut down
    if (ec == boost::beast::http::error::end_of_stream || ec == boost::asio::error::eof ||
        ec == boost::asio::error::connection_reset) {
      connection_->fail(std::make_error_code(std::errc::connection_reset));
      return;
    }
    UpgradeVerdict verdict = UpgradeVerdict::malformed;
    if (!ec) {
      // RFC 6455 §4.1: the client sends nothing more before our answer.
      verdict =
          buffer_.size() != 0 ? UpgradeVerdict::malformed : checkUpgrade(parser_.get(), *policy_);
    }
    countVerdict(verdict, host_.counters());
    if (verdict == UpgradeVerdict::accept) {
      accept();
    } else {
      if (host_.warningAllowed(log::reason::webSocketRefused))
        spdlog::info("refusing WebSocket handshake from {}: {}{}", toString(connection_->remote()),
                     refusal(verdict, 11).body(), ec ? " (" + ec.message() + ")" : std::string());
      refuse(verdict);
    }
  }

  void accept() {
    namespace websocket = boost::beast::websocket;
    auto& stream = connection_->stream();
    stream.set_option(websocket::stream_base::decorator([](websocket::response_type& response) {
      response.set(boost::beast::http::field::sec_websocket_protocol, "sip");
      response.set(boost::beast::http::field::server, "waypoint");
    }));
    stream.read_message_max(host_.settings().maxMessageSize);
    auto self = this->shared_from_this();
    stream.async_accept(parser_.get(), [self](boost::system::error_code ec) {
      if (self->connection_->state() == ConnectionState::closed) return;
      if (ec) {
        if (self->host_.warningAllowed(log::reason::webSocketRefused))
          spdlog::warn("WebSocket handshake with {} failed: {}",
                       toString(self->connection_->remote()), ec.message());
        self->connection_->fail(std::make_error_code(std::errc::connection_reset));
        return;
      }
      self->connection_->start();
    });
  }

  void refuse(UpgradeVerdict verdict) {
    answer_ = refusal(verdict, parser_.is_header_done() ? parser_.get().version() : 11);
    auto self = this->shared_from_this();
    boost::beast::http::async_write(connection_->stream().next_layer(), answer_,
                                    [self](boost::system::error_code, std::size_t) {
                                      self->connection_->close(CloseReason::refused);
                                    });
  }

  std::shared_ptr<Conn> connection_;
  TransportHost& host_;
  std::shared_ptr<const WebSocketPolicy> policy_;
  boost::beast::flat_buffer buffer_;
  boost::beast::http::request_parser<boost::beast::http::empty_body> parser_;
  boost::beast::http::response<boost::beast::http::string_body> answer_;
};

}  // namespace waypoint::transport
