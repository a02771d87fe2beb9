#include "waypoint/app/control_commands.hpp"

namespace waypoint::app {

namespace {

nlohmann::json refusal(const std::string& why) { return {{"ok", false}, {"error", why}}; }

std::string stringArgument(const nlohmann::json& request, const char* name) {
  const auto found = request.find(name);
  if (found == request.end() || found->is_null()) return {};
  if (!found->is_string())
    throw std::invalid_argument(std::string("'") + name + "' must be a string");
  return found->get<std::string>();
}

// A whole number > 0, when present.
std::optional<std::uint64_t> positiveArgument(const nlohmann::json& request, const char* name) {
  const auto found = request.find(name);
  if (found == request.end() || found->is_null()) return std::nullopt;
  if (!found->is_number_unsigned() || found->get<std::uint64_t>() == 0) {
    throw std::invalid_argument(std::string("'") + name + "' must be a whole number above 0");
  }
  return found->get<std::uint64_t>();
}

TraceRequest traceRequestOf(const nlohmann::json& request) {
  TraceRequest trace;
  trace.source = stringArgument(request, "source");
  trace.callId = stringArgument(request, "call_id");
  trace.id = positiveArgument(request, "id");
  trace.count = positiveArgument(request, "count");
  if (const auto minutes = positiveArgument(request, "minutes")) {
    trace.time = std::chrono::minutes(*minutes);
  }
  const auto off = request.find("off");
  if (off != request.end() && !off->is_boolean()) {
    throw std::invalid_argument("'off' must be true or false");
  }
  if (off != request.end() && off->get<bool>()) {
    trace.action = TraceRequest::Action::stop;
  } else if (!trace.source.empty() || !trace.callId.empty()) {
    if (!trace.source.empty() && !trace.callId.empty()) {
      throw std::invalid_argument("a trace is by 'source' or by 'call_id', not both");
    }
    trace.action = TraceRequest::Action::start;
  }
  return trace;
}

nlohmann::json run(const nlohmann::json& request, const ControlOperations& operations) {
  if (!request.is_object()) return refusal("the request must be a JSON object");
  const std::string command = stringArgument(request, "command");
  if (command == "status") return operations.status();
  if (command == "reload") return operations.reload();
  if (command == "bindings") return operations.bindings(stringArgument(request, "aor"));
  if (command == "unregister") {
    const std::string aor = stringArgument(request, "aor");
    if (aor.empty()) return refusal("unregister needs an 'aor'");
    return operations.unregister(aor, stringArgument(request, "contact"));
  }
  if (command == "log-level") return operations.logLevel(stringArgument(request, "level"));
  if (command == "connections") return operations.connections();
  if (command == "route-explain") {
    RouteQuestion question{stringArgument(request, "request"), stringArgument(request, "from"),
                           stringArgument(request, "source"), stringArgument(request, "transport")};
    if (question.requestLine.empty()) return refusal("route-explain needs a 'request'");
    return operations.routeExplain(question);
  }
  if (command == "trace") return operations.trace(traceRequestOf(request));
  if (command.empty()) return refusal("the request has no 'command'");
  return refusal("unknown command '" + command + "'");
}

}  // namespace

std::string handleControlRequest(std::string_view request, const ControlOperations& operations) {
  nlohmann::json reply;
  try {
    reply = run(nlohmann::json::parse(request), operations);
  } catch (const nlohmann::json::parse_error&) {
    reply = refusal("the request is not JSON");
  } catch (const std::invalid_argument& e) {
    reply = refusal(e.what());
  }
  if (!reply.contains("ok")) reply["ok"] = true;
  return reply.dump();
}

}  // namespace waypoint::app
