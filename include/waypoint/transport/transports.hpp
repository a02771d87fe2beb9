#pragma once
// The listeners, connections and flow table of the daemon, all on one io_context.
//
// Incoming bytes are cut into messages (datagrams as they come, TCP by Content-Length,
// WebSocket one per WebSocket message) and handed to one MessageHandler with the flow they arrived
// on. Outgoing messages reuse the flow named by a Destination where it still exists.

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "waypoint/transport/address.hpp"
#include "waypoint/transport/clock.hpp"
#include "waypoint/transport/tls_context.hpp"

namespace waypoint::log {
class WarningLimiter;
}

namespace waypoint::transport {

struct ListenerConfig {
  Protocol protocol = Protocol::udp;
  std::string address;  // numeric IPv4 or IPv6
  std::uint16_t port = 5060;
  // WebSocket listeners: the Origin header values a handshake may carry (exact match,
  // case-insensitive). Empty: any Origin, or none.
  std::vector<std::string> origins;
  // TLS and WSS listeners: the certificate and what is asked of clients (required there).
  std::optional<TlsSettings> tls;
  // The name Via and Record-Route give this listener instead of its address (a server
  // behind 1:1 NAT); the transports bind the address and leave the name to the proxy.
  std::optional<HostPort> advertise = std::nullopt;
};

struct TransportSettings {
  std::size_t maxMessageSize = 65536;
  std::size_t udpMtu = 1300;
  int udpReceiveBuffer = 0;  // SO_RCVBUF bytes; 0 leaves the kernel default
  std::chrono::seconds tcpIdleTimeout{600};
  std::chrono::seconds tcpConnectTimeout{10};
  std::chrono::seconds handshakeTimeout{10};  // TLS and WebSocket handshakes
  // Output queued on one connection; over it the connection is closed (a peer that does
  // not read). 0: no cap.
  std::size_t maxQueuedBytes = 256 * 1024;
  std::size_t maxConnectionsPerSource = 64;
  // TLS handshakes in progress from one address: a slow or half-open client holds one for
  // up to handshakeTimeout, so this bounds what one source can keep the daemon doing.
  std::size_t maxHandshakesPerSource = 8;
  std::size_t maxConnections = 16384;
};

// Counters of what the transports did; read by the metrics code.
struct TransportCounters {
  std::uint64_t udpDatagramsReceived = 0;
  std::uint64_t udpDatagramsSent = 0;
  std::uint64_t udpOversizeDropped = 0;
  std::uint64_t keepalivesReceived = 0;
  std::uint64_t tcpConnectionsAccepted = 0;
  std::uint64_t tcpConnectionsOpened = 0;
  std::uint64_t tcpConnectionsRejected = 0;  // per-source or global limit
  std::uint64_t tcpConnectionsClosedIdle = 0;
  std::uint64_t tcpConnectionsClosedOversize = 0;
  std::uint64_t tcpConnectionsClosedFraming = 0;
  std::uint64_t tcpConnectionsClosedBackpressure = 0;  // output queue over maxQueuedBytes
  std::uint64_t tcpMessagesReceived = 0;
  std::uint64_t tcpMessagesSent = 0;
  std::uint64_t sendErrors = 0;
  std::uint64_t udpUnreachable = 0;      // ICMP errors for datagrams we sent
  std::uint64_t tcpOpenConnections = 0;  // a gauge
  // WebSocket opening handshakes (RFC 6455 §4, RFC 7118 §4.1).
  std::uint64_t wsHandshakesAccepted = 0;
  std::uint64_t wsHandshakesRefusedRequest = 0;      // not an upgrade, malformed, too big
  std::uint64_t wsHandshakesRefusedSubprotocol = 0;  // no "sip" in Sec-WebSocket-Protocol
  std::uint64_t wsHandshakesRefusedOrigin = 0;       // Origin not in the listener's list
  std::uint64_t wsSendsWithoutConnection = 0;        // a WS flow we may not open ourselves
  // TLS handshakes, incoming and outgoing (TLS and WSS).
  std::uint64_t tlsHandshakesCompleted = 0;
  std::uint64_t tlsHandshakesFailed = 0;        // bad certificate, not TLS at all, peer gave up
  std::uint64_t tlsHandshakesRefusedLimit = 0;  // over maxHandshakesPerSource
};

// What one TLS context set (a listener's, or the one outgoing connections use) did on a
// reload.
struct TlsReloadReport {
  std::string what;  // "TLS 127.0.0.1:5061", "outgoing TLS"
  TlsReloadResult result;
};

// Every TLS context read again from its files, none in use yet.
struct PreparedTlsReload {
  std::vector<TlsReloadReport> reports;  // result.reloaded: this one's files are good
  std::vector<std::optional<TlsContexts::Prepared>> contexts;
  bool ok() const;  // every certificate and key is good
};

using MessageHandler = std::function<void(const Source& source, std::string_view bytes)>;
using SendErrorHandler = std::function<void(const Destination& destination, std::error_code)>;
// An ICMP error (port or host unreachable) came back for a UDP datagram sent to destination.
using UnreachableHandler = std::function<void(const Destination& destination, std::error_code)>;

// One open stream connection as `waypointctl connections` shows it.
struct ConnectionInfo {
  std::uint64_t id = 0;
  Protocol protocol = Protocol::tcp;
  Endpoint local;
  Endpoint remote;
  std::string_view state;  // "connecting", "handshaking" or "open"
  SteadyTime stateSince{};
  SteadyTime lastPeerActivity{};
  std::size_t queuedBytes = 0;
};

class Transports {
 public:
  Transports(boost::asio::io_context& io, TransportSettings settings, MessageHandler onMessage,
             const TransportClock& clock = steadyClock());
  ~Transports();
  Transports(const Transports&) = delete;
  Transports& operator=(const Transports&) = delete;

