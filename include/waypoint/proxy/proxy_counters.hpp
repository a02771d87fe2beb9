#pragma once
// What the proxy's parts count, collected by the metrics code.

#include <cstdint>

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
};

}  // namespace waypoint::proxy
