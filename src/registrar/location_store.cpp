#include "waypoint/registrar/location_store.hpp"

#include <algorithm>

namespace waypoint::registrar {

namespace {

TimePoint earliestExpiry(const std::vector<Binding>& bindings) {
  return std::min_element(
             bindings.begin(), bindings.end(),
             [](const Binding& a, const Binding& b) { return a.expiresAt < b.expiresAt; })
      ->expiresAt;
}

}  // namespace

std::vector<Binding> InMemoryLocationStore::lookup(std::string_view aor) const {
  auto found = aors_.find(std::string(aor));
  return found == aors_.end() ? std::vector<Binding>() : found->second;
}

void InMemoryLocationStore::replace(std::string_view aor, std::vector<Binding> bindings) {
  const std::string key(aor);
  auto found = aors_.find(key);
  if (found != aors_.end()) {
    bindings_ -= found->second.size();
    if (bindings.empty()) {
      aors_.erase(found);
      remember(key);
      return;
    }
  } else if (bindings.empty()) {
    return;
  }
  former_.erase(key);
  // One heap entry for the AOR's earliest expiry; later ones are re-queued as it fires.
  expiries_.push(Expiry{earliestExpiry(bindings), key});
  bindings_ += bindings.size();
  aors_[key] = std::move(bindings);
}

std::size_t InMemoryLocationStore::expire(TimePoint now) { return expire(now, {}); }

std::size_t InMemoryLocationStore::expire(TimePoint now, const ExpiryVisitor& changed) {
  std::size_t removed = 0;
  while (!expiries_.empty() && expiries_.top().at <= now) {
    const std::string aor = expiries_.top().aor;
    expiries_.pop();
    auto found = aors_.find(aor);
    if (found == aors_.end()) continue;
    auto& bindings = found->second;
    const std::size_t before = bindings.size();
    bindings.erase(std::remove_if(bindings.begin(), bindings.end(),
                                  [now](const Binding& b) { return b.expiresAt <= now; }),
                   bindings.end());
    removed += before - bindings.size();
    bindings_ -= before - bindings.size();
    if (before != bindings.size() && changed) changed(aor, bindings);
    if (bindings.empty()) {
      aors_.erase(found);
      remember(aor);
    } else if (before != bindings.size()) {
      expiries_.push(Expiry{earliestExpiry(bindings), aor});
    }
  }
  return removed;
}

void InMemoryLocationStore::forEach(
    const std::function<void(std::string_view aor, const std::vector<Binding>&)>& visit) const {
  for (const auto& [aor, bindings] : aors_) visit(aor, bindings);
}

bool InMemoryLocationStore::known(std::string_view aor) const {
  const std::string key(aor);
  return aors_.count(key) != 0 || former_.count(key) != 0;
}

void InMemoryLocationStore::remember(const std::string& aor) {
  if (former_.size() < kMaxFormerAors) former_.insert(aor);
}

std::optional<TimePoint> InMemoryLocationStore::nextExpiry() {
  // Stale entries (their AOR re-registered or removed) are dropped here, not fired.
  while (!expiries_.empty()) {
    const Expiry& top = expiries_.top();
    auto found = aors_.find(top.aor);
    if (found != aors_.end() &&
        std::any_of(found->second.begin(), found->second.end(),
                    [&](const Binding& b) { return b.expiresAt <= top.at; })) {
      return top.at;
    }
    expiries_.pop();
  }
  return std::nullopt;
}

}  // namespace waypoint::registrar
