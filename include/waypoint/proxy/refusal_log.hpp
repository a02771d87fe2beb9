#pragma once
// Rate limit for the warnings the proxy logs when it refuses an attacker's request: one
// line per source address per minute, so a flood of forged requests cannot flood the
// journal too. The counters still count every refusal.

#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <unordered_map>

#include "waypoint/transaction/transaction_layer.hpp"

namespace waypoint::proxy {

class RefusalLog {
 public:
  static constexpr std::chrono::seconds kInterval{60};
  static constexpr std::size_t kMaxSources = 4096;

  // True when no line was logged for this source in the last minute (and records now).
  bool allow(const boost::asio::ip::address& source, transaction::TimePoint now) {
    if (last_.size() >= kMaxSources) forgetBefore(now - kInterval);
    if (last_.size() >= kMaxSources) last_.clear();  // a spread-out flood: start over
    auto [it, inserted] = last_.try_emplace(source, now);
    if (inserted) return true;
    if (now - it->second < kInterval) return false;
    it->second = now;
    return true;
  }

 private:
  void forgetBefore(transaction::TimePoint cutoff) {
    for (auto it = last_.begin(); it != last_.end();) {
      it = it->second < cutoff ? last_.erase(it) : std::next(it);
    }
  }
  std::unordered_map<boost::asio::ip::address, transaction::TimePoint> last_;
};

}  // namespace waypoint::proxy
