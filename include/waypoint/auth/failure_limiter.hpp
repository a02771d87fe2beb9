#pragma once
// Failed authentication attempts, counted per key (a source address, a user@realm): after
// a few free failures each further one makes the key wait a growing back-off before its
// next attempt is checked, and after more a temporary ban. A success clears the key.
// Bounded memory (least recently failed keys are forgotten first). Sans-I/O.

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace waypoint::auth {

using SteadyTime = std::chrono::steady_clock::time_point;

struct FailureSettings {
  unsigned freeFailures = 5;                // failures before any back-off
  std::chrono::milliseconds backoff{1000};  // the first back-off; doubles each failure
  std::chrono::milliseconds maxBackoff{30000};
  unsigned banAfter = 20;  // failures (within forgetAfter) that start a ban; 0: never
  std::chrono::seconds banTime{900};
  std::chrono::seconds forgetAfter{3600};  // a key without failures for this long is reset
  std::size_t maxKeys = 65536;
};

class FailureLimiter {
 public:
  explicit FailureLimiter(FailureSettings settings);

  struct State {
    bool banned = false;
    SteadyTime until{};                 // end of the ban or of the back-off
    std::chrono::milliseconds wait{0};  // back-off left now (0: may be checked at once)
  };
  State state(std::string_view key, SteadyTime now) const;

  struct Outcome {
    std::chrono::milliseconds delay{0};  // hold the answer to this attempt this long
    bool banStarted = false;             // this failure started a ban (log it once)
    unsigned failures = 0;
  };
  Outcome failed(std::string_view key, SteadyTime now);
  void succeeded(std::string_view key);

  // Bans that ended by `now`, each reported once (to log their end).
  std::vector<std::string> sweep(SteadyTime now);
  void setSettings(FailureSettings settings);
  std::size_t size() const;

 private:
  struct Entry {
    unsigned failures = 0;
    SteadyTime lastFailure{};
    SteadyTime backoffUntil{};
    std::list<std::string>::iterator lru;  // its place in lru_ while not banned
    bool banned = false;
    SteadyTime banUntil{};
  };
  // Lookups by string_view without making a std::string.
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view key) const noexcept {
      return std::hash<std::string_view>{}(key);
    }
  };
  using Table = std::unordered_map<std::string, Entry, Hash, std::equal_to<>>;

  bool forgotten(const Entry& entry, SteadyTime now) const;
  Table::iterator track(std::string_view key);  // finds or adds (evicting when full)
  void evictOne();
  void erase(Table::iterator entry);
  void endBan(const std::string& key, Entry& entry);  // reported by the next sweep()
  std::chrono::milliseconds delayAfter(unsigned failures) const;

  FailureSettings settings_;
  Table table_;
  std::list<std::string> lru_;  // keys not banned, most recently failed first
  std::set<std::pair<SteadyTime, std::string>> bans_;  // running bans, soonest ending first
  std::vector<std::string> ended_;                     // ended bans not yet swept
};

}  // namespace waypoint::auth
