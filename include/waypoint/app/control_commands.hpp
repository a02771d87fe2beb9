#pragma once
// The control socket's commands. A request is one JSON object {"command": NAME, ...}; the
// reply is {"ok": true, ...} with the command's fields, or {"ok": false, "error": WHY}.

#include <chrono>
#include <cstddef>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace waypoint::app {

// `waypointctl route explain 'INVITE sip:bob@example.com' [--from URI] [--source IP]
// [--transport T]`: an initial request as a phone at source would send it.
struct RouteQuestion {
  std::string requestLine;  // "METHOD URI"
  std::string from;         // From URI; "" for one of the Request-URI's domain
  std::string source;       // source IP (or IP:port); "" for 127.0.0.1
  std::string transport;    // udp, tcp, tls, ws, wss; "" for udp
};

// "trace": {} lists the running traces; {"off": true} ends them (or "id": N, that one);
// {"source": "IP[:PORT]"} or {"call_id": ID} starts one, with optional "count" (messages)
// and "minutes".
struct TraceRequest {
  enum class Action { list, start, stop };
  Action action = Action::list;
  std::string source;
  std::string callId;
  std::optional<std::uint64_t> id;
  std::optional<std::size_t> count;
  std::optional<std::chrono::minutes> time;
};

// What the daemon does for each command; each returns the reply's fields (and may set
// "ok": false with an "error").
struct ControlOperations {
  std::function<nlohmann::json()> status;
  std::function<nlohmann::json()> reload;
  std::function<nlohmann::json(const std::string& aor)> bindings;  // "" lists every AOR
  std::function<nlohmann::json(const std::string& aor, const std::string& contact)> unregister;
  std::function<nlohmann::json(const std::string& level)> logLevel;
  std::function<nlohmann::json()> connections;
  std::function<nlohmann::json(const RouteQuestion& question)> routeExplain;
  std::function<nlohmann::json(const TraceRequest& request)> trace;
};

std::string handleControlRequest(std::string_view request, const ControlOperations& operations);

}  // namespace waypoint::app
