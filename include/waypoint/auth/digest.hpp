#pragma once
// HTTP Digest as SIP uses it (RFC 3261 §22.4, RFC 7616, RFC 8760): the algorithms, HA1,
// the expected response, parsing the credentials of an Authorization or
// Proxy-Authorization header field value, and the challenge's header field value.
// Pure functions: no I/O, no state.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace waypoint::auth {

enum class Algorithm { md5, sha256 };

// "MD5" / "SHA-256", as written in a challenge.
std::string_view algorithmName(Algorithm algorithm);
// Case-insensitive; an absent algorithm parameter means MD5 (RFC 7616 §3.3). The -sess
// variants and anything else: nullopt.
std::optional<Algorithm> algorithmFromName(std::string_view name);

// Lower-case hex of H(data).
std::string digestHex(Algorithm algorithm, std::string_view data);
// HA1 = H(username:realm:password) (RFC 7616 §3.4.2).
std::string ha1(Algorithm algorithm, std::string_view user, std::string_view realm,
                std::string_view password);

// One Digest credentials value, unquoted. Unknown parameters are ignored.
struct Credentials {
  std::string username;
  std::string realm;
  std::string nonce;
  std::string uri;
  std::string response;
  std::string algorithm;  // as sent ("" when absent)
  std::string cnonce;
  std::string opaque;
  std::string qop;  // "" when absent
  std::string nc;   // 8 hex digits as sent
};

// Parses `Digest username="alice", realm="example.com", ...`. nullopt for another scheme,
// a syntax error, a duplicated parameter or a missing username/realm/nonce/uri/response.
// Never throws; linear in the input.
std::optional<Credentials> parseCredentials(std::string_view headerValue);

// The nonce count as a number; nullopt unless exactly 8 hex digits.
std::optional<std::uint32_t> nonceCount(std::string_view nc);

// response = KD(HA1, nonce:nc:cnonce:qop:HA2) with HA2 = H(method:uri) for qop=auth
// (RFC 7616 §3.4.1), in lower-case hex.
std::string expectedResponse(Algorithm algorithm, std::string_view ha1Hex,
                             const Credentials& credentials, std::string_view method);

// Equality whose time depends only on the lengths (no early exit a stopwatch can see).
bool equalInConstantTime(std::string_view a, std::string_view b);

// `Digest realm="R", nonce="N", opaque="O", algorithm=SHA-256, qop="auth"[, stale=true]`
// (opaque is left out when empty).
std::string challengeValue(Algorithm algorithm, std::string_view realm, std::string_view nonce,
                           std::string_view opaque, bool stale);

}  // namespace waypoint::auth
