#include "waypoint/transport/transports.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <map>
#include <stdexcept>

#include "connection_table.hpp"
#include "framers.hpp"
#include "openssl_handles.hpp"
#include "std_error.hpp"
#include "stream_connection.hpp"
#include "tls_stream_ops.hpp"
#include "udp_listener.hpp"
#include "waypoint/transport/tls_peer_identity.hpp"
#include "websocket_handshake.hpp"
#include "websocket_stream_ops.hpp"

namespace waypoint::transport {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;

namespace {

Endpoint toEndpoint(const tcp::endpoint& e) { return {e.address(), e.port()}; }

class SteadyClock final : public TransportClock {
 public:
  SteadyTime now() const override { return std::chrono::steady_clock::now(); }
};

using TcpConnection = StreamConnection<tcp::socket, ContentLengthFramer>;
using WsConnection =
    StreamConnection<boost::beast::websocket::stream<tcp::socket>, WebSocketFramer>;
using TlsConnection = StreamConnection<TlsStream, ContentLengthFramer>;
using WssConnection = StreamConnection<boost::beast::websocket::stream<TlsStream>, WebSocketFramer>;

// A bound TCP, TLS, WS or WSS listener: what its accepted connections are made with.
struct StreamListener {
  Protocol protocol = Protocol::tcp;
  Endpoint local;
  std::shared_ptr<const WebSocketPolicy> webSocket;  // WS and WSS
  std::shared_ptr<TlsContexts> tls;                  // TLS and WSS
};

// TLS handshakes in progress per source address. Shared with the slots handed to pending
// handshakes, which may be destroyed after the transports (with the io_context).
class HandshakeCounts : public std::enable_shared_from_this<HandshakeCounts> {
 public:
  // A slot held until the handshake ends; null when the source already has `limit`.
  std::shared_ptr<void> reserve(const asio::ip::address& source, std::size_t limit) {
    std::size_t& count = bySource_[source];
    if (limit != 0 && count >= limit) return nullptr;
    ++count;
    return std::shared_ptr<void>(new Slot{shared_from_this(), source}, [](void* slot) {
      auto* held = static_cast<Slot*>(slot);
      held->counts->release(held->source);
      delete held;
    });
  }

 private:
  struct Slot {
    std::shared_ptr<HandshakeCounts> counts;
    asio::ip::address source;
  };
  void release(const asio::ip::address& source) {
    const auto it = bySource_.find(source);
    if (it != bySource_.end() && --it->second == 0) bySource_.erase(it);
  }
  std::map<asio::ip::address, std::size_t> bySource_;
};

std::unique_ptr<tcp::acceptor> bindAcceptor(asio::io_context& io, const tcp::endpoint& at) {
  auto acceptor = std::make_unique<tcp::acceptor>(io);
  acceptor->open(at.protocol());
  acceptor->set_option(tcp::acceptor::reuse_address(true));
  if (at.address().is_v6()) acceptor->set_option(asio::ip::v6_only(true));
  acceptor->bind(at);
  acceptor->listen(asio::socket_base::max_listen_connections);
  return acceptor;
}

}  // namespace

const TransportClock& steadyClock() {
  static const SteadyClock clock;
  return clock;
}

struct Transports::Impl final : TransportHost {
  Impl(asio::io_context& ioContext, TransportSettings s, MessageHandler handler,
       const TransportClock& c)
      : io(ioContext),
        transportSettings(s),
        onMessage(std::move(handler)),
        transportClock(c),
        sweepTimer(ioContext) {}

