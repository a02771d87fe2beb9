#include "waypoint/transport/tls_context.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <sys/stat.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <filesystem>
#include <regex>
#include <string>

#include "test_certificates.hpp"
#include "waypoint/transport/self_signed_certificate.hpp"
#include "waypoint/transport/tls_peer_identity.hpp"

namespace waypoint::transport {
namespace {

namespace asio = boost::asio;
namespace certs = test_certificates;
using ::testing::HasSubstr;

// A CA, a server certificate it signed for example.com and 127.0.0.1, and a key that
// belongs to neither, as PEM files in a directory of their own.
class TlsContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "waypoint-tls-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    caKey_ = certs::makeKey();
    ca_ = certs::makeCertificate({"waypoint test CA", {}, true}, caKey_.get(), nullptr, nullptr);
    certs::writePem(path("ca.crt"), ca_.get());
    writeServerCertificate("server", 2);
    certs::writePem(path("other.key"), certs::makeKey().get());
    certs::writeText(path("garbage.pem"), "this is not PEM\n");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  // <name>.crt and <name>.key: a certificate signed by the CA, for example.com and 127.0.0.1.
  void writeServerCertificate(const std::string& name, long serial) {
    auto key = certs::makeKey();
    auto certificate =
        certs::makeCertificate({"example.com", {"DNS:example.com", "IP:127.0.0.1"}, false},
                               key.get(), ca_.get(), caKey_.get(), serial);
    certs::writePem(path(name + ".crt"), certificate.get());
    certs::writePem(path(name + ".key"), key.get());
  }

  TlsSettings serverSettings() const {
    TlsSettings settings;
    settings.certificateFile = path("server.crt");
    settings.privateKeyFile = path("server.key");
    settings.caFile = path("ca.crt");
    return settings;
  }

  // The message of what makeServerContext throws, or "" when it does not.
  static std::string startupError(const TlsSettings& settings) {
    try {
      makeServerContext(settings);
    } catch (const std::runtime_error& error) {
      return error.what();
    }
    return "";
  }

  static std::string loadedFingerprint(asio::ssl::context& context) {
    return sha256Fingerprint(SSL_CTX_get0_certificate(context.native_handle()));
  }

  std::string dir_;
  certs::Key caKey_;
  certs::Certificate ca_;
};

TEST_F(TlsContextTest, LoadsACertificateItsKeyAndTheCaFile) {
  TlsContexts contexts(serverSettings());
  ASSERT_NE(contexts.server(), nullptr);
  ASSERT_NE(contexts.client(), nullptr);
  EXPECT_EQ(loadedFingerprint(*contexts.server()), certificateFingerprint(path("server.crt")));
  EXPECT_EQ(loadedFingerprint(*contexts.client()), certificateFingerprint(path("server.crt")));
}

TEST_F(TlsContextTest, ContextsReleaseBuffersAndRefuseCompressionRenegotiationAndOldVersions) {
  TlsContexts contexts(serverSettings());
  for (SSL_CTX* handle : {contexts.server()->native_handle(), contexts.client()->native_handle()}) {
    EXPECT_TRUE(SSL_CTX_get_mode(handle) & SSL_MODE_RELEASE_BUFFERS);
    EXPECT_TRUE(SSL_CTX_get_options(handle) & SSL_OP_NO_COMPRESSION);
    EXPECT_TRUE(SSL_CTX_get_options(handle) & SSL_OP_NO_RENEGOTIATION);
    EXPECT_EQ(SSL_CTX_get_min_proto_version(handle), TLS1_2_VERSION);
  }
  EXPECT_EQ(SSL_CTX_get_verify_mode(contexts.server()->native_handle()), SSL_VERIFY_NONE);
  EXPECT_EQ(SSL_CTX_get_verify_mode(contexts.client()->native_handle()), SSL_VERIFY_PEER);
}

TEST_F(TlsContextTest, MinimumVersionOneThreeIsKept) {
  TlsSettings settings = serverSettings();
  settings.minVersion = "1.3";
  EXPECT_EQ(SSL_CTX_get_min_proto_version(makeServerContext(settings)->native_handle()),
            TLS1_3_VERSION);
}

TEST_F(TlsContextTest, MissingCertificateFileIsNamed) {
  TlsSettings settings = serverSettings();
  settings.certificateFile = path("missing.crt");
  const std::string error = startupError(settings);
  EXPECT_THAT(error, HasSubstr(path("missing.crt")));
  EXPECT_THAT(error, HasSubstr("does not exist"));
}

TEST_F(TlsContextTest, MissingKeyFileIsNamed) {
  TlsSettings settings = serverSettings();
  settings.privateKeyFile = path("missing.key");
  EXPECT_THAT(startupError(settings), HasSubstr(path("missing.key")));
}

TEST_F(TlsContextTest, DirectoryInsteadOfCertificateIsNamed) {
  TlsSettings settings = serverSettings();
  settings.certificateFile = dir_;
  const std::string error = startupError(settings);
  EXPECT_THAT(error, HasSubstr(dir_));
  EXPECT_THAT(error, HasSubstr("not a regular file"));
}

TEST_F(TlsContextTest, UnreadableCertificateIsNamed) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads files whatever their mode";
  ASSERT_EQ(::chmod(path("server.crt").c_str(), 0), 0);
  const std::string error = startupError(serverSettings());
  EXPECT_THAT(error, HasSubstr(path("server.crt")));
  EXPECT_THAT(error, HasSubstr("Permission denied"));
}

