#pragma once
// Integrity protection for the flow tokens the proxy writes into its Record-Route URIs.
// A token names the caller's and the callee's flow; in-dialog requests are sent where
// it says, so a forged one would turn the proxy into a relay to any address. Each token
// carries an HMAC-SHA-256 over both flows, truncated to 96 bits and base64url-encoded.
// Several secrets may verify at once, so instances behind one name can rotate the
// secret without breaking calls set up under the old one.

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "waypoint/proxy/next_hop.hpp"

namespace waypoint::proxy {

// The URI parameter that carries the MAC beside kCallerFlowParam and kCalleeFlowParam.
inline constexpr std::string_view kFlowMacParam = "wpm";

// The caller's and the callee's flow, as one Record-Route URI named them.
struct DialogFlows {
  Flow caller;
  Flow callee;
};

class RouteTokenSigner {
 public:
  // secrets.front() signs; every secret verifies. Throws std::invalid_argument when the
  // list is empty or a secret is shorter than kMinSecretLength.
  explicit RouteTokenSigner(std::vector<std::string> secrets);
  ~RouteTokenSigner();
  RouteTokenSigner(RouteTokenSigner&&) noexcept;
  RouteTokenSigner& operator=(RouteTokenSigner&&) noexcept;

  static constexpr std::size_t kMinSecretLength = 16;

  // ";wpa=...;wpb=...;wpm=..." for a Record-Route URI.
  std::string uriParams(const DialogFlows& flows) const;

  enum class Check { absent, valid, invalid };
  struct Verdict {
    Check check = Check::absent;
    DialogFlows flows;
  };
  // absent: the URI parameters carry none of the token parameters; valid: all three,
  // decodable and signed by one of the secrets; invalid: anything else.
  Verdict verify(std::string_view uriParams) const;

 private:
  struct Key;
  std::string mac(const Key& key, std::string_view data) const;
  // One keyed HMAC context per secret, made once: setting a key up (fetching the
  // algorithm, hashing the key into its inner and outer pads) costs four times as much
  // as the MAC of a token. Each signer is used by one event loop only.
  std::vector<std::unique_ptr<Key>> keys_;
};

// 32 random bytes from OpenSSL's CSPRNG as 64 hex digits: a fresh secret.
std::string generateRouteSecret();

}  // namespace waypoint::proxy