  void deliver(const Source& source, std::string_view message) override {
    onMessage(source, message);
  }
  void sendFailed(const Destination& destination, std::error_code ec,
                  const SendErrorHandler& onError) override {
    ++transportCounters.sendErrors;
    spdlog::warn("send to {} failed: {}", toString(destination), ec.message());
    if (onError) onError(destination, ec);
  }
  void unreachable(const Destination& destination, std::error_code ec) override {
    if (onUnreachable) onUnreachable(destination, ec);
  }
  void closed(Connection& connection) override {
    const std::size_t before = table.size();
    table.remove(connection);
    if (table.size() < before)
      --transportCounters.connectionsOpen[connectionIndex(connection.protocol())];
    transportCounters.tcpOpenConnections = table.size();
  }
  bool shuttingDown() const override { return isClosed; }
  TransportCounters& counters() override { return transportCounters; }
  const TransportSettings& settings() const override { return transportSettings; }
  const TransportClock& clock() const override { return transportClock; }
  bool warningAllowed(std::string_view reason) override {
    return warningLimiter == nullptr || warningLimiter->allow(reason);
  }

  void adopt(const std::shared_ptr<Connection>& connection) {
    table.add(connection);
    ++transportCounters.connectionsOpen[connectionIndex(connection->protocol())];
    transportCounters.tcpOpenConnections = table.size();
    startSweep();
  }
  void accept(tcp::acceptor& acceptor, std::shared_ptr<const StreamListener> listener);
  void adoptAccepted(tcp::socket socket, const StreamListener& listener);
  void adoptTls(tcp::socket socket, const StreamListener& listener, const Endpoint& local,
                const Endpoint& remote);
  template <class Conn, class Then>
  void connect(const std::shared_ptr<Conn>& connection, tcp::socket& socket, Then then);
  std::shared_ptr<Connection> openTcp(const Destination& destination);
  std::shared_ptr<Connection> openTls(const Destination& destination);
  void sendUdp(const Destination& destination, std::string bytes, const SendErrorHandler& onError);
  void listenStream(const ListenerConfig& config, const tcp::endpoint& at,
                    const std::string& where);
  void startSweep();
  void sweep();