  // Binds a listener. Throws std::runtime_error naming the address on failure.
  void listen(const ListenerConfig& config);
  // Outgoing TLS connections (sips:, transport=tls) are made with these settings (client
  // certificate, CA bundle, verification). Throws std::runtime_error as TlsContexts does.
  // Without it, sending over TLS fails with protocol_not_supported.
  void useClientTls(const TlsSettings& settings);
  // A reload in two steps, so that one bad certificate changes none: prepareTlsReload()
  // reads every TLS certificate and key again, and commitTlsReload() puts them in place
  // when all are good. Established connections keep the context they were made with.
  PreparedTlsReload prepareTlsReload() const;
  void commitTlsReload(PreparedTlsReload prepared);

  // The endpoints actually bound (port 0 resolved), in listen() order.
  std::vector<std::pair<Protocol, Endpoint>> boundEndpoints() const;

  // Every open stream connection, oldest id first.
  std::vector<ConnectionInfo> connections() const;

  // Sends bytes; never blocks. A failure (no socket for the family, connect refused,
  // reset) is counted, logged and reported to onError if given.
  void send(const Destination& destination, std::string bytes, SendErrorHandler onError = {});

  // Who learns of ICMP errors for UDP datagrams (RFC 3261 §17.1.4 transport errors).
  void onUnreachable(UnreachableHandler handler);
  // Warnings a peer can repeat at will (refused connections, failed TLS and WebSocket
  // handshakes, oversize or unframeable messages) go through this limiter; it must outlive
  // the transports. Without one every such warning is logged.
  void limitWarnings(log::WarningLimiter& limiter);

  // Closes the connections that are idle or not established in time now (the sweep timer
  // does this periodically).
  void sweepNow();

  // Closes every listener and connection (shutdown).
  void close();

  const TransportCounters& counters() const;
  const TransportSettings& settings() const;

  struct Impl;  // defined in transports.cpp

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace waypoint::transport
