// waypointctl: asks a running waypointd over its control socket, and checks config files.

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "waypoint/app/config.hpp"
#include "waypoint/app/config_check.hpp"

namespace {

using nlohmann::json;

constexpr const char* kUsage =
    "Usage: waypointctl [-s SOCKET | -c CONFIG] [--json] COMMAND\n"
    "Commands:\n"
    "  status                    version, uptime, listeners and counts\n"
    "  bindings [AOR]            registered contacts, with their flow and time left\n"
    "  unregister AOR [CONTACT]  remove an AOR's bindings (or one contact)\n"
    "  reload                    reload the configuration; exits 1 when it is refused\n"
    "  log-level LEVEL           trace, debug, info, warning, error, critical or off\n"
    "  connections               open TCP, TLS and WebSocket connections\n"
    "  route explain 'METHOD URI' [--from URI] [--source IP] [--transport T]\n"
    "                            which rule an initial request matches and its target\n"
    "                            set (nothing is sent)\n"
    "  trace --source IP[:PORT] | --call-id ID [--count N] [--minutes M]\n"
    "                            log whole SIP messages to and from IP, or of a call\n"
    "                            (default: the first 1000, for 10 minutes)\n"
    "  trace off [ID]            end every trace (or one)\n"
    "  trace                     list the running traces\n"
    "  check-config FILE         check a configuration file (no daemon needed)\n"
    "The socket is -s SOCKET, else the control.socket of -c CONFIG (without one, the\n"
    "unit's /run/waypoint/control.sock when there is one), else\n"
    "$WAYPOINT_CONTROL_SOCKET, else /run/waypoint/control.sock.\n"
    "Exit status: 0 done, 1 refused by the daemon, 2 usage, 3 daemon not reachable.\n";

// Where the daemon's socket is under the systemd unit ($RUNTIME_DIRECTORY/control.sock).
constexpr const char* kUnitSocket = "/run/waypoint/control.sock";

constexpr int kRefused = 1;
constexpr int kUsageError = 2;
constexpr int kUnreachable = 3;
constexpr int kReplyTimeoutMs = 60000;

struct Unreachable {
  std::string why;
};

std::string unreachableReason(const std::string& path, int error) {
  switch (error) {
    case ENOENT:
      return "waypointd is not running: there is no control socket at " + path +
             " (give the daemon's config with -c FILE, or the socket with -s PATH)";
    case ECONNREFUSED:
      return "waypointd is not running: nothing listens on " + path + " (a stale socket)";
    case EACCES:
    case EPERM:
      return "permission denied on " + path +
             ": run as root, as the daemon's user or as a member of the socket's group "
             "(control.group)";
    default:
      return "cannot reach waypointd at " + path + ": " + std::strerror(error);
  }
}

// Sends one request line and returns the reply line.
std::string ask(const std::string& path, const std::string& request) {
  sockaddr_un address{};
  if (path.size() >= sizeof address.sun_path) throw Unreachable{"socket path too long: " + path};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Unreachable{std::string("socket: ") + std::strerror(errno)};
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    throw Unreachable{unreachableReason(path, errno)};
  }
  const std::string line = request + "\n";
  for (std::size_t sent = 0; sent < line.size();) {
    const ssize_t n = ::send(fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) throw Unreachable{"lost the connection to waypointd while sending"};
    sent += static_cast<std::size_t>(n);
  }
  std::string reply;
  char buffer[65536];
  while (reply.find('\n') == std::string::npos) {
    pollfd ready{fd, POLLIN, 0};
    if (::poll(&ready, 1, kReplyTimeoutMs) != 1) throw Unreachable{"waypointd did not answer"};
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    reply.append(buffer, static_cast<std::size_t>(n));
  }
  if (reply.empty()) throw Unreachable{"waypointd closed the connection without a reply"};
  return reply.substr(0, reply.find('\n'));
}