  asio::io_context& io;
  TransportSettings transportSettings;
  MessageHandler onMessage;
  UnreachableHandler onUnreachable;
  log::WarningLimiter* warningLimiter = nullptr;
  const TransportClock& transportClock;
  TransportCounters transportCounters;
  std::vector<std::unique_ptr<UdpListener>> udpListeners;
  std::vector<std::unique_ptr<tcp::acceptor>> tcpAcceptors;
  std::vector<std::pair<Protocol, Endpoint>> bound;
  std::vector<TlsReloadReport> tlsNames;  // what each of tlsContexts is, for reload reports
  std::vector<std::shared_ptr<TlsContexts>> tlsContexts;  // listeners', then outgoing
  std::shared_ptr<TlsContexts> clientTls;
  std::shared_ptr<HandshakeCounts> handshakes = std::make_shared<HandshakeCounts>();
  ConnectionTable table;
  asio::steady_timer sweepTimer;
  bool sweeping = false;
  bool isClosed = false;
};

void Transports::Impl::accept(tcp::acceptor& acceptor,
                              std::shared_ptr<const StreamListener> listener) {
  acceptor.async_accept([this, &acceptor, listener = std::move(listener)](
                            boost::system::error_code ec, tcp::socket socket) mutable {
    if (ec == asio::error::operation_aborted || isClosed) return;
    if (ec) {
      spdlog::warn("{} accept failed: {}", toString(listener->protocol), ec.message());
    } else {
      adoptAccepted(std::move(socket), *listener);
    }
    accept(acceptor, std::move(listener));
  });
}

void Transports::Impl::adoptAccepted(tcp::socket socket, const StreamListener& listener) {
  boost::system::error_code ec;
  const auto peer = socket.remote_endpoint(ec);
  if (ec) return;  // gone before we looked
  if (!table.admits(peer.address(), transportSettings)) {
    ++transportCounters.tcpConnectionsRejected;
    if (warningAllowed(log::reason::refusedConnection))
      spdlog::warn("rejecting {} connection from {}: connection limit reached",
                   toString(listener.protocol), toString(toEndpoint(peer)));
    socket.close(ec);
    return;
  }
  ++transportCounters.connectionsAccepted[connectionIndex(listener.protocol)];
  socket.set_option(tcp::no_delay(true), ec);
  // On a wildcard listener this is the address the peer connected to, not 0.0.0.0.
  const auto local = socket.local_endpoint(ec);
  const Endpoint localEndpoint = ec ? listener.local : toEndpoint(local);
  switch (listener.protocol) {
    case Protocol::tls:
    case Protocol::wss:
      adoptTls(std::move(socket), listener, localEndpoint, toEndpoint(peer));
      return;
    case Protocol::ws: {
      // RFC 7118: the SIP flow starts once the HTTP upgrade is accepted.
      auto connection = std::make_shared<WsConnection>(
          *this, boost::beast::websocket::stream<tcp::socket>(std::move(socket)), table.nextId(),
          Protocol::ws, localEndpoint, toEndpoint(peer), ConnectionState::handshaking);
      adopt(connection);
      WebSocketHandshake<WsConnection>::start(connection, *this, listener.webSocket);
      return;
    }
    default: {
      auto connection =
          std::make_shared<TcpConnection>(*this, std::move(socket), table.nextId(), Protocol::tcp,
                                          localEndpoint, toEndpoint(peer), ConnectionState::open);
      adopt(connection);
      connection->start();
    }
  }
}

// TLS, and WSS (TLS first, then the WebSocket upgrade inside it). The connection takes the
// listener's current context and keeps it, so a reload changes only later connections.
void Transports::Impl::adoptTls(tcp::socket socket, const StreamListener& listener,
                                const Endpoint& local, const Endpoint& remote) {
  auto slot = handshakes->reserve(remote.address, transportSettings.maxHandshakesPerSource);
  if (!slot) {
    ++transportCounters.tlsHandshakesRefusedLimit;
    if (warningAllowed(log::reason::refusedConnection))
      spdlog::warn("refusing {} connection from {}: {} TLS handshakes from there in progress",
                   toString(listener.protocol), toString(remote),
                   transportSettings.maxHandshakesPerSource);
    boost::system::error_code ignored;
    socket.close(ignored);
    return;
  }
  const auto context = listener.tls->server();
  if (listener.protocol == Protocol::tls) {
    auto connection = std::make_shared<TlsConnection>(*this, TlsStream(std::move(socket), *context),
                                                      table.nextId(), Protocol::tls, local, remote,
                                                      ConnectionState::handshaking);
    connection->holdForLife(context);
    adopt(connection);
    startTlsHandshake(connection, connection->stream(), TlsStream::server, *this, std::move(slot),
                      [connection] { connection->start(); });
    return;
  }
  auto connection = std::make_shared<WssConnection>(
      *this, boost::beast::websocket::stream<TlsStream>(std::move(socket), *context),
      table.nextId(), Protocol::wss, local, remote, ConnectionState::handshaking);
  connection->holdForLife(context);
  adopt(connection);
  startTlsHandshake(connection, connection->stream().next_layer(), TlsStream::server, *this,
                    std::move(slot), [this, connection, policy = listener.webSocket] {
                      WebSocketHandshake<WssConnection>::start(connection, *this, policy);
                    });
}

// Connects the socket under a new outgoing connection; `then(local endpoint)` runs once it
// is connected. A failure closes the connection, failing what was queued on it.
template <class Conn, class Then>
void Transports::Impl::connect(const std::shared_ptr<Conn>& connection, tcp::socket& socket,
                               Then then) {
  socket.async_connect(
      tcp::endpoint(connection->remote().address, connection->remote().port),
      [connection, &socket, this, then = std::move(then)](boost::system::error_code ec) {
        if (connection->state() == ConnectionState::closed) return;
        if (ec) {
          spdlog::warn("{} connect to {} failed: {}", toString(connection->protocol()),
                       toString(connection->remote()), ec.message());
          connection->fail(toStdError(ec));
          return;
        }
        ++transportCounters.connectionsOpened[connectionIndex(connection->protocol())];
        boost::system::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        then(toEndpoint(socket.local_endpoint(ignored)));
      });
}

std::shared_ptr<Connection> Transports::Impl::openTcp(const Destination& destination) {
  auto connection =
      std::make_shared<TcpConnection>(*this, tcp::socket(io), table.nextId(), Protocol::tcp,
                                      Endpoint{}, destination.remote, ConnectionState::connecting);
  adopt(connection);
  connect(connection, connection->stream(),
          [connection](const Endpoint& local) { connection->start(local); });
  return connection;
}

std::shared_ptr<Connection> Transports::Impl::openTls(const Destination& destination) {
  const auto context = clientTls ? clientTls->client() : nullptr;
  if (!context) {
    spdlog::warn("cannot open a TLS connection to {}: TLS is not configured",
                 toString(destination.remote));
    return nullptr;
  }
  auto connection = std::make_shared<TlsConnection>(
      *this, TlsStream(tcp::socket(io), *context), table.nextId(), Protocol::tls, Endpoint{},
      destination.remote, ConnectionState::connecting);
  connection->holdForLife(context);
  const std::string serverName = destination.serverName.empty()
                                     ? toString(destination.remote.address)
                                     : destination.serverName;
  const bool verify = destination.verifyPeer.value_or(clientTls->settings().verifyPeer);
  if (!prepareClientStream(connection->stream(), serverName, verify)) {
    spdlog::warn("cannot open a TLS connection to {} for {}: {}", toString(destination.remote),
                 serverName, detail::takeOpenSslErrors("bad server name"));
    return nullptr;
  }
  if (!verify) connection->stream().set_verify_mode(asio::ssl::verify_none);
  adopt(connection);
  connect(connection, connection->stream().next_layer(), [connection, this](const Endpoint& local) {
    connection->startHandshake(local);
    startTlsHandshake(connection, connection->stream(), TlsStream::client, *this, nullptr,
                      [connection] { connection->start(); });
  });
  return connection;
}

void Transports::Impl::sendUdp(const Destination& destination, std::string bytes,
                               const SendErrorHandler& onError) {
  UdpListener* chosen = nullptr;
  for (auto& listener : udpListeners) {
    if (destination.local && listener->owns(*destination.local)) {
      chosen = listener.get();
      break;
    }
    if (chosen == nullptr && listener->isV6() == destination.remote.address.is_v6())
      chosen = listener.get();
  }
  if (chosen == nullptr) {
    sendFailed(destination, std::make_error_code(std::errc::address_family_not_supported), onError);
    return;
  }
  chosen->send(destination, std::move(bytes), onError);
}

void Transports::Impl::startSweep() {
  if (sweeping || isClosed) return;
  sweeping = true;
  // Often enough that a stuck connect or handshake is closed soon after its timeout.
  const auto period = std::clamp<std::chrono::seconds>(
      std::min({transportSettings.tcpIdleTimeout / 4, transportSettings.tcpConnectTimeout / 2,
                transportSettings.handshakeTimeout / 2}),
      std::chrono::seconds(1), std::chrono::seconds(30));
  sweepTimer.expires_after(period);
  sweepTimer.async_wait([this](boost::system::error_code ec) {
    sweeping = false;
    if (ec || isClosed) return;
    sweep();
    if (!table.empty()) startSweep();
  });
}

// One timer for every connection: idle and stuck-connecting ones are closed here.
void Transports::Impl::sweep() {
  for (auto& connection : table.expired(transportClock.now(), transportSettings)) {
    if (connection->state() == ConnectionState::open) {
      spdlog::info("closing idle {} connection to {}", toString(connection->protocol()),
                   toString(connection->remote()));
      connection->close(CloseReason::idle);
    } else {
      spdlog::warn("{} connection to {} not established in time", toString(connection->protocol()),
                   toString(connection->remote()));
      connection->close(CloseReason::establishTimeout, std::make_error_code(std::errc::timed_out));
    }
  }
}

void Transports::Impl::listenStream(const ListenerConfig& config, const tcp::endpoint& at,
                                    const std::string& where) {
  auto listener = std::make_shared<StreamListener>();
  listener->protocol = config.protocol;
  if (config.protocol == Protocol::ws || config.protocol == Protocol::wss)
    listener->webSocket = std::make_shared<const WebSocketPolicy>(WebSocketPolicy{config.origins});
  if (config.protocol == Protocol::tls || config.protocol == Protocol::wss) {
    if (!config.tls) throw std::runtime_error(where + " has no TLS settings");
    // Before binding: a bad certificate stops the start with its reason.
    try {
      listener->tls = std::make_shared<TlsContexts>(*config.tls);
    } catch (const std::runtime_error& error) {
      throw std::runtime_error(where + ": " + error.what());
    }
  }
  auto acceptor = bindAcceptor(io, at);
  listener->local = toEndpoint(acceptor->local_endpoint());
  bound.emplace_back(config.protocol, listener->local);
  if (listener->tls) {
    tlsNames.push_back(
        {std::string(toString(config.protocol)) + " " + toString(listener->local), {}});
    tlsContexts.push_back(listener->tls);
  }
  tcp::acceptor* raw = acceptor.get();
  tcpAcceptors.push_back(std::move(acceptor));
  accept(*raw, std::move(listener));
}

Transports::Transports(asio::io_context& io, TransportSettings settings, MessageHandler onMessage,
                       const TransportClock& clock)
    : impl_(std::make_unique<Impl>(io, settings, std::move(onMessage), clock)) {}

Transports::~Transports() { close(); }

void Transports::listen(const ListenerConfig& config) {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(config.address, ec);
  if (ec)
    throw std::runtime_error("listener address '" + config.address +
                             "' is not a numeric IP address");
  const std::string where =
      std::string(toString(config.protocol)) + " " + toString(Endpoint{address, config.port});
  try {
    switch (config.protocol) {
      case Protocol::udp: {
        auto listener =
            std::make_unique<UdpListener>(impl_->io, *impl_, udp::endpoint(address, config.port));
        listener->start();
        impl_->bound.emplace_back(Protocol::udp, listener->local());
        impl_->udpListeners.push_back(std::move(listener));
        break;
      }
      default:
        impl_->listenStream(config, tcp::endpoint(address, config.port), where);
    }
  } catch (const boost::system::system_error& e) {
    throw std::runtime_error("cannot listen on " + where + ": " + e.code().message());
  }
}

std::vector<std::pair<Protocol, Endpoint>> Transports::boundEndpoints() const {
  return impl_->bound;
}

void Transports::send(const Destination& destination, std::string bytes, SendErrorHandler onError) {
  Impl& impl = *impl_;
  if (impl.isClosed) return;
  switch (destination.protocol) {
    case Protocol::udp:
      impl.sendUdp(destination, std::move(bytes), onError);
      return;
    case Protocol::tcp:
    case Protocol::tls: {
      auto connection = impl.table.find(destination);
      if (!connection) {
        connection = destination.protocol == Protocol::tcp ? impl.openTcp(destination)
                                                           : impl.openTls(destination);
      }
      if (!connection) {
        impl.sendFailed(destination, std::make_error_code(std::errc::protocol_not_supported),
                        onError);
        return;
      }
      connection->send(destination, std::move(bytes), std::move(onError));
      return;
    }
    case Protocol::ws:
    case Protocol::wss: {
      // RFC 7118 §5: only the phone opens a WebSocket connection; its Via and Contact
      // (an .invalid host) name nothing we could connect to.
      if (auto connection = impl.table.find(destination)) {
        connection->send(destination, std::move(bytes), std::move(onError));
        return;
      }
      ++impl.transportCounters.wsSendsWithoutConnection;
      spdlog::warn("no open {} connection to {}: only the peer opens WebSocket connections",
                   toString(destination.protocol), toString(destination.remote));
      impl.sendFailed(destination, std::make_error_code(std::errc::not_connected), onError);
      return;
    }
    default:
      impl.sendFailed(destination, std::make_error_code(std::errc::protocol_not_supported),
                      onError);
  }
}

void Transports::close() {
  Impl& impl = *impl_;
  if (impl.isClosed) return;
  impl.isClosed = true;
  impl.sweepTimer.cancel();
  for (auto& listener : impl.udpListeners) listener->close();
  boost::system::error_code ignored;
  for (auto& acceptor : impl.tcpAcceptors) acceptor->close(ignored);
  for (auto& connection : impl.table.all()) connection->close(CloseReason::shutdown);
}

void Transports::onUnreachable(UnreachableHandler handler) {
  impl_->onUnreachable = std::move(handler);
}

void Transports::limitWarnings(log::WarningLimiter& limiter) { impl_->warningLimiter = &limiter; }

void Transports::useClientTls(const TlsSettings& settings) {
  impl_->clientTls = std::make_shared<TlsContexts>(settings);
  impl_->tlsNames.push_back({"outgoing TLS", {}});
  impl_->tlsContexts.push_back(impl_->clientTls);
}

bool PreparedTlsReload::ok() const {
  return std::all_of(reports.begin(), reports.end(),
                     [](const TlsReloadReport& report) { return report.result.reloaded; });
}

PreparedTlsReload Transports::prepareTlsReload() const {
  PreparedTlsReload prepared{impl_->tlsNames, {}};
  for (std::size_t i = 0; i < prepared.reports.size(); ++i) {
    auto& result = prepared.reports[i].result;
    prepared.contexts.push_back(impl_->tlsContexts[i]->prepare(result.reason));
    result.reloaded = prepared.contexts.back().has_value();
  }
  return prepared;
}

void Transports::commitTlsReload(PreparedTlsReload prepared) {
  if (!prepared.ok()) return;
  for (std::size_t i = 0; i < prepared.contexts.size(); ++i)
    impl_->tlsContexts[i]->install(std::move(*prepared.contexts[i]));
}

void Transports::sweepNow() { impl_->sweep(); }

namespace {

std::string_view stateName(ConnectionState state) {
  switch (state) {
    case ConnectionState::connecting:
      return "connecting";
    case ConnectionState::handshaking:
      return "handshaking";
    case ConnectionState::open:
      return "open";
    case ConnectionState::closed:
      break;
  }
  return "closed";
}

}  // namespace

std::vector<ConnectionInfo> Transports::connections() const {
  std::vector<ConnectionInfo> list;
  for (const auto& connection : impl_->table.all()) {
    list.push_back(ConnectionInfo{connection->id(), connection->protocol(), connection->local(),
                                  connection->remote(), stateName(connection->state()),
                                  connection->stateSince(), connection->lastPeerActivity(),
                                  connection->queuedBytes()});
  }
  std::sort(list.begin(), list.end(),
            [](const ConnectionInfo& a, const ConnectionInfo& b) { return a.id < b.id; });
  return list;
}

const TransportCounters& Transports::counters() const { return impl_->transportCounters; }
const TransportSettings& Transports::settings() const { return impl_->transportSettings; }

void Transports::setLimits(const TransportSettings& limits) {
  auto& current = impl_->transportSettings;
  current.tcpIdleTimeout = limits.tcpIdleTimeout;
  current.tcpConnectTimeout = limits.tcpConnectTimeout;
  current.handshakeTimeout = limits.handshakeTimeout;
  current.maxQueuedBytes = limits.maxQueuedBytes;
  current.maxConnectionsPerSource = limits.maxConnectionsPerSource;
  current.maxHandshakesPerSource = limits.maxHandshakesPerSource;
  current.maxConnections = limits.maxConnections;
}

}  // namespace waypoint::transport
