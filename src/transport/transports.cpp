#include "waypoint/transport/transports.hpp"

#include <linux/errqueue.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <cstring>
#include <deque>
#include <map>
#include <stdexcept>
#include <unordered_map>

#include "waypoint/sip/stream_framer.hpp"

namespace waypoint::transport {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using Clock = std::chrono::steady_clock;

namespace {

Endpoint toEndpoint(const udp::endpoint& e) { return {e.address(), e.port()}; }
Endpoint toEndpoint(const tcp::endpoint& e) { return {e.address(), e.port()}; }

// Bytes after any leading CR/LF (keepalives, and SOFIA-NOTES trap 2).
std::string_view stripLeadingCrlf(std::string_view bytes) {
  const std::size_t start = bytes.find_first_not_of("\r\n");
  return start == std::string_view::npos ? std::string_view() : bytes.substr(start);
}

// Callers compare with std::errc, so system errors cross the boundary as std's.
std::error_code toStd(const boost::system::error_code& ec) {
  if (ec.category() == boost::system::system_category())
    return {ec.value(), std::system_category()};
  return ec;
}

}  // namespace

class UdpListener;
class TcpConnection;

struct Transports::Impl {
  Impl(asio::io_context& ioContext, TransportSettings s, MessageHandler handler)
      : io(ioContext), settings(s), onMessage(std::move(handler)), sweepTimer(ioContext) {}

  void startSweep();
  void sweep();
  std::shared_ptr<TcpConnection> connectionTo(const Destination& destination);
  void adopt(const std::shared_ptr<TcpConnection>& connection);
  void forget(TcpConnection& connection);
  void sendUdp(const Destination& destination, std::string bytes, const SendErrorHandler& onError);
  void reportSendError(const Destination& destination, std::error_code ec,
                       const SendErrorHandler& onError);

  asio::io_context& io;
  TransportSettings settings;
  MessageHandler onMessage;
  UnreachableHandler onUnreachable;
  TransportCounters counters;
  std::vector<std::unique_ptr<UdpListener>> udpListeners;
  std::vector<std::unique_ptr<tcp::acceptor>> tcpAcceptors;
  std::vector<std::pair<Protocol, Endpoint>> bound;
  std::unordered_map<std::uint64_t, std::shared_ptr<TcpConnection>> connections;
  std::unordered_map<Endpoint, std::uint64_t> connectionByRemote;
  std::map<asio::ip::address, std::size_t> connectionsPerSource;
  std::uint64_t nextConnectionId = 1;
  asio::steady_timer sweepTimer;
  bool sweeping = false;
  bool closed = false;
};

// One UDP socket: receives datagrams and sends from the address it is bound to.
class UdpListener {
 public:
  UdpListener(Transports::Impl& owner, const udp::endpoint& at)
      : owner_(owner), socket_(owner.io), buffer_(owner.settings.maxMessageSize + 1) {
    socket_.open(at.protocol());
    if (at.address().is_v6()) socket_.set_option(asio::ip::v6_only(true));
    if (owner.settings.udpReceiveBuffer > 0) {
      socket_.set_option(asio::socket_base::receive_buffer_size(owner.settings.udpReceiveBuffer));
    }
    socket_.bind(at);
    socket_.non_blocking(true);
    // ICMP errors for datagrams we send are queued on the socket (Linux IP_RECVERR), so
    // a dead UDP next hop fails its client transaction at once (§17.1.4).
    const int on = 1;
    if (at.address().is_v6()) {
      ::setsockopt(socket_.native_handle(), IPPROTO_IPV6, IPV6_RECVERR, &on, sizeof on);
    } else {
      ::setsockopt(socket_.native_handle(), IPPROTO_IP, IP_RECVERR, &on, sizeof on);
    }
    local_ = toEndpoint(socket_.local_endpoint());
  }

  void start() { receive(); }
  void close() {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }
  const Endpoint& local() const { return local_; }
  bool isV6() const { return local_.address.is_v6(); }