TEST_F(TlsContextTest, GarbageCertificateIsNamedWithOpenSslReason) {
  TlsSettings settings = serverSettings();
  settings.certificateFile = path("garbage.pem");
  const std::string error = startupError(settings);
  EXPECT_THAT(error, HasSubstr(path("garbage.pem")));
  EXPECT_THAT(error, HasSubstr("not a PEM certificate"));
  EXPECT_THAT(error, HasSubstr("no start line"));
}

TEST_F(TlsContextTest, GarbageKeyIsNamed) {
  TlsSettings settings = serverSettings();
  settings.privateKeyFile = path("garbage.pem");
  const std::string error = startupError(settings);
  EXPECT_THAT(error, HasSubstr(path("garbage.pem")));
  EXPECT_THAT(error, HasSubstr("not an unencrypted PEM private key"));
}

TEST_F(TlsContextTest, KeyOfAnotherCertificateIsNamedWithTheCertificate) {
  TlsSettings settings = serverSettings();
  settings.privateKeyFile = path("other.key");
  const std::string error = startupError(settings);
  EXPECT_THAT(error, HasSubstr(path("other.key")));
  EXPECT_THAT(error, HasSubstr("does not match certificate " + path("server.crt")));
  EXPECT_THAT(error, HasSubstr("mismatch"));
}

TEST_F(TlsContextTest, GarbageCaFileIsNamed) {
  TlsSettings settings = serverSettings();
  settings.caFile = path("garbage.pem");
  std::string error;
  try {
    makeClientContext(settings);
  } catch (const std::runtime_error& e) {
    error = e.what();
  }
  EXPECT_THAT(error, HasSubstr(path("garbage.pem")));
}

TEST_F(TlsContextTest, ListenerWithoutCertificateIsRefused) {
  TlsSettings settings = serverSettings();
  settings.certificateFile.clear();
  settings.privateKeyFile.clear();
  EXPECT_THAT(startupError(settings), HasSubstr("needs a certificate"));
}

TEST_F(TlsContextTest, UnknownMinimumVersionIsRefused) {
  TlsSettings settings = serverSettings();
  settings.minVersion = "1.1";
  EXPECT_THAT(startupError(settings), HasSubstr("\"1.1\""));
}