std::string text(const json& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

std::string list(const json& values) {
  std::string out;
  for (const auto& value : values) out.append(out.empty() ? "" : ", ").append(text(value));
  return out.empty() ? "none" : out;
}

void printStatus(const json& reply) {
  for (const char* key :
       {"version", "pid", "config", "uptime_seconds", "aors", "bindings", "connections",
        "server_transactions", "client_transactions", "users", "stopping"}) {
    if (reply.contains(key)) std::printf("%-20s %s\n", key, text(reply[key]).c_str());
  }
  for (const auto& listener : reply.value("listeners", json::array())) {
    std::printf("%-20s %s\n", "listening", text(listener).c_str());
  }
}

void printCertificates(const json& reply) {
  for (const auto& certificate : reply.value("certificates", json::array())) {
    std::printf(
        "certificate %s: %s\n", text(certificate["what"]).c_str(),
        certificate.value("reloaded", false) ? "reloaded" : text(certificate["error"]).c_str());
  }
}

void printReload(const json& reply) {
  std::printf("reloaded %s\nchanged: %s\nneeds a restart: %s\n", text(reply["file"]).c_str(),
              list(reply.value("changed", json::array())).c_str(),
              list(reply.value("restart_needed", json::array())).c_str());
  if (reply.contains("rules")) std::printf("routing rules: %s\n", text(reply["rules"]).c_str());
  if (reply.contains("users")) std::printf("users: %s\n", text(reply["users"]).c_str());
  printCertificates(reply);
}

void printBindings(const json& reply) {
  for (const auto& aor : reply.value("aors", json::array())) {
    std::printf("%s\n", text(aor["aor"]).c_str());
    for (const auto& binding : aor.value("bindings", json::array())) {
      const auto& flow = binding["flow"];
      std::printf("  %s q=%s expires in %s s, via %s %s%s\n", text(binding["contact"]).c_str(),
                  text(binding["q"]).c_str(), text(binding["expires_in"]).c_str(),
                  text(flow["transport"]).c_str(), text(flow["remote"]).c_str(),
                  binding.value("behind_nat", false) ? " (behind NAT)" : "");
    }
  }
}

void printConnections(const json& reply) {
  const auto& connections = reply.value("connections", json::array());
  if (connections.empty()) {
    std::printf("no open connections\n");
    return;
  }
  std::printf("%-6s %-4s %-42s %-22s %-12s %8s %8s %8s\n", "ID", "PROTO", "REMOTE", "LOCAL",
              "STATE", "AGE s", "IDLE s", "QUEUED");
  for (const auto& connection : connections) {
    std::printf("%-6s %-4s %-42s %-22s %-12s %8s %8s %8s\n", text(connection["id"]).c_str(),
                text(connection["transport"]).c_str(), text(connection["remote"]).c_str(),
                text(connection["local"]).c_str(), text(connection["state"]).c_str(),
                text(connection["state_seconds"]).c_str(), text(connection["idle_seconds"]).c_str(),
                text(connection["queued_bytes"]).c_str());
  }
}

void printRouteExplanation(const json& reply) {
  std::printf("%s\n", text(reply["request"]).c_str());
  if (reply.contains("rule")) std::printf("rule: %s\n", text(reply["rule"]).c_str());
  if (reply.contains("status")) {
    std::printf("answer: %s %s\n", text(reply["status"]).c_str(), text(reply["reason"]).c_str());
  }
  if (reply.contains("note")) std::printf("note: %s\n", text(reply["note"]).c_str());
  int group = 0;
  for (const auto& targets : reply.value("target_groups", json::array())) {
    ++group;
    for (const auto& target : targets) {
      std::printf("target group %d: %s via %s\n", group, text(target["request_uri"]).c_str(),
                  text(target["destination"]).c_str());
    }
  }
  if (reply.contains("record_route")) {
    std::printf("record-route: %s\n", reply.value("record_route", true) ? "yes" : "no");
  }
  if (reply.contains("authenticate")) {
    std::printf("authenticate: %s\n", text(reply["authenticate"]).c_str());
  }
}

void printTraces(const json& reply) {
  auto print = [](const json& trace) {
    std::printf("trace %s: %s, %s of %s messages traced, %s s left\n", text(trace["id"]).c_str(),
                text(trace["filter"]).c_str(), text(trace["traced"]).c_str(),
                text(trace["max_messages"]).c_str(), text(trace["seconds_left"]).c_str());
  };
  if (reply.contains("trace")) {
    std::printf("started ");
    print(reply["trace"]);
  } else if (reply.contains("stopped")) {
    std::printf("%s trace(s) ended\n", text(reply["stopped"]).c_str());
  } else {
    const json traces = reply.value("traces", json::array());
    if (traces.empty()) std::printf("no trace is running\n");
    for (const auto& trace : traces) print(trace);
  }
}

void printReply(const std::string& command, const json& reply) {
  if (command == "status") {
    printStatus(reply);
  } else if (command == "reload") {
    printReload(reply);
  } else if (command == "bindings") {
    printBindings(reply);
  } else if (command == "unregister") {
    std::printf("removed %s binding(s) of %s\n", text(reply["removed"]).c_str(),
                text(reply["aor"]).c_str());
  } else if (command == "log-level") {
    std::printf("log level: %s\n", text(reply["level"]).c_str());
  } else if (command == "connections") {
    printConnections(reply);
  } else if (command == "route") {
    printRouteExplanation(reply);
  } else if (command == "trace") {
    printTraces(reply);
  }
}

struct Invocation {
  std::string socket;
  std::string configPath;
  bool asJson = false;
  std::vector<std::string> words;
  json routeOptions = json::object();  // --from, --source, --transport of route explain
};

std::optional<Invocation> parseArguments(int argc, char** argv) {
  Invocation invocation;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool routeOption = arg == "--from" || arg == "--source" || arg == "--transport";
    if ((arg == "-s" || arg == "--socket" || arg == "-c" || arg == "--config" || routeOption) &&
        i + 1 >= argc) {
      std::fprintf(stderr, "waypointctl: %s needs a value\n", arg.c_str());
      return std::nullopt;
    }
    if (routeOption) {
      invocation.routeOptions[arg.substr(2)] = argv[++i];
    } else if (arg == "-s" || arg == "--socket") {
      invocation.socket = argv[++i];
    } else if (arg == "-c" || arg == "--config") {
      invocation.configPath = argv[++i];
    } else if (arg == "--json") {
      invocation.asJson = true;
    } else {
      invocation.words.push_back(arg);
    }
  }
  return invocation;
}

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

