#include "waypoint/auth/failure_limiter.hpp"

#include <algorithm>
#include <cassert>

namespace waypoint::auth {

FailureLimiter::FailureLimiter(FailureSettings settings) : settings_(settings) {
  assert(settings_.maxKeys > 0);
}

FailureLimiter::State FailureLimiter::state(std::string_view key, SteadyTime now) const {
  const auto found = table_.find(key);
  if (found == table_.end()) return {};
  const Entry& entry = found->second;
  if (entry.banned && now < entry.banUntil) {
    return {true, entry.banUntil,
            std::chrono::ceil<std::chrono::milliseconds>(entry.banUntil - now)};
  }
  if (forgotten(entry, now)) return {};
  State result{false, entry.backoffUntil, std::chrono::milliseconds(0)};
  if (entry.backoffUntil > now)
    result.wait = std::chrono::ceil<std::chrono::milliseconds>(entry.backoffUntil - now);
  return result;
}

FailureLimiter::Outcome FailureLimiter::failed(std::string_view key, SteadyTime now) {
  const auto found = track(key);
  Entry& entry = found->second;
  if (entry.banned && now >= entry.banUntil) endBan(found->first, entry);
  if (!entry.banned) {
    if (forgotten(entry, now)) entry.failures = 0;
    lru_.splice(lru_.begin(), lru_, entry.lru);
  }
  Outcome outcome;
  outcome.failures = ++entry.failures;
  outcome.delay = delayAfter(entry.failures);
  entry.lastFailure = now;
  entry.backoffUntil = now + outcome.delay;
  if (!entry.banned && settings_.banAfter > 0 && entry.failures >= settings_.banAfter) {
    lru_.erase(entry.lru);
    entry.banned = true;
    entry.banUntil = now + settings_.banTime;
    bans_.emplace(entry.banUntil, found->first);
    outcome.banStarted = true;
  }
  return outcome;
}

void FailureLimiter::succeeded(std::string_view key) {
  const auto found = table_.find(key);
  if (found == table_.end()) return;
  if (found->second.banned) {
    found->second.failures = 0;  // a running ban stays: the attempt was not checked
    found->second.backoffUntil = {};
    return;
  }
  erase(found);
}

std::vector<std::string> FailureLimiter::sweep(SteadyTime now) {
  while (!bans_.empty() && bans_.begin()->first <= now) {
    const std::string key = bans_.begin()->second;
    endBan(key, table_.find(key)->second);
  }
  // lru_ is in order of the last failure, so the forgotten keys are at its end.
  while (!lru_.empty() && forgotten(table_.find(lru_.back())->second, now)) {
    erase(table_.find(lru_.back()));
  }
  std::vector<std::string> result;
  result.swap(ended_);
  return result;
}

void FailureLimiter::setSettings(FailureSettings settings) {
  assert(settings.maxKeys > 0);
  settings_ = settings;
  while (table_.size() > settings_.maxKeys) evictOne();
}

std::size_t FailureLimiter::size() const { return table_.size(); }

bool FailureLimiter::forgotten(const Entry& entry, SteadyTime now) const {
  return !entry.banned && now - entry.lastFailure >= settings_.forgetAfter;
}

FailureLimiter::Table::iterator FailureLimiter::track(std::string_view key) {
  if (const auto found = table_.find(key); found != table_.end()) return found;
  if (table_.size() >= settings_.maxKeys) evictOne();
  lru_.emplace_front(key);
  const auto added = table_.emplace(lru_.front(), Entry{}).first;
  added->second.lru = lru_.begin();
  return added;
}

void FailureLimiter::evictOne() {
  if (!lru_.empty()) {
    erase(table_.find(lru_.back()));
    return;
  }
  // Every key is banned: the ban ending soonest goes (and is reported as ended).
  const std::string key = bans_.begin()->second;
  auto found = table_.find(key);
  endBan(key, found->second);
  erase(found);
}

void FailureLimiter::erase(Table::iterator entry) {
  assert(!entry->second.banned);
  lru_.erase(entry->second.lru);
  table_.erase(entry);
}

void FailureLimiter::endBan(const std::string& key, Entry& entry) {
  bans_.erase({entry.banUntil, key});
  ended_.push_back(key);
  entry.banned = false;
  lru_.push_front(key);
  entry.lru = lru_.begin();
}

std::chrono::milliseconds FailureLimiter::delayAfter(unsigned failures) const {
  if (failures <= settings_.freeFailures) return std::chrono::milliseconds(0);
  const unsigned doublings = failures - settings_.freeFailures - 1;
  if (doublings >= 32) return settings_.maxBackoff;
  const auto delay = settings_.backoff * (std::int64_t{1} << doublings);
  return std::min<std::chrono::milliseconds>(delay, settings_.maxBackoff);
}

}  // namespace waypoint::auth
