#include "waypoint/auth/authenticator.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

namespace waypoint::auth {

namespace {

// Verified against when the user is unknown or has no HA1 for the algorithm, so that
// such a failure costs what a wrong password costs.
const std::string& placeholderHa1(Algorithm algorithm) {
  static const std::string md5(32, '0');
  static const std::string sha256(64, '0');
  return algorithm == Algorithm::md5 ? md5 : sha256;
}

std::string lowerCase(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower;
}

}  // namespace

Authenticator::Authenticator(UserStore& store, std::vector<std::string> nonceSecrets,
                             const WallClock& wall, SourceGuard* guard, AuthSettings settings)
    : store_(&store),
      nonces_(std::move(nonceSecrets), settings.nonceLifetime),
      wall_(wall),
      guard_(guard),
      settings_(settings),
      failures_(settings.failures) {}

void Authenticator::setSettings(AuthSettings settings) {
  failures_.setSettings(settings.failures);
  settings_ = std::move(settings);
}

AuthVerdict Authenticator::challenge(const AuthAttempt& attempt, bool stale) {
  ++counters_.challenges;
  AuthVerdict verdict;
  verdict.kind = AuthVerdict::Kind::challenge;
  verdict.status = attempt.proxy ? 407 : 401;
  verdict.reason = attempt.proxy ? "Proxy Authentication Required" : "Unauthorized";
  const std::string nonce = nonces_.issue(attempt.realm, wall_.now());
  const std::string name = attempt.proxy ? "Proxy-Authenticate: " : "WWW-Authenticate: ";
  for (const Algorithm algorithm : settings_.algorithms) {
    verdict.headers.push_back(name + challengeValue(algorithm, attempt.realm, nonce, "", stale));
  }
  return verdict;
}

void Authenticator::check(const AuthAttempt& attempt, SteadyTime now, Done done) {
  std::optional<Credentials> credentials;
  for (const auto& value : attempt.credentials) {
    auto parsed = parseCredentials(value);
    if (parsed && parsed->realm == attempt.realm) {
      credentials = std::move(parsed);
      break;
    }
  }
  if (!credentials) {  // none for us (others' credentials are not ours to judge)
    done(challenge(attempt, false));
    return;
  }
  const std::string sourceKey = attempt.source.to_string();
  const std::string userKey = credentials->username + "@" + attempt.realm;
  const FailureLimiter::State sourceState = failures_.state(sourceKey, now);
  const FailureLimiter::State userState = failures_.state(userKey, now);
  const auto wait = std::max(sourceState.wait, userState.wait);
  // Banned: nothing more is verified (attempts that were already waiting included).
  const bool banned = sourceState.banned || userState.banned;
  if (!banned && wait.count() > 0) {
    ++counters_.held;
    AuthVerdict verdict;
    verdict.kind = AuthVerdict::Kind::wait;
    verdict.delay = wait;
    done(std::move(verdict));
    return;
  }
  const auto algorithm = algorithmFromName(credentials->algorithm);
  const bool offered =
      algorithm && std::find(settings_.algorithms.begin(), settings_.algorithms.end(),
                             *algorithm) != settings_.algorithms.end();
  const auto count = nonceCount(credentials->nc);
  const WallTime wallNow = wall_.now();
  const NonceCodec::Verdict nonce = nonces_.check(credentials->nonce, attempt.realm, wallNow);
  if (nonce.check == NonceCodec::Check::stale && offered) {
    ++counters_.stale;
    done(challenge(attempt, true));
    return;
  }
  if (!offered || !count || credentials->qop != "auth" || credentials->cnonce.empty() ||
      nonce.check != NonceCodec::Check::valid || banned) {
    done(failure(attempt, sourceKey, userKey, now));
    return;
  }
  std::weak_ptr<bool> alive = alive_;
  const std::string username = credentials->username;  // the lambda below takes the rest
  store_->lookup(
      attempt.realm, username,
      [this, alive, attempt, credentials = std::move(*credentials), algorithm = *algorithm,
       count = *count, issued = nonce.issued, sourceKey, userKey, now,
       done = std::move(done)](std::optional<UserRecord> user) {
        if (alive.expired()) return;
        const std::string* ha1 = user ? &user->ha1For(algorithm) : nullptr;
        const bool usable = ha1 != nullptr && !ha1->empty();
        const std::string expected = expectedResponse(
            algorithm, usable ? *ha1 : placeholderHa1(algorithm), credentials, attempt.method);
        const bool matches = equalInConstantTime(expected, lowerCase(credentials.response));
        if (!usable || !matches) {
          done(failure(attempt, sourceKey, userKey, now));
          return;
        }
        const auto expires = issued + nonces_.lifetime();
        switch (counts_.use(credentials.nonce, count, issued, expires, wall_.now())) {
          case NonceCounts::Use::replayed:
            ++counters_.replays;
            spdlog::info("auth: {} from {}: nonce count {} used before, challenged again", userKey,
                         sourceKey, credentials.nc);
            done(challenge(attempt, false));
            return;
          case NonceCounts::Use::stale:
            ++counters_.stale;
            done(challenge(attempt, true));
            return;
          case NonceCounts::Use::fresh:
            break;
        }
        ++counters_.successes;
        failures_.succeeded(sourceKey);
        failures_.succeeded(userKey);
        AuthVerdict verdict;
        verdict.kind = AuthVerdict::Kind::authenticated;
        verdict.user = std::move(user);
        done(std::move(verdict));
      });
}

AuthVerdict Authenticator::failure(const AuthAttempt& attempt, const std::string& source,
                                   std::string_view userKey, SteadyTime now) {
  ++counters_.failures;
  const FailureLimiter::Outcome bySource = failures_.failed(source, now);
  const FailureLimiter::Outcome byUser = failures_.failed(userKey, now);
  const auto banTime = settings_.failures.banTime;
  if (bySource.banStarted) {
    ++counters_.bans;
    if (guard_ != nullptr) guard_->ban(attempt.source, banTime, now);
    if (warningAllowed())
      spdlog::warn("auth: {} banned for {}s after {} failed attempts", source, banTime.count(),
                   bySource.failures);
  }
  if (byUser.banStarted) {
    ++counters_.bans;
    if (warningAllowed())
      spdlog::warn("auth: user {} locked for {}s after {} failed attempts (last from {})", userKey,
                   banTime.count(), byUser.failures, source);
  }
  AuthVerdict verdict = challenge(attempt, false);
  verdict.delay = std::max(bySource.delay, byUser.delay);
  return verdict;
}

bool Authenticator::warningAllowed() const {
  return warnings_ == nullptr || warnings_->allow(log::reason::authBan);
}

void Authenticator::sweep(SteadyTime now) {
  for (const auto& key : failures_.sweep(now)) {
    // A source's ban runs in the guard, which logs its end; users are "user@realm".
    if ((key.find('@') != std::string::npos || guard_ == nullptr) && warningAllowed()) {
      spdlog::warn("auth: lock of {} ended", key);
    }
  }
}

}  // namespace waypoint::auth
