#include "waypoint/app/config.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>

#include "waypoint/config/yaml_reader.hpp"
#include "waypoint/proxy/route_token.hpp"
#include "waypoint/sip/text.hpp"

namespace waypoint::app {

namespace {

using config::KeyTable;

// The keys of each mapping, for onlyKeys() and the reference test (configKeyTables()).
const KeyTable kTlsKeys{"tls",
                        {"certificate", "private_key", "ca_file", "min_version", "ciphers",
                         "ciphersuites", "verify_peer", "require_client_certificate"}};
const KeyTable kListenerKeys{"listen",
                             {"transport", "address", "port", "advertise", "origins", "tls"}};
const KeyTable kLimitsKeys{
    "limits",
    {"max_message_size", "udp_mtu", "udp_receive_buffer", "tcp_idle_timeout", "tcp_connect_timeout",
     "tcp_max_connections_per_source", "tcp_max_connections", "handshake_timeout",
     "max_queued_bytes", "max_handshakes_per_source"}};
const KeyTable kSecurityKeys{
    "security", {"route_secret", "previous_route_secrets", "server_header", "auth_secret"}};
const KeyTable kAuthFailureKeys{"auth",
                                {"free", "backoff", "max_backoff", "ban_after", "ban_time"}};
const KeyTable kAuthKeys{"auth",
                         {"users_file", "algorithms", "nonce_lifetime", "register", "calls",
                          "exempt_trusted", "identity", "failures"}};
const KeyTable kFloodKeys{"flood", {"enabled", "rate", "burst", "ban_time", "max_sources"}};
const KeyTable kPersistenceKeys{"registrar", {"enabled", "file", "batch_interval"}};
const KeyTable kControlKeys{"control", {"socket", "mode", "group"}};
const KeyTable kTopLevelKeys{"", {"listen",  "domains",  "names",   "default_domain", "state_dir",
                                  "trusted", "security", "timers",  "transactions",   "registrar",
                                  "limits",  "log",      "metrics", "routing",        "proxy",
                                  "tls",     "auth",     "flood",   "stop",           "control"}};
const KeyTable kTimerKeys{"timers", {"t1", "t2", "t4"}};
const KeyTable kTransactionKeys{"transactions", {"send_100_trying"}};
const KeyTable kRegistrarKeys{
    "registrar", {"min_expires", "max_expires", "default_expires", "max_contacts", "persistence"}};
const KeyTable kProxyKeys{"proxy", {"timer_c", "max_forwards"}};
const KeyTable kStopKeys{"stop", {"drain_time", "retry_after"}};
const KeyTable kLogKeys{"log", {"level", "pattern"}};
const KeyTable kMetricsKeys{"metrics", {"file", "listen"}};

using config::Reader;

// A listener's `advertise: HOST[:PORT]`: a name or an address others reach us by.
transport::HostPort advertisedName(const Reader& r, const YAML::Node& node) {
  const std::string text = r.string(node, "advertise");
  const auto parsed = transport::parseHostPort(text);
  if (!parsed) {
    r.fail(node.Mark(),
           "advertise must be HOST or HOST:PORT, an IPv6 address in brackets when a port "
           "follows (got '" +
               text + "')");
  }
  const auto address = transport::parseIpAddress(parsed->host);
  if (address && address->is_unspecified())
    r.fail(node.Mark(), "advertise must name a reachable host, not a wildcard address");
  return *parsed;
}

// `metrics.listen: ADDRESS:PORT` (an IP address, IPv6 in brackets); "" turns it off.
std::optional<transport::Endpoint> metricsListen(const Reader& r, const YAML::Node& node) {
  const std::string text = r.string(node, "metrics listen");
  if (text.empty()) return std::nullopt;
  const auto parsed = transport::parseHostPort(text);
  const auto address = parsed ? transport::parseIpAddress(parsed->host) : std::nullopt;
  if (!address || !parsed->port) {
    r.fail(node.Mark(),
           "metrics listen must be ADDRESS:PORT with an IP address (\"127.0.0.1:9260\", "
           "\"[::1]:9260\"), or \"\" for no HTTP endpoint (got '" +
               text + "')");
  }
  return transport::Endpoint{*address, *parsed->port};
}

using transport::Protocol;

bool isSecure(Protocol protocol) { return protocol == Protocol::tls || protocol == Protocol::wss; }

std::uint16_t defaultPort(Protocol protocol) {
  switch (protocol) {
    case Protocol::tls:
      return 5061;
    case Protocol::ws:
      return 80;
    case Protocol::wss:
      return 443;
    default:
      return 5060;
  }
}

// The `tls:` section, at the top level or in a listener, over what is already in `tls`.
void tlsSettings(const Reader& r, const YAML::Node& node, transport::TlsSettings& tls) {
  r.expectMap(node, "tls");
  r.onlyKeys(node, "tls", kTlsKeys);
  if (node["certificate"]) tls.certificateFile = r.string(node["certificate"], "certificate");
  if (node["private_key"]) tls.privateKeyFile = r.string(node["private_key"], "private_key");
  if (node["certificate"] && !node["private_key"])
    r.fail(node.Mark(), "tls needs 'private_key' with 'certificate'");
  if (node["private_key"] && !node["certificate"])
    r.fail(node.Mark(), "tls needs 'certificate' with 'private_key'");
  if (node["ca_file"]) tls.caFile = r.string(node["ca_file"], "ca_file");
  if (const auto version = node["min_version"]) {
    tls.minVersion = r.string(version, "min_version");
    if (tls.minVersion != "1.2" && tls.minVersion != "1.3")
      r.fail(version.Mark(),
             "min_version must be \"1.2\" or \"1.3\" (got '" + tls.minVersion + "')");
  }
  if (node["ciphers"]) tls.cipherList = r.string(node["ciphers"], "ciphers");
  if (node["ciphersuites"]) tls.cipherSuites = r.string(node["ciphersuites"], "ciphersuites");
  if (node["verify_peer"]) tls.verifyPeer = r.boolean(node["verify_peer"], "verify_peer");
  if (const auto require = node["require_client_certificate"])
    tls.requireClientCertificate = r.boolean(require, "require_client_certificate");
}

transport::ListenerConfig listener(const Reader& r, const YAML::Node& node,
                                   const transport::TlsSettings& tls) {
  r.expectMap(node, "a listener");
  r.onlyKeys(node, "listener", kListenerKeys);
  transport::ListenerConfig result;
  if (!node["transport"])
    r.fail(node.Mark(), "listener needs 'transport' (udp, tcp, tls, ws or wss)");
  if (!node["address"])
    r.fail(node.Mark(), "listener needs 'address' (a numeric IPv4 or IPv6 address)");
  const std::string protocol = r.string(node["transport"], "transport");
  const auto parsed = transport::protocolFromString(protocol);
  if (!parsed) {
    r.fail(node["transport"].Mark(),
           "transport must be udp, tcp, tls, ws or wss (got '" + protocol + "')");
  }
  result.protocol = *parsed;
  result.port = defaultPort(result.protocol);
  if (isSecure(result.protocol)) {
    result.tls = tls;
    if (node["tls"]) tlsSettings(r, node["tls"], *result.tls);
  } else if (node["tls"]) {
    r.fail(node["tls"].Mark(), "'tls' applies only to a tls or wss listener");
  }
  result.address = r.string(node["address"], "address");
  boost::system::error_code ec;
  boost::asio::ip::make_address(result.address, ec);
  if (ec)
    r.fail(node["address"].Mark(),
           "address must be a numeric IPv4 or IPv6 address (got '" + result.address + "')");
  if (node["port"])
    result.port = static_cast<std::uint16_t>(r.unsignedValue(node["port"], "port", 0, 65535));
  if (const auto advertise = node["advertise"]) result.advertise = advertisedName(r, advertise);
  if (node["origins"]) {
    if (result.protocol != Protocol::ws && result.protocol != Protocol::wss)
      r.fail(node["origins"].Mark(), "'origins' applies only to a ws or wss listener");
    result.origins = r.stringList(node["origins"], "origins");
  }
  return result;
}

void limits(const Reader& r, const YAML::Node& node, transport::TransportSettings& t) {
  r.expectMap(node, "limits");
  r.onlyKeys(node, "limits", kLimitsKeys);
  if (node["max_message_size"])
    t.maxMessageSize = r.unsignedValue(node["max_message_size"], "max_message_size", 1024, 1 << 20);
  if (node["udp_mtu"]) t.udpMtu = r.unsignedValue(node["udp_mtu"], "udp_mtu", 200, 65535);
  if (node["udp_receive_buffer"]) {
    t.udpReceiveBuffer = static_cast<int>(
        r.unsignedValue(node["udp_receive_buffer"], "udp_receive_buffer", 0, 1 << 30));
  }
  if (node["tcp_idle_timeout"]) {
    t.tcpIdleTimeout = std::chrono::duration_cast<std::chrono::seconds>(
        r.duration(node["tcp_idle_timeout"], "tcp_idle_timeout", std::chrono::seconds(1)));
  }
  if (node["tcp_connect_timeout"]) {
    t.tcpConnectTimeout = std::chrono::duration_cast<std::chrono::seconds>(
        r.duration(node["tcp_connect_timeout"], "tcp_connect_timeout", std::chrono::seconds(1)));
  }
  if (node["handshake_timeout"]) {
    t.handshakeTimeout = std::chrono::duration_cast<std::chrono::seconds>(
        r.duration(node["handshake_timeout"], "handshake_timeout", std::chrono::seconds(1)));
  }
  if (node["max_queued_bytes"]) {
    t.maxQueuedBytes = r.unsignedValue(node["max_queued_bytes"], "max_queued_bytes", 0, 1 << 30);
  }
  if (node["max_handshakes_per_source"]) {
    t.maxHandshakesPerSource =
        r.unsignedValue(node["max_handshakes_per_source"], "max_handshakes_per_source", 1, 1000000);
  }
  if (node["tcp_max_connections_per_source"]) {
    t.maxConnectionsPerSource = r.unsignedValue(node["tcp_max_connections_per_source"],
                                                "tcp_max_connections_per_source", 1, 1000000);
  }
  if (node["tcp_max_connections"]) {
    t.maxConnections =
        r.unsignedValue(node["tcp_max_connections"], "tcp_max_connections", 1, 1000000);
  }
}

void security(const Reader& r, const YAML::Node& node, SecurityConfig& s) {
  r.expectMap(node, "security");
  r.onlyKeys(node, "security", kSecurityKeys);
  auto secret = [&r](const YAML::Node& item, const std::string& what) {
    std::string value = r.string(item, what);
    if (value.size() < proxy::RouteTokenSigner::kMinSecretLength) {
      r.fail(item.Mark(), what + " must be at least " +
                              std::to_string(proxy::RouteTokenSigner::kMinSecretLength) +
                              " characters long");
    }
    return value;
  };
  if (node["route_secret"]) s.routeSecret = secret(node["route_secret"], "route_secret");
  if (node["auth_secret"]) s.authSecret = secret(node["auth_secret"], "auth_secret");
  if (const auto previous = node["previous_route_secrets"]) {
    for (const auto& item : r.oneOrMany(previous, "previous_route_secrets")) {
      s.previousRouteSecrets.push_back(secret(item, "previous_route_secrets"));
    }
  }
  if (const auto server = node["server_header"]) {
    s.serverHeader = r.string(server, "server_header");
    if (s.serverHeader.find_first_of("\r\n") != std::string::npos) {
      r.fail(server.Mark(), "server_header must be one line");
    }
  }
}

void failureLimits(const Reader& r, const YAML::Node& node, auth::FailureSettings& f) {
  r.expectMap(node, "failures");
  r.onlyKeys(node, "failures", kAuthFailureKeys);
  using std::chrono::seconds;
  if (node["free"])
    f.freeFailures = static_cast<unsigned>(r.unsignedValue(node["free"], "free", 0, 1000));
  if (node["backoff"])
    f.backoff = r.duration(node["backoff"], "backoff", std::chrono::milliseconds(1));
  if (node["max_backoff"]) {
    f.maxBackoff = r.duration(node["max_backoff"], "max_backoff", std::chrono::milliseconds(1));
  }
  if (f.maxBackoff < f.backoff) r.fail(node.Mark(), "max_backoff must not be shorter than backoff");
  if (node["ban_after"]) {
    f.banAfter = static_cast<unsigned>(r.unsignedValue(node["ban_after"], "ban_after", 0, 100000));
  }
  if (node["ban_time"]) {
    f.banTime =
        std::chrono::duration_cast<seconds>(r.duration(node["ban_time"], "ban_time", seconds(1)));
  }
}

// A path in the config is relative to the config file's folder.
std::string besideConfig(const std::string& configPath, const std::string& path) {
  if (path.empty() || path.front() == '/') return path;
  const auto slash = configPath.rfind('/');
  return slash == std::string::npos ? path : configPath.substr(0, slash + 1) + path;
}

void authSection(const Reader& r, const YAML::Node& node, AuthConfig& a) {
  r.expectMap(node, "auth");
  r.onlyKeys(node, "auth", kAuthKeys);
  if (const auto users = node["users_file"]) {
    a.usersFile = besideConfig(r.path(), r.string(users, "users_file"));
    if (a.usersFile.empty()) r.fail(users.Mark(), "users_file must not be empty");
    auth::UserFile::load(a.usersFile);  // its own errors name its lines
  }
  if (const auto list = node["algorithms"]) {
    a.settings.algorithms.clear();
    for (const auto& item : r.oneOrMany(list, "algorithms")) {
      const std::string name = r.string(item, "algorithms");
      const auto algorithm = name.empty() ? std::nullopt : auth::algorithmFromName(name);
      if (!algorithm) r.fail(item.Mark(), "algorithms are SHA-256 and MD5 (got '" + name + "')");
      if (std::find(a.settings.algorithms.begin(), a.settings.algorithms.end(), *algorithm) !=
          a.settings.algorithms.end()) {
        r.fail(item.Mark(), "algorithm '" + name + "' is listed twice");
      }
      a.settings.algorithms.push_back(*algorithm);
    }
  }
  if (const auto lifetime = node["nonce_lifetime"]) {
    a.settings.nonceLifetime = std::chrono::duration_cast<std::chrono::seconds>(
        r.duration(lifetime, "nonce_lifetime", std::chrono::seconds(1)));
  }
  if (node["register"]) a.challengeRegister = r.boolean(node["register"], "register");
  if (node["calls"]) a.challengeCalls = r.boolean(node["calls"], "calls");
  if (node["exempt_trusted"]) a.exemptTrusted = r.boolean(node["exempt_trusted"], "exempt_trusted");
  if (const auto identity = node["identity"]) {
    const std::string value = r.string(identity, "identity");
    if (value != "strict" && value != "off")
      r.fail(identity.Mark(), "identity must be strict or off");
    a.strictIdentity = value == "strict";
  }
  if (const auto failures = node["failures"]) failureLimits(r, failures, a.settings.failures);
}

// The `flood:` section: the per-source token bucket in front of the parser.
void flood(const Reader& r, const YAML::Node& node, auth::FloodSettings& f) {
  r.expectMap(node, "flood");
  r.onlyKeys(node, "flood", kFloodKeys);
  if (node["enabled"]) f.enabled = r.boolean(node["enabled"], "enabled");
  if (node["rate"]) f.rate = static_cast<double>(r.unsignedValue(node["rate"], "rate", 1, 1e9));
  if (node["burst"]) f.burst = static_cast<double>(r.unsignedValue(node["burst"], "burst", 1, 1e9));
  if (node["ban_time"]) {
    f.banTime = std::chrono::duration_cast<std::chrono::seconds>(
        r.duration(node["ban_time"], "ban_time", std::chrono::seconds(1)));
  }
  if (node["max_sources"])
    f.maxSources = r.unsignedValue(node["max_sources"], "max_sources", 1, 1 << 24);
}

// `registrar.persistence:` the binding database and how often it is written.
void persistenceSettings(const Reader& r, const YAML::Node& node,
                         persistence::PersistenceSettings& p) {
  r.expectMap(node, "persistence");
  r.onlyKeys(node, "persistence", kPersistenceKeys);
  if (node["enabled"]) p.enabled = r.boolean(node["enabled"], "enabled");
  if (const auto file = node["file"]) {
    p.file = r.string(file, "persistence file");
    if (p.file.empty()) r.fail(file.Mark(), "persistence file must not be empty");
  }
  if (const auto interval = node["batch_interval"]) {
    p.batchInterval = r.duration(interval, "batch_interval", std::chrono::milliseconds(10));
    if (p.batchInterval > std::chrono::seconds(10))
      r.fail(interval.Mark(), "batch_interval must be at most 10s (what a crash may lose)");
  }
}

// systemd's StateDirectory= hands the directory over in $STATE_DIRECTORY.
std::string defaultStateDir() {
  const char* fromSystemd = std::getenv("STATE_DIRECTORY");
  if (fromSystemd != nullptr && *fromSystemd != '\0') {
    const std::string list(fromSystemd);
    return list.substr(0, list.find(':'));
  }
  return "/var/lib/waypoint";
}

std::string defaultControlSocket(const std::string& stateDir) {
  const char* fromSystemd = std::getenv("RUNTIME_DIRECTORY");
  if (fromSystemd != nullptr && *fromSystemd != '\0') {
    const std::string list(fromSystemd);
    return list.substr(0, list.find(':')) + "/control.sock";
  }
  return stateDir + "/control.sock";
}

void control(const Reader& r, const YAML::Node& node, ControlConfig& control) {
  r.expectMap(node, "control");
  r.onlyKeys(node, "control", kControlKeys);
  if (node["socket"]) {
    control.socket = r.string(node["socket"], "control socket");
    control.socketConfigured = true;
  }
  if (const auto mode = node["mode"]) {
    const std::string text = r.string(mode, "control mode");
    char* end = nullptr;
    const unsigned long value = std::strtoul(text.c_str(), &end, 8);
    if (text.empty() || *end != '\0' || value > 0777 || (value & 0600) != 0600) {
      r.fail(mode.Mark(),
             "control mode must be an octal mode such as \"0660\" that lets the daemon's "
             "user read and write (got '" +
                 text + "')");
    }
    control.mode = static_cast<unsigned>(value);
  }
  if (node["group"]) control.group = r.string(node["group"], "control group");
}

// Says which of the usual mistakes it is: no such file, a directory, no permission.
void checkReadableFile(const std::string& path) {
  struct stat status {};
  if (::stat(path.c_str(), &status) != 0) {
    throw ConfigError(path + ": cannot read the configuration file: " + std::strerror(errno));
  }
  if (S_ISDIR(status.st_mode)) {
    throw ConfigError(path + ": is a directory, not a configuration file (give the file, e.g. " +
                      path + (path.ends_with('/') ? "" : "/") + "waypoint.yaml)");
  }
  if (!S_ISREG(status.st_mode)) throw ConfigError(path + ": is not a regular file");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    throw ConfigError(
        path + ": cannot read the configuration file: " + std::strerror(error) +
        (error == EACCES ? " (it must be readable by the user waypointd runs as)" : ""));
  }
  ::close(fd);
}

}  // namespace

