#include "waypoint/app/metrics.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <fstream>

namespace waypoint::app {

namespace {

void counter(std::string& out, const char* name, std::uint64_t value,
             const char* type = "counter") {
  out.append("# TYPE waypoint_").append(name).append(" ").append(type).append("\n");
  out.append("waypoint_").append(name).append(" ").append(std::to_string(value)).append("\n");
}

}  // namespace

std::string renderMetrics(const transport::TransportCounters& t, const DispatcherCounters& d,
                          const transaction::TransactionCounters& x, registrar::Registrar& reg,
                          const proxy::ProxyCounters& p) {
  std::string out;
  counter(out, "udp_datagrams_received", t.udpDatagramsReceived);
  counter(out, "udp_datagrams_sent", t.udpDatagramsSent);
  counter(out, "udp_oversize_dropped", t.udpOversizeDropped);
  counter(out, "keepalives_received", t.keepalivesReceived);
  counter(out, "tcp_connections_accepted", t.tcpConnectionsAccepted);
  counter(out, "tcp_connections_opened", t.tcpConnectionsOpened);
  counter(out, "tcp_connections_rejected", t.tcpConnectionsRejected);
  counter(out, "tcp_connections_closed_idle", t.tcpConnectionsClosedIdle);
  counter(out, "tcp_connections_closed_oversize", t.tcpConnectionsClosedOversize);
  counter(out, "tcp_connections_closed_framing", t.tcpConnectionsClosedFraming);
  counter(out, "tcp_connections_closed_backpressure", t.tcpConnectionsClosedBackpressure);
  counter(out, "tcp_messages_received", t.tcpMessagesReceived);
  counter(out, "tcp_messages_sent", t.tcpMessagesSent);
  counter(out, "ws_handshakes_accepted", t.wsHandshakesAccepted);
  counter(out, "ws_handshakes_refused_request", t.wsHandshakesRefusedRequest);
  counter(out, "ws_handshakes_refused_subprotocol", t.wsHandshakesRefusedSubprotocol);
  counter(out, "ws_handshakes_refused_origin", t.wsHandshakesRefusedOrigin);
  counter(out, "ws_sends_without_connection", t.wsSendsWithoutConnection);
  counter(out, "tls_handshakes_completed", t.tlsHandshakesCompleted);
  counter(out, "tls_handshakes_failed", t.tlsHandshakesFailed);
  counter(out, "tls_handshakes_refused_limit", t.tlsHandshakesRefusedLimit);
  counter(out, "send_errors", t.sendErrors);
  counter(out, "udp_unreachable", t.udpUnreachable);
  counter(out, "tcp_open_connections", t.tcpOpenConnections, "gauge");
  counter(out, "messages_unparseable", d.messagesUnparseable);
  counter(out, "requests_received", d.requestsReceived);
  counter(out, "requests_malformed", d.requestsMalformed);
  counter(out, "requests_dropped", d.requestsDropped);
  counter(out, "responses_received", d.responsesReceived);
  counter(out, "responses_dropped", d.responsesDropped);
  counter(out, "transactions_server_created", x.serverTransactionsCreated);
  counter(out, "transactions_client_created", x.clientTransactionsCreated);
  counter(out, "transactions_request_retransmissions_absorbed", x.requestRetransmissionsAbsorbed);
  counter(out, "transactions_acks_absorbed", x.acksAbsorbed);
  counter(out, "transactions_request_retransmissions_sent", x.requestRetransmissionsSent);
  counter(out, "transactions_response_retransmissions_sent", x.responseRetransmissionsSent);
  counter(out, "transactions_responses_absorbed", x.responsesAbsorbed);
  counter(out, "transactions_client_timeouts", x.clientTimeouts);
  counter(out, "transactions_server_timeouts", x.serverTimeouts);
  counter(out, "transactions_transport_errors", x.transportErrors);
  counter(out, "transactions_stray_responses", x.strayResponses);
  counter(out, "transactions_requests_moved_to_tcp", x.requestsMovedToTcp);
  counter(out, "transactions_requests_retried_over_udp", x.requestsRetriedOverUdp);
  counter(out, "registrar_registers_accepted", reg.counters().registersAccepted);
  counter(out, "registrar_registers_rejected", reg.counters().registersRejected);
  counter(out, "registrar_bindings_expired", reg.counters().bindingsExpired);
  counter(out, "registrar_aors", reg.store().aorCount(), "gauge");
  counter(out, "registrar_bindings", reg.store().bindingCount(), "gauge");
  counter(out, "transactions_live_server", x.liveServerTransactions, "gauge");
  counter(out, "transactions_live_client", x.liveClientTransactions, "gauge");
  counter(out, "transactions_pending_timers", x.pendingTimers, "gauge");
  counter(out, "options_answered", p.optionsAnswered);
  counter(out, "proxy_requests_forwarded", p.requestsForwarded);
  counter(out, "proxy_responses_forwarded", p.responsesForwarded);
  counter(out, "proxy_responses_generated", p.responsesGenerated);
  counter(out, "proxy_stateless_forwarded", p.statelessForwarded);
  counter(out, "proxy_stateless_dropped", p.statelessDropped);
  counter(out, "proxy_max_forwards_exceeded", p.maxForwardsExceeded);
  counter(out, "proxy_loops_detected", p.loopsDetected);
  counter(out, "proxy_bad_extensions", p.badExtensions);
  counter(out, "proxy_location_not_found", p.locationNotFound);
  counter(out, "proxy_location_unavailable", p.locationUnavailable);
  counter(out, "proxy_rules_rejected", p.rulesRejected);
  counter(out, "proxy_unresolvable", p.unresolvable);
  counter(out, "proxy_preloaded_routes_denied", p.preloadedRoutesDenied);
  counter(out, "proxy_route_tokens_rejected", p.routeTokensRejected);
  counter(out, "proxy_dialog_requests_refused", p.dialogRequestsRefused);
  counter(out, "proxy_cancels_received", p.cancelsReceived);
  counter(out, "proxy_branches_cancelled", p.branchesCancelled);
  counter(out, "proxy_timer_c_fired", p.timerCFired);
  counter(out, "proxy_registers_handled", p.registersHandled);
  counter(out, "proxy_identity_refused", p.identityRefused);
  counter(out, "proxy_drain_refused", p.drainRefused);
  counter(out, "proxy_live_contexts", p.liveContexts, "gauge");
  counter(out, "proxy_waiting_requests", p.waitingRequests, "gauge");
  return out;
}

std::string renderAuthMetrics(const auth::AuthCounters& a, std::size_t users) {
  std::string out;
  counter(out, "auth_challenges", a.challenges);
  counter(out, "auth_successes", a.successes);
  counter(out, "auth_failures", a.failures);
  counter(out, "auth_stale", a.stale);
  counter(out, "auth_replays", a.replays);
  counter(out, "auth_held", a.held);
  counter(out, "auth_bans", a.bans);
  counter(out, "auth_users", users, "gauge");
  return out;
}

std::string renderFloodMetrics(const auth::SourceGuardCounters& f) {
  std::string out;
  counter(out, "flood_dropped", f.dropped);
  counter(out, "flood_bans", f.floodBans);
  counter(out, "flood_other_bans", f.otherBans);
  counter(out, "flood_evictions", f.evictions);
  counter(out, "flood_tracked_sources", f.trackedSources, "gauge");
  counter(out, "flood_active_bans", f.activeBans, "gauge");
  return out;
}

std::string renderPersistenceMetrics(const persistence::PersistenceCounters& p) {
  std::string out;
  counter(out, "registrar_persistence_batches_written", p.batchesWritten);
  counter(out, "registrar_persistence_bindings_written", p.bindingsWritten);
  counter(out, "registrar_persistence_write_errors", p.writeErrors);
  counter(out, "registrar_persistence_restored", p.restored);
  counter(out, "registrar_persistence_dropped_at_restore", p.droppedAtRestore);
  counter(out, "registrar_persistence_failing", p.failing, "gauge");
  return out;
}

bool writeMetricsFile(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream file(temporary, std::ios::trunc);
    file << text;
    if (!file.flush()) {
      spdlog::error("cannot write metrics file {}", temporary);
      return false;
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    spdlog::error("cannot rename {} to {}", temporary, path);
    return false;
  }
  return true;
}

}  // namespace waypoint::app
