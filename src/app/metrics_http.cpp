#include "waypoint/app/metrics_http.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <system_error>
#include <utility>
#include <vector>

namespace waypoint::app {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

class Session;

}  // namespace

// Shared by the server and its sessions, so a session that outlives the server (its last
// read or write still pending) finds `closed` set instead of a dangling server.
struct MetricsHttpServer::State {
  State(asio::io_context& io, Render renderText, MetricsHttpLimits l)
      : acceptor(io), render(std::move(renderText)), limits(l) {}
  tcp::acceptor acceptor;
  Render render;
  MetricsHttpLimits limits;
  std::vector<std::weak_ptr<Session>> sessions;
  bool closed = false;

  std::size_t liveSessions() {
    std::erase_if(sessions, [](const std::weak_ptr<Session>& s) { return s.expired(); });
    return sessions.size();
  }
};

namespace {

// One connection: read one request, answer it, close.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<MetricsHttpServer::State> state)
      : stream_(std::move(socket)), state_(std::move(state)) {
    parser_.header_limit(static_cast<std::uint32_t>(state_->limits.maxRequestBytes));
    parser_.body_limit(0);
  }

  void start() {
    stream_.expires_after(state_->limits.timeout);
    http::async_read(
        stream_, buffer_, parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->onRead(ec); });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

 private:
  void onRead(beast::error_code ec) {
    if (state_->closed) return;
    if (ec) {
      // A garbage or oversized request, a timeout, or the peer went away: close, no answer.
      if (ec != http::error::end_of_stream && ec != asio::error::operation_aborted) {
        spdlog::debug("metrics HTTP: request from {} refused: {}", peer(), ec.message());
      }
      close();
      return;
    }
    answer(parser_.get());
  }

  void answer(const http::request<http::empty_body>& request) {
    const std::string_view target(request.target().data(), request.target().size());
    const std::string_view path = target.substr(0, target.find('?'));
    response_.version(request.version());
    response_.keep_alive(false);
    response_.set(http::field::server, "waypoint");
    if (path != "/metrics") {
      response_.result(http::status::not_found);
      response_.set(http::field::content_type, "text/plain; charset=utf-8");
      response_.body() = "only /metrics is served here\n";
    } else if (request.method() != http::verb::get) {
      response_.result(http::status::method_not_allowed);
      response_.set(http::field::allow, "GET");
      response_.set(http::field::content_type, "text/plain; charset=utf-8");
      response_.body() = "only GET\n";
    } else {
      response_.result(http::status::ok);
      response_.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      response_.body() = state_->render();
    }
    response_.prepare_payload();
    stream_.expires_after(state_->limits.timeout);
    http::async_write(stream_, response_,
                      [self = shared_from_this()](beast::error_code, std::size_t) {
                        if (!self->state_->closed) self->close();
                      });
  }

  std::string peer() {
    beast::error_code ec;
    const auto remote = stream_.socket().remote_endpoint(ec);
    return ec ? std::string("?") : remote.address().to_string();
  }

  beast::tcp_stream stream_;
  std::shared_ptr<MetricsHttpServer::State> state_;
  beast::flat_buffer buffer_;
  http::request_parser<http::empty_body> parser_;
  http::response<http::string_body> response_;
};

void accept(const std::shared_ptr<MetricsHttpServer::State>& state) {
  state->acceptor.async_accept([state](beast::error_code ec, tcp::socket socket) {
    if (state->closed || ec == asio::error::operation_aborted) return;
    if (ec) {
      spdlog::warn("metrics HTTP: accept failed: {}", ec.message());
    } else if (state->liveSessions() >= state->limits.maxConnections) {
      // Scrapers are few; more connections than that are refused rather than queued.
      beast::error_code ignored;
      socket.close(ignored);
    } else {
      auto session = std::make_shared<Session>(std::move(socket), state);
      state->sessions.push_back(session);
      session->start();
    }
    accept(state);
  });
}

}  // namespace

MetricsHttpServer::MetricsHttpServer(asio::io_context& io, const tcp::endpoint& at, Render render,
                                     MetricsHttpLimits limits)
    : state_(std::make_shared<State>(io, std::move(render), limits)) {
  const auto fail = [&](beast::error_code ec, const char* what) {
    throw std::system_error(ec, std::string("metrics.listen ")
                                    .append(at.address().to_string())
                                    .append(":")
                                    .append(std::to_string(at.port()))
                                    .append(": cannot ")
                                    .append(what));
  };
  beast::error_code ec;
  state_->acceptor.open(at.protocol(), ec);
  if (ec) fail(ec, "open a socket");
  state_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  state_->acceptor.bind(at, ec);
  if (ec) fail(ec, "bind");
  state_->acceptor.listen(static_cast<int>(limits.maxConnections), ec);
  if (ec) fail(ec, "listen");
  accept(state_);
}

MetricsHttpServer::~MetricsHttpServer() {
  state_->closed = true;
  beast::error_code ignored;
  state_->acceptor.close(ignored);
  for (const auto& weak : state_->sessions) {
    if (const auto session = weak.lock()) session->close();
  }
}

std::unique_ptr<MetricsHttpServer> startMetricsHttp(asio::io_context& io,
                                                    const transport::Endpoint& at,
                                                    MetricsHttpServer::Render render) {
  if (!at.address.is_loopback()) {
    spdlog::warn(
        "metrics.listen {} is not a loopback address: anyone who can reach it reads "
        "the metrics; limit it with a firewall",
        transport::toString(at));
  }
  try {
    auto server = std::make_unique<MetricsHttpServer>(io, tcp::endpoint(at.address, at.port),
                                                      std::move(render));
    spdlog::info("metrics served at http://{}/metrics", transport::toString(at));
    return server;
  } catch (const std::system_error& e) {
    spdlog::error("{}; no HTTP metrics (the metrics file still works)", e.what());
    return nullptr;
  }
}

tcp::endpoint MetricsHttpServer::localEndpoint() const {
  beast::error_code ec;
  return state_->acceptor.local_endpoint(ec);
}

}  // namespace waypoint::app
