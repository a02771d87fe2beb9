#include "waypoint/app/config.hpp"

#include <yaml-cpp/yaml.h>

#include <boost/asio/ip/address.hpp>
#include <charconv>
#include <fstream>
#include <set>
#include <sstream>

namespace waypoint::app {

namespace {

// Reads one YAML document, turning every problem into "FILE:LINE:COLUMN: message".
class Reader {
 public:
  explicit Reader(std::string path) : path_(std::move(path)) {}

  [[noreturn]] void fail(const YAML::Mark& mark, const std::string& message) const {
    std::ostringstream text;
    text << path_ << ':' << (mark.line + 1) << ':' << (mark.column + 1) << ": " << message;
    throw ConfigError(text.str());
  }

  void expectMap(const YAML::Node& node, const std::string& what) const {
    if (!node.IsMap()) fail(node.Mark(), what + " must be a mapping");
  }

  // Unknown keys are errors: a typo must not silently fall back to a default.
  void onlyKeys(const YAML::Node& map, const std::string& where, std::initializer_list<const char*> allowed) const {
    const std::set<std::string> names(allowed.begin(), allowed.end());
    for (const auto& entry : map) {
      const std::string key = entry.first.Scalar();
      if (names.count(key) == 0) {
        std::string list;
        for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
        fail(entry.first.Mark(), "unknown key '" + key + "' in " + where + " (expected one of: " + list + ")");
      }
    }
  }

  std::string string(const YAML::Node& node, const std::string& what) const {
    if (!node.IsScalar()) fail(node.Mark(), what + " must be a string");
    return node.Scalar();
  }

  std::uint64_t unsignedValue(const YAML::Node& node, const std::string& what, std::uint64_t min,
                              std::uint64_t max) const {
    const std::string text = node.IsScalar() ? node.Scalar() : std::string();
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (!node.IsScalar() || ec != std::errc() || end != text.data() + text.size()) {
      fail(node.Mark(), what + " must be a whole number");
    }
    if (value < min || value > max) {
      fail(node.Mark(), what + " must be between " + std::to_string(min) + " and " + std::to_string(max));
    }
    return value;
  }

  // "500ms", "4s", "2m": a unit is required so that nobody guesses.
  std::chrono::milliseconds duration(const YAML::Node& node, const std::string& what,
                                     std::chrono::milliseconds min) const {
    const std::string text = node.IsScalar() ? node.Scalar() : std::string();
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    const std::string unit(end, text.data() + text.size());
    std::uint64_t factor = 0;
    if (unit == "ms") factor = 1;
    if (unit == "s") factor = 1000;
    if (unit == "m") factor = 60000;
    if (!node.IsScalar() || ec != std::errc() || end == text.data() || factor == 0) {
      fail(node.Mark(), what + " must be a duration with a unit, like 500ms, 4s or 2m (got '" + text + "')");
    }
    if (value > 24ull * 3600 * 1000 / factor) fail(node.Mark(), what + " is longer than a day");
    const std::chrono::milliseconds result(value * factor);
    if (result < min) fail(node.Mark(), what + " must be at least " + std::to_string(min.count()) + "ms");
    return result;
  }

  std::vector<std::string> stringList(const YAML::Node& node, const std::string& what) const {
    if (!node.IsSequence()) fail(node.Mark(), what + " must be a list");
    std::vector<std::string> result;
    for (const auto& item : node) {
      const std::string value = string(item, what + " entry");
      if (value.empty()) fail(item.Mark(), what + " entry must not be empty");
      result.push_back(value);
    }
    return result;
  }