  void send(const Destination& destination, std::string bytes, const SendErrorHandler& onError) {
    const udp::endpoint to(destination.remote.address, destination.remote.port);
    boost::system::error_code ec;
    socket_.send_to(asio::buffer(bytes), to, 0, ec);
    if (ec == asio::error::would_block) {
      auto held = std::make_shared<std::string>(std::move(bytes));
      socket_.async_send_to(
          asio::buffer(*held), to,
          [this, held, destination, onError](boost::system::error_code e, std::size_t) {
            if (e == asio::error::operation_aborted) return;
            if (e) {
              owner_.reportSendError(destination, toStd(e), onError);
            } else {
              ++owner_.counters.udpDatagramsSent;
            }
          });
      return;
    }
    if (ec) {
      owner_.reportSendError(destination, toStd(ec), onError);
      return;
    }
    ++owner_.counters.udpDatagramsSent;
  }

 private:
  void receive() {
    socket_.async_receive_from(
        asio::buffer(buffer_), from_, [this](boost::system::error_code ec, std::size_t n) {
          if (ec == asio::error::operation_aborted || owner_.closed) return;
          if (!ec) {
            handle(n);
          } else {
            drainErrorQueue();  // an ICMP error for something we sent surfaces as a read error
          }
          receive();
        });
  }

  void handle(std::size_t n) {
    ++owner_.counters.udpDatagramsReceived;
    if (n > owner_.settings.maxMessageSize) {
      ++owner_.counters.udpOversizeDropped;
      spdlog::warn("drop UDP datagram from {}: larger than {} bytes", toString(toEndpoint(from_)),
                   owner_.settings.maxMessageSize);
      return;
    }
    const std::string_view bytes = stripLeadingCrlf(std::string_view(buffer_.data(), n));
    if (bytes.empty()) {
      ++owner_.counters.keepalivesReceived;
      return;
    }
    const Source source{Protocol::udp, local_, toEndpoint(from_), 0};
    owner_.onMessage(source, bytes);
  }

  // Reads every queued ICMP error and reports the destination it was for.
  void drainErrorQueue() {
    for (int i = 0; i < 64; ++i) {
      sockaddr_storage to{};
      char control[512];
      char data[1];
      iovec iov{data, sizeof data};
      msghdr msg{};
      msg.msg_name = &to;
      msg.msg_namelen = sizeof to;
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      if (::recvmsg(socket_.native_handle(), &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) return;
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        const bool v4 = c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR;
        const bool v6 = c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR;
        if (!v4 && !v6) continue;
        sock_extended_err err{};
        std::memcpy(&err, CMSG_DATA(c), sizeof err);
        if (err.ee_origin != SO_EE_ORIGIN_ICMP && err.ee_origin != SO_EE_ORIGIN_ICMP6) continue;
        udp::endpoint remote;
        std::memcpy(remote.data(), &to, std::min<std::size_t>(msg.msg_namelen, sizeof to));
        const Destination destination{Protocol::udp, toEndpoint(remote), 0, local_};
        ++owner_.counters.udpUnreachable;
        const std::error_code ec(static_cast<int>(err.ee_errno), std::system_category());
        spdlog::warn("UDP {} unreachable: {}", toString(destination.remote), ec.message());
        if (owner_.onUnreachable) owner_.onUnreachable(destination, ec);
      }
    }
  }

  Transports::Impl& owner_;
  udp::socket socket_;
  Endpoint local_;
  udp::endpoint from_;
  std::vector<char> buffer_;
};

// One TCP connection, accepted or opened by us. Keeps itself alive while I/O is pending.
class TcpConnection : public std::enable_shared_from_this<TcpConnection> {
 public:
  TcpConnection(Transports::Impl& owner, tcp::socket socket, std::uint64_t id)
      : owner_(owner),
        socket_(std::move(socket)),
        id_(id),
        framer_(owner.settings.maxMessageSize),
        lastActivity_(Clock::now()) {}

  std::uint64_t id() const { return id_; }
  const Endpoint& remote() const { return remote_; }
  Clock::time_point lastActivity() const { return lastActivity_; }
  bool connecting() const { return connecting_; }

  // An accepted connection: known endpoints, reading at once.
  void startAccepted() {
    boost::system::error_code ec;
    remote_ = toEndpoint(socket_.remote_endpoint(ec));
    local_ = toEndpoint(socket_.local_endpoint(ec));
    socket_.set_option(tcp::no_delay(true), ec);
    read();
  }

