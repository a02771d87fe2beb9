#pragma once
// What the proxy did, for the metrics; proxyMetrics below declares them.

#include <array>
#include <cstdint>

#include "waypoint/metrics/metric.hpp"

namespace waypoint::proxy {

struct ProxyCounters {
  std::uint64_t requestsForwarded = 0;   // branches started (client transactions)
  std::uint64_t responsesForwarded = 0;  // responses sent upstream from branches
  std::uint64_t responsesGenerated = 0;  // final responses the proxy made itself (4xx/5xx/408)
  std::uint64_t statelessForwarded = 0;  // ACK for 2xx, CANCEL without transaction, stray responses
  std::uint64_t statelessDropped = 0;    // ACKs and stray responses with nowhere to go
  std::uint64_t maxForwardsExceeded = 0;  // 483
  std::uint64_t loopsDetected = 0;        // 482
  std::uint64_t badExtensions = 0;        // 420
  std::uint64_t locationNotFound = 0;     // 404: AOR never registered
  std::uint64_t locationUnavailable = 0;  // 480: AOR with no binding now
  std::uint64_t rulesRejected = 0;        // a reject rule, or the default 404
  std::uint64_t unresolvable = 0;         // next hop with a host name (no DNS) or no listener
  std::uint64_t cancelsReceived = 0;
  std::uint64_t branchesCancelled = 0;  // CANCEL sent downstream
  std::uint64_t timerCFired = 0;
  std::uint64_t preloadedRoutesDenied = 0;  // 403 Preload Route denied
  std::uint64_t routeTokensRejected = 0;    // 403: our Route with a forged or damaged token
  std::uint64_t dialogRequestsRefused = 0;  // 403: valid token, but from/to neither side
  std::uint64_t optionsAnswered = 0;
  std::uint64_t registersHandled = 0;
  std::uint64_t identityRefused = 0;  // 403: authenticated, but not as the From / To user
  std::uint64_t drainRefused = 0;     // 503: new request while draining (graceful stop)
  std::uint64_t liveContexts = 0;     // gauge: requests with branches still running
  std::uint64_t waitingRequests = 0;  // gauge: requests waiting for their admission
  // From the proxy getting a request to its first branch going to the transaction layer
  // (routing, authentication and the registrar lookup included).
  metrics::Histogram requestForward;
};

using ProxyMetric = metrics::Metric<ProxyCounters>;

inline constexpr std::array proxyMetrics{
    ProxyMetric::counter("options_answered", "OPTIONS requests for this server answered 200",
                         &ProxyCounters::optionsAnswered),
    ProxyMetric::counter("proxy_requests_forwarded",
                         "Requests forwarded: branches started (client transactions)",
                         &ProxyCounters::requestsForwarded),
    ProxyMetric::counter("proxy_responses_forwarded", "Responses forwarded upstream from branches",
                         &ProxyCounters::responsesForwarded),
    ProxyMetric::counter("proxy_responses_generated",
                         "Final responses the proxy made itself (4xx, 5xx, 408)",
                         &ProxyCounters::responsesGenerated),
    ProxyMetric::counter("proxy_stateless_forwarded",
                         "ACKs for 2xx, CANCELs without a transaction and stray responses "
                         "forwarded statelessly",
                         &ProxyCounters::statelessForwarded),
    ProxyMetric::counter("proxy_stateless_dropped",
                         "ACKs and stray responses with nowhere to go, dropped",
                         &ProxyCounters::statelessDropped),
    ProxyMetric::counter("proxy_max_forwards_exceeded", "Requests answered 483 Too Many Hops",
                         &ProxyCounters::maxForwardsExceeded),
    ProxyMetric::counter("proxy_loops_detected", "Requests answered 482 Loop Detected",
                         &ProxyCounters::loopsDetected),
    ProxyMetric::counter("proxy_bad_extensions", "Requests answered 420 Bad Extension",
                         &ProxyCounters::badExtensions),
    ProxyMetric::counter("proxy_location_not_found",
                         "Requests for an address of record never registered (404)",
                         &ProxyCounters::locationNotFound),
    ProxyMetric::counter("proxy_location_unavailable",
                         "Requests for an address of record with no binding now (480)",
                         &ProxyCounters::locationUnavailable),
    ProxyMetric::counter("proxy_rules_rejected",
                         "Requests refused by a reject rule or the default 404",
                         &ProxyCounters::rulesRejected),
    ProxyMetric::counter("proxy_unresolvable",
                         "Targets that could not be reached: a host name or no listener for it",
                         &ProxyCounters::unresolvable),
    ProxyMetric::counter("proxy_preloaded_routes_denied",
                         "Requests answered 403 Preload Route denied",
                         &ProxyCounters::preloadedRoutesDenied),
    ProxyMetric::counter("proxy_route_tokens_rejected",
                         "Requests with a Route of ours whose token is forged or damaged (403)",
                         &ProxyCounters::routeTokensRejected),
    ProxyMetric::counter("proxy_dialog_requests_refused",
                         "In-dialog requests from neither side of the dialog (403)",
                         &ProxyCounters::dialogRequestsRefused),
    ProxyMetric::counter("proxy_cancels_received", "CANCEL requests received",
                         &ProxyCounters::cancelsReceived),
    ProxyMetric::counter("proxy_branches_cancelled", "CANCELs sent to pending branches",
                         &ProxyCounters::branchesCancelled),
    ProxyMetric::counter("proxy_timer_c_fired", "INVITE branches ended by Timer C",
                         &ProxyCounters::timerCFired),
    ProxyMetric::counter("proxy_registers_handled", "REGISTER requests handed to the registrar",
                         &ProxyCounters::registersHandled),
    ProxyMetric::counter("proxy_identity_refused",
                         "Requests authenticated as a user other than the From / To user (403)",
                         &ProxyCounters::identityRefused),
    ProxyMetric::counter("proxy_drain_refused", "New requests answered 503 during a graceful stop",
                         &ProxyCounters::drainRefused),
    ProxyMetric::gauge("proxy_live_contexts", "Forwarded requests with branches still running",
                       &ProxyCounters::liveContexts),
    ProxyMetric::gauge("proxy_waiting_requests", "Requests waiting for their authentication",
                       &ProxyCounters::waitingRequests),
    ProxyMetric::histogramOf("request_forward_seconds",
                             "Time from the proxy getting a request to forwarding its first "
                             "branch (routing, authentication and location lookup)",
                             &ProxyCounters::requestForward),
};

}  // namespace waypoint::proxy