 private:
  std::string path_;
};

transport::ListenerConfig listener(const Reader& r, const YAML::Node& node) {
  r.expectMap(node, "a listener");
  r.onlyKeys(node, "listener", {"transport", "address", "port"});
  transport::ListenerConfig result;
  if (!node["transport"]) r.fail(node.Mark(), "listener needs 'transport' (udp or tcp)");
  if (!node["address"]) r.fail(node.Mark(), "listener needs 'address' (a numeric IPv4 or IPv6 address)");
  const std::string protocol = r.string(node["transport"], "transport");
  const auto parsed = transport::protocolFromString(protocol);
  if (!parsed || (*parsed != transport::Protocol::udp && *parsed != transport::Protocol::tcp)) {
    r.fail(node["transport"].Mark(), "transport must be udp or tcp (got '" + protocol + "')");
  }
  result.protocol = *parsed;
  result.address = r.string(node["address"], "address");
  boost::system::error_code ec;
  boost::asio::ip::make_address(result.address, ec);
  if (ec) r.fail(node["address"].Mark(), "address must be a numeric IPv4 or IPv6 address (got '" + result.address + "')");
  if (node["port"]) result.port = static_cast<std::uint16_t>(r.unsignedValue(node["port"], "port", 0, 65535));
  return result;
}

void limits(const Reader& r, const YAML::Node& node, transport::TransportSettings& t) {
  r.expectMap(node, "limits");
  r.onlyKeys(node, "limits",
             {"max_message_size", "udp_mtu", "udp_receive_buffer", "tcp_idle_timeout", "tcp_connect_timeout",
              "tcp_max_connections_per_source", "tcp_max_connections"});
  if (node["max_message_size"]) t.maxMessageSize = r.unsignedValue(node["max_message_size"], "max_message_size", 1024, 1 << 20);
  if (node["udp_mtu"]) t.udpMtu = r.unsignedValue(node["udp_mtu"], "udp_mtu", 200, 65535);
  if (node["udp_receive_buffer"]) {
    t.udpReceiveBuffer = static_cast<int>(r.unsignedValue(node["udp_receive_buffer"], "udp_receive_buffer", 0, 1 << 30));
  }
  if (node["tcp_idle_timeout"]) {
    t.tcpIdleTimeout = std::chrono::duration_cast<std::chrono::seconds>(
        r.duration(node["tcp_idle_timeout"], "tcp_idle_timeout", std::chrono::seconds(1)));
  }
  if (node["tcp_connect_timeout"]) {
    t.tcpConnectTimeout = std::chrono::duration_cast<std::chrono::seconds>(
        r.duration(node["tcp_connect_timeout"], "tcp_connect_timeout", std::chrono::seconds(1)));
  }
  if (node["tcp_max_connections_per_source"]) {
    t.maxConnectionsPerSource = r.unsignedValue(node["tcp_max_connections_per_source"], "tcp_max_connections_per_source", 1, 1000000);
  }
  if (node["tcp_max_connections"]) {
    t.maxConnections = r.unsignedValue(node["tcp_max_connections"], "tcp_max_connections", 1, 1000000);
  }
}

}  // namespace

Config loadConfig(const std::string& path) {
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
  r.onlyKeys(root, "the configuration",
             {"listen", "domains", "names", "timers", "transactions", "registrar", "limits", "log", "metrics"});

  Config config;
  config.path = path;
  if (!root["listen"]) r.fail(root.Mark(), "'listen' is required: at least one listener");
  if (!root["listen"].IsSequence() || root["listen"].size() == 0) {
    r.fail(root["listen"].Mark(), "'listen' must be a non-empty list of listeners");
  }
  for (const auto& item : root["listen"]) config.listeners.push_back(listener(r, item));
  if (root["domains"]) config.domains = r.stringList(root["domains"], "domains");
  if (root["names"]) config.names = r.stringList(root["names"], "names");

  if (const auto timers = root["timers"]) {
    r.expectMap(timers, "timers");
    r.onlyKeys(timers, "timers", {"t1", "t2", "t4"});
    if (timers["t1"]) config.timers.t1 = r.duration(timers["t1"], "t1", std::chrono::milliseconds(1));
    if (timers["t2"]) config.timers.t2 = r.duration(timers["t2"], "t2", std::chrono::milliseconds(1));
    if (timers["t4"]) config.timers.t4 = r.duration(timers["t4"], "t4", std::chrono::milliseconds(1));
    if (config.timers.t2 < config.timers.t1) r.fail(timers.Mark(), "t2 must not be shorter than t1");
  }
  if (const auto transactions = root["transactions"]) {
    r.expectMap(transactions, "transactions");
    r.onlyKeys(transactions, "transactions", {"send_100_trying"});
    if (const auto trying = transactions["send_100_trying"]) {
      const std::string value = r.string(trying, "send_100_trying");
      if (value != "true" && value != "false") r.fail(trying.Mark(), "send_100_trying must be true or false");
      config.transactions.send100Trying = value == "true";
    }
  }
  if (const auto reg = root["registrar"]) {
    r.expectMap(reg, "registrar");
    r.onlyKeys(reg, "registrar", {"min_expires", "max_expires", "default_expires", "max_contacts"});
    using std::chrono::duration_cast;
    using std::chrono::seconds;
    auto& rc = config.registrar;
    if (reg["min_expires"]) rc.minExpires = duration_cast<seconds>(r.duration(reg["min_expires"], "min_expires", seconds(1)));
    if (reg["max_expires"]) rc.maxExpires = duration_cast<seconds>(r.duration(reg["max_expires"], "max_expires", seconds(1)));
    if (reg["default_expires"]) {
      rc.defaultExpires = duration_cast<seconds>(r.duration(reg["default_expires"], "default_expires", seconds(1)));
    }
    if (reg["max_contacts"]) rc.maxContacts = r.unsignedValue(reg["max_contacts"], "max_contacts", 1, 1000);
    if (rc.maxExpires < rc.minExpires) r.fail(reg.Mark(), "max_expires must not be shorter than min_expires");
    if (rc.defaultExpires < rc.minExpires || rc.defaultExpires > rc.maxExpires) {
      r.fail(reg.Mark(), "default_expires must lie between min_expires and max_expires");
    }
  }
  if (const auto node = root["limits"]) limits(r, node, config.transport);

  if (const auto log = root["log"]) {
    r.expectMap(log, "log");
    r.onlyKeys(log, "log", {"level", "pattern"});
    if (log["level"]) {
      config.log.level = r.string(log["level"], "log level");
      static const std::set<std::string> levels{"trace", "debug", "info", "warning", "error", "critical", "off"};
      if (levels.count(config.log.level) == 0) {
        r.fail(log["level"].Mark(), "log level must be one of trace, debug, info, warning, error, critical, off");
      }
    }
    if (log["pattern"]) config.log.pattern = r.string(log["pattern"], "log pattern");
  }
  if (const auto metrics = root["metrics"]) {
    r.expectMap(metrics, "metrics");
    r.onlyKeys(metrics, "metrics", {"file"});
    if (metrics["file"]) config.metrics.file = r.string(metrics["file"], "metrics file");
  }
  return config;
}

}  // namespace waypoint::app
