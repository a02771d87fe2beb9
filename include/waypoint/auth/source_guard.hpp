#pragma once
// Flood protection before anything is parsed (like Kamailio's pike, but on by default):
// a token bucket per source address; a source that empties its bucket is banned for a
// while and everything it sends is dropped unanswered. Other parts (the failed-login
// limiter) ban sources here too. Memory is bounded: a spoofed-source flood evicts the
// least recently seen sources instead of growing the table. Sans-I/O: time is passed in.

#include <array>
#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <cstdint>
#include <list>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "waypoint/metrics/metric.hpp"

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

using FloodMetric = metrics::Metric<SourceGuardCounters>;

inline constexpr std::array floodMetrics{
    FloodMetric::counter("flood_dropped", "Messages dropped unparsed from banned sources",
                         &SourceGuardCounters::dropped),
    FloodMetric::counter("flood_bans", "Sources banned for exceeding the message rate",
                         &SourceGuardCounters::floodBans),
    FloodMetric::counter("flood_other_bans", "Sources banned for failed logins",
                         &SourceGuardCounters::otherBans),
    FloodMetric::counter("flood_evictions", "Sources forgotten to stay within the tracking limit",
                         &SourceGuardCounters::evictions),
    FloodMetric::gauge("flood_tracked_sources", "Sources the flood guard tracks now",
                       &SourceGuardCounters::trackedSources),
    FloodMetric::gauge("flood_active_bans", "Sources banned now", &SourceGuardCounters::activeBans),
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
  const FloodSettings& settings() const { return settings_; }
  const SourceGuardCounters& counters() const;

 private:
  // An address as 16 bytes, IPv4 in its IPv4-mapped IPv6 form: ::ffff:192.0.2.1 and
  // 192.0.2.1 are one source.
  using Key = std::array<unsigned char, 16>;
  struct KeyHash {
    std::uint64_t seed = 0;
    std::size_t operator()(const Key& key) const noexcept;
  };
  struct Entry {
    double tokens = 0;
    SteadyTime refilled{};         // when tokens was last brought up to date
    std::list<Key>::iterator lru;  // its place in lru_ while not banned
    bool isBanned = false;
    SteadyTime banUntil{};
    std::uint64_t dropped = 0;  // during the current ban
  };
  using Table = std::unordered_map<Key, Entry, KeyHash>;

  static Key keyOf(const boost::asio::ip::address& source);
  static boost::asio::ip::address addressOf(const Key& key);
  Entry& track(const Key& key, SteadyTime now);  // finds or adds (evicting when full)
  void evictOne();
  void startBan(const Key& key, Entry& entry, SteadyTime until);
  // Back to a full bucket; reported by the next sweep().
  void endBan(const Key& key, Entry& entry, SteadyTime now);
  bool refillAndTake(Entry& entry, SteadyTime now) const;
  void updateGauges();

  FloodSettings settings_;
  Table table_;
  std::list<Key> lru_;                         // sources not banned, most recently seen first
  std::set<std::pair<SteadyTime, Key>> bans_;  // running bans, soonest ending first
  std::vector<EndedBan> ended_;                // ended (or evicted) bans not yet swept
  SteadyTime firstEnded_{};                    // when the first of ended_ ended
  SourceGuardCounters counters_;
};

}  // namespace waypoint::auth
