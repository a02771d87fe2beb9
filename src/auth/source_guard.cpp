#include "waypoint/auth/source_guard.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <random>

namespace waypoint::auth {

namespace {

// Buckets reserved up front so that a flood of new sources does not rehash the table
// while it fills; beyond this the table grows as usual.
constexpr std::size_t kReservedSources = 65536;

// Tokens earned in `elapsed` at `rate` per second. The nanosecond count times the rate is
// exact for the usual whole rates, so a test can step time by one token exactly.
double tokensEarned(std::chrono::steady_clock::duration elapsed, double rate) {
  if (elapsed <= elapsed.zero()) return 0;
  const auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count();
  return static_cast<double>(nanos) * rate / 1e9;
}

}  // namespace

// Seeded per process: the table's buckets are not predictable from spoofed addresses.
std::size_t SourceGuard::KeyHash::operator()(const Key& key) const noexcept {
  std::uint64_t high = 0;
  std::uint64_t low = 0;
  std::memcpy(&high, key.data(), 8);
  std::memcpy(&low, key.data() + 8, 8);
  std::uint64_t h = (high ^ seed) * 0x9E3779B97F4A7C15ULL ^ low;
  h ^= h >> 32;
  h *= 0xD6E8FEB86659FD93ULL;
  h ^= h >> 32;
  return static_cast<std::size_t>(h);
}

SourceGuard::SourceGuard(FloodSettings settings)
    : settings_(settings), table_(0, KeyHash{std::random_device{}()}) {
  assert(settings_.maxSources > 0);
  table_.reserve(std::min(settings_.maxSources, kReservedSources));
}

SourceGuard::Key SourceGuard::keyOf(const boost::asio::ip::address& source) {
  if (source.is_v6()) return source.to_v6().to_bytes();
  Key key{};
  key[10] = 0xff;
  key[11] = 0xff;
  const auto v4 = source.to_v4().to_bytes();
  std::copy(v4.begin(), v4.end(), key.begin() + 12);
  return key;
}

boost::asio::ip::address SourceGuard::addressOf(const Key& key) {
  const boost::asio::ip::address_v6 v6(key);
  if (v6.is_v4_mapped()) return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6);
  return v6;
}

SourceGuard::Verdict SourceGuard::admit(const boost::asio::ip::address& source, SteadyTime now) {
  // Disabled: no buckets, but a ban from ban() (a failed login) still holds.
  if (!settings_.enabled && bans_.empty()) return Verdict::pass;
  const Key key = keyOf(source);
  auto found = table_.find(key);
  if (found != table_.end() && found->second.isBanned) {
    Entry& entry = found->second;
    if (now < entry.banUntil) {
      ++entry.dropped;
      ++counters_.dropped;
      return Verdict::drop;
    }
    endBan(key, entry, now);
  }
  if (!settings_.enabled) return Verdict::pass;
  Entry& entry = found != table_.end() ? found->second : track(key, now);
  lru_.splice(lru_.begin(), lru_, entry.lru);
  if (refillAndTake(entry, now)) return Verdict::pass;
  startBan(key, entry, now + settings_.banTime);
  entry.dropped = 1;
  ++counters_.dropped;
  ++counters_.floodBans;
  updateGauges();
  return Verdict::banStarted;
}

void SourceGuard::ban(const boost::asio::ip::address& source, std::chrono::seconds duration,
                      SteadyTime now) {
  const Key key = keyOf(source);
  const SteadyTime until = now + duration;
  auto found = table_.find(key);
  if (found != table_.end() && found->second.isBanned) {
    Entry& entry = found->second;
    if (now < entry.banUntil) {
      if (until > entry.banUntil) {  // extend, never shorten
        bans_.erase({entry.banUntil, key});
        entry.banUntil = until;
        bans_.emplace(until, key);
      }
      return;
    }
    endBan(key, entry, now);
  }
  Entry& entry = found != table_.end() ? found->second : track(key, now);
  startBan(key, entry, until);
  ++counters_.otherBans;
  updateGauges();
}

bool SourceGuard::banned(const boost::asio::ip::address& source, SteadyTime now) const {
  const auto found = table_.find(keyOf(source));
  return found != table_.end() && found->second.isBanned && now < found->second.banUntil;
}

