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

// A recvmsg header: the peer's address into from, data into iov, ancillary data into
// control.
msghdr receiveHeader(sockaddr_storage& from, iovec& iov, char* control, std::size_t size) {
  msghdr msg{};
  msg.msg_name = &from;
  msg.msg_namelen = sizeof from;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = size;
  return msg;
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
  const int fd = socket_.native_handle();
  if (at.address().is_v6()) {
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &on, sizeof on);
  } else {
    ::setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on, sizeof on);
  }
  // On a wildcard address, which of our addresses a datagram was sent to is the address
  // our Via and Record-Route must name, and the one the answer must come from.
  if (at.address().is_unspecified()) {
    const int level = at.address().is_v6() ? IPPROTO_IPV6 : IPPROTO_IP;
    const int option = at.address().is_v6() ? IPV6_RECVPKTINFO : IP_PKTINFO;
    if (::setsockopt(fd, level, option, &on, sizeof on) != 0) {
      throw boost::system::system_error(errno, boost::system::system_category(), "IP_PKTINFO");
    }
  }
  local_ = toEndpoint(socket_.local_endpoint());
}

void UdpListener::close() {
  boost::system::error_code ignored;
  socket_.close(ignored);
}

bool UdpListener::owns(const Endpoint& local) const {
  if (local == local_) return true;
  return local_.address.is_unspecified() && local.port == local_.port &&
         local.address.is_v6() == local_.address.is_v6();
}

std::optional<asio::ip::address> UdpListener::sourceFor(const Destination& destination) const {
  if (!local_.address.is_unspecified() || !destination.local) return std::nullopt;
  const auto& address = destination.local->address;
  if (address.is_unspecified() || address.is_v6() != local_.address.is_v6()) return std::nullopt;
  return address;
}

