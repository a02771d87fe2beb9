#pragma once
// Rate limit for warnings that an attacker or a broken peer can repeat at will (bad
// packets, refused connections, bans, failed logins): per reason, the first few lines of
// each interval are logged, the rest only counted, and when the interval is over one line
// says how many were suppressed. So a flood cannot fill the journal, nor cost good
// traffic a write syscall per packet; the metrics still count every event.
//
// Sans-I/O: time comes from the clock function it is given. The owner flushes it when
// nextFlush() is due (it is told when a first warning is suppressed, to arm a timer).

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace waypoint::log {

using SteadyTime = std::chrono::steady_clock::time_point;

// The reasons the daemon's warnings are limited by; each names what the operator sees in
// the "suppressed" line.
namespace reason {
inline constexpr std::string_view badPacket = "bad packet";  // unparseable, malformed, oversize
inline constexpr std::string_view refusedConnection = "refused connection";  // limits
inline constexpr std::string_view tlsHandshake = "TLS handshake failure";
inline constexpr std::string_view webSocketRefused = "WebSocket refusal";
inline constexpr std::string_view floodBan = "flood ban";
inline constexpr std::string_view authBan = "authentication ban";
}  // namespace reason

struct WarningLimits {
  std::size_t burst = 5;              // lines logged per reason per interval
  std::chrono::seconds interval{60};  // a reason's window starts at its first warning
};

class WarningLimiter {
 public:
  using Now = std::function<SteadyTime()>;
  using Sink = std::function<void(const std::string& line)>;
  using Wakeup = std::function<void(SteadyTime due)>;

  // `sink` takes the "suppressed" lines (default: spdlog at warning level); `wakeup` is
  // called when a window first suppresses a warning, with the time its summary is due.
  explicit WarningLimiter(WarningLimits limits, Now now, Sink sink = {}, Wakeup wakeup = {});

  // True: log this warning. False: it is counted, and reported by a later summary line.
  // `reason` names the kind of warning ("bad packet", "flood ban", ...).
  bool allow(std::string_view reason);
  // Logs the summary of every window that is over and suppressed something.
  void flush();
  // Logs the summary of every window that suppressed something, over or not, with the
  // time it has run so far (shutdown: nothing counted goes unsaid).
  void flushAll();
  // When the next summary is due, if a window suppressed something.
  std::optional<SteadyTime> nextFlush() const;

  void setLimits(WarningLimits limits) { limits_ = limits; }
  const WarningLimits& limits() const { return limits_; }
  std::uint64_t suppressedTotal() const { return suppressedTotal_; }

 private:
  struct Window {
    SteadyTime start;
    std::size_t logged = 0;
    std::uint64_t suppressed = 0;
  };
  void report(std::string_view reason, const Window& window, std::chrono::seconds span) const;

  WarningLimits limits_;
  Now now_;
  Sink sink_;
  Wakeup wakeup_;
  std::map<std::string, Window, std::less<>> windows_;
  std::uint64_t suppressedTotal_ = 0;
};

}  // namespace waypoint::log
