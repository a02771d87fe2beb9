#include "waypoint/proxy/route_token.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <array>
#include <stdexcept>

#include "waypoint/sip/base64url.hpp"
#include "waypoint/sip/message.hpp"

namespace waypoint::proxy {

namespace {

constexpr std::size_t kMacBytes = 12;  // 96 bits, as RFC 2104 §5 allows for a truncated MAC
constexpr std::size_t kMacChars = 16;  // kMacBytes in base64url

// What the MAC covers: both flow tokens, in their places.
std::string signedData(std::string_view caller, std::string_view callee) {
  std::string data(caller);
  data.append("/").append(callee);
  return data;
}

}  // namespace

struct RouteTokenSigner::Key {
  EVP_MAC_CTX* context = nullptr;
  ~Key() { EVP_MAC_CTX_free(context); }
};

RouteTokenSigner::RouteTokenSigner(std::vector<std::string> secrets) {
  if (secrets.empty()) throw std::invalid_argument("a Record-Route token secret is required");
  EVP_MAC* hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (hmac == nullptr) throw std::runtime_error("OpenSSL has no HMAC");
  for (const auto& secret : secrets) {
    if (secret.size() < kMinSecretLength) {
      EVP_MAC_free(hmac);
      throw std::invalid_argument("a Record-Route token secret must be at least " +
                                  std::to_string(kMinSecretLength) + " characters long");
    }
    auto key = std::make_unique<Key>();
    key->context = EVP_MAC_CTX_new(hmac);
    char digest[] = "SHA256";
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                                 OSSL_PARAM_construct_end()};
    if (key->context == nullptr ||
        EVP_MAC_init(key->context, reinterpret_cast<const unsigned char*>(secret.data()),
                     secret.size(), params) != 1) {
      EVP_MAC_free(hmac);
      throw std::runtime_error("OpenSSL cannot set up HMAC-SHA-256");
    }
    keys_.push_back(std::move(key));
  }
  EVP_MAC_free(hmac);  // each context holds its own reference
}

RouteTokenSigner::~RouteTokenSigner() = default;
RouteTokenSigner::RouteTokenSigner(RouteTokenSigner&&) noexcept = default;
RouteTokenSigner& RouteTokenSigner::operator=(RouteTokenSigner&&) noexcept = default;

std::string RouteTokenSigner::mac(const Key& key, std::string_view data) const {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  std::size_t length = 0;
  // A null key starts a new MAC with the key already set (its pads are kept).
  if (EVP_MAC_init(key.context, nullptr, 0, nullptr) != 1 ||
      EVP_MAC_update(key.context, reinterpret_cast<const unsigned char*>(data.data()),
                     data.size()) != 1 ||
      EVP_MAC_final(key.context, digest.data(), &length, digest.size()) != 1 ||
      length < kMacBytes) {
    return {};  // matches no token: a request cannot be signed or verified without it
  }
  return sip::base64url(digest.data(), kMacBytes);
}

std::string RouteTokenSigner::uriParams(const DialogFlows& flows) const {
  const std::string caller = encodeFlow(flows.caller);
  const std::string callee = encodeFlow(flows.callee);
  std::string params;
  params.append(";").append(kCallerFlowParam).append("=").append(caller);
  params.append(";").append(kCalleeFlowParam).append("=").append(callee);
  params.append(";").append(kFlowMacParam).append("=");
  params.append(mac(*keys_.front(), signedData(caller, callee)));
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
  for (const auto& key : keys_) {
    const std::string expected = mac(*key, data);
    if (expected.size() == given->size() &&
        CRYPTO_memcmp(expected.data(), given->data(), expected.size()) == 0) {
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