std::string socketPath(const Invocation& invocation) {
  if (!invocation.socket.empty()) return invocation.socket;
  if (!invocation.configPath.empty()) {
    try {
      const auto control = waypoint::app::loadConfig(invocation.configPath).control;
      // Without control.socket, a daemon under the unit listens in its RuntimeDirectory,
      // which a shell's environment does not name.
      if (!control.socketConfigured && !exists(control.socket) && exists(kUnitSocket)) {
        return kUnitSocket;
      }
      return control.socket;
    } catch (const waypoint::app::ConfigError&) {
      // A file being edited may be broken; `reload` must still reach the daemon, which
      // then refuses it and says why.
      if (!exists(kUnitSocket)) throw;
      return kUnitSocket;
    }
  }
  if (const char* fromEnvironment = std::getenv("WAYPOINT_CONTROL_SOCKET")) return fromEnvironment;
  return kUnitSocket;
}

// A whole number above 0, or nullopt.
std::optional<unsigned long> positive(const std::string& word) {
  if (word.empty() || word.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  errno = 0;
  const unsigned long value = std::strtoul(word.c_str(), nullptr, 10);
  if (errno != 0 || value == 0) return std::nullopt;
  return value;
}

// trace [--source IP[:PORT] | --call-id ID] [--count N] [--minutes M] | trace off [ID]
// (--source is read with the route options).
std::optional<json> traceRequestFor(const Invocation& invocation) {
  const auto& words = invocation.words;
  json request{{"command", "trace"}};
  for (const auto& [option, value] : invocation.routeOptions.items()) {
    if (option != "source") return std::nullopt;
    request["source"] = value;
  }
  if (words.size() >= 2 && words[1] == "off") {
    if (request.contains("source")) return std::nullopt;
    request["off"] = true;
    if (words.size() == 3) {
      const auto id = positive(words[2]);
      if (!id) return std::nullopt;
      request["id"] = *id;
    }
    return words.size() <= 3 ? std::optional<json>(request) : std::nullopt;
  }
  for (std::size_t i = 1; i < words.size(); i += 2) {
    if (i + 1 >= words.size()) return std::nullopt;
    const std::string& option = words[i];
    const std::string& value = words[i + 1];
    if (option == "--call-id") {
      request["call_id"] = value;
    } else if (option == "--count" || option == "--minutes") {
      const auto number = positive(value);
      if (!number) return std::nullopt;
      request[option == "--count" ? "count" : "minutes"] = *number;
    } else {
      return std::nullopt;
    }
  }
  const bool started = request.contains("source") || request.contains("call_id");
  if (!started && words.size() > 1) return std::nullopt;  // --count without what to trace
  if (request.contains("source") && request.contains("call_id")) return std::nullopt;
  return request;
}

// The request for the command words, or nullopt for a usage error.
std::optional<json> requestFor(const Invocation& invocation) {
  const auto& words = invocation.words;
  const std::string& command = words.front();
  const std::size_t arguments = words.size() - 1;
  json request{{"command", command}};
  if (command == "trace") return traceRequestFor(invocation);
  if (!invocation.routeOptions.empty() && command != "route") return std::nullopt;
  if ((command == "status" || command == "reload" || command == "connections") && arguments == 0)
    return request;
  if (command == "route" && arguments == 2 && words[1] == "explain") {
    request = invocation.routeOptions;
    request["command"] = "route-explain";
    request["request"] = words[2];
    return request;
  }
  if (command == "bindings" && arguments <= 1) {
    if (arguments == 1) request["aor"] = words[1];
    return request;
  }
  if (command == "unregister" && (arguments == 1 || arguments == 2)) {
    request["aor"] = words[1];
    if (arguments == 2) request["contact"] = words[2];
    return request;
  }
  if (command == "log-level" && arguments == 1) {
    request["level"] = words[1];
    return request;
  }
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  const auto invocation = parseArguments(argc, argv);
  if (!invocation || invocation->words.empty()) {
    std::fputs(kUsage, stderr);
    return kUsageError;
  }
  const auto& words = invocation->words;
  if (words.front() == "--help" || words.front() == "-h" || words.front() == "help") {
    std::fputs(kUsage, stdout);
    return EXIT_SUCCESS;
  }
  if (words.front() == "check-config") {
    if (words.size() != 2) {
      std::fputs(kUsage, stderr);
      return kUsageError;
    }
    return waypoint::app::checkConfigFile(words[1]);
  }
  const auto request = requestFor(*invocation);
  if (!request) {
    std::fprintf(stderr, "waypointctl: wrong arguments for '%s'\n%s", words.front().c_str(),
                 kUsage);
    return kUsageError;
  }
  try {
    const json reply = json::parse(ask(socketPath(*invocation), request->dump()));
    if (invocation->asJson) std::printf("%s\n", reply.dump(2).c_str());
    if (!reply.value("ok", false)) {
      std::fprintf(stderr, "waypointctl: %s: %s\n", words.front().c_str(),
                   reply.value("error", std::string("refused")).c_str());
      if (!invocation->asJson && words.front() == "reload") printCertificates(reply);
      return kRefused;
    }
    if (!invocation->asJson) printReply(words.front(), reply);
    return EXIT_SUCCESS;
  } catch (const Unreachable& e) {
    std::fprintf(stderr, "waypointctl: %s\n", e.why.c_str());
    return kUnreachable;
  } catch (const json::exception& e) {
    std::fprintf(stderr, "waypointctl: waypointd sent a reply that is not JSON: %s\n", e.what());
    return kUnreachable;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "waypointctl: %s\n", e.what());
    return kUsageError;
  }
}
