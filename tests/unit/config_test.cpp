#include "waypoint/app/config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace waypoint::app {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class ConfigTest : public ::testing::Test {
 protected:
  std::string write(const std::string& text) {
    std::ofstream(path_) << text;
    return path_;
  }
  // The message of the ConfigError that loading `text` throws.
  std::string errorFor(const std::string& text) {
    try {
      loadConfig(write(text));
    } catch (const ConfigError& e) {
      return e.what();
    }
    ADD_FAILURE() << "no ConfigError for:\n" << text;
    return {};
  }
  void TearDown() override { std::filesystem::remove(path_); }

  std::string path_ = (std::filesystem::temp_directory_path() /
                       ("waypoint-config-test-" + std::to_string(::getpid()) + ".yaml"))
                          .string();
};

constexpr const char* kMinimal =
    "listen:\n  - { transport: udp, address: 127.0.0.1, port: 5070 }\n";

TEST_F(ConfigTest, LoadsTheSampleConfiguration) {
  const Config config = loadConfig(std::string(WAYPOINT_SOURCE_DIR) + "/config/waypoint.yaml");
  ASSERT_EQ(config.listeners.size(), 3u);
  EXPECT_EQ(config.listeners[0].protocol, transport::Protocol::udp);
  EXPECT_EQ(config.listeners[1].protocol, transport::Protocol::tcp);
  EXPECT_EQ(config.listeners[2].protocol, transport::Protocol::tls);
  EXPECT_EQ(config.listeners[2].port, 5061);
  ASSERT_TRUE(config.listeners[2].tls.has_value());
  EXPECT_TRUE(config.listeners[2].tls->certificateFile.empty());  // the self-signed one
  EXPECT_EQ(config.listeners[0].address, "127.0.0.1");
  EXPECT_EQ(config.listeners[0].port, 5060);
  EXPECT_EQ(config.domains, std::vector<std::string>{"localhost"});
  EXPECT_EQ(config.timers.t1, std::chrono::milliseconds(500));
  EXPECT_EQ(config.timers.t2, std::chrono::milliseconds(4000));
  EXPECT_EQ(config.timers.t4, std::chrono::milliseconds(5000));
  EXPECT_EQ(config.transport.maxMessageSize, 65536u);
  EXPECT_EQ(config.transport.udpMtu, 1300u);
}

TEST_F(ConfigTest, AppliesDefaultsToAMinimalFile) {
  const Config config = loadConfig(write(kMinimal));
  EXPECT_EQ(config.timers.t1, std::chrono::milliseconds(500));
  EXPECT_EQ(config.transport.tcpIdleTimeout, std::chrono::seconds(600));
  EXPECT_EQ(config.log.level, "info");
  EXPECT_TRUE(config.metrics.file.empty());
  ASSERT_TRUE(config.metrics.listen);
  EXPECT_EQ(transport::toString(*config.metrics.listen), "127.0.0.1:9260");
}