  // An outgoing connection: messages queue until it is up.
  void startConnect(const Endpoint& to) {
    remote_ = to;
    connecting_ = true;
    auto self = shared_from_this();
    socket_.async_connect(tcp::endpoint(to.address, to.port), [self](boost::system::error_code ec) {
      self->connecting_ = false;
      if (self->closed_) return;
      if (ec) {
        spdlog::warn("TCP connect to {} failed: {}", toString(self->remote_), ec.message());
        self->fail(toStd(ec));
        return;
      }
      ++self->owner_.counters.tcpConnectionsOpened;
      boost::system::error_code ignored;
      self->local_ = toEndpoint(self->socket_.local_endpoint(ignored));
      self->socket_.set_option(tcp::no_delay(true), ignored);
      self->lastActivity_ = Clock::now();
      self->read();
      self->writeNext();
    });
  }

  void send(const Destination& destination, std::string bytes, SendErrorHandler onError) {
    queue_.push_back(Pending{destination, std::move(bytes), std::move(onError)});
    if (!writing_ && !connecting_) writeNext();
  }

  // Closes the socket and leaves the table; pending sends are reported as failed.
  void close(std::error_code reason = {}) {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    if (reason) {
      for (auto& pending : queue_)
        owner_.reportSendError(pending.destination, reason, pending.onError);
    }
    queue_.clear();
    owner_.forget(*this);
  }

 private:
  struct Pending {
    Destination destination;
    std::string bytes;
    SendErrorHandler onError;
  };

  void fail(std::error_code ec) {
    close(ec ? ec : std::make_error_code(std::errc::connection_reset));
  }

  void read() {
    auto self = shared_from_this();
    socket_.async_read_some(
        asio::buffer(readBuffer_), [self](boost::system::error_code ec, std::size_t n) {
          if (self->closed_) return;
          if (ec) {
            if (ec != asio::error::eof && ec != asio::error::connection_reset) {
              spdlog::warn("TCP read from {} failed: {}", toString(self->remote_), ec.message());
            }
            self->fail(ec == asio::error::eof ? std::make_error_code(std::errc::connection_reset)
                                              : toStd(ec));
            return;
          }
          self->lastActivity_ = Clock::now();
          self->framer_.feed(std::string_view(self->readBuffer_.data(), n));
          if (self->drainFrames()) self->read();
        });
  }

  // Hands every complete message up. False when the connection was closed.
  bool drainFrames() {
    for (;;) {
      switch (framer_.next()) {
        case sip::StreamFramer::Kind::needMore:
          return true;
        case sip::StreamFramer::Kind::message: {
          ++owner_.counters.tcpMessagesReceived;
          const Source source{Protocol::tcp, local_, remote_, id_};
          owner_.onMessage(source, framer_.frame());
          if (closed_) return false;
          break;
        }
        case sip::StreamFramer::Kind::ping:
          ++owner_.counters.keepalivesReceived;
          send(Destination{Protocol::tcp, remote_, id_, local_}, "\r\n", {});
          break;
        case sip::StreamFramer::Kind::pong:
          ++owner_.counters.keepalivesReceived;
          break;
        case sip::StreamFramer::Kind::error:
          if (framer_.oversize()) {
            ++owner_.counters.tcpConnectionsClosedOversize;
          } else {
            ++owner_.counters.tcpConnectionsClosedFraming;
          }
          spdlog::warn("closing TCP connection from {}: {}", toString(remote_), framer_.reason());
          close();
          return false;
      }
    }
  }

  void writeNext() {
    if (queue_.empty() || closed_) {
      writing_ = false;
      return;
    }
    writing_ = true;
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(queue_.front().bytes),
                      [self](boost::system::error_code ec, std::size_t) {
                        if (self->closed_) return;
                        if (ec) {
                          spdlog::warn("TCP write to {} failed: {}", toString(self->remote_),
                                       ec.message());
                          self->fail(toStd(ec));
                          return;
                        }
                        if (self->queue_.front().bytes != "\r\n")
                          ++self->owner_.counters.tcpMessagesSent;
                        self->queue_.pop_front();
                        self->lastActivity_ = Clock::now();
                        self->writeNext();
                      });
  }

