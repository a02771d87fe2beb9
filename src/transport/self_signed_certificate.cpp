#include "waypoint/transport/self_signed_certificate.hpp"

#include <fcntl.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "openssl_handles.hpp"
#include "waypoint/transport/address.hpp"

namespace waypoint::transport {

namespace {

constexpr long kValidityDays = 3650;
constexpr int kSerialBits = 127;  // RFC 5280 §4.1.2.2: positive (top bit set), <= 20 octets
constexpr std::size_t kMaxCommonName = 64;  // RFC 5280 ub-common-name

[[noreturn]] void failOn(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what + ": " + std::strerror(errno));
}

[[noreturn]] void failOpenSsl(const std::string& what) {
  throw std::runtime_error("cannot make the self-signed TLS certificate: " + what + ": " +
                           detail::takeOpenSslErrors());
}

void makeDirectory(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    failOn(path, "cannot create the directory");
  }
}

// ENOENT is "not there"; any other failure to look is an error worth stopping for.
bool exists(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0) return true;
  if (errno != ENOENT) failOn(path, "cannot read");
  return false;
}

// Written to a temporary file and renamed, so a crash never leaves half a key behind.
void writeFile(const std::string& path, const std::string& bytes, mode_t mode) {
  const std::string temporary = path + ".new";
  const int fd =
      ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) failOn(temporary, "cannot create");
  // fchmod: a leftover temporary file keeps its old mode through O_CREAT, and umask applies.
  bool written = ::fchmod(fd, mode) == 0;
  for (std::size_t done = 0; written && done < bytes.size();) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    written = n > 0;
    if (written) done += static_cast<std::size_t>(n);
  }
  written = written && ::fsync(fd) == 0;
  const int writeErrno = errno;
  ::close(fd);
  errno = writeErrno;
  if (!written) failOn(temporary, "cannot write");
  if (::rename(temporary.c_str(), path.c_str()) != 0) failOn(path, "cannot store");
}

std::string pemText(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(size));
}

void addExtension(X509* certificate, int nid, const char* value) {
  X509V3_CTX context;
  X509V3_set_ctx(&context, certificate, certificate, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value);
  const bool added = extension != nullptr && X509_add_ext(certificate, extension, -1) == 1;
  X509_EXTENSION_free(extension);
  if (!added) failOpenSsl(std::string("extension ") + OBJ_nid2sn(nid));
}

// Built entry by entry rather than from "DNS:a,IP:b" text, which a name with a comma in
// it would turn into something else.
void addSubjectAltNames(X509* certificate, const std::vector<std::string>& names) {
  detail::GeneralNamesHandle entries(sk_GENERAL_NAME_new_null());
  for (const auto& name : names) {
    GENERAL_NAME* entry = GENERAL_NAME_new();
    if (entry == nullptr) failOpenSsl("subjectAltName");
    if (const auto address = parseIpAddress(name)) {
      ASN1_OCTET_STRING* bytes = a2i_IPADDRESS(toString(*address).c_str());
      if (bytes == nullptr) {
        GENERAL_NAME_free(entry);
        failOpenSsl("subjectAltName address " + name);
      }
      GENERAL_NAME_set0_value(entry, GEN_IPADD, bytes);
    } else {
      ASN1_IA5STRING* text = ASN1_IA5STRING_new();
      if (text == nullptr ||
          ASN1_STRING_set(text, name.data(), static_cast<int>(name.size())) != 1) {
        ASN1_IA5STRING_free(text);
        GENERAL_NAME_free(entry);
        failOpenSsl("subjectAltName name " + name);
      }
      GENERAL_NAME_set0_value(entry, GEN_DNS, text);
    }
    if (sk_GENERAL_NAME_push(entries.get(), entry) == 0) {
      GENERAL_NAME_free(entry);
      failOpenSsl("subjectAltName");
    }
  }
  if (X509_add1_ext_i2d(certificate, NID_subject_alt_name, entries.get(), 0, X509V3_ADD_DEFAULT) !=
      1) {
    failOpenSsl("subjectAltName");
  }
}

struct KeyAndCertificate {
  std::string keyPem;
  std::string certificatePem;
  std::string fingerprint;
};