TEST_F(ConfigTest, MetricsListenTakesAnAddressAndPortOrNothing) {
  const Config v6 =
      loadConfig(write(std::string(kMinimal) + "metrics: { listen: \"[::1]:9100\" }\n"));
  ASSERT_TRUE(v6.metrics.listen);
  EXPECT_EQ(transport::toString(*v6.metrics.listen), "[::1]:9100");
  const Config off = loadConfig(write(std::string(kMinimal) + "metrics: { listen: \"\" }\n"));
  EXPECT_FALSE(off.metrics.listen);
  for (const char* bad : {"localhost:9260", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:99999"}) {
    const std::string error =
        errorFor(std::string(kMinimal) + "metrics:\n  listen: \"" + bad + "\"\n");
    EXPECT_THAT(error, StartsWith(path_ + ":4:11: ")) << bad;
    EXPECT_THAT(error, HasSubstr("metrics listen must be ADDRESS:PORT")) << bad;
  }
}

TEST_F(ConfigTest, ParsesDurationsWithUnits) {
  const Config config =
      loadConfig(write(std::string(kMinimal) +
                       "timers: { t1: 50ms, t2: 2s, t4: 1m }\nlimits: { tcp_idle_timeout: 2m }\n"));
  EXPECT_EQ(config.timers.t1, std::chrono::milliseconds(50));
  EXPECT_EQ(config.timers.t2, std::chrono::milliseconds(2000));
  EXPECT_EQ(config.timers.t4, std::chrono::milliseconds(60000));
  EXPECT_EQ(config.transport.tcpIdleTimeout, std::chrono::seconds(120));
}

TEST_F(ConfigTest, UnknownTopLevelKeyNamesFileLineAndColumn) {
  const std::string error = errorFor(std::string(kMinimal) + "domains: [a]\nlisten_on: 5060\n");
  EXPECT_THAT(error, StartsWith(path_ + ":4:1: "));
  EXPECT_THAT(error, HasSubstr("unknown key 'listen_on'"));
}

TEST_F(ConfigTest, UnknownNestedKeyNamesItsPosition) {
  const std::string error = errorFor(std::string(kMinimal) + "timers:\n  t1: 500ms\n  t3: 1s\n");
  EXPECT_THAT(error, StartsWith(path_ + ":5:3: "));
  EXPECT_THAT(error, HasSubstr("'t3'"));
}

TEST_F(ConfigTest, DurationWithoutUnitIsAnError) {
  const std::string error = errorFor(std::string(kMinimal) + "timers: { t1: 500 }\n");
  EXPECT_THAT(error, StartsWith(path_ + ":3:"));
  EXPECT_THAT(error, HasSubstr("duration with a unit"));
}

TEST_F(ConfigTest, BadYamlSyntaxNamesTheLine) {
  const std::string error = errorFor("listen:\n  - { transport: udp, address: 127.0.0.1\n");
  EXPECT_THAT(error, StartsWith(path_ + ":"));
  EXPECT_THAT(error, Not(HasSubstr(":0:")));
}

TEST_F(ConfigTest, RejectsBadListeners) {
  EXPECT_THAT(errorFor("listen:\n  - { transport: sctp, address: 127.0.0.1 }\n"),
              HasSubstr("transport must be udp, tcp, tls, ws or wss"));
  EXPECT_THAT(errorFor("listen:\n  - { transport: udp, address: example.com }\n"),
              HasSubstr("numeric IPv4 or IPv6"));
  EXPECT_THAT(errorFor("listen:\n  - { transport: udp, address: 127.0.0.1, port: 70000 }\n"),
              HasSubstr("port must be between 0 and 65535"));
  EXPECT_THAT(errorFor("listen: []\n"), HasSubstr("non-empty list"));
  EXPECT_THAT(errorFor("domains: [a]\n"), HasSubstr("'listen' is required"));
}

TEST_F(ConfigTest, ListenerAdvertisesANameAndPort) {
  const Config config = loadConfig(
      write("listen:\n"
            "  - { transport: udp, address: 0.0.0.0, advertise: sip.example.com }\n"
            "  - { transport: tcp, address: 10.0.0.5, advertise: \"[2001:db8::1]:5070\" }\n"));
  ASSERT_EQ(config.listeners.size(), 2u);
  EXPECT_EQ(config.listeners[0].advertise, (transport::HostPort{"sip.example.com", {}}));
  EXPECT_EQ(config.listeners[1].advertise, (transport::HostPort{"2001:db8::1", 5070}));
  EXPECT_FALSE(loadConfig(write(kMinimal)).listeners[0].advertise);
}

TEST_F(ConfigTest, BadAdvertiseNamesLineAndColumn) {
  const std::string error = errorFor(
      "listen:\n  - { transport: udp, address: 0.0.0.0, advertise: \"sip.example.com:\" }\n");
  EXPECT_THAT(error, StartsWith(path_ + ":2:"));
  EXPECT_THAT(error, HasSubstr("advertise must be HOST or HOST:PORT"));
  EXPECT_THAT(errorFor("listen:\n  - { transport: udp, address: 0.0.0.0, advertise: 0.0.0.0 }\n"),
              HasSubstr("not a wildcard address"));
}

TEST_F(ConfigTest, RejectsBadValues) {
  EXPECT_THAT(errorFor(std::string(kMinimal) + "log: { level: loud }\n"),
              HasSubstr("log level must be one of"));
  EXPECT_THAT(errorFor(std::string(kMinimal) + "limits: { max_message_size: abc }\n"),
              HasSubstr("whole number"));
  EXPECT_THAT(errorFor(std::string(kMinimal) + "timers: { t1: 5s, t2: 1s }\n"),
              HasSubstr("t2 must not be shorter"));
  EXPECT_THAT(errorFor(std::string(kMinimal) + "domains: localhost\n"),
              HasSubstr("domains must be a list"));
}

TEST_F(ConfigTest, TlsSectionAppliesToTlsListenersWhichMayOverrideIt) {
  const Config config = loadConfig(
      write("listen:\n"
            "  - { transport: udp, address: 127.0.0.1 }\n"
            "  - { transport: tls, address: 127.0.0.1 }\n"
            "  - { transport: wss, address: 127.0.0.1, tls: { require_client_certificate: true,"
            " ca_file: /etc/clients.pem } }\n"
            "tls: { certificate: /etc/c.pem, private_key: /etc/k.pem, min_version: \"1.3\","
            " verify_peer: false }\n"));
  ASSERT_TRUE(config.tls.has_value());
  EXPECT_EQ(config.tls->minVersion, "1.3");
  EXPECT_FALSE(config.tls->verifyPeer);
  EXPECT_FALSE(config.listeners[0].tls.has_value());
  ASSERT_TRUE(config.listeners[1].tls.has_value());
  EXPECT_EQ(config.listeners[1].port, 5061);
  EXPECT_EQ(config.listeners[1].tls->certificateFile, "/etc/c.pem");
  EXPECT_FALSE(config.listeners[1].tls->requireClientCertificate);
  ASSERT_TRUE(config.listeners[2].tls.has_value());
  EXPECT_EQ(config.listeners[2].port, 443);
  EXPECT_EQ(config.listeners[2].tls->privateKeyFile, "/etc/k.pem");
  EXPECT_TRUE(config.listeners[2].tls->requireClientCertificate);
  EXPECT_EQ(config.listeners[2].tls->caFile, "/etc/clients.pem");
}

TEST_F(ConfigTest, TlsErrorsNameLineAndColumn) {
  const std::string listen = "listen: [ { transport: tls, address: 127.0.0.1 } ]\n";
  std::string error = errorFor(listen + "tls:\n  min_version: \"1.1\"\n");
  EXPECT_THAT(error, StartsWith(path_ + ":3:16: "));
  EXPECT_THAT(error, HasSubstr("min_version"));
  error = errorFor(listen + "tls:\n  certificate: /etc/c.pem\n");
  EXPECT_THAT(error, StartsWith(path_ + ":3:3: "));
  EXPECT_THAT(error, HasSubstr("'private_key'"));
  error = errorFor("listen:\n  - { transport: udp, address: 127.0.0.1, tls: {} }\n");
  EXPECT_THAT(error, StartsWith(path_ + ":2:48: "));
  EXPECT_THAT(error, HasSubstr("only to a tls or wss listener"));
  error = errorFor(listen + "tls: { verify: true }\n");
  EXPECT_THAT(error, HasSubstr("'verify'"));
  error = errorFor(listen + "limits: { max_handshakes_per_source: 0 }\n");
  EXPECT_THAT(error, HasSubstr("max_handshakes_per_source"));
}

TEST_F(ConfigTest, MissingFileIsAnError) {
  EXPECT_THROW(loadConfig("/nonexistent/waypoint.yaml"), ConfigError);
}

std::string loadError(const std::string& path) {
  try {
    loadConfig(path);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST_F(ConfigTest, AFileThatCannotBeReadSaysWhy) {
  EXPECT_EQ(loadError("/nonexistent/waypoint.yaml"),
            "/nonexistent/waypoint.yaml: cannot read the configuration file: No such file or "
            "directory");
  const auto directory = std::filesystem::temp_directory_path().string();
  EXPECT_EQ(loadError(directory),
            directory + ": is a directory, not a configuration file (give the file, e.g. " +
                directory + "/waypoint.yaml)");
  EXPECT_EQ(loadError("/dev/null"), "/dev/null: is not a regular file");
}

TEST_F(ConfigTest, AKeyGivenTwiceIsAnErrorAtItsSecondPlace) {
  EXPECT_EQ(errorFor(std::string(kMinimal) + "log: { level: info }\nlog: { level: debug }\n"),
            path_ + ":4:1: 'log' is given twice in the configuration (first at line 3)");
  EXPECT_THAT(errorFor(std::string(kMinimal) + "stop:\n  drain_time: 1s\n  drain_time: 2s\n"),
              HasSubstr(":5:3: 'drain_time' is given twice in stop (first at line 4)"));
}

TEST_F(ConfigTest, ALowerCaseStandardMethodInARuleIsValidButWarnedAbout) {
  const Config config =
      loadConfig(write(std::string(kMinimal) + "routing:\n  rules:\n    - match: { method: "
                                               "[invite, BYE] }\n      reject: { status: 403 }\n"));
  ASSERT_EQ(config.routing->warnings().size(), 1u);
  EXPECT_THAT(config.routing->warnings()[0], StartsWith(path_ + ":5:25: method 'invite'"));
  EXPECT_THAT(config.routing->warnings()[0], HasSubstr("case-sensitive"));
  EXPECT_THAT(config.routing->warnings()[0], HasSubstr("write 'INVITE'"));
  const Config exact = loadConfig(
      write(std::string(kMinimal) + "routing:\n  rules:\n    - match: { method: [INVITE, x-custom] "
                                    "}\n      reject: { status: 403 }\n"));
  EXPECT_TRUE(exact.routing->warnings().empty());
}

}  // namespace
}  // namespace waypoint::app

namespace waypoint::app {
namespace {

using ::testing::HasSubstr;

class RegistrarConfigTest : public ::testing::Test {
 protected:
  std::string write(const std::string& text) {
    std::ofstream(path_) << "listen:\n  - { transport: udp, address: 127.0.0.1, port: 5070 }\n"
                         << text;
    return path_;
  }
  // The message of the ConfigError that loading `text` throws, or "no error".
  std::string errorFor(const std::string& text) {
    try {
      loadConfig(write(text));
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "no error";
  }
  void TearDown() override { std::filesystem::remove(path_); }
  std::string path_ = (std::filesystem::temp_directory_path() /
                       ("waypoint-registrar-config-" + std::to_string(::getpid()) + ".yaml"))
                          .string();
};

TEST_F(RegistrarConfigTest, ReadsTheRegistrarSection) {
  const Config config = loadConfig(write(
      "registrar: { min_expires: 30s, max_expires: 2m, default_expires: 90s, max_contacts: 4 }\n"));
  EXPECT_EQ(config.registrar.minExpires, std::chrono::seconds(30));
  EXPECT_EQ(config.registrar.maxExpires, std::chrono::seconds(120));
  EXPECT_EQ(config.registrar.defaultExpires, std::chrono::seconds(90));
  EXPECT_EQ(config.registrar.maxContacts, 4u);
}

TEST_F(RegistrarConfigTest, DefaultsFollowRfc3261) {
  const Config config = loadConfig(write(""));
  EXPECT_EQ(config.registrar.minExpires, std::chrono::seconds(60));
  EXPECT_EQ(config.registrar.maxExpires, std::chrono::seconds(3600));
  EXPECT_EQ(config.registrar.defaultExpires, std::chrono::seconds(3600));
  EXPECT_EQ(config.registrar.maxContacts, 10u);
}

TEST_F(RegistrarConfigTest, ReadsThePersistenceSection) {
  const Config config = loadConfig(
      write("registrar: { persistence: { enabled: false, file: /tmp/b.sqlite, batch_interval: "
            "250ms } }\n"));
  EXPECT_FALSE(config.registrar.persistence.enabled);
  EXPECT_EQ(config.registrar.persistence.file, "/tmp/b.sqlite");
  EXPECT_EQ(config.registrar.persistence.batchInterval, std::chrono::milliseconds(250));
}

TEST_F(RegistrarConfigTest, PersistenceIsOnInTheStateDirectoryByDefault) {
  const Config config = loadConfig(write("state_dir: /srv/wp\n"));
  EXPECT_TRUE(config.registrar.persistence.enabled);
  EXPECT_EQ(config.registrar.persistence.file, "/srv/wp/bindings.sqlite");
  EXPECT_EQ(config.registrar.persistence.batchInterval, std::chrono::milliseconds(100));
}

TEST_F(RegistrarConfigTest, RejectsABatchIntervalOutOfRangeAndUnknownKeys) {
  EXPECT_THAT(errorFor("registrar: { persistence: { batch_interval: 5ms } }\n"),
              HasSubstr("batch_interval must be at least 10ms"));
  EXPECT_THAT(errorFor("registrar: { persistence: { batch_interval: 11s } }\n"),
              HasSubstr("batch_interval must be at most 10s"));
  EXPECT_THAT(errorFor("registrar: { persistence: { batch_interval: 100 } }\n"),
              HasSubstr(".yaml:3:45: batch_interval must be a duration"));
  EXPECT_THAT(errorFor("registrar: { persistence: { fsync: true } }\n"), HasSubstr("fsync"));
  EXPECT_THAT(errorFor("registrar: { persistence: { file: \"\" } }\n"),
              HasSubstr("persistence file must not be empty"));
}

TEST_F(RegistrarConfigTest, RejectsInconsistentExpiries) {
  EXPECT_THAT(errorFor("registrar: { min_expires: 10m, max_expires: 1m }\n"),
              HasSubstr("max_expires must not be shorter"));
  EXPECT_THAT(errorFor("registrar: { default_expires: 10s }\n"),
              HasSubstr("default_expires must lie between"));
  EXPECT_THAT(errorFor("registrar: { max_contact: 3 }\n"), HasSubstr("unknown key 'max_contact'"));
  EXPECT_THAT(errorFor("registrar: { max_contact: 3 }\n"), HasSubstr(path_ + ":3:"));
}

TEST_F(ConfigTest, SecurityDefaultsAndSettings) {
  Config config = loadConfig(write(std::string(kMinimal) + "domains: [example.com]\n"));
  EXPECT_EQ(config.defaultDomain, "example.com");  // the only served domain
  EXPECT_TRUE(config.trusted.empty());
  EXPECT_TRUE(config.security.serverHeader.empty());
  EXPECT_FALSE(config.stateDir.empty());

  config = loadConfig(write(std::string(kMinimal) +
                            "domains: [a.example, b.example]\n"
                            "default_domain: b.example\nstate_dir: /tmp/wp-state\n"
                            "trusted: [192.0.2.0/24, \"2001:db8::1\"]\n"
                            "security:\n  route_secret: 0123456789abcdef0123\n"
                            "  previous_route_secrets: [fedcba9876543210fedc]\n"
                            "  server_header: edge\n"));
  EXPECT_EQ(config.defaultDomain, "b.example");
  EXPECT_EQ(config.stateDir, "/tmp/wp-state");
  ASSERT_EQ(config.trusted.size(), 2u);
  EXPECT_TRUE(config.trusted[0].contains(boost::asio::ip::make_address("192.0.2.77")));
  EXPECT_FALSE(config.trusted[0].contains(boost::asio::ip::make_address("192.0.3.1")));
  EXPECT_EQ(config.security.routeSecret, "0123456789abcdef0123");
  EXPECT_EQ(config.security.previousRouteSecrets, std::vector<std::string>{"fedcba9876543210fedc"});
  EXPECT_EQ(config.security.serverHeader, "edge");

  config = loadConfig(write(std::string(kMinimal) + "domains: [a.example, b.example]\n"));
  EXPECT_TRUE(config.defaultDomain.empty());  // several domains and none chosen
}

TEST_F(ConfigTest, SecurityErrorsNameLineAndColumn) {
  EXPECT_THAT(errorFor(std::string(kMinimal) + "domains: [a.example]\ndefault_domain: b.example\n"),
              HasSubstr(":4:17: default_domain must be one of 'domains' (got 'b.example')"));
  EXPECT_THAT(errorFor(std::string(kMinimal) + "trusted: [10.0.0.0/33]\n"),
              HasSubstr(":3:11: trusted must list IP addresses or CIDR blocks"));
  EXPECT_THAT(errorFor(std::string(kMinimal) + "security:\n  route_secret: short\n"),
              HasSubstr(":4:17: route_secret must be at least 16 characters long"));
  EXPECT_THAT(errorFor(std::string(kMinimal) + "security:\n  route_key: x\n"),
              HasSubstr("route_key"));
}

// ---- auth (issue 10) ----

class AuthConfigTest : public ConfigTest {
 protected:
  void TearDown() override {
    std::filesystem::remove(usersPath_);
    ConfigTest::TearDown();
  }
  std::string usersPath_ = path_ + ".users";
  std::string withUsers(const std::string& authBody) {
    std::ofstream(usersPath_) << "alice localhost md5=" << std::string(32, 'a')
                              << " sha-256=" << std::string(64, 'b') << "\n";
    return std::string(kMinimal) + "auth:\n  users_file: " + usersPath_ + "\n" + authBody;
  }
};

TEST_F(AuthConfigTest, SampleConfigurationTurnsAuthenticationOnWithItsUsersFile) {
  const Config config = loadConfig(std::string(WAYPOINT_SOURCE_DIR) + "/config/waypoint.yaml");
  EXPECT_EQ(config.auth.usersFile, std::string(WAYPOINT_SOURCE_DIR) + "/config/users.txt");
  EXPECT_TRUE(config.auth.strictIdentity);
}

TEST_F(AuthConfigTest, DefaultsAreSafe) {
  const Config config = loadConfig(write(withUsers("")));
  EXPECT_EQ(config.auth.usersFile, usersPath_);
  EXPECT_EQ(config.auth.settings.algorithms,
            (std::vector<auth::Algorithm>{auth::Algorithm::sha256, auth::Algorithm::md5}));
  EXPECT_EQ(config.auth.settings.nonceLifetime, std::chrono::seconds(300));
  EXPECT_TRUE(config.auth.challengeRegister);
  EXPECT_TRUE(config.auth.challengeCalls);
  EXPECT_TRUE(config.auth.exemptTrusted);
  EXPECT_TRUE(config.auth.strictIdentity);
  EXPECT_EQ(config.auth.settings.failures.freeFailures, 5u);
  EXPECT_EQ(config.auth.settings.failures.banAfter, 20u);
  EXPECT_EQ(config.auth.settings.failures.banTime, std::chrono::seconds(900));
  EXPECT_TRUE(loadConfig(write(kMinimal)).auth.usersFile.empty());  // no users: no auth
}

TEST_F(AuthConfigTest, ReadsEveryKey) {
  const Config config = loadConfig(write(withUsers(
      "  algorithms: [MD5]\n  nonce_lifetime: 60s\n  register: false\n  calls: false\n"
      "  exempt_trusted: false\n  identity: off\n"
      "  failures: { free: 2, backoff: 500ms, max_backoff: 4s, ban_after: 7, ban_time: 2m }\n")));
  EXPECT_EQ(config.auth.settings.algorithms, std::vector<auth::Algorithm>{auth::Algorithm::md5});
  EXPECT_EQ(config.auth.settings.nonceLifetime, std::chrono::seconds(60));
  EXPECT_FALSE(config.auth.challengeRegister);
  EXPECT_FALSE(config.auth.challengeCalls);
  EXPECT_FALSE(config.auth.exemptTrusted);
  EXPECT_FALSE(config.auth.strictIdentity);
  EXPECT_EQ(config.auth.settings.failures.freeFailures, 2u);
  EXPECT_EQ(config.auth.settings.failures.backoff, std::chrono::milliseconds(500));
  EXPECT_EQ(config.auth.settings.failures.maxBackoff, std::chrono::milliseconds(4000));
  EXPECT_EQ(config.auth.settings.failures.banAfter, 7u);
  EXPECT_EQ(config.auth.settings.failures.banTime, std::chrono::seconds(120));
}

TEST_F(AuthConfigTest, MistakesNameLineAndColumn) {
  EXPECT_THAT(errorFor(withUsers("  algorithms: [SHA-512]\n")),
              ::testing::AllOf(StartsWith(path_ + ":5:16:"), HasSubstr("SHA-512")));
  EXPECT_THAT(errorFor(withUsers("  identity: loose\n")),
              ::testing::AllOf(StartsWith(path_ + ":5:13:"), HasSubstr("strict or off")));
  EXPECT_THAT(errorFor(withUsers("  algorithm: [MD5]\n")), HasSubstr("algorithm"));
  // A bad users file is named with its own line and column.
  std::ofstream(usersPath_) << "alice localhost md5=xyz\n";
  EXPECT_THAT(errorFor(std::string(kMinimal) + "auth:\n  users_file: " + usersPath_ + "\n"),
              StartsWith(usersPath_ + ":1:"));
}

TEST_F(ConfigTest, FloodDefaultsAndSettings) {
  Config config = loadConfig(write(kMinimal));
  EXPECT_TRUE(config.flood.enabled);
  EXPECT_EQ(config.flood.rate, 200.0);
  EXPECT_EQ(config.flood.burst, 400.0);
  EXPECT_EQ(config.flood.banTime, std::chrono::seconds(60));
  EXPECT_EQ(config.flood.maxSources, 65536u);

  config =
      loadConfig(write(std::string(kMinimal) + "flood:\n  enabled: false\n  rate: 50\n  burst: 80\n"
                                               "  ban_time: 5m\n  max_sources: 1000\n"));
  EXPECT_FALSE(config.flood.enabled);
  EXPECT_EQ(config.flood.rate, 50.0);
  EXPECT_EQ(config.flood.burst, 80.0);
  EXPECT_EQ(config.flood.banTime, std::chrono::seconds(300));
  EXPECT_EQ(config.flood.maxSources, 1000u);
}

TEST_F(ConfigTest, FloodErrorsNameLineAndColumn) {
  EXPECT_THAT(errorFor(std::string(kMinimal) + "flood:\n  rate: 0\n"), HasSubstr(":4:9: rate"));
  EXPECT_THAT(errorFor(std::string(kMinimal) + "flood:\n  ban_time: 60\n"), HasSubstr(":4:13: "));
  EXPECT_THAT(errorFor(std::string(kMinimal) + "flood:\n  max_source: 10\n"),
              HasSubstr("unknown key 'max_source'"));
}

TEST_F(ConfigTest, StopDrainDefaultsSettingsAndErrors) {
  Config config = loadConfig(write(kMinimal));
  EXPECT_EQ(config.stop.drainTime, std::chrono::seconds(10));
  EXPECT_EQ(config.stop.retryAfter, std::chrono::seconds(30));
  config =
      loadConfig(write(std::string(kMinimal) + "stop:\n  drain_time: 0s\n  retry_after: 2m\n"));
  EXPECT_EQ(config.stop.drainTime, std::chrono::milliseconds(0));
  EXPECT_EQ(config.stop.retryAfter, std::chrono::seconds(120));
  EXPECT_THAT(errorFor(std::string(kMinimal) + "stop:\n  drain_time: 10\n"), HasSubstr(":4:15: "));
  EXPECT_THAT(errorFor(std::string(kMinimal) + "stop:\n  drain: 1s\n"),
              HasSubstr("unknown key 'drain'"));
}

TEST_F(ConfigTest, ControlSocketDefaultsSettingsAndErrors) {
  Config config = loadConfig(write(std::string(kMinimal) + "state_dir: /srv/wp\n"));
  EXPECT_EQ(config.control.socket, "/srv/wp/control.sock");
  EXPECT_EQ(config.control.mode, 0660u);
  EXPECT_EQ(config.control.group, "");
  config =
      loadConfig(write(std::string(kMinimal) +
                       "control:\n  socket: /run/x.sock\n  mode: \"0600\"\n  group: sipops\n"));
  EXPECT_EQ(config.control.socket, "/run/x.sock");
  EXPECT_EQ(config.control.mode, 0600u);
  EXPECT_EQ(config.control.group, "sipops");
  EXPECT_EQ(loadConfig(write(std::string(kMinimal) + "control: { socket: \"\" }\n")).control.socket,
            "");
  EXPECT_THAT(errorFor(std::string(kMinimal) + "control:\n  mode: \"0066\"\n"),
              HasSubstr(":4:9: control mode must be an octal mode"));
  EXPECT_THAT(errorFor(std::string(kMinimal) + "control:\n  path: /x\n"),
              HasSubstr("unknown key 'path'"));
}

}  // namespace
}  // namespace waypoint::app
