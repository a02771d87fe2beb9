#pragma once
// The counters of every component, rendered as Prometheus text (exposition format 0.0.4)
// from the tables declared beside them, for the HTTP endpoint and the SIGUSR1 file.

#include <cstdint>
#include <string>
#include <string_view>

#include "waypoint/app/dispatcher.hpp"
#include "waypoint/auth/authenticator.hpp"
#include "waypoint/auth/source_guard.hpp"
#include "waypoint/persistence/binding_writer.hpp"
#include "waypoint/proxy/proxy_counters.hpp"
#include "waypoint/registrar/registrar.hpp"
#include "waypoint/transaction/transaction_layer.hpp"
#include "waypoint/transport/transports.hpp"

namespace waypoint::app {

// What one rendering reads, on the loop thread. The references outlive the call.
struct MetricSources {
  const transport::TransportCounters& transport;
  const DispatcherCounters& dispatcher;
  const transaction::TransactionCounters& transactions;
  const registrar::RegistrarCounters& registrar;
  registrar::RegistrarGauges registrarGauges;
  const proxy::ProxyCounters& proxy;
  const auth::SourceGuardCounters& flood;
  const auth::AuthCounters* auth = nullptr;  // null: no authentication, no waypoint_auth_*
  auth::AuthGauges authGauges;
  persistence::PersistenceMetricValues persistence;
  std::string_view version;           // waypoint_build_info{version="..."}
  std::int64_t startTimeSeconds = 0;  // process_start_time_seconds, unix time
};

std::string renderMetrics(const MetricSources& sources);

// Writes through a temporary file and a rename, so a reader never sees half a file.
// Returns false (and logs why) on failure.
[[nodiscard]] bool writeMetricsFile(const std::string& path, const std::string& text);

}  // namespace waypoint::app
