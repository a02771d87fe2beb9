#pragma once
// Counters of every component, rendered as Prometheus text and written to a file.

#include <string>

#include "waypoint/app/dispatcher.hpp"
#include "waypoint/auth/authenticator.hpp"
#include "waypoint/auth/source_guard.hpp"
#include "waypoint/persistence/binding_writer.hpp"
#include "waypoint/transport/transports.hpp"

namespace waypoint::app {

std::string renderMetrics(const transport::TransportCounters& transport,
                          const DispatcherCounters& dispatcher,
                          const transaction::TransactionCounters& transactions,
                          registrar::Registrar& registrar, const proxy::ProxyCounters& proxy);

// The authenticator's counters and the number of users it knows.
std::string renderAuthMetrics(const auth::AuthCounters& auth, std::size_t users);
// The flood guard's counters (waypoint_flood_*), appended to renderMetrics()'s text.
std::string renderFloodMetrics(const auth::SourceGuardCounters& flood);
// The binding database's counters (waypoint_registrar_persistence_*): failing is 1 while
// bindings are not being saved (the file would not open, or the last batch failed).
std::string renderPersistenceMetrics(const persistence::PersistenceCounters& persistence);

// Writes through a temporary file and a rename, so a reader never sees half a file.
// Returns false (and logs) on failure.
bool writeMetricsFile(const std::string& path, const std::string& text);

}  // namespace waypoint::app