  Transports::Impl& owner_;
  tcp::socket socket_;
  std::uint64_t id_;
  Endpoint local_;
  Endpoint remote_;
  sip::StreamFramer framer_;
  std::array<char, 16384> readBuffer_{};
  std::deque<Pending> queue_;
  Clock::time_point lastActivity_;
  bool writing_ = false;
  bool connecting_ = false;
  bool closed_ = false;
};

void Transports::Impl::adopt(const std::shared_ptr<TcpConnection>& connection) {
  connections.emplace(connection->id(), connection);
  connectionByRemote[connection->remote()] = connection->id();
  ++connectionsPerSource[connection->remote().address];
  counters.tcpOpenConnections = connections.size();
  startSweep();
}

void Transports::Impl::forget(TcpConnection& connection) {
  auto it = connections.find(connection.id());
  if (it == connections.end()) return;
  auto byRemote = connectionByRemote.find(connection.remote());
  if (byRemote != connectionByRemote.end() && byRemote->second == connection.id()) {
    connectionByRemote.erase(byRemote);
  }
  auto perSource = connectionsPerSource.find(connection.remote().address);
  if (perSource != connectionsPerSource.end() && --perSource->second == 0)
    connectionsPerSource.erase(perSource);
  // The connection's own callbacks may still run; its shared_ptr in them keeps it alive.
  connections.erase(it);
  counters.tcpOpenConnections = connections.size();
}

std::shared_ptr<TcpConnection> Transports::Impl::connectionTo(const Destination& destination) {
  if (destination.connectionId != 0) {
    auto it = connections.find(destination.connectionId);
    if (it != connections.end()) return it->second;
  }
  auto byRemote = connectionByRemote.find(destination.remote);
  if (byRemote != connectionByRemote.end()) {
    auto it = connections.find(byRemote->second);
    if (it != connections.end()) return it->second;
  }
  return nullptr;
}

void Transports::Impl::reportSendError(const Destination& destination, std::error_code ec,
                                       const SendErrorHandler& onError) {
  ++counters.sendErrors;
  spdlog::warn("send to {} failed: {}", toString(destination), ec.message());
  if (onError) onError(destination, ec);
}

void Transports::Impl::sendUdp(const Destination& destination, std::string bytes,
                               const SendErrorHandler& onError) {
  UdpListener* chosen = nullptr;
  for (auto& listener : udpListeners) {
    if (destination.local && listener->local() == *destination.local) {
      chosen = listener.get();
      break;
    }
    if (chosen == nullptr && listener->isV6() == destination.remote.address.is_v6())
      chosen = listener.get();
  }
  if (chosen == nullptr) {
    reportSendError(destination, std::make_error_code(std::errc::address_family_not_supported),
                    onError);
    return;
  }
  chosen->send(destination, std::move(bytes), onError);
}

void Transports::Impl::startSweep() {
  if (sweeping || closed) return;
  sweeping = true;
  const auto period = std::clamp<std::chrono::seconds>(
      settings.tcpIdleTimeout / 4, std::chrono::seconds(1), std::chrono::seconds(30));
  sweepTimer.expires_after(period);
  sweepTimer.async_wait([this](boost::system::error_code ec) {
    sweeping = false;
    if (ec || closed) return;
    sweep();
    if (!connections.empty()) startSweep();
  });
}

// One timer for every connection: idle and stuck-connecting ones are closed here.
void Transports::Impl::sweep() {
  const auto now = Clock::now();
  std::vector<std::shared_ptr<TcpConnection>> expired;
  for (auto& [id, connection] : connections) {
    const auto idle = now - connection->lastActivity();
    if (connection->connecting() ? idle >= settings.tcpConnectTimeout
                                 : idle >= settings.tcpIdleTimeout) {
      expired.push_back(connection);
    }
  }
  for (auto& connection : expired) {
    if (connection->connecting()) {
      spdlog::warn("TCP connect to {} timed out", toString(connection->remote()));
      connection->close(std::make_error_code(std::errc::timed_out));
    } else {
      ++counters.tcpConnectionsClosedIdle;
      spdlog::info("closing idle TCP connection to {}", toString(connection->remote()));
      connection->close();
    }
  }
}