// sendmsg with IP_PKTINFO / IPV6_PKTINFO names the source address on a wildcard socket.
boost::system::error_code UdpListener::sendOnce(const std::string& bytes, const udp::endpoint& to,
                                                const std::optional<asio::ip::address>& from) {
  boost::system::error_code ec;
  if (!from) {
    socket_.send_to(asio::buffer(bytes), to, 0, ec);
    return ec;
  }
  iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in6_pktinfo))] = {};
  msghdr msg{};
  msg.msg_name = const_cast<sockaddr*>(to.data());
  msg.msg_namelen = static_cast<socklen_t>(to.size());
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  cmsghdr* c = reinterpret_cast<cmsghdr*>(control);
  if (from->is_v6()) {
    in6_pktinfo info{};
    const auto bytes6 = from->to_v6().to_bytes();
    std::memcpy(&info.ipi6_addr, bytes6.data(), bytes6.size());
    info.ipi6_ifindex = from->to_v6().scope_id();
    c->cmsg_level = IPPROTO_IPV6;
    c->cmsg_type = IPV6_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof info);
    std::memcpy(CMSG_DATA(c), &info, sizeof info);
    msg.msg_controllen = CMSG_SPACE(sizeof info);
  } else {
    in_pktinfo info{};
    info.ipi_spec_dst.s_addr = htonl(from->to_v4().to_uint());
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof info);
    std::memcpy(CMSG_DATA(c), &info, sizeof info);
    msg.msg_controllen = CMSG_SPACE(sizeof info);
  }
  if (::sendmsg(socket_.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
    ec.assign(errno, boost::system::system_category());
  return ec;
}

void UdpListener::send(const Destination& destination, std::string bytes,
                       const SendErrorHandler& onError) {
  const udp::endpoint to(destination.remote.address, destination.remote.port);
  const auto from = sourceFor(destination);
  const boost::system::error_code ec = sendOnce(bytes, to, from);
  if (ec == asio::error::would_block) {
    sendWhenWritable(std::make_shared<std::string>(std::move(bytes)), destination, from, onError);
    return;
  }
  if (ec) {
    host_.sendFailed(destination, toStdError(ec), onError);
    return;
  }
  ++host_.counters().udpDatagramsSent;
}

// The socket's send buffer is full: try again once the kernel has room.
void UdpListener::sendWhenWritable(std::shared_ptr<std::string> bytes,
                                   const Destination& destination,
                                   std::optional<asio::ip::address> from,
                                   const SendErrorHandler& onError) {
  socket_.async_wait(udp::socket::wait_write, [this, bytes, destination, from,
                                               onError](boost::system::error_code e) {
    if (e == asio::error::operation_aborted || host_.shuttingDown()) return;
    if (!e) {
      e = sendOnce(*bytes, udp::endpoint(destination.remote.address, destination.remote.port),
                   from);
      if (e == asio::error::would_block) {
        sendWhenWritable(bytes, destination, from, onError);
        return;
      }
    }
    if (e) {
      host_.sendFailed(destination, toStdError(e), onError);
    } else {
      ++host_.counters().udpDatagramsSent;
    }
  });
}

void UdpListener::receive() {
  socket_.async_wait(udp::socket::wait_read, [this](boost::system::error_code ec) {
    if (ec == asio::error::operation_aborted || host_.shuttingDown()) return;
    if (!ec) readReady();
    receive();
  });
}

// What is queued, in a bounded batch so that one busy socket does not starve the loop.
void UdpListener::readReady() {
  for (int i = 0; i < 64; ++i) {
    Endpoint from;
    Endpoint to = local_;
    const ssize_t n = receiveOne(from, to);
    if (n >= 0) {
      handle(static_cast<std::size_t>(n), from, to);
      if (host_.shuttingDown()) return;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return;
    } else if (errno != EINTR) {
      drainErrorQueue();  // an ICMP error for something we sent surfaces as a read error
    }
  }
}

ssize_t UdpListener::receiveOne(Endpoint& from, Endpoint& to) {
  sockaddr_storage peer{};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in6_pktinfo))];
  iovec iov{buffer_.data(), buffer_.size()};
  msghdr msg = receiveHeader(peer, iov, control, sizeof control);
  const ssize_t n = ::recvmsg(socket_.native_handle(), &msg, MSG_DONTWAIT);
  if (n < 0) return n;
  udp::endpoint sender;
  std::memcpy(sender.data(), &peer, std::min<std::size_t>(msg.msg_namelen, sender.capacity()));
  from = toEndpoint(sender);
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      in_pktinfo info{};
      std::memcpy(&info, CMSG_DATA(c), sizeof info);
      to.address = asio::ip::address_v4(ntohl(info.ipi_addr.s_addr));
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      in6_pktinfo info{};
      std::memcpy(&info, CMSG_DATA(c), sizeof info);
      asio::ip::address_v6::bytes_type bytes;
      std::memcpy(bytes.data(), &info.ipi6_addr, bytes.size());
      asio::ip::address_v6 address(bytes);
      if (address.is_link_local()) address.scope_id(info.ipi6_ifindex);
      to.address = address;
    }
  }
  return n;
}

void UdpListener::handle(std::size_t n, const Endpoint& from, const Endpoint& to) {
  ++host_.counters().udpDatagramsReceived;
  if (n > host_.settings().maxMessageSize) {
    ++host_.counters().udpOversizeDropped;
    if (host_.warningAllowed(log::reason::badPacket))
      spdlog::warn("drop UDP datagram from {}: larger than {} bytes", toString(from),
                   host_.settings().maxMessageSize);
    return;
  }
  const std::string_view bytes = stripLeadingCrlf(std::string_view(buffer_.data(), n));
  if (bytes.empty()) {
    ++host_.counters().keepalivesReceived;
    return;
  }
  host_.deliver(Source{Protocol::udp, to, from, 0}, bytes);
}

// Reads every queued ICMP error and reports the destination it was for.
void UdpListener::drainErrorQueue() {
  for (int i = 0; i < 64; ++i) {
    sockaddr_storage to{};
    alignas(cmsghdr) char control[512];
    char data[1];
    iovec iov{data, sizeof data};
    msghdr msg = receiveHeader(to, iov, control, sizeof control);
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
