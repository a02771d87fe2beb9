#include "udp_listener.hpp"

#include <linux/errqueue.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <boost/asio/ip/v6_only.hpp>
#include <cstring>
#include <memory>

#include "std_error.hpp"

namespace waypoint::transport {

namespace asio = boost::asio;
using asio::ip::udp;

namespace {

Endpoint toEndpoint(const udp::endpoint& e) { return {e.address(), e.port()}; }

// Bytes after any leading CR/LF (keepalives, and SOFIA-NOTES trap 2).
std::string_view stripLeadingCrlf(std::string_view bytes) {
  const std::size_t start = bytes.find_first_not_of("\r\n");
  return start == std::string_view::npos ? std::string_view() : bytes.substr(start);
}

}  // namespace

UdpListener::UdpListener(asio::io_context& io, TransportHost& host, const udp::endpoint& at)
    : host_(host), socket_(io), buffer_(host.settings().maxMessageSize + 1) {
  socket_.open(at.protocol());
  if (at.address().is_v6()) socket_.set_option(asio::ip::v6_only(true));
  if (host.settings().udpReceiveBuffer > 0) {
    socket_.set_option(asio::socket_base::receive_buffer_size(host.settings().udpReceiveBuffer));
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

void UdpListener::close() {
  boost::system::error_code ignored;
  socket_.close(ignored);
}

void UdpListener::send(const Destination& destination, std::string bytes,
                       const SendErrorHandler& onError) {
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
            host_.sendFailed(destination, toStdError(e), onError);
          } else {
            ++host_.counters().udpDatagramsSent;
          }
        });
    return;
  }
  if (ec) {
    host_.sendFailed(destination, toStdError(ec), onError);
    return;
  }
  ++host_.counters().udpDatagramsSent;
}

void UdpListener::receive() {
  socket_.async_receive_from(
      asio::buffer(buffer_), from_, [this](boost::system::error_code ec, std::size_t n) {
        if (ec == asio::error::operation_aborted || host_.shuttingDown()) return;
        if (!ec) {
          handle(n);
        } else {
          drainErrorQueue();  // an ICMP error for something we sent surfaces as a read error
        }
        receive();
      });
}

void UdpListener::handle(std::size_t n) {
  ++host_.counters().udpDatagramsReceived;
  if (n > host_.settings().maxMessageSize) {
    ++host_.counters().udpOversizeDropped;
    spdlog::warn("drop UDP datagram from {}: larger than {} bytes", toString(toEndpoint(from_)),
                 host_.settings().maxMessageSize);
    return;
  }
  const std::string_view bytes = stripLeadingCrlf(std::string_view(buffer_.data(), n));
  if (bytes.empty()) {
    ++host_.counters().keepalivesReceived;
    return;
  }
  host_.deliver(Source{Protocol::udp, local_, toEndpoint(from_), 0}, bytes);
}

// Reads every queued ICMP error and reports the destination it was for.
void UdpListener::drainErrorQueue() {
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
      const Destination destination{Protocol::udp, toEndpoint(remote), 0, local_, {}, {}};
      ++host_.counters().udpUnreachable;
      const std::error_code error(static_cast<int>(err.ee_errno), std::system_category());
      spdlog::warn("UDP {} unreachable: {}", toString(destination.remote), error.message());
      host_.unreachable(destination, error);
    }
  }
}

}  // namespace waypoint::transport
