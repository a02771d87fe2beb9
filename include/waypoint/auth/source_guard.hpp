#pragma once
// Flood protection before anything is parsed (like Kamailio's pike, but on by default):
// a token bucket per source address; a source that empties its bucket is banned for a
// while and everything it sends is dropped unanswered. Other parts (the failed-login
// limiter) ban sources here too. Memory is bounded: a spoofed-source flood evicts the
// least recently seen sources instead of growing the table. Sans-I/O: time is passed in.

#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace waypoint::auth {

using SteadyTime = std::chrono::steady_clock::time_point;

struct FloodSettings {
  bool enabled = true;
  double rate = 200.0;   // requests per second a source may send, sustained
  double burst = 400.0;  // bucket size
  std::chrono::seconds banTime{60};
  std::size_t maxSources = 65536;  // sources tracked at once (buckets and bans)
};

struct SourceGuardCounters {
  std::uint64_t dropped = 0;         // messages dropped from banned sources
  std::uint64_t floodBans = 0;       // bans for exceeding the rate
  std::uint64_t otherBans = 0;       // bans from ban() (failed logins)
  std::uint64_t evictions = 0;       // sources forgotten to stay within maxSources
  std::uint64_t trackedSources = 0;  // gauge
  std::uint64_t activeBans = 0;      // gauge
};

class SourceGuard {
 public:
  explicit SourceGuard(FloodSettings settings);

  enum class Verdict {
    pass,
    drop,        // banned: drop unanswered (counted)
    banStarted,  // this message emptied the bucket: banned from now, dropped
  };
  // One message from `source`. O(1).
  Verdict admit(const boost::asio::ip::address& source, SteadyTime now);
  // Bans `source` until now + duration (extends a running ban, never shortens it).
  void ban(const boost::asio::ip::address& source, std::chrono::seconds duration, SteadyTime now);
  bool banned(const boost::asio::ip::address& source, SteadyTime now) const;

  struct EndedBan {
    boost::asio::ip::address source;
    std::uint64_t dropped = 0;  // messages dropped during the ban
  };
  // Bans that are over by `now` (each reported once), to log their end.
  std::vector<EndedBan> sweep(SteadyTime now);
  // The next time sweep() has something to do; nullopt: no ban running.
  std::optional<SteadyTime> nextExpiry() const;

  void setSettings(FloodSettings settings);  // a reload; running bans stay
  const SourceGuardCounters& counters() const;

 private:
  // (helper: choose the members)
};

}  // namespace waypoint::auth