TEST_F(TlsContextTest, CipherListWithNoKnownCipherIsRefused) {
  TlsSettings settings = serverSettings();
  settings.cipherList = "NO-SUCH-CIPHER";
  const std::string error = startupError(settings);
  EXPECT_THAT(error, HasSubstr("cipher list"));
  EXPECT_THAT(error, HasSubstr("NO-SUCH-CIPHER"));
}

TEST_F(TlsContextTest, KnownCipherListAndSuitesAreAccepted) {
  TlsSettings settings = serverSettings();
  settings.cipherList = "ECDHE-ECDSA-AES128-GCM-SHA256";
  settings.cipherSuites = "TLS_AES_128_GCM_SHA256";
  EXPECT_EQ(startupError(settings), "");
}

TEST_F(TlsContextTest, ReloadWithABrokenCertificateKeepsTheCurrentContexts) {
  TlsContexts contexts(serverSettings());
  const auto server = contexts.server();
  const auto client = contexts.client();
  certs::writeText(path("server.crt"), "truncated by a renewal script\n");

  const TlsReloadResult result = contexts.reload();

  EXPECT_FALSE(result.reloaded);
  EXPECT_THAT(result.reason, HasSubstr(path("server.crt")));
  EXPECT_THAT(result.reason, HasSubstr("no start line"));
  EXPECT_EQ(contexts.server(), server);
  EXPECT_EQ(contexts.client(), client);
}

TEST_F(TlsContextTest, PreparedContextsAreNotInUseUntilInstalled) {
  TlsContexts contexts(serverSettings());
  const auto server = contexts.server();
  writeServerCertificate("server", 3);
  std::string why;

  auto prepared = contexts.prepare(why);

  ASSERT_TRUE(prepared) << why;
  EXPECT_EQ(contexts.server(), server);  // a refusal elsewhere leaves this one as it is
  const auto fresh = prepared->server;
  contexts.install(std::move(*prepared));
  EXPECT_EQ(contexts.server(), fresh);
  EXPECT_EQ(loadedFingerprint(*contexts.server()), certificateFingerprint(path("server.crt")));

  certs::writeText(path("server.crt"), "truncated by a renewal script\n");
  EXPECT_FALSE(contexts.prepare(why));
  EXPECT_THAT(why, HasSubstr(path("server.crt")));
  EXPECT_EQ(contexts.server(), fresh);
}

TEST_F(TlsContextTest, ReloadWithChangedSettingsThatFailKeepsTheOldSettings) {
  TlsContexts contexts(serverSettings());
  TlsSettings changed = serverSettings();
  changed.privateKeyFile = path("other.key");
  EXPECT_FALSE(contexts.reload(changed).reloaded);
  EXPECT_EQ(contexts.settings().privateKeyFile, path("server.key"));
}

TEST_F(TlsContextTest, ReloadWithARenewedCertificateGivesNewContextsAndLeavesTheOldOnesUsable) {
  TlsContexts contexts(serverSettings());
  const auto oldServer = contexts.server();
  const std::string oldFingerprint = loadedFingerprint(*oldServer);
  writeServerCertificate("server", 3);

  const TlsReloadResult result = contexts.reload();

  EXPECT_TRUE(result.reloaded);
  EXPECT_EQ(result.reason, "");
  EXPECT_NE(contexts.server(), oldServer);
  EXPECT_EQ(loadedFingerprint(*contexts.server()), certificateFingerprint(path("server.crt")));
  EXPECT_NE(loadedFingerprint(*contexts.server()), oldFingerprint);
  EXPECT_EQ(loadedFingerprint(*oldServer), oldFingerprint);  // a connection's context lives on
}

