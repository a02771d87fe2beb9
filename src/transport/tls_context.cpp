#include "waypoint/transport/tls_context.hpp"

#include <fcntl.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "openssl_handles.hpp"

namespace waypoint::transport {

namespace {

namespace ssl = boost::asio::ssl;

// The session id context names the sessions this server issues; OpenSSL refuses to resume
// a session whose peer was verified without one (mutual TLS).
constexpr unsigned char kSessionIdContext[] = "waypoint";
constexpr long kSessionCacheSize = 4096;  // sessions a listener keeps for TLS 1.2 resumption
constexpr long kSessionTimeoutSeconds = 300;

[[noreturn]] void fail(const std::string& what, const std::string& path, const std::string& why) {
  throw std::runtime_error(what + " " + path + ": " + why);
}

// Missing and unreadable files get the system's reason; OpenSSL would only say "system
// lib" or "no such file" without telling which one.
void requireReadable(const std::string& what, const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    fail(what, path, error == ENOENT ? "does not exist" : std::strerror(error));
  }
  struct stat info {};
  const bool regular = ::fstat(fd, &info) == 0 && S_ISREG(info.st_mode);
  ::close(fd);
  if (!regular) fail(what, path, "is not a regular file");
}

// An encrypted key is refused rather than asked for on the terminal (OpenSSL's default):
// a daemon has nobody to ask.
int noPassphrase(char*, int, int, void*) { return 0; }

int protocolVersion(const std::string& minVersion) {
  if (minVersion == "1.2") return TLS1_2_VERSION;
  if (minVersion == "1.3") return TLS1_3_VERSION;
  throw std::runtime_error("TLS minimum version \"" + minVersion +
                           "\" is not one of \"1.2\", \"1.3\"");
}

// What both sides share: protocol floor, ciphers, no compression, no renegotiation, and
// buffers released while a connection is idle (most SIP connections are, most of the time).
std::shared_ptr<ssl::context> makeContext(ssl::context::method method,
                                          const TlsSettings& settings) {
  detail::takeOpenSslErrors();  // start from an empty queue: only our failures are reported
  auto context = std::make_shared<ssl::context>(method);
  SSL_CTX* handle = context->native_handle();
  SSL_CTX_set_options(
      handle, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_mode(handle, SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_set_min_proto_version(handle, protocolVersion(settings.minVersion)) != 1) {
    throw std::runtime_error("TLS minimum version " + settings.minVersion + ": " +
                             detail::takeOpenSslErrors());
  }
  if (!settings.cipherList.empty() &&
      SSL_CTX_set_cipher_list(handle, settings.cipherList.c_str()) != 1) {
    throw std::runtime_error("TLS cipher list \"" + settings.cipherList +
                             "\": " + detail::takeOpenSslErrors("no cipher in it is known"));
  }
  if (!settings.cipherSuites.empty() &&
      SSL_CTX_set_ciphersuites(handle, settings.cipherSuites.c_str()) != 1) {
    throw std::runtime_error("TLS 1.3 ciphersuites \"" + settings.cipherSuites +
                             "\": " + detail::takeOpenSslErrors("no ciphersuite in it is known"));
  }
  return context;
}

void useCertificate(SSL_CTX* handle, const TlsSettings& settings) {
  if (settings.privateKeyFile.empty()) {
    throw std::runtime_error("TLS certificate " + settings.certificateFile +
                             " has no private key file");
  }
  requireReadable("TLS certificate", settings.certificateFile);
  requireReadable("TLS private key", settings.privateKeyFile);
  if (SSL_CTX_use_certificate_chain_file(handle, settings.certificateFile.c_str()) != 1) {
    fail("TLS certificate", settings.certificateFile,
         "not a PEM certificate chain: " + detail::takeOpenSslErrors());
  }
  detail::BioHandle keyFile(BIO_new_file(settings.privateKeyFile.c_str(), "r"));
  detail::PrivateKeyHandle key(
      keyFile ? PEM_read_bio_PrivateKey(keyFile.get(), nullptr, noPassphrase, nullptr) : nullptr);
  if (!key) {
    fail("TLS private key", settings.privateKeyFile,
         "not an unencrypted PEM private key: " + detail::takeOpenSslErrors());
  }
  // SSL_CTX_use_PrivateKey compares the key with the certificate already; the check after
  // it is what the OpenSSL documentation asks for, and costs nothing.
  if (SSL_CTX_use_PrivateKey(handle, key.get()) != 1 || SSL_CTX_check_private_key(handle) != 1) {
    fail("TLS private key", settings.privateKeyFile,
         "does not match certificate " + settings.certificateFile + ": " +
             detail::takeOpenSslErrors());
  }
}

void useTrustedRoots(SSL_CTX* handle, const TlsSettings& settings) {
  if (settings.caFile.empty()) {
    if (SSL_CTX_set_default_verify_paths(handle) != 1) {
      throw std::runtime_error("TLS: cannot load the system's CA store: " +
                               detail::takeOpenSslErrors());
    }
    return;
  }
  requireReadable("TLS CA file", settings.caFile);
  if (SSL_CTX_load_verify_locations(handle, settings.caFile.c_str(), nullptr) != 1) {
    fail("TLS CA file", settings.caFile,
         "not a PEM certificate bundle: " + detail::takeOpenSslErrors());
  }
}

}  // namespace

std::shared_ptr<ssl::context> makeServerContext(const TlsSettings& settings) {
  if (settings.certificateFile.empty()) {
    throw std::runtime_error("a TLS listener needs a certificate (tls.certificate)");
  }
  auto context = makeContext(ssl::context::tls_server, settings);
  SSL_CTX* handle = context->native_handle();
  useCertificate(handle, settings);
  SSL_CTX_set_session_id_context(handle, kSessionIdContext, sizeof kSessionIdContext - 1);
  SSL_CTX_set_session_cache_mode(handle, SSL_SESS_CACHE_SERVER);
  SSL_CTX_sess_set_cache_size(handle, kSessionCacheSize);
  SSL_CTX_set_timeout(handle, kSessionTimeoutSeconds);
  // One TLS 1.3 ticket instead of two: a SIP client keeps one connection to us, not several.
  SSL_CTX_set_num_tickets(handle, 1);
  if (settings.requireClientCertificate) {
    useTrustedRoots(handle, settings);
    if (!settings.caFile.empty()) {
      // Tells clients which CAs we accept, so one with several certificates picks right.
      if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(settings.caFile.c_str())) {
        SSL_CTX_set_client_CA_list(handle, names);
      }
      detail::takeOpenSslErrors();
    }
    SSL_CTX_set_verify(handle,
                       SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT | SSL_VERIFY_CLIENT_ONCE,
                       nullptr);
  } else {
    SSL_CTX_set_verify(handle, SSL_VERIFY_NONE, nullptr);
  }
  return context;
}

