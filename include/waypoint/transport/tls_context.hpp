#pragma once
// The OpenSSL contexts TLS connections are made from: built once from the settings at
// start-up (where every mistake in them stops the start with the file and the reason),
// and rebuilt by reload() when the certificate is renewed.

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <optional>
#include <string>

namespace waypoint::transport {

// What the `tls:` section of the configuration says. Paths are PEM files.
struct TlsSettings {
  std::string certificateFile;     // the certificate, then the intermediates up to the root
  std::string privateKeyFile;      // the key of the first certificate, unencrypted
  std::string caFile;              // roots trusted for peers; empty: the system's default store
  std::string minVersion = "1.2";  // "1.2" or "1.3"
  std::string cipherList;          // TLS 1.2 cipher list; empty: OpenSSL's default
  std::string cipherSuites;        // TLS 1.3 ciphersuites; empty: OpenSSL's default
  bool verifyPeer = true;          // outgoing: check the server's chain and name
  bool requireClientCertificate = false;  // listeners: mutual TLS, a client without a
                                          // certificate the CA file vouches for is refused
};

// Contexts for accepting (the certificate is required) and for connecting (the
// certificate, when there is one, is presented if the server asks). Both throw
// std::runtime_error naming the file or setting and OpenSSL's reason.
std::shared_ptr<boost::asio::ssl::context> makeServerContext(const TlsSettings& settings);
std::shared_ptr<boost::asio::ssl::context> makeClientContext(const TlsSettings& settings);

// Whether reload() put new contexts in place, and if not why.
struct TlsReloadResult {
  bool reloaded = false;
  std::string reason;  // empty when reloaded
};

// The current server and client contexts. A connection takes the shared_ptr current when
// it is made and keeps it for its life (an SSL object refers to its context's callbacks),
// so reload() never changes an existing connection: only new ones get the new contexts.
class TlsContexts {
 public:
  explicit TlsContexts(TlsSettings settings);  // throws as makeServerContext does

  std::shared_ptr<boost::asio::ssl::context> server() const { return server_; }
  std::shared_ptr<boost::asio::ssl::context> client() const { return client_; }
  const TlsSettings& settings() const { return settings_; }

  // New contexts read from the files, not in use yet: a reload checks every certificate
  // before it puts any in place.
  struct Prepared {
    TlsSettings settings;
    std::shared_ptr<boost::asio::ssl::context> server;
    std::shared_ptr<boost::asio::ssl::context> client;
  };
  // Reads the certificate and key (and CA file) again; nullopt with `why` on failure.
  std::optional<Prepared> prepare(std::string& why) const;
  // Puts prepared contexts in place (for new connections).
  void install(Prepared prepared);

  // prepare() and install() at once. On any failure the current contexts stay, and the
  // reason is returned (the caller logs it).
  TlsReloadResult reload();
  // The same with changed settings, which are kept only if the new contexts are made.
  TlsReloadResult reload(TlsSettings settings);

 private:
  TlsSettings settings_;
  std::shared_ptr<boost::asio::ssl::context> server_;
  std::shared_ptr<boost::asio::ssl::context> client_;
};

// The SHA-256 fingerprint of a certificate's DER encoding, "AA:BB:...:FF".
std::string sha256Fingerprint(X509* certificate);
// The SHA-256 fingerprint of the first certificate in a PEM file, "AA:BB:...:FF"
// (what `openssl x509 -fingerprint -sha256` prints). Throws std::runtime_error.
std::string certificateFingerprint(const std::string& certificateFile);

}  // namespace waypoint::transport
