#pragma once
// One UDP socket: receives datagrams, sends from the address it is bound to, and reads
// the ICMP errors for what it sent (Linux IP_RECVERR). Private to src/transport.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
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

  void send(const Destination& destination, std::string bytes, const SendErrorHandler& onError);

 private:
  void receive();
  void handle(std::size_t n);
  void drainErrorQueue();

  TransportHost& host_;
  boost::asio::ip::udp::socket socket_;
  Endpoint local_;
  boost::asio::ip::udp::endpoint from_;
  std::vector<char> buffer_;
};

}  // namespace waypoint::transport