std::shared_ptr<ssl::context> makeClientContext(const TlsSettings& settings) {
  auto context = makeContext(ssl::context::tls_client, settings);
  SSL_CTX* handle = context->native_handle();
  if (!settings.certificateFile.empty()) useCertificate(handle, settings);
  // Resuming would need sessions kept per destination; a full handshake per connection is
  // what a proxy that keeps its connections open pays rarely.
  SSL_CTX_set_session_cache_mode(handle, SSL_SESS_CACHE_OFF);
  if (settings.verifyPeer) {
    useTrustedRoots(handle, settings);
    SSL_CTX_set_verify(handle, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(handle, SSL_VERIFY_NONE, nullptr);
  }
  return context;
}

TlsContexts::TlsContexts(TlsSettings settings)
    : settings_(std::move(settings)),
      server_(makeServerContext(settings_)),
      client_(makeClientContext(settings_)) {}

std::optional<TlsContexts::Prepared> TlsContexts::prepare(std::string& why) const {
  try {
    auto server = makeServerContext(settings_);
    auto client = makeClientContext(settings_);
    return Prepared{settings_, std::move(server), std::move(client)};
  } catch (const std::runtime_error& error) {
    why = error.what();
    return std::nullopt;
  }
}

void TlsContexts::install(Prepared prepared) {
  server_ = std::move(prepared.server);
  client_ = std::move(prepared.client);
  settings_ = std::move(prepared.settings);
}

TlsReloadResult TlsContexts::reload() { return reload(settings_); }

TlsReloadResult TlsContexts::reload(TlsSettings settings) {
  try {
    auto server = makeServerContext(settings);
    auto client = makeClientContext(settings);
    server_ = std::move(server);
    client_ = std::move(client);
    settings_ = std::move(settings);
  } catch (const std::runtime_error& error) {
    return {false, error.what()};
  }
  return {true, {}};
}

std::string sha256Fingerprint(X509* certificate) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (X509_digest(certificate, EVP_sha256(), digest, &size) != 1) {
    throw std::runtime_error("cannot compute a certificate fingerprint: " +
                             detail::takeOpenSslErrors());
  }
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string text;
  text.reserve(size * 3);
  for (unsigned int i = 0; i < size; ++i) {
    if (i > 0) text.push_back(':');
    text.push_back(kHex[digest[i] >> 4]);
    text.push_back(kHex[digest[i] & 0xf]);
  }
  return text;
}

std::string certificateFingerprint(const std::string& certificateFile) {
  requireReadable("TLS certificate", certificateFile);
  detail::BioHandle file(BIO_new_file(certificateFile.c_str(), "r"));
  detail::X509Handle certificate(file ? PEM_read_bio_X509(file.get(), nullptr, nullptr, nullptr)
                                      : nullptr);
  if (!certificate) {
    fail("TLS certificate", certificateFile,
         "not a PEM certificate: " + detail::takeOpenSslErrors());
  }
  return sha256Fingerprint(certificate.get());
}

}  // namespace waypoint::transport
