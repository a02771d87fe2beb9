#pragma once
// The location service (RFC 3261 §10): address-of-record -> bindings. Behind an interface
// so that a shared store can replace the in-memory one; lookups are O(1) in the number
// of AORs, and expired bindings are removed by expire(), driven by the daemon's timer.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "waypoint/transport/address.hpp"

namespace waypoint::registrar {

using TimePoint = std::chrono::steady_clock::time_point;

struct Binding {
  std::string contact;  // the Contact URI: the Request-URI of requests to it
  int qMilli = 1000;    // q-value x 1000 (no q: 1.0)
  std::string callId;
  std::uint32_t cseq = 0;
  TimePoint expiresAt{};
  std::string instance;           // +sip.instance (RFC 5626), empty when absent
  std::string regId;              // reg-id (RFC 5626), empty when absent
  std::vector<std::string> path;  // Path header values (RFC 3327), in order
  transport::Source flow;         // where it registered from: requests go back over this (NAT)
  bool behindNat = false;         // the Contact is not where the REGISTER came from (see registrar)
};

class LocationStore {
 public:
  virtual ~LocationStore() = default;
  // The live bindings of an AOR (canonical form, see canonicalAor()).
  virtual std::vector<Binding> lookup(std::string_view aor) const = 0;
  // Replaces every binding of the AOR; an empty list removes the AOR.
  virtual void replace(std::string_view aor, std::vector<Binding> bindings) = 0;
  // Removes bindings whose expiry is at or before now; returns how many went.
  virtual std::size_t expire(TimePoint now) = 0;
  virtual std::optional<TimePoint> nextExpiry() = 0;
  // The AOR has bindings now, or had some since the store started: a request to it gets
  // 480 (not registered now) rather than 404 (no such user).
  virtual bool known(std::string_view aor) const = 0;
  virtual std::size_t aorCount() const = 0;
  virtual std::size_t bindingCount() const = 0;
  // Every AOR with live bindings, in no particular order (for `waypointctl bindings` and a
  // persistent store's snapshot). The visitor must not change the store.
  virtual void forEach(const std::function<void(std::string_view aor, const std::vector<Binding>&)>&
                           visit) const = 0;
};

class InMemoryLocationStore final : public LocationStore {
 public:
  std::vector<Binding> lookup(std::string_view aor) const override;
  void replace(std::string_view aor, std::vector<Binding> bindings) override;
  std::size_t expire(TimePoint now) override;
  // expire(), telling `changed` each AOR that lost bindings and what it has left (empty
  // when it lost them all): a persistent store writes those lists behind it.
  using ExpiryVisitor =
      std::function<void(const std::string& aor, const std::vector<Binding>& left)>;
  std::size_t expire(TimePoint now, const ExpiryVisitor& changed);
  std::optional<TimePoint> nextExpiry() override;
  bool known(std::string_view aor) const override;
  std::size_t aorCount() const override { return aors_.size(); }
  std::size_t bindingCount() const override { return bindings_; }
  void forEach(const std::function<void(std::string_view aor, const std::vector<Binding>&)>& visit)
      const override;

 private:
  struct Expiry {
    TimePoint at;
    std::string aor;
    bool operator>(const Expiry& other) const { return at > other.at; }
  };
  std::unordered_map<std::string, std::vector<Binding>> aors_;
  // One entry per stored expiry; an entry whose AOR no longer has a binding expiring
  // then is skipped when it comes up.
  std::priority_queue<Expiry, std::vector<Expiry>, std::greater<>> expiries_;
  std::size_t bindings_ = 0;
  // AORs whose last binding went away, bounded so that churn cannot grow it for ever.
  static constexpr std::size_t kMaxFormerAors = 1'000'000;
  void remember(const std::string& aor);
  std::unordered_set<std::string> former_;
};

}  // namespace waypoint::registrar
