#pragma once
// Digest authentication of one request (RFC 3261 §22, RFC 7616, RFC 8760): picks the
// credentials for our realm, checks the nonce (stateless, signed), looks the user up in
// the store (which may answer later), verifies the response and the nonce count, and
// counts failures per source and per user. Every failure, an unknown user included,
// takes the same path and the same work and ends in the same challenge: nothing tells a
// scanner which users exist. Sans-I/O: times are read from the clocks given.

#include <array>
#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "waypoint/auth/digest.hpp"
#include "waypoint/auth/failure_limiter.hpp"
#include "waypoint/auth/nonce.hpp"
#include "waypoint/auth/source_guard.hpp"
#include "waypoint/auth/user_store.hpp"
#include "waypoint/log/warning_limiter.hpp"
#include "waypoint/metrics/metric.hpp"

namespace waypoint::auth {

class WallClock {
 public:
  virtual ~WallClock() = default;
  virtual WallTime now() const = 0;
};

class SystemWallClock final : public WallClock {
 public:
  WallTime now() const override { return std::chrono::system_clock::now(); }
};

struct AuthSettings {
  std::vector<Algorithm> algorithms{Algorithm::sha256, Algorithm::md5};  // offered in order
  std::chrono::seconds nonceLifetime{300};
  FailureSettings failures;
};

struct AuthCounters {
  std::uint64_t challenges = 0;  // 401/407 sent: no credentials, wrong ones, stale, replays
  std::uint64_t successes = 0;
  std::uint64_t failures = 0;  // wrong password, unknown user, bad or foreign nonce
  std::uint64_t stale = 0;     // an expired nonce of ours: stale=true
  std::uint64_t replays = 0;   // a nonce count used before
  std::uint64_t held = 0;      // attempts held back by the failure back-off
  std::uint64_t bans = 0;      // sources or users banned for failing too often
};

using AuthMetric = metrics::Metric<AuthCounters>;

inline constexpr std::array authMetrics{
    AuthMetric::counter("auth_challenges",
                        "401/407 challenges sent: no credentials, wrong ones, stale, replays",
                        &AuthCounters::challenges),
    AuthMetric::counter("auth_successes", "Requests that authenticated", &AuthCounters::successes),
    AuthMetric::counter(
        "auth_failures",
        "Failed authentications: wrong password, unknown user, bad or foreign nonce",
        &AuthCounters::failures),
    AuthMetric::counter("auth_stale", "Credentials with an expired nonce of ours (stale=true)",
                        &AuthCounters::stale),
    AuthMetric::counter("auth_replays", "Credentials with a nonce count used before",
                        &AuthCounters::replays),
    AuthMetric::counter("auth_held", "Attempts held back by the failure back-off",
                        &AuthCounters::held),
    AuthMetric::counter("auth_bans", "Sources or users banned for failing too often",
                        &AuthCounters::bans),
};

// How many users the authenticator knows, read from the user store when metrics are
// rendered.
struct AuthGauges {
  std::uint64_t users = 0;
};

inline constexpr std::array authGaugeMetrics{
    metrics::Metric<AuthGauges>::gauge("auth_users", "Users in the users file", &AuthGauges::users),
};

// One request to check: its method, the realm it must authenticate in, whether as a
// proxy (407, Proxy-Authorization) or as the registrar (401, Authorization), and the
// values of that credentials header.
struct AuthAttempt {
  std::string method;
  std::string realm;
  bool proxy = false;
  std::vector<std::string> credentials;
  boost::asio::ip::address source;
};

struct AuthVerdict {
  enum class Kind {
    authenticated,  // `user` is who sent it
    challenge,      // answer status/reason/headers, after `delay`
    wait,           // the back-off runs: check again after `delay`
  };
  Kind kind = Kind::challenge;
  std::optional<UserRecord> user;
  int status = 401;
  std::string reason;
  std::vector<std::string> headers;  // "WWW-Authenticate: Digest ..." lines
  std::chrono::milliseconds delay{0};
};

class Authenticator {
 public:
  using Done = std::function<void(AuthVerdict)>;
  // `guard` (may be null) receives the bans of sources that fail too often.
  Authenticator(UserStore& store, std::vector<std::string> nonceSecrets, const WallClock& wall,
                SourceGuard* guard, AuthSettings settings);

  // Calls `done` exactly once, now or when the store answers.
  void check(const AuthAttempt& attempt, SteadyTime now, Done done);
  // The challenge for a request that brought no credentials for our realm.
  AuthVerdict challenge(const AuthAttempt& attempt, bool stale);

  void setStore(UserStore& store) { store_ = &store; }
  void setSettings(AuthSettings settings);
  const AuthSettings& settings() const { return settings_; }
  // Logs the end of the user locks that are over (the daemon's periodic tick); a source's
  // ban ends in the guard, which logs it.
  void sweep(SteadyTime now);
  const AuthCounters& counters() const { return counters_; }
  // The ban and lock warnings go through this limiter (a spread-out guessing attack bans
  // many sources); it must outlive the authenticator. Without one each is logged.
  void limitWarnings(log::WarningLimiter& limiter) { warnings_ = &limiter; }

 private:
  bool warningAllowed() const;

  // `source` is the attempt's address as text, the failure limiter's key for it.
  AuthVerdict failure(const AuthAttempt& attempt, const std::string& source,
                      std::string_view userKey, SteadyTime now);

  UserStore* store_;
  NonceCodec nonces_;
  NonceCounts counts_;
  const WallClock& wall_;
  SourceGuard* guard_;
  AuthSettings settings_;
  FailureLimiter failures_;
  AuthCounters counters_;
  log::WarningLimiter* warnings_ = nullptr;
  // Alive while the object is: a store answering after it is gone finds it expired.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace waypoint::auth
