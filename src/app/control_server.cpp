#include "waypoint/app/control_server.hpp"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <istream>
#include <stdexcept>

namespace waypoint::app {

namespace asio = boost::asio;
using Local = asio::local::stream_protocol;

namespace {

constexpr auto kReadDeadline = std::chrono::seconds(5);

std::runtime_error failure(const std::string& path, const std::string& why) {
  return std::runtime_error("control socket " + path + ": " + why);
}

// Whether a process accepts connections on the socket file (a stale file refuses them).
bool somebodyListens(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  const bool listening =
      ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return listening;
}

void prepareFolder(const std::string& path) {
  const auto folder = std::filesystem::path(path).parent_path();
  if (folder.empty()) return;
  std::error_code ec;
  std::filesystem::create_directories(folder, ec);
  if (ec) throw failure(path, "cannot make the folder " + folder.string() + ": " + ec.message());
}

void removeStaleSocket(const std::string& path) {
  struct stat info {};
  if (::lstat(path.c_str(), &info) != 0) return;
  if (!S_ISSOCK(info.st_mode)) throw failure(path, "the path exists and is not a socket");
  if (somebodyListens(path)) throw failure(path, "another waypointd is listening on it");
  ::unlink(path.c_str());
}

void applyOwnership(const ControlSocketSettings& settings) {
  if (!settings.group.empty()) {
    const group* entry = ::getgrnam(settings.group.c_str());
    if (entry == nullptr) throw failure(settings.path, "no such group: " + settings.group);
    if (::chown(settings.path.c_str(), static_cast<uid_t>(-1), entry->gr_gid) != 0) {
      throw failure(settings.path,
                    "cannot give it to group " + settings.group + ": " + std::strerror(errno));
    }
  }
  if (::chmod(settings.path.c_str(), settings.mode) != 0) {
    throw failure(settings.path, std::string("cannot set its mode: ") + std::strerror(errno));
  }
}

}  // namespace

struct ControlServer::Impl : std::enable_shared_from_this<ControlServer::Impl> {
  Impl(asio::io_context& io, ControlSocketSettings socketSettings, Handler requestHandler)
      : acceptor(io), settings(std::move(socketSettings)), handler(std::move(requestHandler)) {}

  class Session : public std::enable_shared_from_this<Session> {
   public:
    Session(Local::socket socket, std::shared_ptr<Impl> owner)
        : socket_(std::move(socket)),
          deadline_(socket_.get_executor()),
          input_(kMaxRequestBytes),
          owner_(std::move(owner)) {}

    void start() {
      ++owner_->connections;
      deadline_.expires_after(kReadDeadline);
      deadline_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (!ec) self->socket_.close(ec);
      });
      asio::async_read_until(socket_, input_, '\n',
                             [self = shared_from_this()](boost::system::error_code ec,
                                                         std::size_t) { self->onRequest(ec); });
    }
    ~Session() { --owner_->connections; }
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

   private:
    void onRequest(boost::system::error_code ec) {
      deadline_.cancel();
      if (ec == asio::error::not_found) {
        reply_ = R"({"ok":false,"error":"request too long"})";
      } else if (ec) {
        return;  // the client went away, or the deadline closed the socket
      } else {
        std::istream stream(&input_);
        std::string line;
        std::getline(stream, line);
        reply_ = owner_->handler(line);
      }
      reply_.push_back('\n');
      asio::async_write(socket_, asio::buffer(reply_),
                        [self = shared_from_this()](boost::system::error_code, std::size_t) {
                          boost::system::error_code ignored;
                          self->socket_.shutdown(Local::socket::shutdown_both, ignored);
                        });
    }

    Local::socket socket_;
    asio::steady_timer deadline_;
    asio::streambuf input_;
    std::string reply_;
    std::shared_ptr<Impl> owner_;
  };

  void accept() {
    acceptor.async_accept(
        [self = shared_from_this()](boost::system::error_code ec, Local::socket socket) {
          if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) return;
          if (!ec && self->connections < kMaxConnections) {
            std::make_shared<Session>(std::move(socket), self)->start();
          }
          self->accept();
        });
  }

  Local::acceptor acceptor;
  ControlSocketSettings settings;
  Handler handler;
  std::size_t connections = 0;
};

ControlServer::ControlServer(asio::io_context& io, const ControlSocketSettings& settings,
                             Handler handler)
    : impl_(std::make_shared<Impl>(io, settings, std::move(handler))) {
  if (settings.path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    throw failure(settings.path, "the path is longer than a unix socket allows (107 bytes)");
  }
  prepareFolder(settings.path);
  removeStaleSocket(settings.path);
  boost::system::error_code ec;
  impl_->acceptor.open(Local(), ec);
  // Created unreadable, then opened up to the configured mode: nobody else can connect in
  // between.
  const mode_t previous = ::umask(0177);
  if (!ec) impl_->acceptor.bind(Local::endpoint(settings.path), ec);
  ::umask(previous);
  if (!ec) impl_->acceptor.listen(static_cast<int>(kMaxConnections), ec);
  if (ec) throw failure(settings.path, ec.message());
  try {
    applyOwnership(settings);
  } catch (...) {
    ::unlink(settings.path.c_str());
    throw;
  }
  impl_->accept();
}

ControlServer::~ControlServer() {
  boost::system::error_code ignored;
  impl_->acceptor.close(ignored);
  ::unlink(impl_->settings.path.c_str());
}

const std::string& ControlServer::path() const { return impl_->settings.path; }

}  // namespace waypoint::app
