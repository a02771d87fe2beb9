#include "waypoint/transport/transports.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/steady_timer.hpp>
#include <stdexcept>

#include "connection_table.hpp"
#include "framers.hpp"
#include "std_error.hpp"
#include "stream_connection.hpp"
#include "udp_listener.hpp"
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
    table.remove(connection);
    transportCounters.tcpOpenConnections = table.size();
  }
  bool shuttingDown() const override { return isClosed; }
  TransportCounters& counters() override { return transportCounters; }
  const TransportSettings& settings() const override { return transportSettings; }
  const TransportClock& clock() const override { return transportClock; }

  void adopt(const std::shared_ptr<Connection>& connection) {
    table.add(connection);
    transportCounters.tcpOpenConnections = table.size();
    startSweep();
  }
  // policy: set for a WebSocket listener, null for TCP.
  void accept(tcp::acceptor& acceptor, Endpoint listener,
              std::shared_ptr<const WebSocketPolicy> policy);
  void adoptAccepted(tcp::socket socket, const Endpoint& listener,
                     const std::shared_ptr<const WebSocketPolicy>& policy);
  std::shared_ptr<Connection> openTcp(const Destination& destination);
  void sendUdp(const Destination& destination, std::string bytes, const SendErrorHandler& onError);
  void startSweep();
  void sweep();

  asio::io_context& io;
  TransportSettings transportSettings;
  MessageHandler onMessage;
  UnreachableHandler onUnreachable;
  const TransportClock& transportClock;
  TransportCounters transportCounters;
  std::vector<std::unique_ptr<UdpListener>> udpListeners;
  std::vector<std::unique_ptr<tcp::acceptor>> tcpAcceptors;
  std::vector<std::pair<Protocol, Endpoint>> bound;
  ConnectionTable table;
  asio::steady_timer sweepTimer;
  bool sweeping = false;
  bool isClosed = false;
};

void Transports::Impl::accept(tcp::acceptor& acceptor, Endpoint listener,
                              std::shared_ptr<const WebSocketPolicy> policy) {
  acceptor.async_accept([this, &acceptor, listener, policy = std::move(policy)](
                            boost::system::error_code ec, tcp::socket socket) mutable {
    if (ec == asio::error::operation_aborted || isClosed) return;
    if (ec) {
      spdlog::warn("TCP accept failed: {}", ec.message());
    } else {
      adoptAccepted(std::move(socket), listener, policy);
    }
    accept(acceptor, listener, std::move(policy));
  });
}

void Transports::Impl::adoptAccepted(tcp::socket socket, const Endpoint& listener,
                                     const std::shared_ptr<const WebSocketPolicy>& policy) {
  boost::system::error_code ec;
  const auto peer = socket.remote_endpoint(ec);
  if (ec) return;  // gone before we looked
  if (!table.admits(peer.address(), transportSettings)) {
    ++transportCounters.tcpConnectionsRejected;
    spdlog::warn("rejecting TCP connection from {}: connection limit reached",
                 toString(toEndpoint(peer)));
    socket.close(ec);
    return;
  }
  ++transportCounters.tcpConnectionsAccepted;
  socket.set_option(tcp::no_delay(true), ec);
  // On a wildcard listener this is the address the peer connected to, not 0.0.0.0.
  const auto local = socket.local_endpoint(ec);
  const Endpoint localEndpoint = ec ? listener : toEndpoint(local);
  if (policy) {
    // RFC 7118: the SIP flow starts once the HTTP upgrade is accepted.
    auto connection = std::make_shared<WsConnection>(
        *this, boost::beast::websocket::stream<tcp::socket>(std::move(socket)), table.nextId(),
        Protocol::ws, localEndpoint, toEndpoint(peer), ConnectionState::handshaking);
    adopt(connection);
    WebSocketHandshake<WsConnection>::start(connection, *this, policy);
    return;
  }
  auto connection =
      std::make_shared<TcpConnection>(*this, std::move(socket), table.nextId(), Protocol::tcp,
                                      localEndpoint, toEndpoint(peer), ConnectionState::open);
  adopt(connection);
  connection->start();
}

std::shared_ptr<Connection> Transports::Impl::openTcp(const Destination& destination) {
  auto connection =
      std::make_shared<TcpConnection>(*this, tcp::socket(io), table.nextId(), Protocol::tcp,
                                      Endpoint{}, destination.remote, ConnectionState::connecting);
  adopt(connection);
  connection->stream().async_connect(
      tcp::endpoint(destination.remote.address, destination.remote.port),
      [connection, this](boost::system::error_code ec) {
        if (connection->state() == ConnectionState::closed) return;
        if (ec) {
          spdlog::warn("TCP connect to {} failed: {}", toString(connection->remote()),
                       ec.message());
          connection->fail(toStdError(ec));
          return;
        }
        ++transportCounters.tcpConnectionsOpened;
        boost::system::error_code ignored;
        connection->stream().set_option(tcp::no_delay(true), ignored);
        connection->start(toEndpoint(connection->stream().local_endpoint(ignored)));
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
  const auto period = std::clamp<std::chrono::seconds>(
      transportSettings.tcpIdleTimeout / 4, std::chrono::seconds(1), std::chrono::seconds(30));
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
      case Protocol::tcp:
      case Protocol::ws: {
        auto acceptor = bindAcceptor(impl_->io, tcp::endpoint(address, config.port));
        const Endpoint local = toEndpoint(acceptor->local_endpoint());
        impl_->bound.emplace_back(config.protocol, local);
        tcp::acceptor* raw = acceptor.get();
        impl_->tcpAcceptors.push_back(std::move(acceptor));
        std::shared_ptr<const WebSocketPolicy> policy;
        if (config.protocol == Protocol::ws)
          policy = std::make_shared<const WebSocketPolicy>(WebSocketPolicy{config.origins});
        impl_->accept(*raw, local, std::move(policy));
        break;
      }
      default:
        throw std::runtime_error("transport " + std::string(toString(config.protocol)) +
                                 " is not supported yet");
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
    case Protocol::tcp: {
      auto connection = impl.table.find(destination);
      if (!connection) connection = impl.openTcp(destination);
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

void Transports::sweepNow() { impl_->sweep(); }

const TransportCounters& Transports::counters() const { return impl_->transportCounters; }
const TransportSettings& Transports::settings() const { return impl_->transportSettings; }

}  // namespace waypoint::transport