TEST_F(TlsContextTest, SelfSignedCertificateIsMadeOnceWithAPrivateKeyAndReusedAfter) {
  const std::string stateDir = path("state");
  const std::vector<std::string> names{"sip.example.org", "127.0.0.1", "::1"};

  const SelfSignedCertificate first = ensureSelfSignedCertificate(stateDir, names);

  EXPECT_TRUE(first.created);
  EXPECT_EQ(first.certificateFile, stateDir + "/tls/self-signed.crt");
  EXPECT_EQ(first.privateKeyFile, stateDir + "/tls/self-signed.key");
  struct stat key {};
  ASSERT_EQ(::stat(first.privateKeyFile.c_str(), &key), 0);
  EXPECT_EQ(key.st_mode & 0777, 0600u);
  EXPECT_FALSE(std::filesystem::exists(first.privateKeyFile + ".new"));
  EXPECT_TRUE(std::regex_match(first.fingerprint, std::regex("([0-9A-F]{2}:){31}[0-9A-F]{2}")));
  EXPECT_EQ(first.fingerprint, certificateFingerprint(first.certificateFile));

  const SelfSignedCertificate second = ensureSelfSignedCertificate(stateDir, names);
  EXPECT_FALSE(second.created);
  EXPECT_EQ(second.fingerprint, first.fingerprint);
}

TEST_F(TlsContextTest, SelfSignedCertificateLoadsAndNamesWhatItWasMadeFor) {
  const TlsSettings settings =
      withSelfSignedFallback(TlsSettings{}, path("state"), {"sip.example.org", "127.0.0.1"});
  EXPECT_EQ(settings.certificateFile, path("state") + "/tls/self-signed.crt");
  const auto context = makeServerContext(settings);
  X509* certificate = SSL_CTX_get0_certificate(context->native_handle());
  EXPECT_TRUE(matchesSipDomain(certificate, "sip.example.org"));
  EXPECT_TRUE(matchesSipDomain(certificate, "127.0.0.1"));
  EXPECT_FALSE(matchesSipDomain(certificate, "example.org"));
  EXPECT_EQ(X509_get_signature_nid(certificate), NID_ecdsa_with_SHA256);
}

TEST_F(TlsContextTest, ConfiguredCertificateIsNotReplacedBySelfSigned) {
  const TlsSettings settings = withSelfSignedFallback(serverSettings(), path("state"), {"x"});
  EXPECT_EQ(settings.certificateFile, path("server.crt"));
  EXPECT_FALSE(std::filesystem::exists(path("state")));
}

// RFC 5922 §7.1, §7.2 on certificates made for each case.
class SipDomainMatchTest : public ::testing::Test {
 protected:
  certs::Certificate certificate(const std::string& commonName,
                                 const std::vector<std::string>& subjectAltNames) {
    return certs::makeCertificate({commonName, subjectAltNames, false}, key_.get(), nullptr,
                                  nullptr);
  }
  certs::Key key_ = certs::makeKey();
};

TEST_F(SipDomainMatchTest, DnsEntryMatchesTheWholeDomainWithoutCase) {
  const auto cert = certificate("", {"DNS:example.com", "DNS:sip.example.net"});
  EXPECT_TRUE(matchesSipDomain(cert.get(), "example.com"));
  EXPECT_TRUE(matchesSipDomain(cert.get(), "EXAMPLE.com."));
  EXPECT_TRUE(matchesSipDomain(cert.get(), "sip.example.net"));
  EXPECT_FALSE(matchesSipDomain(cert.get(), "example.org"));
  EXPECT_FALSE(matchesSipDomain(cert.get(), "a.example.com"));  // no suffix match
  EXPECT_FALSE(matchesSipDomain(cert.get(), "com"));
  EXPECT_FALSE(matchesSipDomain(cert.get(), ""));
}

TEST_F(SipDomainMatchTest, WildcardEntryMatchesNoDomain) {
  const auto cert = certificate("*.example.com", {"DNS:*.example.com", "DNS:.example.net"});
  EXPECT_FALSE(matchesSipDomain(cert.get(), "a.example.com"));
  EXPECT_FALSE(matchesSipDomain(cert.get(), "example.com"));
  EXPECT_FALSE(matchesSipDomain(cert.get(), "a.example.net"));
}

