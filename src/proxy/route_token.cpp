#include "waypoint/proxy/route_token.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <stdexcept>

#include "waypoint/sip/message.hpp"

namespace waypoint::proxy {

namespace {

constexpr std::size_t kMacBytes = 12;  // 96 bits, as RFC 2104 §5 allows for a truncated MAC
constexpr std::size_t kMacChars = 16;  // kMacBytes in base64url

std::string base64url(const unsigned char* data, std::size_t size) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((size * 4 + 2) / 3);
  std::size_t i = 0;
  for (; i + 3 <= size; i += 3) {
    const unsigned v = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
    for (int shift = 18; shift >= 0; shift -= 6) out.push_back(kAlphabet[(v >> shift) & 63]);
  }
  if (const std::size_t left = size - i; left > 0) {
    const unsigned v = (data[i] << 16) | (left == 2 ? data[i + 1] << 8 : 0);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    if (left == 2) out.push_back(kAlphabet[(v >> 6) & 63]);
  }
  return out;
}

// What the MAC covers: both flow tokens, in their places.
std::string signedData(std::string_view caller, std::string_view callee) {
  std::string data(caller);
  data.append("/").append(callee);
  return data;
}

}  // namespace

RouteTokenSigner::RouteTokenSigner(std::vector<std::string> secrets)
    : secrets_(std::move(secrets)) {
  if (secrets_.empty()) throw std::invalid_argument("a Record-Route token secret is required");
  for (const auto& secret : secrets_) {
    if (secret.size() < kMinSecretLength) {
      throw std::invalid_argument("a Record-Route token secret must be at least " +
                                  std::to_string(kMinSecretLength) + " characters long");
    }
  }
}

std::string RouteTokenSigner::mac(const std::string& secret, std::string_view data) const {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest.data(), &length);
  return base64url(digest.data(), kMacBytes);
}

std::string RouteTokenSigner::uriParams(const DialogFlows& flows) const {
  const std::string caller = encodeFlow(flows.caller);
  const std::string callee = encodeFlow(flows.callee);
  std::string params;
  params.append(";").append(kCallerFlowParam).append("=").append(caller);
  params.append(";").append(kCalleeFlowParam).append("=").append(callee);
  params.append(";").append(kFlowMacParam).append("=");
  params.append(mac(secrets_.front(), signedData(caller, callee)));
  return params;
}

RouteTokenSigner::Verdict RouteTokenSigner::verify(std::string_view uriParams) const {
  const auto caller = sip::uriParam(uriParams, kCallerFlowParam);
  const auto callee = sip::uriParam(uriParams, kCalleeFlowParam);
  const auto given = sip::uriParam(uriParams, kFlowMacParam);
  Verdict verdict;
  if (!caller && !callee && !given) return verdict;
  verdict.check = Check::invalid;
  if (!caller || !callee || !given || given->size() != kMacChars) {
    return verdict;
  }
  const auto callerFlow = decodeFlow(*caller);
  const auto calleeFlow = decodeFlow(*callee);
  if (!callerFlow || !calleeFlow) return verdict;
  const std::string data = signedData(*caller, *callee);
  for (const auto& secret : secrets_) {
    const std::string expected = mac(secret, data);
    if (CRYPTO_memcmp(expected.data(), given->data(), expected.size()) == 0) {
      verdict.check = Check::valid;
      verdict.flows = DialogFlows{*callerFlow, *calleeFlow};
      return verdict;
    }
  }
  return verdict;
}

std::string generateRouteSecret() {
  std::array<unsigned char, 32> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    throw std::runtime_error("OpenSSL RAND_bytes failed: cannot make a Record-Route secret");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (const unsigned char b : bytes) {
    hex.push_back(kHex[b >> 4]);
    hex.push_back(kHex[b & 15]);
  }
  return hex;
}

}  // namespace waypoint::proxy
