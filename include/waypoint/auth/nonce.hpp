#pragma once
// Stateless nonces (RFC 7616 §3.3 leaves their form to the server): the time they were
// made and a random part, signed with HMAC-SHA-256 under a secret kept in the state
// directory, so a restart, or a second instance sharing the secret, keeps accepting the
// nonces it gave out. Their nonce counts are remembered for the nonce's life so a replay
// is refused. Wall-clock time is passed in (a nonce must mean the same to another process).

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace waypoint::auth {

using WallTime = std::chrono::system_clock::time_point;

class NonceCodec {
 public:
  // secrets: the first signs, every one verifies (rotation). Must not be empty.
  NonceCodec(std::vector<std::string> secrets, std::chrono::seconds lifetime);

  // URL-safe text without quotes or commas; `realm` is bound into the signature.
  std::string issue(std::string_view realm, WallTime now);

  enum class Check {
    valid,
    stale,   // ours and intact, but older than the lifetime (answer with stale=true)
    invalid  // not ours, damaged, for another realm, or from the future
  };
  struct Verdict {
    Check check = Check::invalid;
    WallTime issued{};
  };
  Verdict check(std::string_view nonce, std::string_view realm, WallTime now) const;
  std::chrono::seconds lifetime() const { return lifetime_; }

 private:
  std::vector<std::string> secrets_;
  std::chrono::seconds lifetime_;
};

// The nonce counts used with each live nonce. A count used before is a replay; counts
// may arrive out of order within a window (requests sent at once). Memory is bounded:
// when full, the oldest nonces are forgotten and every nonce issued before them counts
// as stale from then on, so a forgotten nonce can never be replayed.
class NonceCounts {
 public:
  explicit NonceCounts(std::size_t capacity = 65536);

  enum class Use { fresh, replayed, stale };
  // Records `count` for `nonce` (issued at `issued`, expiring at `expires`).
  Use use(std::string_view nonce, std::uint32_t count, WallTime issued, WallTime expires,
          WallTime now);
  std::size_t size() const;

 private:
  // The highest count seen and, bit i, whether highest - i was seen (i < kWindowBits).
  struct Entry {
    std::uint32_t highest = 0;
    std::uint64_t window = 0;
    WallTime issued;
    WallTime expires;
  };
  // Looked up by string_view, without making a string per request.
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const {
      return std::hash<std::string_view>{}(text);
    }
  };
  using Entries = std::unordered_map<std::string, Entry, Hash, std::equal_to<>>;
  static constexpr std::uint32_t kWindowBits = 64;

  void dropExpired(WallTime now);
  void evictOldest();
  static Use record(Entry& entry, std::uint32_t count);

  std::size_t capacity_;
  Entries entries_;
  // The entries by issue time, oldest first: the eviction order, and the expiry order as
  // long as every nonce has the same lifetime. O(log n) per new nonce, O(1) per known one.
  // Each names its entry by the entry's own key (stable until the entry is erased).
  std::multimap<WallTime, const std::string*> byIssue_;
  // Unknown nonces issued at or before this may have been forgotten: they are stale.
  std::optional<WallTime> watermark_;
};

}  // namespace waypoint::auth