TEST_F(SipDomainMatchTest, AddressMatchesAnIpEntryOnly) {
  const auto cert = certificate("127.0.0.2", {"IP:127.0.0.1", "IP:::1", "DNS:127.0.0.3"});
  EXPECT_TRUE(matchesSipDomain(cert.get(), "127.0.0.1"));
  EXPECT_TRUE(matchesSipDomain(cert.get(), "::1"));
  EXPECT_TRUE(matchesSipDomain(cert.get(), "[::1]"));
  EXPECT_FALSE(matchesSipDomain(cert.get(), "127.0.0.2"));  // CN does not count
  EXPECT_FALSE(matchesSipDomain(cert.get(), "127.0.0.3"));  // nor a DNS entry
  EXPECT_FALSE(matchesSipDomain(cert.get(), "192.0.2.1"));
}

TEST_F(SipDomainMatchTest, SipUriEntriesComeFirstAndThenDnsEntriesDoNotCount) {
  const auto cert = certificate("", {"URI:sip:example.net;transport=tls", "DNS:example.org"});
  EXPECT_TRUE(matchesSipDomain(cert.get(), "example.net"));
  EXPECT_FALSE(matchesSipDomain(cert.get(), "example.org"));
}

TEST_F(SipDomainMatchTest, UriWithAUserPartOrAnotherSchemeIsNoDomainIdentity) {
  const auto cert = certificate("", {"URI:sip:alice@example.net", "URI:sips:example.org",
                                     "URI:https://example.com/", "DNS:example.info"});
  EXPECT_FALSE(matchesSipDomain(cert.get(), "example.net"));
  EXPECT_FALSE(matchesSipDomain(cert.get(), "example.org"));
  EXPECT_FALSE(matchesSipDomain(cert.get(), "example.com"));
  EXPECT_TRUE(matchesSipDomain(cert.get(), "example.info"));  // no sip: identity, so DNS counts
}

TEST_F(SipDomainMatchTest, CommonNameCountsOnlyWithoutSubjectAltName) {
  EXPECT_TRUE(matchesSipDomain(certificate("example.com", {}).get(), "example.com"));
  EXPECT_FALSE(matchesSipDomain(certificate("example.com", {}).get(), "other.com"));
  EXPECT_FALSE(
      matchesSipDomain(certificate("example.com", {"DNS:other.com"}).get(), "example.com"));
  EXPECT_FALSE(
      matchesSipDomain(certificate("example.com", {"email:a@example.com"}).get(), "example.com"));
}

// Handshakes over loopback between a listener context and a client context, the client
// prepared with prepareClientStream as a connection to `host` would be.
struct Handshake {
  boost::system::error_code client;
  boost::system::error_code server;
  long clientVerifyResult = X509_V_OK;
  bool prepared = false;
};

Handshake handshake(asio::ssl::context& serverContext, asio::ssl::context& clientContext,
                    const std::string& host, bool verifyPeer = true) {
  using asio::ip::tcp;
  Handshake outcome;
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  asio::ssl::stream<tcp::socket> server(io, serverContext);
  asio::ssl::stream<tcp::socket> client(io, clientContext);
  outcome.prepared = prepareClientStream(client, host, verifyPeer);
  acceptor.async_accept(server.next_layer(), [&](boost::system::error_code error) {
    if (error) {
      outcome.server = error;
      return;
    }
    server.async_handshake(asio::ssl::stream_base::server,
                           [&](boost::system::error_code e) { outcome.server = e; });
  });
  client.next_layer().async_connect(
      acceptor.local_endpoint(), [&](boost::system::error_code error) {
        if (error) {
          outcome.client = error;
          return;
        }
        client.async_handshake(asio::ssl::stream_base::client, [&](boost::system::error_code e) {
          outcome.client = e;
          // A refused handshake leaves the server reading; closing ends its read.
          if (e) client.next_layer().close();
        });
      });
  io.run();
  outcome.clientVerifyResult = SSL_get_verify_result(client.native_handle());
  return outcome;
}