KeyAndCertificate makeSelfSigned(const std::vector<std::string>& names) {
  detail::takeOpenSslErrors();
  detail::PrivateKeyHandle key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) failOpenSsl("ECDSA P-256 key");

  detail::X509Handle certificate(X509_new());
  if (!certificate || X509_set_version(certificate.get(), X509_VERSION_3) != 1) {
    failOpenSsl("certificate");
  }
  detail::BigNumHandle serial(BN_new());
  if (!serial || BN_rand(serial.get(), kSerialBits, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(certificate.get())) == nullptr) {
    failOpenSsl("serial number");
  }
  // An hour back, so a peer whose clock is a little behind ours accepts it at once.
  if (X509_gmtime_adj(X509_getm_notBefore(certificate.get()), -3600) == nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(certificate.get()), kValidityDays, 0, nullptr) ==
          nullptr) {
    failOpenSsl("validity");
  }
  const std::string commonName =
      !names.empty() && names.front().size() <= kMaxCommonName ? names.front() : "waypoint";
  X509_NAME* subject = X509_get_subject_name(certificate.get());
  if (X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(commonName.c_str()), -1, -1,
                                 0) != 1 ||
      X509_set_issuer_name(certificate.get(), subject) != 1 ||
      X509_set_pubkey(certificate.get(), key.get()) != 1) {
    failOpenSsl("subject");
  }
  addExtension(certificate.get(), NID_basic_constraints, "critical,CA:FALSE");
  addExtension(certificate.get(), NID_key_usage, "critical,digitalSignature");
  addExtension(certificate.get(), NID_ext_key_usage, "serverAuth,clientAuth");
  addExtension(certificate.get(), NID_subject_key_identifier, "hash");
  if (!names.empty()) addSubjectAltNames(certificate.get(), names);
  if (X509_sign(certificate.get(), key.get(), EVP_sha256()) <= 0) failOpenSsl("signature");

  detail::BioHandle keyPem(BIO_new(BIO_s_mem()));
  detail::BioHandle certificatePem(BIO_new(BIO_s_mem()));
  if (!keyPem || !certificatePem ||
      PEM_write_bio_PrivateKey(keyPem.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) !=
          1 ||
      PEM_write_bio_X509(certificatePem.get(), certificate.get()) != 1) {
    failOpenSsl("PEM encoding");
  }
  return {pemText(keyPem.get()), pemText(certificatePem.get()),
          sha256Fingerprint(certificate.get())};
}

}  // namespace

SelfSignedCertificate ensureSelfSignedCertificate(const std::string& stateDir,
                                                  const std::vector<std::string>& names) {
  makeDirectory(stateDir);
  const std::string directory = stateDir + "/tls";
  makeDirectory(directory);
  SelfSignedCertificate result;
  result.certificateFile = directory + "/self-signed.crt";
  result.privateKeyFile = directory + "/self-signed.key";
  // Both or neither: the key is written first, so a crash between the two leaves a key
  // without its certificate, and a new pair is made.
  if (exists(result.certificateFile) && exists(result.privateKeyFile)) {
    result.fingerprint = certificateFingerprint(result.certificateFile);
    return result;
  }
  const KeyAndCertificate made = makeSelfSigned(names);
  writeFile(result.privateKeyFile, made.keyPem, 0600);
  writeFile(result.certificateFile, made.certificatePem, 0644);
  result.fingerprint = made.fingerprint;
  result.created = true;
  return result;
}

TlsSettings withSelfSignedFallback(TlsSettings settings, const std::string& stateDir,
                                   const std::vector<std::string>& names) {
  if (!settings.certificateFile.empty()) return settings;
  if (!settings.privateKeyFile.empty()) {
    throw std::runtime_error("TLS private key " + settings.privateKeyFile +
                             " is configured without its certificate");
  }
  const SelfSignedCertificate self = ensureSelfSignedCertificate(stateDir, names);
  spdlog::info(
      "TLS: no certificate configured, using the self-signed {} ({}), SHA-256 "
      "fingerprint {}",
      self.certificateFile, self.created ? "made now" : "made at an earlier start",
      self.fingerprint);
  settings.certificateFile = self.certificateFile;
  settings.privateKeyFile = self.privateKeyFile;
  return settings;
}

}  // namespace waypoint::transport
