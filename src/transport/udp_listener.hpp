#pragma once
// One UDP socket: receives datagrams, sends from the address it is bound to, and reads
// the ICMP errors for what it sent (Linux IP_RECVERR). On a wildcard address (0.0.0.0,
// ::) each datagram's own destination address is read (IP_PKTINFO, IPV6_RECVPKTINFO) and
// a datagram sent from a given local address leaves from it. Private to src/transport.

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "transport_host.hpp"

namespace waypoint::transport {

class UdpListener {
 public:
  // Throws boost::system::system_error when the socket cannot be bound.
  UdpListener(boost::asio::io_context& io, TransportHost& host,
              const boost::asio::ip::udp::endpoint& at);

  void start() { receive(); }
  void close();
  const Endpoint& local() const { return local_; }
  bool isV6() const { return local_.address.is_v6(); }
  // local is this socket's address, or an address of its family and port when it is
  // bound to the wildcard.
  bool owns(const Endpoint& local) const;

  void send(const Destination& destination, std::string bytes, const SendErrorHandler& onError);

 private:
  void receive();
  void readReady();
  // One datagram: its size (or -1 with errno), sender, and the local address it came to.
  ssize_t receiveOne(Endpoint& from, Endpoint& to);
  void handle(std::size_t n, const Endpoint& from, const Endpoint& to);
  void drainErrorQueue();
  // The source address to put on a datagram for destination: only on a wildcard socket
  // asked to send from one concrete address.
  std::optional<boost::asio::ip::address> sourceFor(const Destination& destination) const;
  boost::system::error_code sendOnce(const std::string& bytes,
                                     const boost::asio::ip::udp::endpoint& to,
                                     const std::optional<boost::asio::ip::address>& from);
  void sendWhenWritable(std::shared_ptr<std::string> bytes, const Destination& destination,
                        std::optional<boost::asio::ip::address> from,
                        const SendErrorHandler& onError);

  TransportHost& host_;
  boost::asio::ip::udp::socket socket_;
  Endpoint local_;
  std::vector<char> buffer_;
};

}  // namespace waypoint::transport
