#pragma once
// Owning handles for the OpenSSL objects the TLS code makes, and the reason OpenSSL gives
// for the last failure. Internal to waypoint_transport.

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>

namespace waypoint::transport::detail {

struct OpenSslFree {
  void operator()(X509* p) const { X509_free(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
};
using X509Handle = std::unique_ptr<X509, OpenSslFree>;
using PrivateKeyHandle = std::unique_ptr<EVP_PKEY, OpenSslFree>;
using BioHandle = std::unique_ptr<BIO, OpenSslFree>;
using GeneralNamesHandle = std::unique_ptr<GENERAL_NAMES, OpenSslFree>;
using BigNumHandle = std::unique_ptr<BIGNUM, OpenSslFree>;

// Empties this thread's OpenSSL error queue and returns its reasons ("no start line",
// "key values mismatch"), joined by "; ", or `fallback` when the queue was empty. The
// queue is emptied either way, so an old failure is never reported for a new one.
inline std::string takeOpenSslErrors(const std::string& fallback = "unknown OpenSSL error") {
  std::string reasons;
  while (const unsigned long code = ERR_get_error()) {
    const char* reason = ERR_reason_error_string(code);
    char buffer[256];
    if (reason == nullptr) {
      ERR_error_string_n(code, buffer, sizeof buffer);
      reason = buffer;
    }
    if (reasons.find(reason) != std::string::npos) continue;
    if (!reasons.empty()) reasons.append("; ");
    reasons.append(reason);
  }
  return reasons.empty() ? fallback : reasons;
}

}  // namespace waypoint::transport::detail
