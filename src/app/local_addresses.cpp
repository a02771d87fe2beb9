#include "waypoint/app/local_addresses.hpp"

#include <ifaddrs.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bitset>
#include <boost/asio/ip/udp.hpp>
#include <cstring>

namespace waypoint::app {

namespace asio = boost::asio;

namespace {

std::optional<asio::ip::address> addressOf(const sockaddr* sa) {
  if (sa == nullptr) return std::nullopt;
  if (sa->sa_family == AF_INET) {
    sockaddr_in in{};
    std::memcpy(&in, sa, sizeof in);
    return asio::ip::address_v4(ntohl(in.sin_addr.s_addr));
  }
  if (sa->sa_family == AF_INET6) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, sa, sizeof in6);
    asio::ip::address_v6::bytes_type bytes;
    std::memcpy(bytes.data(), &in6.sin6_addr, bytes.size());
    return asio::ip::address_v6(bytes, in6.sin6_scope_id);
  }
  return std::nullopt;
}

unsigned prefixLength(const asio::ip::address& netmask) {
  unsigned bits = 0;
  const auto count = [&bits](const auto& bytes) {
    for (unsigned char b : bytes) bits += static_cast<unsigned>(std::bitset<8>(b).count());
  };
  if (netmask.is_v4()) {
    count(netmask.to_v4().to_bytes());
  } else {
    count(netmask.to_v6().to_bytes());
  }
  return bits;
}

}  // namespace

void addMachineAddresses(proxy::LocalIdentity& identity, bool v4, bool v6) {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return;
  for (const ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    const auto address = addressOf(i->ifa_addr);
    if (!address || (address->is_v4() ? !v4 : !v6)) continue;
    identity.addName(transport::toString(*address));
    const auto netmask = addressOf(i->ifa_netmask);
    if ((i->ifa_flags & IFF_LOOPBACK) != 0 && netmask && netmask->is_v4() == address->is_v4()) {
      const std::string block =
          transport::toString(*address) + "/" + std::to_string(prefixLength(*netmask));
      if (const auto parsed = transport::parseAddressBlock(block))
        identity.addAddressBlock(*parsed);
    }
  }
  ::freeifaddrs(list);
}

std::optional<asio::ip::address> sourceAddressToward(const transport::Endpoint& remote) {
  const asio::ip::udp::endpoint to(remote.address, remote.port == 0 ? 5060 : remote.port);
  const int fd = ::socket(to.protocol().family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  std::optional<asio::ip::address> source;
  if (::connect(fd, to.data(), static_cast<socklen_t>(to.size())) == 0) {
    asio::ip::udp::endpoint local;
    socklen_t length = static_cast<socklen_t>(local.capacity());
    if (::getsockname(fd, local.data(), &length) == 0) source = local.address();
  }
  ::close(fd);
  return source;
}

std::string describeAddressing(const transport::ListenerConfig& listener) {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(listener.address, ec);
  std::string text = std::string(transport::toString(listener.protocol)) + " " +
                     transport::toString(transport::Endpoint{address, listener.port}) + ": ";
  if (listener.advertise) {
    return text + "advertised as " + transport::toString(*listener.advertise, listener.port) +
           ", the name Via and Record-Route give";
  }
  if (!ec && address.is_unspecified()) {
    return text +
           "wildcard; Via and Record-Route name the address each request arrived on, or the "
           "one the kernel sends from towards the next hop";
  }
  return text + "Via and Record-Route name this address";
}

}  // namespace waypoint::app
