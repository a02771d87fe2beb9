#pragma once
// Counters of every component, rendered as Prometheus text and written to a file.

#include <string>

#include "waypoint/app/dispatcher.hpp"
#include "waypoint/auth/authenticator.hpp"
#include "waypoint/transport/transports.hpp"

namespace waypoint::app {

std::string renderMetrics(const transport::TransportCounters& transport,
                          const DispatcherCounters& dispatcher,
                          const transaction::TransactionCounters& transactions,
                          registrar::Registrar& registrar, const proxy::ProxyCounters& proxy);

// The authenticator's counters and the number of users it knows.
std::string renderAuthMetrics(const auth::AuthCounters& auth, std::size_t users);

// Writes through a temporary file and a rename, so a reader never sees half a file.
// Returns false (and logs) on failure.
bool writeMetricsFile(const std::string& path, const std::string& text);

}  // namespace waypoint::app