std::vector<SourceGuard::EndedBan> SourceGuard::sweep(SteadyTime now) {
  while (!bans_.empty() && bans_.begin()->first <= now) {
    const Key key = bans_.begin()->second;
    auto found = table_.find(key);
    assert(found != table_.end());
    endBan(key, found->second, now);
    if (!settings_.enabled) {  // nothing to count for it any more
      lru_.erase(found->second.lru);
      table_.erase(found);
    }
  }
  updateGauges();
  std::vector<EndedBan> result;
  result.swap(ended_);
  return result;
}

std::optional<SteadyTime> SourceGuard::nextExpiry() const {
  if (!ended_.empty()) return firstEnded_;  // ended in admit() or by eviction: report them
  if (bans_.empty()) return std::nullopt;
  return bans_.begin()->first;
}

void SourceGuard::setSettings(FloodSettings settings) {
  assert(settings.maxSources > 0);
  settings_ = settings;
  if (!settings_.enabled) {
    for (const Key& key : lru_) table_.erase(key);
    lru_.clear();
  }
  for (auto& [key, entry] : table_) entry.tokens = std::min(entry.tokens, settings_.burst);
  while (table_.size() > settings_.maxSources) evictOne();
  updateGauges();
}

const SourceGuardCounters& SourceGuard::counters() const { return counters_; }

SourceGuard::Entry& SourceGuard::track(const Key& key, SteadyTime now) {
  const Entry fresh{settings_.burst, now, {}, false, {}, 0};
  if (table_.size() < settings_.maxSources) {
    lru_.push_front(key);
    Entry& entry = table_.emplace(key, fresh).first->second;
    entry.lru = lru_.begin();
    updateGauges();
    return entry;
  }
  ++counters_.evictions;
  if (lru_.empty()) {  // every source is banned: the ban ending soonest goes
    const Key victim = bans_.begin()->second;
    auto found = table_.find(victim);
    endBan(victim, found->second, now);
    table_.erase(found);
    lru_.pop_front();
    return track(key, now);
  }
  // The least recently seen source's table node and list node take the new source, so a
  // flood of spoofed sources allocates nothing.
  auto node = table_.extract(lru_.back());
  node.key() = key;
  node.mapped() = fresh;
  lru_.back() = key;
  lru_.splice(lru_.begin(), lru_, std::prev(lru_.end()));
  node.mapped().lru = lru_.begin();
  return table_.insert(std::move(node)).position->second;
}

void SourceGuard::evictOne() {
  ++counters_.evictions;
  if (!lru_.empty()) {
    table_.erase(lru_.back());
    lru_.pop_back();
    return;
  }
  const Key victim = bans_.begin()->second;
  auto found = table_.find(victim);
  endBan(victim, found->second, SteadyTime{});  // no time here: report at once
  lru_.erase(found->second.lru);
  table_.erase(found);
}

void SourceGuard::startBan(const Key& key, Entry& entry, SteadyTime until) {
  lru_.erase(entry.lru);
  entry.isBanned = true;
  entry.banUntil = until;
  entry.dropped = 0;
  bans_.emplace(until, key);
}

void SourceGuard::endBan(const Key& key, Entry& entry, SteadyTime now) {
  bans_.erase({entry.banUntil, key});
  if (ended_.empty()) firstEnded_ = now;
  ended_.push_back(EndedBan{addressOf(key), entry.dropped});
  entry.isBanned = false;
  entry.dropped = 0;
  entry.tokens = settings_.burst;  // a fresh start after the ban
  entry.refilled = now;
  lru_.push_front(key);
  entry.lru = lru_.begin();
}

bool SourceGuard::refillAndTake(Entry& entry, SteadyTime now) const {
  entry.tokens =
      std::min(settings_.burst, entry.tokens + tokensEarned(now - entry.refilled, settings_.rate));
  if (now > entry.refilled) entry.refilled = now;
  if (entry.tokens < 1) return false;
  entry.tokens -= 1;
  return true;
}

void SourceGuard::updateGauges() {
  counters_.trackedSources = table_.size();
  counters_.activeBans = bans_.size();
}

}  // namespace waypoint::auth
