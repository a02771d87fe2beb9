#include "waypoint/app/message_trace.hpp"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

namespace waypoint::app {

namespace {

bool equalsIgnoringCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trimmed(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

bool matches(const TraceFilter& filter, const transport::Endpoint& peer, std::string_view bytes) {
  if (filter.address) {
    return *filter.address == peer.address && (!filter.port || *filter.port == peer.port);
  }
  return !filter.callId.empty() && callIdOf(bytes) == filter.callId;
}

constexpr std::size_t kLimitFactor = 10;  // how far start() lets a caller raise the defaults

}  // namespace

std::optional<TraceFilter> TraceFilter::forSource(std::string_view text) {
  const auto hostPort = transport::parseHostPort(text);
  if (!hostPort) return std::nullopt;
  const auto address = transport::parseIpAddress(hostPort->host);
  if (!address) return std::nullopt;
  TraceFilter filter;
  filter.address = address;
  filter.port = hostPort->port;
  return filter;
}

TraceFilter TraceFilter::forCallId(std::string callId) {
  TraceFilter filter;
  filter.callId = std::move(callId);
  return filter;
}

std::string TraceFilter::describe() const {
  if (!address) return "call-id " + callId;
  if (!port) return "source " + transport::toString(*address);
  return "source " + transport::toString(transport::Endpoint{*address, *port});
}

std::string_view callIdOf(std::string_view bytes) {
  std::size_t start = bytes.find('\n');  // past the start line
  while (start != std::string_view::npos && start + 1 < bytes.size()) {
    ++start;
    const std::size_t end = bytes.find('\n', start);
    std::string_view line = bytes.substr(start, end == std::string_view::npos ? end : end - start);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.empty()) break;  // the end of the headers
    const std::size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      const std::string_view name = trimmed(line.substr(0, colon));
      if (equalsIgnoringCase(name, "Call-ID") || equalsIgnoringCase(name, "i")) {
        return trimmed(line.substr(colon + 1));
      }
    }
    start = end;
  }
  return {};
}

std::string traceText(std::string_view prefix, std::string_view bytes) {
  std::string text;
  text.reserve(bytes.size() + bytes.size() / 16 + prefix.size());
  text.append(prefix);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c == '\r' && i + 1 < bytes.size() && bytes[i + 1] == '\n') continue;
    if (c == '\n') {
      if (i + 1 < bytes.size()) text.append("\n").append(prefix);
    } else if (c == '\t' || (c >= 0x20 && c < 0x7f) || c >= 0x80) {
      text.push_back(static_cast<char>(c));  // UTF-8 passes as it is
    } else {
      text.append(fmt::format("\\x{:02x}", c));
    }
  }
  return text;
}

MessageTracer::MessageTracer(Now now, Sink sink) : now_(std::move(now)), sink_(std::move(sink)) {
  if (!sink_) sink_ = [](const std::string& text) { spdlog::info("{}", text); };
}

std::optional<MessageTracer::Trace> MessageTracer::start(TraceFilter filter, TraceLimits limits) {
  const SteadyTime now = now_();
  endExpired(now);
  if (traces_.size() >= kMaxTraces) return std::nullopt;
  const TraceLimits cap;
  Trace trace;
  trace.id = nextId_++;
  trace.filter = std::move(filter);
  trace.maxMessages =
      std::clamp<std::size_t>(limits.maxMessages, 1, cap.maxMessages * kLimitFactor);
  trace.until = now + std::clamp(limits.maxTime, std::chrono::seconds(1),
                                 cap.maxTime * static_cast<long>(kLimitFactor));
  traces_.push_back(trace);
  sink_(fmt::format("trace {} started: {}, at most {} messages or {} s", trace.id,
                    trace.filter.describe(), trace.maxMessages,
                    std::chrono::duration_cast<std::chrono::seconds>(trace.until - now).count()));
  return trace;
}

std::size_t MessageTracer::stop(std::optional<std::uint64_t> id) {
  std::size_t stopped = 0;
  std::erase_if(traces_, [&](const Trace& trace) {
    if (id && trace.id != *id) return false;
    ended(trace, "stopped");
    ++stopped;
    return true;
  });
  return stopped;
}

std::vector<MessageTracer::Trace> MessageTracer::list() {
  endExpired(now_());
  return traces_;
}

void MessageTracer::observe(Direction direction, transport::Protocol protocol,
                            const transport::Endpoint& peer, std::string_view bytes) {
  endExpired(now_());
  std::string ids;
  for (auto& trace : traces_) {
    if (!matches(trace.filter, peer, bytes)) continue;
    ++trace.traced;
    ids.append(ids.empty() ? "" : ",").append(std::to_string(trace.id));
  }
  if (ids.empty()) return;
  const bool received = direction == Direction::received;
  sink_(fmt::format("trace {} {} {} {} ({} bytes):\n{}", ids, received ? "recv from" : "send to",
                    transport::toString(protocol), transport::toString(peer), bytes.size(),
                    traceText(fmt::format("trace {}| ", ids), bytes)));
  std::erase_if(traces_, [this](const Trace& trace) {
    if (trace.traced < trace.maxMessages) return false;
    ended(trace, "its message count is reached");
    return true;
  });
}

void MessageTracer::endExpired(SteadyTime now) {
  std::erase_if(traces_, [&](const Trace& trace) {
    if (now < trace.until) return false;
    ended(trace, "its time is over");
    return true;
  });
}

void MessageTracer::ended(const Trace& trace, std::string_view why) {
  sink_(fmt::format("trace {} ended ({}): {}, {} messages traced", trace.id, why,
                    trace.filter.describe(), trace.traced));
}

}  // namespace waypoint::app
