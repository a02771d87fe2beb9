// The metrics HTTP endpoint (issue 11) on a loopback socket, driven by raw requests on
// the same io_context: what each request gets, and the connection limit.

#include "waypoint/app/metrics_http.hpp"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "run_until.hpp"

namespace waypoint::app {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

class MetricsHttpTest : public ::testing::Test {
 protected:
  MetricsHttpTest()
      : server_(
            io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0),
            [this] {
              ++renders_;
              return std::string("waypoint_up 1\n");
            },
            MetricsHttpLimits{2, 1024, std::chrono::seconds(10)}) {}

  // Everything the server sends on one connection after `request`, until it closes.
  struct Exchange {
    tcp::socket socket;
    std::string request;
    std::string received;
    bool closed = false;
    explicit Exchange(asio::io_context& io, std::string text)
        : socket(io), request(std::move(text)) {}
  };

  std::shared_ptr<Exchange> start(std::string request) {
    auto exchange = std::make_shared<Exchange>(io_, std::move(request));
    exchange->socket.connect(server_.localEndpoint());
    asio::async_write(exchange->socket, asio::buffer(exchange->request),
                      [exchange](boost::system::error_code, std::size_t) {});
    readAll(exchange);
    return exchange;
  }

  void readAll(const std::shared_ptr<Exchange>& exchange) {
    auto buffer = std::make_shared<std::array<char, 4096>>();
    exchange->socket.async_read_some(
        asio::buffer(*buffer),
        [this, exchange, buffer](boost::system::error_code ec, std::size_t n) {
          exchange->received.append(buffer->data(), n);
          if (ec) {
            exchange->closed = true;
            return;
          }
          readAll(exchange);
        });
  }

  bool runUntil(const std::function<bool()>& done) { return testkit::runUntil(io_, done); }

  std::string answer(const std::string& request) {
    auto exchange = start(request);
    EXPECT_TRUE(runUntil([&] { return exchange->closed; })) << "not closed: " << request;
    return exchange->received;
  }

  asio::io_context io_;
  int renders_ = 0;
  MetricsHttpServer server_;
};

TEST_F(MetricsHttpTest, GetMetricsIsTheRenderedTextAsPrometheusPlainText) {
  const std::string reply = answer("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 200 OK\r\n")) << reply;
  EXPECT_NE(reply.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
            std::string::npos)
      << reply;
  EXPECT_NE(reply.find("Connection: close\r\n"), std::string::npos) << reply;
  EXPECT_TRUE(reply.ends_with("\r\n\r\nwaypoint_up 1\n")) << reply;
  EXPECT_EQ(renders_, 1);
}

TEST_F(MetricsHttpTest, OtherPathsAre404AndOtherMethods405WithoutRendering) {
  EXPECT_TRUE(answer("GET /other HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 404 "));
  EXPECT_TRUE(answer("GET / HTTP/1.0\r\n\r\n").starts_with("HTTP/1.0 404 "));
  const std::string post = answer("POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(post.starts_with("HTTP/1.1 405 ")) << post;
  EXPECT_NE(post.find("Allow: GET\r\n"), std::string::npos) << post;
  EXPECT_EQ(renders_, 0);
}

TEST_F(MetricsHttpTest, GarbageABodyOrOversizedHeadersCloseTheConnectionUnanswered) {
  EXPECT_EQ(answer("\x16\x03\x01 not http\r\n\r\n"), "");
  EXPECT_EQ(answer("GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"), "");
  EXPECT_EQ(answer("GET /metrics HTTP/1.1\r\nX: " + std::string(2000, 'a') + "\r\n\r\n"), "");
  EXPECT_EQ(renders_, 0);
  EXPECT_TRUE(answer("GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 "));
}

TEST_F(MetricsHttpTest, ConnectionsOverTheLimitAreClosedAtOnce) {
  // Two connections that send nothing hold both places (the limit is 2); connections are
  // accepted in order, so both are in before the third.
  auto first = start("");
  auto second = start("");
  auto third = start("GET /metrics HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(runUntil([&] { return third->closed; }));
  EXPECT_EQ(third->received, "");
  EXPECT_FALSE(first->closed);
  EXPECT_FALSE(second->closed);
  EXPECT_EQ(renders_, 0);
}

}  // namespace
}  // namespace waypoint::app
