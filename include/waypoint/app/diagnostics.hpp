#pragma once
// The daemon's troubleshooting aids, made once and lent to the parts that use them: the
// warning limiter of the transports, the dispatcher and the authenticator (with the timer
// that logs its "suppressed" lines when they are due), and the message tracer of the
// dispatcher and the sender, which the control command "trace" drives.

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>
#include <optional>

#include "waypoint/app/control_commands.hpp"
#include "waypoint/app/dispatcher.hpp"
#include "waypoint/app/message_trace.hpp"
#include "waypoint/log/warning_limiter.hpp"
#include "waypoint/transaction/transaction_layer.hpp"

namespace waypoint::app {

// What "trace" does: starts, lists or ends traces; the reply's fields, or an error.
nlohmann::json runTraceRequest(MessageTracer& tracer, const TraceRequest& request);

class Diagnostics {
 public:
  Diagnostics(boost::asio::io_context& io, const transaction::Clock& clock,
              log::WarningLimits limits = {});
  Diagnostics(const Diagnostics&) = delete;
  Diagnostics& operator=(const Diagnostics&) = delete;

  log::WarningLimiter& warnings() { return warnings_; }
  MessageTracer& tracer() { return tracer_; }
  // What the dispatcher and the sender are given.
  MessageAids forMessages() { return MessageAids{&tracer_, &warnings_, &debugLines_}; }
  nlohmann::json trace(const TraceRequest& request) { return runTraceRequest(tracer_, request); }
  // Logs every count of suppressed warnings not logged yet and stops the timer (shutdown).
  void stop();

 private:
  void flushAt(SteadyTime due);

  boost::asio::steady_timer flushTimer_;
  log::WarningLimiter warnings_;
  MessageTracer tracer_;
  DebugLines debugLines_;
  std::optional<SteadyTime> armedFor_;
};

}  // namespace waypoint::app
