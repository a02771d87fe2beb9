#pragma once
// waypoint.yaml, loaded and checked. Every error names file, line and column.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "waypoint/auth/authenticator.hpp"
#include "waypoint/auth/source_guard.hpp"
#include "waypoint/config/yaml_reader.hpp"
#include "waypoint/persistence/binding_persistence.hpp"
#include "waypoint/routing/rules.hpp"
#include "waypoint/transport/transports.hpp"

namespace waypoint::app {

// A configuration error an operator can act on: "FILE:LINE:COLUMN: what is wrong".
using ConfigError = config::ConfigError;

// Every mapping's keys as the loader accepts them (the routing rules' included), for the
// test that checks them against docs/configuration.md.
std::vector<const config::KeyTable*> configKeyTables();

struct TimerConfig {
  std::chrono::milliseconds t1{500};
  std::chrono::milliseconds t2{4000};
  std::chrono::milliseconds t4{5000};
};

struct TransactionConfig {
  bool send100Trying = true;  // INVITE server transactions answer 100 Trying at once
};

struct RegistrarConfig {
  std::chrono::seconds minExpires{60};
  std::chrono::seconds maxExpires{3600};
  std::chrono::seconds defaultExpires{3600};
  std::size_t maxContacts = 10;
  persistence::PersistenceSettings persistence;  // registrar.persistence
};

struct LogConfig {
  std::string level = "info";  // trace, debug, info, warning, error, critical, off
  std::string pattern = "%Y-%m-%d %H:%M:%S.%e [%l] %v";
};

struct ProxyConfig {
  std::chrono::milliseconds timerC{180000};  // a ringing INVITE branch is cancelled after this
  std::uint32_t maxForwards = 70;            // inserted into requests that have none
};

// The `control:` section: the unix socket waypointctl talks to.
struct ControlConfig {
  // Empty: no control socket. Default: $RUNTIME_DIRECTORY/control.sock under systemd,
  // else <state_dir>/control.sock.
  std::string socket;
  bool socketConfigured = false;  // control.socket is in the file (not the default)
  unsigned mode = 0660;
  std::string group;  // empty: the daemon's own
};

// The `stop:` section: what SIGTERM does before the process exits.
struct StopConfig {
  // Requests already taken in get this long to get their final response.
  std::chrono::milliseconds drainTime{10000};
  std::chrono::seconds retryAfter{30};  // in the 503 to requests that arrive meanwhile
};

struct MetricsConfig {
  std::string file;  // Prometheus text file written on SIGUSR1 and at exit; empty: none
  // Where GET /metrics is served (`metrics.listen`); nullopt: no HTTP endpoint.
  std::optional<transport::Endpoint> listen =
      transport::Endpoint{boost::asio::ip::make_address_v4("127.0.0.1"), 9260};
};

struct SecurityConfig {
  // Record-Route token secret; empty: the one kept in <state_dir>/route-secret (made at
  // first start). Every instance behind one name must share it.
  std::string routeSecret;
  std::vector<std::string> previousRouteSecrets;  // still accepted during a rotation
  std::string serverHeader;                       // empty: no Server header
  // Signs digest nonces; empty: the one kept in <state_dir>/auth-secret. Share it among
  // instances behind one name so each accepts the others' nonces.
  std::string authSecret;
};

// The `auth:` section: digest authentication, on when a users file is given.
struct AuthConfig {
  std::string usersFile;  // resolved against the config file's folder; empty: no auth
  auth::AuthSettings settings;
  bool challengeRegister = true;  // REGISTER for a served domain: 401
  bool challengeCalls = true;     // requests from local users leaving the proxy: 407
  bool exemptTrusted = true;      // `trusted:` sources are not challenged
  bool strictIdentity = true;     // `identity: strict`
};

struct Config {
  std::string path;
  std::vector<transport::ListenerConfig> listeners;
  std::vector<std::string> domains;  // served domains (registrar, later)
  std::vector<std::string> names;    // host names/addresses that mean "this server"
  // The domain of sip:user@<this server>; default: the only served domain, if just one.
  std::string defaultDomain;
  std::string stateDir;                          // kept across restarts: the route secret
  std::vector<transport::AddressBlock> trusted;  // sources whose preloaded Routes are followed
  SecurityConfig security;
  AuthConfig auth;
  // The `tls:` section: every TLS and WSS listener's settings (each may override them) and
  // those of outgoing TLS connections. Without a certificate, the self-signed one in
  // <state_dir>/tls is used.
  std::optional<transport::TlsSettings> tls;
  TimerConfig timers;
  TransactionConfig transactions;
  RegistrarConfig registrar;
  transport::TransportSettings transport;
  LogConfig log;
  MetricsConfig metrics;
  ProxyConfig proxy;
  StopConfig stop;
  ControlConfig control;
  auth::FloodSettings flood;  // the `flood:` section: per-source rate limit and bans
  // The compiled `routing:` section; never null (the built-in default when absent).
  // Shared and immutable, so a reload can swap it while requests hold the old one.
  std::shared_ptr<const routing::RuleSet> routing = std::make_shared<const routing::RuleSet>();
};

// The levels `log.level` and `waypointctl log-level` accept, and their list for errors.
bool isLogLevel(const std::string& level);
inline constexpr const char* kLogLevelsText = "trace, debug, info, warning, error, critical, off";

// Throws ConfigError on a missing file, bad YAML, unknown key or bad value.
Config loadConfig(const std::string& path);

}  // namespace waypoint::app
