#include "waypoint/app/diagnostics.hpp"

namespace waypoint::app {

namespace {

nlohmann::json describe(const MessageTracer::Trace& trace, SteadyTime now) {
  return {{"id", trace.id},
          {"filter", trace.filter.describe()},
          {"traced", trace.traced},
          {"max_messages", trace.maxMessages},
          {"seconds_left",
           std::chrono::duration_cast<std::chrono::seconds>(trace.until - now).count()}};
}

nlohmann::json refusal(const std::string& why) { return {{"ok", false}, {"error", why}}; }

}  // namespace

nlohmann::json runTraceRequest(MessageTracer& tracer, const TraceRequest& request) {
  const SteadyTime now = tracer.now();
  switch (request.action) {
    case TraceRequest::Action::list: {
      nlohmann::json traces = nlohmann::json::array();
      for (const auto& trace : tracer.list()) traces.push_back(describe(trace, now));
      return {{"traces", traces}};
    }
    case TraceRequest::Action::stop: {
      const std::size_t stopped = tracer.stop(request.id);
      if (request.id && stopped == 0) {
        return refusal("no trace " + std::to_string(*request.id) + " is running");
      }
      return {{"stopped", stopped}};
    }
    case TraceRequest::Action::start:
      break;
  }
  std::optional<TraceFilter> filter;
  if (!request.source.empty()) {
    filter = TraceFilter::forSource(request.source);
    if (!filter) {
      return refusal("source '" + request.source + "' is not an IP address or IP:port");
    }
  } else {
    filter = TraceFilter::forCallId(request.callId);
  }
  TraceLimits limits;
  if (request.count) limits.maxMessages = *request.count;
  if (request.time) limits.maxTime = *request.time;
  const auto started = tracer.start(std::move(*filter), limits);
  if (!started) {
    return refusal(std::to_string(MessageTracer::kMaxTraces) +
                   " traces are running already: end one with 'trace off'");
  }
  return {{"trace", describe(*started, now)}};
}

Diagnostics::Diagnostics(boost::asio::io_context& io, const transaction::Clock& clock,
                         log::WarningLimits limits)
    : flushTimer_(io),
      warnings_(
          limits, [&clock] { return clock.now(); }, {}, [this](SteadyTime due) { flushAt(due); }),
      tracer_([&clock] { return clock.now(); }) {}

void Diagnostics::flushAt(SteadyTime due) {
  if (armedFor_ && *armedFor_ <= due) return;
  armedFor_ = due;
  flushTimer_.expires_at(due);
  flushTimer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    armedFor_.reset();
    warnings_.flush();
    if (const auto next = warnings_.nextFlush()) flushAt(*next);
  });
}

void Diagnostics::stop() {
  warnings_.flushAll();
  flushTimer_.cancel();
  armedFor_.reset();
}

}  // namespace waypoint::app
