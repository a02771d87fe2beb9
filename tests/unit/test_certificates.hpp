#pragma once
// Certificates made in the test with the OpenSSL API: a CA, certificates it signs with the
// names a test needs, and PEM files of them. Nothing is checked in, nothing expires.

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace waypoint::test_certificates {

struct OpenSslDelete {
  void operator()(X509* p) const { X509_free(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
};
using Certificate = std::unique_ptr<X509, OpenSslDelete>;
using Key = std::unique_ptr<EVP_PKEY, OpenSslDelete>;

inline void require(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test certificate: ") + what);
}

inline Key makeKey() {
  Key key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  require(key != nullptr, "key");
  return key;
}

struct CertificateSpec {
  std::string commonName;
  std::vector<std::string> subjectAltNames;  // in OpenSSL's text: "DNS:a", "IP:1.2.3.4"
  bool ca = false;
};

inline void addExtension(X509* certificate, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX context;
  X509V3_set_ctx(&context, issuer, certificate, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str());
  require(extension != nullptr && X509_add_ext(certificate, extension, -1) == 1, "extension");
  X509_EXTENSION_free(extension);
}

// Signed by issuer with issuerKey, or self-signed when issuer is null.
inline Certificate makeCertificate(const CertificateSpec& spec, EVP_PKEY* key, X509* issuer,
                                   EVP_PKEY* issuerKey, long serial = 1) {
  Certificate certificate(X509_new());
  require(certificate != nullptr, "X509_new");
  X509* x = certificate.get();
  require(X509_set_version(x, X509_VERSION_3) == 1, "version");
  require(ASN1_INTEGER_set(X509_get_serialNumber(x), serial) == 1, "serial");
  require(X509_gmtime_adj(X509_getm_notBefore(x), -86400) != nullptr, "notBefore");
  require(X509_time_adj_ex(X509_getm_notAfter(x), 3650, 0, nullptr) != nullptr, "notAfter");
  X509_NAME* subject = X509_get_subject_name(x);
  if (!spec.commonName.empty()) {
    require(X509_NAME_add_entry_by_txt(
                subject, "CN", MBSTRING_UTF8,
                reinterpret_cast<const unsigned char*>(spec.commonName.c_str()), -1, -1, 0) == 1,
            "CN");
  } else {
    require(X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_UTF8,
                                       reinterpret_cast<const unsigned char*>("waypoint tests"), -1,
                                       -1, 0) == 1,
            "O");
  }
  require(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : subject) == 1, "issuer");
  require(X509_set_pubkey(x, key) == 1, "pubkey");
  X509* signer = issuer ? issuer : x;
  addExtension(x, signer, NID_basic_constraints, spec.ca ? "critical,CA:TRUE" : "CA:FALSE");
  if (spec.ca) addExtension(x, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  addExtension(x, signer, NID_subject_key_identifier, "hash");
  if (!spec.subjectAltNames.empty()) {
    std::string names;
    for (const auto& name : spec.subjectAltNames) names += (names.empty() ? "" : ",") + name;
    addExtension(x, signer, NID_subject_alt_name, names);
  }
  require(X509_sign(x, issuerKey ? issuerKey : key, EVP_sha256()) > 0, "sign");
  return certificate;
}

inline void writePem(const std::string& path, X509* certificate) {
  std::unique_ptr<BIO, OpenSslDelete> file(BIO_new_file(path.c_str(), "w"));
  require(file && PEM_write_bio_X509(file.get(), certificate) == 1, "write certificate");
}

inline void writePem(const std::string& path, EVP_PKEY* key) {
  std::unique_ptr<BIO, OpenSslDelete> file(BIO_new_file(path.c_str(), "w"));
  require(
      file && PEM_write_bio_PrivateKey(file.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
      "write key");
}

inline void writeText(const std::string& path, const std::string& text) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << text;
  require(static_cast<bool>(file), "write text");
}

}  // namespace waypoint::test_certificates