std::vector<const config::KeyTable*> configKeyTables() {
  std::vector<const KeyTable*> tables{
      &kTlsKeys,   &kListenerKeys,    &kLimitsKeys,      &kSecurityKeys, &kAuthFailureKeys,
      &kAuthKeys,  &kFloodKeys,       &kPersistenceKeys, &kControlKeys,  &kTopLevelKeys,
      &kTimerKeys, &kTransactionKeys, &kRegistrarKeys,   &kProxyKeys,    &kStopKeys,
      &kLogKeys,   &kMetricsKeys};
  for (const auto* table : routing::RuleSet::keyTables()) tables.push_back(table);
  return tables;
}

bool isLogLevel(const std::string& level) {
  static const std::set<std::string> levels{"trace", "debug",    "info", "warning",
                                            "error", "critical", "off"};
  return levels.count(level) != 0;
}

Config loadConfig(const std::string& path) {
  checkReadableFile(path);
  std::ifstream file(path);
  if (!file) throw ConfigError(path + ": cannot open the configuration file");
  const Reader r(path);
  YAML::Node root;
  try {
    root = YAML::Load(file);
  } catch (const YAML::ParserException& e) {
    r.fail(e.mark, e.msg);
  }
  if (!root || root.IsNull()) throw ConfigError(path + ":1:1: the configuration file is empty");
  r.expectMap(root, "the configuration");
  r.onlyKeys(root, "the configuration", kTopLevelKeys);

  Config config;
  config.path = path;
  if (!root["listen"]) r.fail(root.Mark(), "'listen' is required: at least one listener");
  if (!root["listen"].IsSequence() || root["listen"].size() == 0) {
    r.fail(root["listen"].Mark(), "'listen' must be a non-empty list of listeners");
  }
  if (const auto tls = root["tls"]) {
    config.tls.emplace();
    tlsSettings(r, tls, *config.tls);
  }
  const transport::TlsSettings tlsDefaults = config.tls.value_or(transport::TlsSettings{});
  for (const auto& item : root["listen"])
    config.listeners.push_back(listener(r, item, tlsDefaults));
  if (root["domains"]) config.domains = r.stringList(root["domains"], "domains");
  if (root["names"]) config.names = r.stringList(root["names"], "names");
  if (const auto node = root["default_domain"]) {
    config.defaultDomain = r.string(node, "default_domain");
    const bool served = std::any_of(
        config.domains.begin(), config.domains.end(),
        [&](const std::string& d) { return sip::equalsIgnoringCase(d, config.defaultDomain); });
    if (!served) {
      r.fail(node.Mark(),
             "default_domain must be one of 'domains' (got '" + config.defaultDomain + "')");
    }
  } else if (config.domains.size() == 1) {
    config.defaultDomain = config.domains.front();
  }
  config.stateDir = defaultStateDir();
  if (const auto node = root["state_dir"]) {
    config.stateDir = r.string(node, "state_dir");
    if (config.stateDir.empty()) r.fail(node.Mark(), "state_dir must not be empty");
  }
  if (const auto node = root["trusted"]) {
    for (const auto& item : r.oneOrMany(node, "trusted")) {
      const std::string text = r.string(item, "trusted");
      const auto block = transport::parseAddressBlock(text);
      if (!block) {
        r.fail(
            item.Mark(),
            "trusted must list IP addresses or CIDR blocks like 192.0.2.0/24 (got '" + text + "')");
      }
      config.trusted.push_back(*block);
    }
  }
  if (const auto node = root["security"]) security(r, node, config.security);
  if (const auto node = root["auth"]) authSection(r, node, config.auth);

  if (const auto timers = root["timers"]) {
    r.expectMap(timers, "timers");
    r.onlyKeys(timers, "timers", kTimerKeys);
    if (timers["t1"])
      config.timers.t1 = r.duration(timers["t1"], "t1", std::chrono::milliseconds(1));
    if (timers["t2"])
      config.timers.t2 = r.duration(timers["t2"], "t2", std::chrono::milliseconds(1));
    if (timers["t4"])
      config.timers.t4 = r.duration(timers["t4"], "t4", std::chrono::milliseconds(1));
    if (config.timers.t2 < config.timers.t1)
      r.fail(timers.Mark(), "t2 must not be shorter than t1");
  }
  if (const auto transactions = root["transactions"]) {
    r.expectMap(transactions, "transactions");
    r.onlyKeys(transactions, "transactions", kTransactionKeys);
    if (const auto trying = transactions["send_100_trying"]) {
      config.transactions.send100Trying = r.boolean(trying, "send_100_trying");
    }
  }
  config.registrar.persistence.file = config.stateDir + "/bindings.sqlite";
  if (const auto reg = root["registrar"]) {
    r.expectMap(reg, "registrar");
    r.onlyKeys(reg, "registrar", kRegistrarKeys);
    if (reg["persistence"])
      persistenceSettings(r, reg["persistence"], config.registrar.persistence);
    using std::chrono::duration_cast;
    using std::chrono::seconds;
    auto& rc = config.registrar;
    if (reg["min_expires"])
      rc.minExpires =
          duration_cast<seconds>(r.duration(reg["min_expires"], "min_expires", seconds(1)));
    if (reg["max_expires"])
      rc.maxExpires =
          duration_cast<seconds>(r.duration(reg["max_expires"], "max_expires", seconds(1)));
    if (reg["default_expires"]) {
      rc.defaultExpires =
          duration_cast<seconds>(r.duration(reg["default_expires"], "default_expires", seconds(1)));
    }
    if (reg["max_contacts"])
      rc.maxContacts = r.unsignedValue(reg["max_contacts"], "max_contacts", 1, 1000);
    if (rc.maxExpires < rc.minExpires)
      r.fail(reg.Mark(), "max_expires must not be shorter than min_expires");
    if (rc.defaultExpires < rc.minExpires || rc.defaultExpires > rc.maxExpires) {
      r.fail(reg.Mark(), "default_expires must lie between min_expires and max_expires");
    }
  }
  if (const auto node = root["limits"]) limits(r, node, config.transport);
  if (const auto node = root["flood"]) flood(r, node, config.flood);
  if (const auto proxy = root["proxy"]) {
    r.expectMap(proxy, "proxy");
    r.onlyKeys(proxy, "proxy", kProxyKeys);
    if (proxy["timer_c"])
      config.proxy.timerC = r.duration(proxy["timer_c"], "timer_c", std::chrono::milliseconds(1));
    if (proxy["max_forwards"]) {
      config.proxy.maxForwards = static_cast<std::uint32_t>(
          r.unsignedValue(proxy["max_forwards"], "max_forwards", 1, 255));
    }
  }

  config.control.socket = defaultControlSocket(config.stateDir);
  if (const auto node = root["control"]) control(r, node, config.control);
  if (const auto stop = root["stop"]) {
    r.expectMap(stop, "stop");
    r.onlyKeys(stop, "stop", kStopKeys);
    if (stop["drain_time"]) {
      config.stop.drainTime =
          r.duration(stop["drain_time"], "drain_time", std::chrono::milliseconds(0));
    }
    if (stop["retry_after"]) {
      config.stop.retryAfter = std::chrono::duration_cast<std::chrono::seconds>(
          r.duration(stop["retry_after"], "retry_after", std::chrono::seconds(1)));
    }
  }
  if (const auto log = root["log"]) {
    r.expectMap(log, "log");
    r.onlyKeys(log, "log", kLogKeys);
    if (log["level"]) {
      config.log.level = r.string(log["level"], "log level");
      if (!isLogLevel(config.log.level)) {
        r.fail(log["level"].Mark(), std::string("log level must be one of ") + kLogLevelsText);
      }
    }
    if (log["pattern"]) config.log.pattern = r.string(log["pattern"], "log pattern");
  }
  if (const auto metrics = root["metrics"]) {
    r.expectMap(metrics, "metrics");
    r.onlyKeys(metrics, "metrics", kMetricsKeys);
    if (metrics["file"]) config.metrics.file = r.string(metrics["file"], "metrics file");
    if (metrics["listen"]) config.metrics.listen = metricsListen(r, metrics["listen"]);
  }
  if (const auto rules = root["routing"]) config.routing = routing::RuleSet::compile(rules, path);
  return config;
}

}  // namespace waypoint::app
