#include "waypoint/log/warning_limiter.hpp"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace waypoint::log {

WarningLimiter::WarningLimiter(WarningLimits limits, Now now, Sink sink, Wakeup wakeup)
    : limits_(limits), now_(std::move(now)), sink_(std::move(sink)), wakeup_(std::move(wakeup)) {
  if (!sink_) sink_ = [](const std::string& line) { spdlog::warn("{}", line); };
}

bool WarningLimiter::allow(std::string_view reason) {
  const SteadyTime now = now_();
  auto found = windows_.find(reason);
  if (found == windows_.end()) {
    found = windows_.emplace(std::string(reason), Window{now}).first;
  } else if (now >= found->second.start + limits_.interval) {
    report(reason, found->second, limits_.interval);
    found->second = Window{now};
  }
  Window& window = found->second;
  if (window.logged < limits_.burst) {
    ++window.logged;
    return true;
  }
  ++suppressedTotal_;
  if (window.suppressed++ == 0 && wakeup_) wakeup_(window.start + limits_.interval);
  return false;
}

void WarningLimiter::flush() {
  const SteadyTime now = now_();
  for (auto it = windows_.begin(); it != windows_.end();) {
    if (now < it->second.start + limits_.interval) {
      ++it;
      continue;
    }
    report(it->first, it->second, limits_.interval);
    it = windows_.erase(it);
  }
}

void WarningLimiter::flushAll() {
  const SteadyTime now = now_();
  for (const auto& [reason, window] : windows_) {
    const auto span =
        std::min(std::chrono::ceil<std::chrono::seconds>(now - window.start), limits_.interval);
    report(reason, window, std::max(span, std::chrono::seconds(1)));
  }
  windows_.clear();
}

std::optional<SteadyTime> WarningLimiter::nextFlush() const {
  std::optional<SteadyTime> next;
  for (const auto& [reason, window] : windows_) {
    if (window.suppressed == 0) continue;
    const SteadyTime due = window.start + limits_.interval;
    if (!next || due < *next) next = due;
  }
  return next;
}

void WarningLimiter::report(std::string_view reason, const Window& window,
                            std::chrono::seconds span) const {
  if (window.suppressed == 0) return;
  sink_(fmt::format("{} similar warnings suppressed in the last {} s ({})", window.suppressed,
                    span.count(), reason));
}

}  // namespace waypoint::log
