#include "waypoint/proxy/proxy.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "waypoint/proxy/request_checks.hpp"

namespace waypoint::proxy {

namespace {

const std::vector<std::string> kOptionsHeaders = {
    "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, SUBSCRIBE, NOTIFY, REFER, INFO, UPDATE, "
    "MESSAGE, PRACK",
    "Accept: application/sdp",
    "Supported: path",
};

}  // namespace

Proxy::Proxy(const transaction::Clock& clock, transaction::Sender& sender,
             transaction::LayerSettings layerSettings, const LocalIdentity& identity,
             registrar::Registrar& registrar, ProxySettings settings,
             auth::Authenticator* authenticator)
    : clock_(clock),
      identity_(identity),
      registrar_(registrar),
      settings_(std::move(settings)),
      authenticator_(authenticator),
      tokens_(settings_.routeSecrets.empty() ? std::vector<std::string>{generateRouteSecret()}
                                             : settings_.routeSecrets),
      ids_(settings_.randomSeed),
      responder_(ids_, settings_.serverHeader, counters_),
      layer_(clock, sender, *this, layerSettings),
      router_(identity, registrar, tokens_, settings_.trusted, counters_),
      forwarder_(clock, sender, layer_, identity, tokens_, ids_, responder_,
                 ForwarderSettings{settings_.timerC, settings_.maxForwards}, counters_) {
  router_.setHideUnknownUsers(authenticator_ != nullptr);
}

Proxy::~Proxy() = default;

// ---------------------------------------------------------------- requests

void Proxy::onRequest(TransactionId server, sip::Message& request,
                      const transport::Source& source) {
  // §16.10: a CANCEL for an INVITE here is answered here and cancels its branches; one
  // with no INVITE here (it went through before a restart) is passed on like any request,
  // so the next hop's answer reaches the caller.
  if (request.method() == "CANCEL" && handleCancel(server, request)) return;
  if (draining_) {
    ++counters_.drainRefused;
    note_.add("answered 503 (stopping)");
    responder_.respond(layer_, server, request, 503, "Service Unavailable",
                       {"Retry-After: " + std::to_string(retryAfter_.count())});
    return;
  }
  std::string loopKey = loopKeyOf(request);
  if (const auto refusal = checkRequest(request, loopKey, identity_, counters_)) {
    if (note_.active()) note_.add(fmt::format("answered {} {}", refusal->status, refusal->reason));
    responder_.respond(layer_, server, request, refusal->status, refusal->reason, refusal->headers);
    return;
  }
  const TimePoint received = clock_.now();
  Routed routed = router_.route(request, source, received);
  // A request for the proxy itself is described by its local answer (proceed()).
  if (note_.active() && (routed.status != 0 || !routed.groups.empty())) {
    note_.add(describeRouted(routed));
  }
  std::optional<auth::AuthAttempt> attempt = admissionFor(request, source, routed);
  if (!attempt) {
    proceed(server, request, source, std::move(loopKey), std::move(routed), received);
    return;
  }
  std::size_t& fromSource = waitingBySource_[source.remote.address];
  if (waiting_.size() >= settings_.admission.maxWaiting ||
      fromSource >= settings_.admission.maxWaitingPerSource) {
    if (fromSource == 0) waitingBySource_.erase(source.remote.address);
    spdlog::warn("{} from {}: too many requests wait for authentication, answered 503",
                 request.method(), transport::toString(source.remote));
    note_.add("answered 503 (too many requests wait for authentication)");
    responder_.respond(layer_, server, request, 503, "Service Unavailable", {"Retry-After: 5"});
    return;
  }
  ++fromSource;
  // The layer lets the TU take the request: it waits here for its admission.
  auto [entry, inserted] = waiting_.try_emplace(server, std::move(request), source,
                                                std::move(loopKey), std::move(routed), received);
  entry->second.attempt = std::move(*attempt);
  entry->second.generation = nextGeneration_++;
  if (note_.active()) {
    note_.add(fmt::format("authentication ({}, realm {})",
                          entry->second.attempt.proxy ? "407" : "401",
                          entry->second.attempt.realm));
  }
  checkCredentials(server);
}

// Who must authenticate (RFC 3261 §22): a REGISTER for a served domain to the registrar
// (401), a request from a local user that leaves the proxy (407), and what a rule asks
// for. Never ACK or CANCEL (they cannot be challenged, §22.1), an in-dialog request whose
// flow token we signed, or a trusted source.
std::optional<auth::AuthAttempt> Proxy::admissionFor(const sip::Message& request,
                                                     const transport::Source& source,
                                                     const Routed& routed) const {
  if (authenticator_ == nullptr || routed.inDialog || routed.authenticate == false) {
    return std::nullopt;
  }
  const AdmissionSettings& admission = settings_.admission;
  if (admission.exemptTrusted && router_.isTrusted(source.remote.address)) return std::nullopt;
  const std::string_view method = request.method();
  if (method == "ACK" || method == "CANCEL") return std::nullopt;
  const bool required = routed.authenticate == true;
  auth::AuthAttempt attempt;
  attempt.method = std::string(method);
  attempt.source = source.remote.address;
  const bool forUs = routed.status == 0 && routed.groups.empty();
  const auto uri = request.requestUriParts();
  if (forUs) {
    if (method != "REGISTER" || !(admission.challengeRegister || required)) return std::nullopt;
    const auto domain = uri ? registrar_.domainOf(*uri) : std::nullopt;
    if (!domain) return std::nullopt;
    attempt.realm = *domain;
    attempt.credentials = request.headerValues("Authorization");
    return attempt;
  }
  const auto from = request.from();
  const auto fromUri = from ? sip::parseUri(from->uri) : std::nullopt;
  std::optional<std::string> realm = fromUri ? registrar_.domainOf(*fromUri) : std::nullopt;
  if (!realm || !(admission.challengeCalls || required)) {
    if (!required) return std::nullopt;
    realm = uri ? registrar_.domainOf(*uri) : std::nullopt;
    if (!realm && !registrar_.settings().defaultDomain.empty()) {
      realm = registrar_.settings().defaultDomain;
    }
    if (!realm) return std::nullopt;
  }
  attempt.realm = *realm;
  attempt.proxy = true;
  attempt.credentials = request.headerValues("Proxy-Authorization");
  return attempt;
}

void Proxy::checkCredentials(TransactionId server) {
  const auto found = waiting_.find(server);
  if (found == waiting_.end()) return;
  const std::uint64_t generation = found->second.generation;
  const auth::AuthAttempt attempt = found->second.attempt;  // the entry may go inside check()
  authenticator_->check(attempt, clock_.now(),
                        [this, server, generation](auth::AuthVerdict verdict) {
                          onVerdict(server, generation, std::move(verdict));
                        });
}

void Proxy::onVerdict(TransactionId server, std::uint64_t generation, auth::AuthVerdict verdict) {
  const auto found = waiting_.find(server);
  if (found == waiting_.end() || found->second.generation != generation) return;  // gone
  Waiting& waiting = found->second;
  switch (verdict.kind) {
    case auth::AuthVerdict::Kind::wait:
      note_.add("waits for the failed-login back-off");
      wakeups_.push(Wakeup{clock_.now() + verdict.delay, server, generation});
      return;
    case auth::AuthVerdict::Kind::challenge:
      if (verdict.delay.count() > 0) {
        if (note_.active()) note_.add(fmt::format("answer {} held back", verdict.status));
        waiting.heldAnswer = std::move(verdict);
        wakeups_.push(Wakeup{clock_.now() + waiting.heldAnswer->delay, server, generation});
        return;
      }
      if (note_.active()) note_.add(fmt::format("answered {} {}", verdict.status, verdict.reason));
      responder_.respond(layer_, server, waiting.request, verdict.status, verdict.reason,
                         std::move(verdict.headers));
      forget(found);
      return;
    case auth::AuthVerdict::Kind::authenticated:
      if (note_.active() && verdict.user) {
        note_.add(fmt::format("authenticated as {}", verdict.user->user));
      }
      break;
  }
  if (!verdict.user || !identityAllowed(waiting.request, waiting.attempt, *verdict.user)) {
    ++counters_.identityRefused;
    spdlog::warn("{} from {}: authenticated as {}@{} but {} names someone else: 403",
                 waiting.request.method(), transport::toString(waiting.source.remote),
                 verdict.user ? verdict.user->user : "", waiting.attempt.realm,
                 waiting.request.method() == "REGISTER" ? "To" : "From");
    note_.add("answered 403 (the identity is someone else's)");
    responder_.respond(layer_, server, waiting.request, 403, "Forbidden");
    forget(found);
    return;
  }
  // §22.3: our realm's credentials end here; those for hops further on go on.
  const std::string& realm = waiting.attempt.realm;
  waiting.request.removeHeaderValues(
      waiting.attempt.proxy ? "Proxy-Authorization" : "Authorization",
      [&realm](std::string_view value) {
        const auto credentials = auth::parseCredentials(value);
        return credentials && credentials->realm == realm;
      });
  sip::Message request = std::move(waiting.request);
  const transport::Source source = waiting.source;
  std::string loopKey = std::move(waiting.loopKey);
  Routed routed = std::move(waiting.routed);
  const TimePoint received = waiting.received;
  forget(found);
  proceed(server, request, source, std::move(loopKey), std::move(routed), received);
}

void Proxy::forget(std::unordered_map<TransactionId, Waiting>::iterator waiting) {
  const auto count = waitingBySource_.find(waiting->second.source.remote.address);
  if (count != waitingBySource_.end() && --count->second == 0) waitingBySource_.erase(count);
  waiting_.erase(waiting);
}

// RFC 3261 §10.3 step 3 and §26.1: an authenticated user registers its own address of
// record (or one it is allowed to register for) and calls as itself.
bool Proxy::identityAllowed(const sip::Message& request, const auth::AuthAttempt& attempt,
                            const auth::UserRecord& user) const {
  if (!settings_.admission.strictIdentity) return true;
  const std::string own = registrar_.aorOf("sip:" + user.user + "@" + attempt.realm);
  const bool registering = request.method() == "REGISTER" && !attempt.proxy;
  const auto named = registering ? request.to() : request.from();
  const std::string aor = named ? registrar_.aorOf(named->uri) : std::string();
  if (aor.empty()) return false;
  if (aor == own) return true;
  return registering &&
         std::find(user.mayRegister.begin(), user.mayRegister.end(), aor) != user.mayRegister.end();
}

void Proxy::proceed(TransactionId server, sip::Message& request, const transport::Source& source,
                    std::string loopKey, Routed routed, TimePoint received) {
  if (routed.status == 0 && routed.groups.empty()) {
    if (answerLocally(server, request, source)) return;
    routed.status = 404;
    routed.reason = "Not Found";
    note_.add("answered 404 (not served here)");
  } else if (routed.status != 0 && note_.active()) {
    note_.add(fmt::format("answered {}", routed.status));
  }
  if (routed.status != 0) {
    responder_.respond(layer_, server, request, routed.status, routed.reason);
    return;
  }
  note_.add("forwarded");
  forwarder_.start(server, std::move(request), source, std::move(loopKey), std::move(routed),
                   received);
}

bool Proxy::answerLocally(TransactionId server, sip::Message& request,
                          const transport::Source& source) {
  const auto uri = request.requestUriParts();
  if (!uri) return false;
  const bool toUs = uri->user.empty() && identity_.isLocal(*uri);
  if (request.method() == "REGISTER" && (toUs || registrar_.domainOf(*uri))) {
    ++counters_.registersHandled;
    const registrar::RegistrarReply reply = registrar_.handle(request, source, clock_.now());
    if (note_.active()) note_.add(fmt::format("registrar {} {}", reply.status, reply.reason));
    if (reply.status >= 300) {
      spdlog::info("REGISTER from {} {} refused: {} {}", transport::toString(source.protocol),
                   transport::toString(source.remote), reply.status, reply.reason);
    }
    layer_.respond(server, reply.status,
                   responder_.response(request, reply.status, reply.reason, reply.headers));
    return true;
  }
  if (request.method() == "OPTIONS" && toUs) {
    ++counters_.optionsAnswered;
    note_.add("answered 200 (OPTIONS to the proxy)");
    layer_.respond(server, 200, responder_.response(request, 200, "OK", kOptionsHeaders));
    return true;
  }
  return false;
}

bool Proxy::handleCancel(TransactionId server, sip::Message& cancel) {
  ++counters_.cancelsReceived;
  const auto invite = layer_.inviteForCancel(cancel);
  if (!invite) return false;
  responder_.respond(layer_, server, cancel, 200, "OK");
  note_.add("answered 200, its INVITE cancelled");
  if (const auto waiting = waiting_.find(*invite); waiting != waiting_.end()) {
    // Cancelled before it was admitted: nothing went downstream (§16.10: 487 upstream).
    responder_.respond(layer_, *invite, waiting->second.request, 487, "Request Terminated");
    forget(waiting);
    return true;
  }
  forwarder_.cancel(*invite);
  return true;
}

// ---------------------------------------------------------------- responses

void Proxy::onResponse(TransactionId client, sip::Message& response) {
  forwarder_.onResponse(client, response);
}

void Proxy::onStrayResponse(sip::Message& response, const transport::Source&) {
  forwarder_.onStrayResponse(response);
}

void Proxy::onClientTimeout(TransactionId client) { forwarder_.onClientTimeout(client); }

void Proxy::onClientTransportError(TransactionId client) {
  forwarder_.onClientTransportError(client);
}

void Proxy::onServerFailure(TransactionId server) {
  if (const auto waiting = waiting_.find(server); waiting != waiting_.end()) forget(waiting);
  forwarder_.onServerFailure(server);
}

// ---------------------------------------------------------------- stateless

void Proxy::onAck(sip::Message& ack, const transport::Source& source) {
  if (const auto mf = ack.maxForwards(); mf && *mf == 0) {
    ++counters_.statelessDropped;
    note_.add("dropped (Max-Forwards 0)");
    return;
  }
  Routed routed = router_.route(ack, source, clock_.now());
  if (note_.active()) note_.add(describeRouted(routed));
  if (routed.status != 0 || routed.groups.empty() || routed.groups.front().empty()) {
    ++counters_.statelessDropped;
    note_.add("dropped (nowhere to send it)");
    spdlog::debug("ACK Call-ID {} from {}: nowhere to send it", ack.callId(),
                  transport::toString(source.remote));
    return;
  }
  note_.add("forwarded statelessly");
  forwarder_.forwardAck(ack, routed.groups.front().front());
}

// ---------------------------------------------------------------- graceful stop

void Proxy::startDrain(std::chrono::seconds retryAfter) {
  draining_ = true;
  retryAfter_ = retryAfter;
}

// Transactions that remain once every response context has ended only absorb
// retransmissions (Timers J, K, L): a stop need not wait the 64*T1 they linger.
bool Proxy::drained() const { return forwarder_.liveContexts() == 0 && waiting_.empty(); }

// ---------------------------------------------------------------- timers

std::optional<TimePoint> Proxy::nextExpiry() {
  auto next = layer_.nextExpiry();
  if (const auto timerC = forwarder_.nextExpiry(); timerC && (!next || *timerC < *next)) {
    next = timerC;
  }
  while (!wakeups_.empty()) {
    const Wakeup& top = wakeups_.top();
    const auto found = waiting_.find(top.server);
    if (found != waiting_.end() && found->second.generation == top.generation) {
      if (!next || top.due < *next) next = top.due;
      break;
    }
    wakeups_.pop();
  }
  return next;
}

void Proxy::fireDueTimers() {
  const transaction::TransactionLayer::DeferCallbacks defer(layer_);
  layer_.fireDueTimers();
  const TimePoint now = clock_.now();
  forwarder_.fireDueTimers(now);
  while (!wakeups_.empty() && wakeups_.top().due <= now) {
    const Wakeup wakeup = wakeups_.top();
    wakeups_.pop();
    const auto found = waiting_.find(wakeup.server);
    if (found == waiting_.end() || found->second.generation != wakeup.generation) continue;
    if (auto held = std::move(found->second.heldAnswer)) {
      responder_.respond(layer_, wakeup.server, found->second.request, held->status, held->reason,
                         std::move(held->headers));
      forget(found);
      continue;
    }
    checkCredentials(wakeup.server);  // the back-off is over: check it now
  }
}

}  // namespace waypoint::proxy
