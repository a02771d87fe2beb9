#include "waypoint/auth/nonce.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <stdexcept>

#include "waypoint/sip/base64url.hpp"

namespace waypoint::auth {

namespace {

// [8-byte big-endian issue time in seconds | 8 random bytes]
constexpr std::size_t kBodyBytes = 16;
// HMAC-SHA-256 truncated to 128 bits (RFC 2104 §5 allows truncation to half the output).
constexpr std::size_t kMacBytes = 16;
constexpr std::size_t kPartChars = 22;  // 16 bytes in unpadded base64url
constexpr std::size_t kNonceChars = kPartChars + 1 + kPartChars;
// Clocks of two instances sharing a secret differ a little; more than this is a forgery
// attempt or a broken clock.
constexpr std::chrono::seconds kFutureTolerance{5};
// Issue times beyond this (year 2242) would overflow system_clock's nanoseconds.
constexpr std::uint64_t kMaxIssueSeconds = std::uint64_t{1} << 33;

using Body = std::array<unsigned char, kBodyBytes>;
using Mac = std::array<unsigned char, EVP_MAX_MD_SIZE>;

// HMAC-SHA-256(secret, body | realm); false when OpenSSL fails (then nothing verifies).
bool sign(const std::string& secret, const Body& body, std::string_view realm, Mac& mac) {
  std::string data(reinterpret_cast<const char*>(body.data()), body.size());
  data.append(realm);
  unsigned int length = 0;
  return HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
              reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac.data(),
              &length) != nullptr &&
         length >= kMacBytes;
}

std::int64_t secondsSinceEpoch(WallTime time) {
  return std::chrono::duration_cast<std::chrono::seconds>(time.time_since_epoch()).count();
}

// The body and the MAC of a nonce of the right shape.
std::optional<std::pair<Body, std::vector<unsigned char>>> split(std::string_view nonce) {
  if (nonce.size() != kNonceChars || nonce[kPartChars] != '.') return std::nullopt;
  const auto body = sip::decodeBase64url(nonce.substr(0, kPartChars));
  auto mac = sip::decodeBase64url(nonce.substr(kPartChars + 1));
  if (!body || !mac || body->size() != kBodyBytes || mac->size() != kMacBytes) {
    return std::nullopt;
  }
  Body bytes{};
  std::copy(body->begin(), body->end(), bytes.begin());
  return std::make_pair(bytes, std::move(*mac));
}

}  // namespace

NonceCodec::NonceCodec(std::vector<std::string> secrets, std::chrono::seconds lifetime)
    : secrets_(std::move(secrets)), lifetime_(lifetime) {
  if (secrets_.empty()) throw std::invalid_argument("a nonce secret is required");
}

std::string NonceCodec::issue(std::string_view realm, WallTime now) {
  Body body{};
  auto seconds = static_cast<std::uint64_t>(secondsSinceEpoch(now));
  for (std::size_t i = 8; i-- > 0; seconds >>= 8) body[i] = static_cast<unsigned char>(seconds);
  if (RAND_bytes(body.data() + 8, 8) != 1) {
    throw std::runtime_error("OpenSSL RAND_bytes failed: cannot make a nonce");
  }
  Mac mac{};
  if (!sign(secrets_.front(), body, realm, mac)) {
    throw std::runtime_error("OpenSSL cannot compute HMAC-SHA-256: cannot make a nonce");
  }
  return sip::base64url(body.data(), body.size()) + "." + sip::base64url(mac.data(), kMacBytes);
}

NonceCodec::Verdict NonceCodec::check(std::string_view nonce, std::string_view realm,
                                      WallTime now) const {
  Verdict verdict;
  const auto parts = split(nonce);
  if (!parts) return verdict;
  const auto& [body, given] = *parts;
  bool signedByUs = false;
  for (const auto& secret : secrets_) {
    Mac mac{};
    if (sign(secret, body, realm, mac) && CRYPTO_memcmp(mac.data(), given.data(), kMacBytes) == 0) {
      signedByUs = true;
      break;
    }
  }
  if (!signedByUs) return verdict;
  std::uint64_t seconds = 0;
  for (std::size_t i = 0; i < 8; ++i) seconds = (seconds << 8) | body[i];
  if (seconds > kMaxIssueSeconds) return verdict;
  const WallTime issued{std::chrono::seconds(seconds)};
  if (issued > now + kFutureTolerance) return verdict;
  verdict.issued = issued;
  verdict.check = now - issued > lifetime_ ? Check::stale : Check::valid;
  return verdict;
}

NonceCounts::NonceCounts(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

std::size_t NonceCounts::size() const { return entries_.size(); }

void NonceCounts::dropExpired(WallTime now) {
  // Expiry follows issue order (one lifetime for all), so the expired ones are in front.
  while (!byIssue_.empty()) {
    const auto entry = entries_.find(*byIssue_.begin()->second);
    if (entry->second.expires >= now) break;
    byIssue_.erase(byIssue_.begin());
    entries_.erase(entry);
  }
}

void NonceCounts::evictOldest() {
  const auto oldest = byIssue_.begin();
  if (!watermark_ || *watermark_ < oldest->first) watermark_ = oldest->first;
  const auto entry = entries_.find(*oldest->second);
  byIssue_.erase(oldest);
  entries_.erase(entry);
}

NonceCounts::Use NonceCounts::record(Entry& entry, std::uint32_t count) {
  if (count > entry.highest) {
    const std::uint32_t shift = count - entry.highest;
    entry.window = shift >= kWindowBits ? 0 : entry.window << shift;
    entry.window |= 1;
    entry.highest = count;
    return Use::fresh;
  }
  const std::uint32_t below = entry.highest - count;
  if (below >= kWindowBits) return Use::replayed;  // too old to tell: refuse
  const std::uint64_t bit = std::uint64_t{1} << below;
  if ((entry.window & bit) != 0) return Use::replayed;
  entry.window |= bit;
  return Use::fresh;
}

NonceCounts::Use NonceCounts::use(std::string_view nonce, std::uint32_t count, WallTime issued,
                                  WallTime expires, WallTime now) {
  dropExpired(now);
  if (expires < now) return Use::stale;  // as NonceCodec: stale once past the lifetime
  if (count == 0) return Use::replayed;  // counts start at 1 (RFC 7616 §3.4)
  if (const auto found = entries_.find(nonce); found != entries_.end()) {
    return record(found->second, count);
  }
  // An unknown nonce this old may have been forgotten: it might be a replay.
  if (watermark_ && issued <= *watermark_) return Use::stale;
  if (entries_.size() >= capacity_) {
    evictOldest();
    if (issued <= *watermark_) return Use::stale;
  }
  const auto inserted =
      entries_.emplace(std::string(nonce), Entry{count, 1, issued, expires}).first;
  byIssue_.emplace(issued, &inserted->first);
  return Use::fresh;
}

}  // namespace waypoint::auth
