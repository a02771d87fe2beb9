// Cost of one digest verification through the Authenticator: parse the credentials, check
// the signed nonce, look the user up (a store that answers at once), compute and compare
// the response, record the nonce count. Per algorithm, and for an unknown user (which
// must cost the same). Prints the median of several runs in µs per verification.
//
//   build/bench/waypoint_auth_cost [verifications-per-run] [runs]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "waypoint/auth/authenticator.hpp"

namespace {

using namespace waypoint::auth;

constexpr const char* kRealm = "bench.test";

class ImmediateStore final : public UserStore {
 public:
  ImmediateStore() {
    record_.user = "alice";
    record_.realm = kRealm;
    record_.ha1Md5 = ha1(Algorithm::md5, "alice", kRealm, "secret");
    record_.ha1Sha256 = ha1(Algorithm::sha256, "alice", kRealm, "secret");
  }
  void lookup(std::string_view, std::string_view user, Done done) override {
    done(user == "alice" ? std::optional<UserRecord>(record_) : std::nullopt);
  }

 private:
  UserRecord record_;
};

class FixedWallClock final : public WallClock {
 public:
  WallTime now() const override { return now_; }

 private:
  WallTime now_ = std::chrono::system_clock::now();
};

std::string hex8(unsigned n) {
  char text[9];
  std::snprintf(text, sizeof text, "%08x", n);
  return text;
}

// `count` credentials for one nonce, each with the next nonce count.
std::vector<AuthAttempt> attempts(Algorithm algorithm, const std::string& user,
                                  const std::string& password, const std::string& nonce,
                                  int count) {
  std::vector<AuthAttempt> result;
  for (int i = 1; i <= count; ++i) {
    Credentials c;
    c.username = user;
    c.realm = kRealm;
    c.nonce = nonce;
    c.uri = "sip:bench.test";
    c.cnonce = "4f113b0a";
    c.qop = "auth";
    c.nc = hex8(static_cast<unsigned>(i));
    c.algorithm = std::string(algorithmName(algorithm));
    c.response = expectedResponse(algorithm, ha1(algorithm, user, kRealm, password), c, "REGISTER");
    AuthAttempt attempt;
    attempt.method = "REGISTER";
    attempt.realm = kRealm;
    attempt.source = boost::asio::ip::make_address("127.0.0.1");
    attempt.credentials.push_back("Digest username=\"" + user + "\", realm=\"" + kRealm +
                                  "\", nonce=\"" + nonce + "\", uri=\"" + c.uri +
                                  "\", response=\"" + c.response + "\", algorithm=" + c.algorithm +
                                  ", cnonce=\"" + c.cnonce + "\", qop=auth, nc=" + c.nc);
    result.push_back(std::move(attempt));
  }
  return result;
}

double medianMicros(Algorithm algorithm, const std::string& user, const std::string& password,
                    int iterations, int runs, AuthVerdict::Kind expected) {
  std::vector<double> perCheck;
  for (int r = 0; r < runs; ++r) {
    ImmediateStore store;
    FixedWallClock wall;
    AuthSettings settings;
    settings.failures.freeFailures = 1u << 30;  // measure the check, not the back-off
    settings.failures.banAfter = 0;
    Authenticator authenticator(store, {"a bench secret of 32 characters!"}, wall, nullptr,
                                settings);
    AuthAttempt first;
    first.method = "REGISTER";
    first.realm = kRealm;
    first.source = boost::asio::ip::make_address("127.0.0.1");
    const std::string challenge = authenticator.challenge(first, false).headers.front();
    const auto at = challenge.find("nonce=\"") + 7;
    const std::string nonce = challenge.substr(at, challenge.find('"', at) - at);
    const std::vector<AuthAttempt> work = attempts(algorithm, user, password, nonce, iterations);
    int unexpected = 0;
    const auto now = std::chrono::steady_clock::now();
    const auto start = std::chrono::steady_clock::now();
    for (const auto& attempt : work) {
      authenticator.check(attempt, now, [&](AuthVerdict verdict) {
        if (verdict.kind != expected) ++unexpected;
      });
    }
    const auto elapsed = std::chrono::steady_clock::now() - start;
    if (unexpected != 0) {
      std::fprintf(stderr, "%d verdicts were not the expected kind\n", unexpected);
      std::exit(1);
    }
    perCheck.push_back(std::chrono::duration<double, std::micro>(elapsed).count() / iterations);
  }
  std::sort(perCheck.begin(), perCheck.end());
  return perCheck[perCheck.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 20000;
  const int runs = argc > 2 ? std::atoi(argv[2]) : 5;
  using Kind = AuthVerdict::Kind;
  struct Case {
    const char* label;
    Algorithm algorithm;
    const char* user;
    const char* password;
    Kind expected;
  };
  // A failure costs the same whether the user exists or not (the challenge is made anew).
  for (const Case& c :
       {Case{"SHA-256, right password", Algorithm::sha256, "alice", "secret", Kind::authenticated},
        Case{"SHA-256, wrong password", Algorithm::sha256, "alice", "guess", Kind::challenge},
        Case{"SHA-256, unknown user  ", Algorithm::sha256, "mallory", "guess", Kind::challenge},
        Case{"MD5, right password    ", Algorithm::md5, "alice", "secret", Kind::authenticated},
        Case{"MD5, wrong password    ", Algorithm::md5, "alice", "guess", Kind::challenge},
        Case{"MD5, unknown user      ", Algorithm::md5, "mallory", "guess", Kind::challenge}}) {
    std::printf("%s %.2f us per verification\n", c.label,
                medianMicros(c.algorithm, c.user, c.password, iterations, runs, c.expected));
  }
  return 0;
}
