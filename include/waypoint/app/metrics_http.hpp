#pragma once
// The Prometheus endpoint: HTTP/1.1 on the daemon's io_context, `GET /metrics` only
// (200 text/plain; version=0.0.4), 404 for any other path, 405 for another method on
// /metrics. Everything is asynchronous on the loop thread, so a slow or hostile client
// never blocks SIP: requests are bounded in size, each read and write in time, and only a
// few connections are served at once (more are closed on accept). One request per
// connection (Connection: close), so nothing lingers between scrapes.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "waypoint/transport/address.hpp"

namespace waypoint::app {

struct MetricsHttpLimits {
  std::size_t maxConnections = 4;
  std::size_t maxRequestBytes = 8192;       // request line and headers; a body is refused
  std::chrono::milliseconds timeout{5000};  // for reading the request, and for the answer
};

class MetricsHttpServer {
 public:
  // Renders the metrics text when a scrape comes (on the loop thread).
  using Render = std::function<std::string()>;

  // Binds and listens at once; throws std::system_error naming the address on failure.
  MetricsHttpServer(boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& at,
                    Render render, MetricsHttpLimits limits = {});
  // Closes the listener and every connection; render is not called after this.
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  boost::asio::ip::tcp::endpoint localEndpoint() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

// The daemon's endpoint at metrics.listen: warns when the address is not loopback (the
// metrics tell who registers and how busy the server is), and when the address cannot be
// bound logs an error and returns null, so SIP is served without the endpoint.
std::unique_ptr<MetricsHttpServer> startMetricsHttp(boost::asio::io_context& io,
                                                    const transport::Endpoint& at,
                                                    MetricsHttpServer::Render render);

}  // namespace waypoint::app
