#pragma once
// The listeners, connections and flow table of the daemon, all on one io_context.
//
// Incoming bytes are cut into messages (datagrams as they come, TCP by Content-Length,
// WebSocket one per WebSocket message) and handed to one MessageHandler with the flow they arrived
// on. Outgoing messages reuse the flow named by a Destination where it still exists.

#include <array>
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

#include "waypoint/metrics/metric.hpp"
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

// Connections by transport: Family index connectionIndex(protocol) (UDP has none).
inline constexpr std::array<std::string_view, 4> connectionTransportLabels{"tcp", "tls", "ws",
                                                                           "wss"};
inline constexpr std::size_t connectionIndex(Protocol protocol) {
  return protocol == Protocol::udp ? 0 : static_cast<std::size_t>(protocol) - 1;
}

// Counters of what the transports did; transportMetrics below declares them.
struct TransportCounters {
  std::uint64_t udpDatagramsReceived = 0;
  std::uint64_t udpDatagramsSent = 0;
  std::uint64_t udpOversizeDropped = 0;
  std::uint64_t keepalivesReceived = 0;
  metrics::Family connectionsAccepted;  // by connectionIndex()
  metrics::Family connectionsOpened;
  metrics::Family connectionsOpen;           // a gauge
  std::uint64_t tcpConnectionsRejected = 0;  // per-source or global limit
  std::uint64_t tcpConnectionsClosedIdle = 0;
  std::uint64_t tcpConnectionsClosedOversize = 0;
  std::uint64_t tcpConnectionsClosedFraming = 0;
  std::uint64_t tcpConnectionsClosedBackpressure = 0;  // output queue over maxQueuedBytes
  std::uint64_t tcpMessagesReceived = 0;
  std::uint64_t tcpMessagesSent = 0;
  std::uint64_t sendErrors = 0;
  std::uint64_t udpUnreachable = 0;      // ICMP errors for datagrams we sent
  std::uint64_t tcpOpenConnections = 0;  // connectionsOpen's total, for waypointctl status
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

using TransportMetric = metrics::Metric<TransportCounters>;

inline constexpr std::array transportMetrics{
    TransportMetric::counter("udp_datagrams_received",
                             "UDP datagrams received, keep-alives included",
                             &TransportCounters::udpDatagramsReceived),
    TransportMetric::counter("udp_datagrams_sent", "UDP datagrams sent",
                             &TransportCounters::udpDatagramsSent),
    TransportMetric::counter("udp_oversize_dropped",
                             "UDP datagrams dropped for exceeding the maximum message size",
                             &TransportCounters::udpOversizeDropped),
    TransportMetric::counter("keepalives_received",
                             "Keep-alives received (CRLF pings, RFC 5626), on any transport",
                             &TransportCounters::keepalivesReceived),
    TransportMetric::counterFamily(
        "connections_accepted", "Incoming connections accepted, by transport",
        &TransportCounters::connectionsAccepted, "transport", connectionTransportLabels),
    TransportMetric::counterFamily(
        "connections_opened", "Outgoing connections established, by transport",
        &TransportCounters::connectionsOpened, "transport", connectionTransportLabels),
    TransportMetric::gaugeFamily(
        "connections_open", "Connections open now (either direction), by transport",
        &TransportCounters::connectionsOpen, "transport", connectionTransportLabels),
    TransportMetric::counter(
        "connections_rejected",
        "Incoming connections refused by the per-source or global connection limit",
        &TransportCounters::tcpConnectionsRejected),
    TransportMetric::counter("connections_closed", "Connections closed by waypoint, by reason",
                             &TransportCounters::tcpConnectionsClosedIdle, R"(reason="idle")"),
    TransportMetric::counter("connections_closed", "",
                             &TransportCounters::tcpConnectionsClosedOversize,
                             R"(reason="oversize")"),
    TransportMetric::counter("connections_closed", "",
                             &TransportCounters::tcpConnectionsClosedFraming,
                             R"(reason="framing")"),
    TransportMetric::counter("connections_closed", "",
                             &TransportCounters::tcpConnectionsClosedBackpressure,
                             R"(reason="backpressure")"),
    TransportMetric::counter("stream_messages_received",
                             "SIP messages received over TCP, TLS, WS and WSS",
                             &TransportCounters::tcpMessagesReceived),
    TransportMetric::counter("stream_messages_sent", "SIP messages sent over TCP, TLS, WS and WSS",
                             &TransportCounters::tcpMessagesSent),
    TransportMetric::counter("send_errors", "Sends that failed, any transport",
                             &TransportCounters::sendErrors),
    TransportMetric::counter("udp_unreachable", "ICMP unreachable errors for UDP datagrams sent",
                             &TransportCounters::udpUnreachable),
    TransportMetric::counter("ws_handshakes_accepted", "WebSocket opening handshakes accepted",
                             &TransportCounters::wsHandshakesAccepted),
    TransportMetric::counter("ws_handshakes_refused",
                             "WebSocket opening handshakes refused, by reason",
                             &TransportCounters::wsHandshakesRefusedRequest, R"(reason="request")"),
    TransportMetric::counter("ws_handshakes_refused", "",
                             &TransportCounters::wsHandshakesRefusedSubprotocol,
                             R"(reason="subprotocol")"),
    TransportMetric::counter("ws_handshakes_refused", "",
                             &TransportCounters::wsHandshakesRefusedOrigin, R"(reason="origin")"),
    TransportMetric::counter(
        "ws_sends_without_connection",
        "Messages for a WebSocket flow that is gone (waypoint cannot open one)",
        &TransportCounters::wsSendsWithoutConnection),
    TransportMetric::counter("tls_handshakes_completed",
                             "TLS handshakes completed, incoming and outgoing",
                             &TransportCounters::tlsHandshakesCompleted),
    TransportMetric::counter("tls_handshakes_failed",
                             "TLS handshakes that failed, incoming and outgoing",
                             &TransportCounters::tlsHandshakesFailed),
    TransportMetric::counter(
        "tls_handshakes_refused_limit",
        "TLS connections refused: too many handshakes in progress from the source",
        &TransportCounters::tlsHandshakesRefusedLimit),
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
  // A reload: the connection limits and timeouts of `limits` (idle, connect and handshake
  // timeouts, connections per source and in all, handshakes per source, queued bytes)
  // apply from now on, to the connections open too; the sizes fixed when a listener was
  // bound (max_message_size, udp_mtu, udp_receive_buffer) stay until a restart.
  void setLimits(const TransportSettings& limits);

  struct Impl;  // defined in transports.cpp

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace waypoint::transport
