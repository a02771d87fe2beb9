#pragma once
// The side of the transports that listeners and connections report to: implemented by
// Transports::Impl, and by a fake in the unit tests. Private to src/transport.

#include <string_view>
#include <system_error>

#include "waypoint/log/warning_limiter.hpp"
#include "waypoint/transport/clock.hpp"
#include "waypoint/transport/transports.hpp"

namespace waypoint::transport {

class Connection;

class TransportHost {
 public:
  virtual ~TransportHost() = default;
  // A complete message arrived on a flow.
  virtual void deliver(const Source& source, std::string_view message) = 0;
  // A send failed: counted, logged, and reported to onError when it is set.
  virtual void sendFailed(const Destination& destination, std::error_code ec,
                          const SendErrorHandler& onError) = 0;
  // An ICMP error came back for a datagram sent to destination.
  virtual void unreachable(const Destination& destination, std::error_code ec) = 0;
  // The connection is closed: it leaves the table (its pending callbacks may still run).
  virtual void closed(Connection& connection) = 0;
  virtual bool shuttingDown() const = 0;
  virtual TransportCounters& counters() = 0;
  virtual const TransportSettings& settings() const = 0;
  virtual const TransportClock& clock() const = 0;
  // Whether a warning of this kind may be logged now (the daemon's log::WarningLimiter);
  // the counters count the event either way.
  virtual bool warningAllowed(std::string_view /*reason*/) { return true; }
};

}  // namespace waypoint::transport