Transports::Transports(asio::io_context& io, TransportSettings settings, MessageHandler onMessage)
    : impl_(std::make_unique<Impl>(io, settings, std::move(onMessage))) {}

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
        auto listener = std::make_unique<UdpListener>(*impl_, udp::endpoint(address, config.port));
        listener->start();
        impl_->bound.emplace_back(Protocol::udp, listener->local());
        impl_->udpListeners.push_back(std::move(listener));
        break;
      }
      case Protocol::tcp: {
        auto acceptor = std::make_unique<tcp::acceptor>(impl_->io);
        const tcp::endpoint at(address, config.port);
        acceptor->open(at.protocol());
        acceptor->set_option(tcp::acceptor::reuse_address(true));
        if (address.is_v6()) acceptor->set_option(asio::ip::v6_only(true));
        acceptor->bind(at);
        acceptor->listen(asio::socket_base::max_listen_connections);
        impl_->bound.emplace_back(Protocol::tcp, toEndpoint(acceptor->local_endpoint()));
        tcp::acceptor* raw = acceptor.get();
        impl_->tcpAcceptors.push_back(std::move(acceptor));
        accept(*raw);
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

void Transports::accept(boost::asio::ip::tcp::acceptor& acceptor) {
  acceptor.async_accept([this, &acceptor](boost::system::error_code ec, tcp::socket socket) {
    Impl& impl = *impl_;
    if (ec == asio::error::operation_aborted || impl.closed) return;
    if (!ec) {
      boost::system::error_code peerError;
      const auto peer = socket.remote_endpoint(peerError);
      if (!peerError) {
        const auto perSource = impl.connectionsPerSource.find(peer.address());
        const std::size_t fromSource =
            perSource == impl.connectionsPerSource.end() ? 0 : perSource->second;
        if (fromSource >= impl.settings.maxConnectionsPerSource ||
            impl.connections.size() >= impl.settings.maxConnections) {
          ++impl.counters.tcpConnectionsRejected;
          spdlog::warn("rejecting TCP connection from {}: connection limit reached",
                       toString(toEndpoint(peer)));
          socket.close(peerError);
        } else {
          ++impl.counters.tcpConnectionsAccepted;
          auto connection =
              std::make_shared<TcpConnection>(impl, std::move(socket), impl.nextConnectionId++);
          connection->startAccepted();
          impl.adopt(connection);
        }
      }
    } else {
      spdlog::warn("TCP accept failed: {}", ec.message());
    }
    accept(acceptor);
  });
}

std::vector<std::pair<Protocol, Endpoint>> Transports::boundEndpoints() const {
  return impl_->bound;
}

void Transports::send(const Destination& destination, std::string bytes, SendErrorHandler onError) {
  Impl& impl = *impl_;
  if (impl.closed) return;
  switch (destination.protocol) {
    case Protocol::udp:
      impl.sendUdp(destination, std::move(bytes), onError);
      return;
    case Protocol::tcp: {
      auto connection = impl.connectionTo(destination);
      if (!connection) {
        connection =
            std::make_shared<TcpConnection>(impl, tcp::socket(impl.io), impl.nextConnectionId++);
        connection->startConnect(destination.remote);
        impl.adopt(connection);
      }
      connection->send(destination, std::move(bytes), std::move(onError));
      return;
    }
    default:
      impl.reportSendError(destination, std::make_error_code(std::errc::protocol_not_supported),
                           onError);
  }
}

void Transports::close() {
  Impl& impl = *impl_;
  if (impl.closed) return;
  impl.closed = true;
  impl.sweepTimer.cancel();
  for (auto& listener : impl.udpListeners) listener->close();
  boost::system::error_code ignored;
  for (auto& acceptor : impl.tcpAcceptors) acceptor->close(ignored);
  auto connections = impl.connections;
  for (auto& [id, connection] : connections) connection->close();
}

void Transports::onUnreachable(UnreachableHandler handler) {
  impl_->onUnreachable = std::move(handler);
}

const TransportCounters& Transports::counters() const { return impl_->counters; }
const TransportSettings& Transports::settings() const { return impl_->settings; }

}  // namespace waypoint::transport
