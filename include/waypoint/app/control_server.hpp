#pragma once
// The control socket: a unix stream socket on the daemon's loop where waypointctl writes
// one request line and reads one reply line, then the connection closes. Who may connect
// is decided by the socket file's mode and group. Bounded: a few connections at a time, a
// request size limit and a read deadline, so a stuck client costs nothing else.

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace waypoint::app {

struct ControlSocketSettings {
  std::string path;
  mode_t mode = 0660;
  std::string group;  // empty: the daemon's own group
};

class ControlServer {
 public:
  // Takes one request line (without its line end) and returns the reply line.
  using Handler = std::function<std::string(std::string_view request)>;

  static constexpr std::size_t kMaxRequestBytes = 64 * 1024;
  static constexpr std::size_t kMaxConnections = 8;

  // Binds the socket, replacing a stale socket file left by a process that is gone.
  // Throws std::runtime_error naming the path and the reason: another daemon listens
  // there, the path is not a socket, the folder cannot be made, the group does not exist.
  ControlServer(boost::asio::io_context& io, const ControlSocketSettings& settings,
                Handler handler);
  ~ControlServer();  // closes and removes the socket file
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  const std::string& path() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace waypoint::app