TEST_F(TlsContextTest, HandshakeSucceedsForTheNameAndTheAddressInTheCertificate) {
  TlsContexts contexts(serverSettings());
  for (const std::string host : {"example.com", "127.0.0.1"}) {
    const Handshake outcome = handshake(*contexts.server(), *contexts.client(), host);
    EXPECT_TRUE(outcome.prepared);
    EXPECT_FALSE(outcome.client) << host << ": " << outcome.client.message();
    EXPECT_FALSE(outcome.server) << host << ": " << outcome.server.message();
    EXPECT_EQ(outcome.clientVerifyResult, X509_V_OK) << host;
  }
}

TEST_F(TlsContextTest, HandshakeFailsVerificationForAnotherName) {
  TlsContexts contexts(serverSettings());
  const Handshake outcome = handshake(*contexts.server(), *contexts.client(), "example.org");
  EXPECT_TRUE(outcome.client);
  EXPECT_EQ(outcome.clientVerifyResult, X509_V_ERR_HOSTNAME_MISMATCH);
}

TEST_F(TlsContextTest, HandshakeFailsForAServerTheCaFileDoesNotVouchFor) {
  TlsContexts contexts(serverSettings());
  TlsSettings clientSettings;
  clientSettings.caFile = path("other-ca.crt");
  auto otherKey = certs::makeKey();
  certs::writePem(
      path("other-ca.crt"),
      certs::makeCertificate({"other CA", {}, true}, otherKey.get(), nullptr, nullptr).get());
  const auto client = makeClientContext(clientSettings);
  const Handshake outcome = handshake(*contexts.server(), *client, "example.com");
  EXPECT_TRUE(outcome.client);
  EXPECT_EQ(outcome.clientVerifyResult, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
}

TEST_F(TlsContextTest, WithoutPeerVerificationAnyNameIsAccepted) {
  TlsSettings settings = serverSettings();
  settings.verifyPeer = false;
  TlsContexts contexts(settings);
  const Handshake outcome =
      handshake(*contexts.server(), *contexts.client(), "example.org", settings.verifyPeer);
  EXPECT_FALSE(outcome.client) << outcome.client.message();
  EXPECT_FALSE(outcome.server) << outcome.server.message();
}

TEST_F(TlsContextTest, MutualTlsRefusesAClientWithoutCertificateAndAcceptsOneTheCaSigned) {
  TlsSettings listener = serverSettings();
  listener.requireClientCertificate = true;
  const auto server = makeServerContext(listener);

  TlsSettings anonymous;
  anonymous.caFile = path("ca.crt");
  EXPECT_TRUE(handshake(*server, *makeClientContext(anonymous), "example.com").server);

  writeServerCertificate("client", 4);
  TlsSettings withCertificate = anonymous;
  withCertificate.certificateFile = path("client.crt");
  withCertificate.privateKeyFile = path("client.key");
  const Handshake outcome = handshake(*server, *makeClientContext(withCertificate), "example.com");
  EXPECT_FALSE(outcome.server) << outcome.server.message();
  EXPECT_FALSE(outcome.client) << outcome.client.message();
}

TEST(TlsServerNameTest, NamesAHostButNotAnAddress) {
  asio::ssl::context context(asio::ssl::context::tls_client);
  for (const auto& [host, expected] : std::vector<std::pair<std::string, const char*>>{
           {"example.com.", "example.com"}, {"127.0.0.1", nullptr}, {"[::1]", nullptr}}) {
    std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(context.native_handle()), SSL_free);
    ASSERT_TRUE(setServerName(ssl.get(), host));
    const char* name = SSL_get_servername(ssl.get(), TLSEXT_NAMETYPE_host_name);
    if (expected == nullptr) {
      EXPECT_EQ(name, nullptr) << host;
    } else {
      ASSERT_NE(name, nullptr) << host;
      EXPECT_STREQ(name, expected);
    }
  }
}

}  // namespace
}  // namespace waypoint::transport
