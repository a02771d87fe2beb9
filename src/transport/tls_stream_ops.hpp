#pragma once
// TLS under a stream connection (SIP over TLS, and the layer under WSS): StreamOps for an
// asio::ssl::stream, and the handshake that moves a connection from handshaking to open.
// Private to src/transport.

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "stream_connection.hpp"

namespace waypoint::transport {

using TlsStream = boost::asio::ssl::stream<boost::asio::ip::tcp::socket>;

template <>
struct StreamOps<TlsStream> {
  // No close_notify: we close a TLS connection only when it is broken, idle or the daemon
  // stops, and waiting for the peer's answer would keep a dead peer's socket open.
  static void close(TlsStream& stream) {
    StreamOps<TlsStream::next_layer_type>::close(stream.next_layer());
  }
  static bool messageDone(const TlsStream& /*stream*/) { return false; }
  template <class Buffer, class Handler>
  static void asyncWrite(TlsStream& stream, const Buffer& buffer, Handler&& handler) {
    boost::asio::async_write(stream, buffer, std::forward<Handler>(handler));
  }
};

// Why a TLS handshake failed, in words an operator can act on: the certificate check's
// verdict when there was one ("hostname mismatch", "self-signed certificate"), else
// OpenSSL's reason ("wrong version number" for plain text sent to a TLS port).
inline std::string tlsFailureReason(SSL* ssl, const boost::system::error_code& ec) {
  const long verdict = SSL_get_verify_result(ssl);
  if (verdict != X509_V_OK) {
    return std::string("certificate refused: ") + X509_verify_cert_error_string(verdict);
  }
  return ec.message();
}

// Runs a TLS handshake on a connection in the handshaking (or connecting) state. `then`
// runs once it succeeded; on failure the connection is closed with the reason logged and
// counted. `slot` (may be null) is held until the handshake ends: the per-source count of
// handshakes in progress.
template <class Conn>
void startTlsHandshake(const std::shared_ptr<Conn>& connection, TlsStream& tls,
                       TlsStream::handshake_type side, TransportHost& host,
                       std::shared_ptr<void> slot, std::function<void()> then) {
  tls.async_handshake(side, [connection, &tls, &host, side, slot = std::move(slot),
                             then = std::move(then)](boost::system::error_code ec) mutable {
    slot.reset();
    if (connection->state() == ConnectionState::closed) return;  // timed out or shut down
    if (ec) {
      ++host.counters().tlsHandshakesFailed;
      if (host.warningAllowed(log::reason::tlsHandshake))
        spdlog::warn("TLS handshake {} {} failed: {}", side == TlsStream::server ? "from" : "with",
                     toString(connection->remote()), tlsFailureReason(tls.native_handle(), ec));
      connection->fail(std::make_error_code(std::errc::connection_reset));
      return;
    }
    ++host.counters().tlsHandshakesCompleted;
    spdlog::debug("TLS {} with {}", SSL_get_version(tls.native_handle()),
                  toString(connection->remote()));
    then();
  });
}

}  // namespace waypoint::transport
