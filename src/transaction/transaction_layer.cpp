#include "waypoint/transaction/transaction_layer.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <variant>

#include "waypoint/sip/text.hpp"
#include "waypoint/transaction/client_transactions.hpp"
#include "waypoint/transaction/server_transactions.hpp"

namespace waypoint::transaction {

namespace {

constexpr std::string_view kMagicCookie = "z9hG4bK";
using Kind = Action::Kind;
using TimerGenerations = std::array<std::uint16_t, kTimerCount>;

std::uint16_t& generationOf(TimerGenerations& generations, TimerName timer) {
  return generations[static_cast<std::size_t>(timer)];
}

// §17.1.1.3 leaves the ACK's Max-Forwards to §8.1.1.6: 70.
constexpr std::uint32_t kAckMaxForwards = 70;

using ClientMachine = std::variant<InviteClientTransaction, NonInviteClientTransaction>;

ClientMachine clientMachine(bool invite, const TimerSettings& timers, bool reliable) {
  return invite ? ClientMachine(InviteClientTransaction(timers, reliable))
                : ClientMachine(NonInviteClientTransaction(timers, reliable));
}

// §18.1.1: a TCP attempt the peer turned away ("ICMP Protocol Not Supported, or ... a TCP
// reset"), as opposed to one that just went unanswered.
bool refusedOrReset(std::error_code error) {
  return error == std::errc::connection_refused || error == std::errc::connection_reset ||
         error == std::errc::protocol_not_supported || error == std::errc::no_protocol_option;
}

}  // namespace

std::string clientTransactionKey(std::string_view branch, std::string_view method) {
  std::string key;
  key.reserve(branch.size() + method.size() + 1);
  key.append(branch).append("|").append(method);
  return key;
}

std::string serverTransactionKey(const sip::Message& request, std::string_view methodOverride,
                                 std::optional<std::string_view> toTag) {
  const auto via = request.topVia();
  std::string method(methodOverride.empty() ? request.method() : methodOverride);
  if (method == "ACK") method = "INVITE";
  std::string key;
  key.reserve(128);
  if (via && via->branch.size() > kMagicCookie.size() && via->branch.starts_with(kMagicCookie)) {
    // RFC 3261: branch + sent-by + method.
    key.append("3|").append(via->branch).append("|").append(sip::lowerAscii(via->host)).append(":");
    key.append(via->port ? std::to_string(*via->port) : std::string()).append("|").append(method);
    return key;
  }
  // RFC 2543 (§17.2.3): Request-URI, To tag, From tag, Call-ID, CSeq number, top Via.
  const auto cseq = request.cseq();
  const auto from = request.from();
  const auto to = request.to();
  const auto vias = request.headerValues("Via");
  key.append("2|").append(request.requestUri()).append("|");
  key.append(toTag ? std::string(*toTag) : (to ? to->tag : std::string())).append("|");
  key.append(from ? from->tag : std::string()).append("|").append(request.callId()).append("|");
  key.append(cseq ? std::to_string(cseq->number) : std::string()).append("|");
  key.append(vias.empty() ? std::string() : vias.front()).append("|").append(method);
  return key;
}

struct TransactionLayer::ServerTransaction {
  TransactionId id;
  std::string key;
  std::variant<InviteServerTransaction, NonInviteServerTransaction> machine;
  transport::Destination responseTo;
  std::string lastResponse;
  TimerGenerations generations{};
  std::string responseToTag;  // RFC 2543 transactions only: an ACK must carry it (§17.2.3)
};

struct TransactionLayer::ClientTransaction {
  ClientTransaction(TransactionId transactionId, std::string transactionKey, ClientMachine m,
                    sip::OutgoingRequest outgoing)
      : id(transactionId),
        key(std::move(transactionKey)),
        machine(m),
        request(std::move(outgoing)) {}

  TransactionId id;
  std::string key;
  ClientMachine machine;
  transport::Destination destination;
  // Until the final response: serialized again when the transport changes, and the source
  // of the CANCEL and the ACK.
  std::optional<sip::OutgoingRequest> request;
  std::string bytes;  // as sent (and retransmitted)
  std::string ack;
  // Moved to TCP for its size: where it would have gone over UDP (§18.1.1).
  std::optional<transport::Destination> udpFallback;
  std::uint32_t attempt = 0;
  bool answered = false;  // a response came: the TCP path worked, there is no retry
  TimerGenerations generations{};
};

TransactionLayer::TransactionLayer(const Clock& clock, Sender& sender, TransactionUser& user,
                                   LayerSettings settings)
    : clock_(clock), sender_(sender), user_(user), settings_(settings) {}

TransactionLayer::~TransactionLayer() = default;

void TransactionLayer::arm(TransactionId id, std::uint16_t& generation, TimerName timer,
                           Duration delay) {
  ++generation;
  timers_.push(TimerEntry{clock_.now() + delay, id, generation, timer});
}

void TransactionLayer::sendFor(TransactionId id, std::uint32_t attempt,
                               const transport::Destination& destination,
                               const std::string& bytes) {
  // A failure can come back from inside send(): queue it, never re-enter a machine.
  sender_.send(destination, bytes, [this, id, attempt](std::error_code error) {
    failedSends_.push_back(FailedSend{id, attempt, error});
    if (depth_ == 0) drainTransportErrors();
  });
}

template <typename Transaction>
void TransactionLayer::execute(Transaction& t, const Actions& actions, sip::Message* event,
                               const transport::Source* source) {
  constexpr bool isServer = std::is_same_v<Transaction, ServerTransaction>;
  const TransactionId id = t.id;
  bool terminate = false;
  bool serverFailed = false;
  for (const Action& action : actions) {
    switch (action.kind) {
      case Kind::sendRequest:
        if constexpr (!isServer) sendFor(id, t.attempt, t.destination, t.bytes);
        break;
      case Kind::sendAck:
        if constexpr (!isServer) {
          if (t.ack.empty() && event != nullptr && t.request) {
            if (auto ack = t.request->ack(*event, kAckMaxForwards)) t.ack = ack->serialize();
          }
          if (!t.ack.empty()) sendFor(id, t.attempt, t.destination, t.ack);
        }
        break;
      case Kind::sendResponse:
        if constexpr (isServer) sendFor(id, 0, t.responseTo, t.lastResponse);
        break;
      case Kind::deliver:
        if (event == nullptr) break;
        if constexpr (isServer) {
          if (event->method() == "ACK") {
            user_.onAck(*event, *source);
          } else {
            user_.onRequest(id, *event, *source);
          }
        } else {
          user_.onResponse(id, *event);
        }
        break;
      case Kind::timeout:
        if constexpr (isServer) {
          ++counters_.serverTimeouts;
          spdlog::warn("no ACK for the final response of server transaction {} (Timer H)", id);
          serverFailed = true;
        } else {
          ++counters_.clientTimeouts;
          user_.onClientTimeout(id);
        }
        break;
      case Kind::transportError:
        if constexpr (isServer) {
          serverFailed = true;
        } else {
          user_.onClientTransportError(id);
        }
        break;
      case Kind::startTimer:
        arm(id, generationOf(t.generations, action.timer), action.timer, action.delay);
        break;
      case Kind::stopTimer:
        ++generationOf(t.generations, action.timer);  // the heap entry goes stale
        break;
      case Kind::terminate:
        terminate = true;
        break;
    }
  }
  if (terminate) {
    if constexpr (isServer) {
      eraseServer(id);
    } else {
      eraseClient(id);
    }
  }
  if (serverFailed) user_.onServerFailure(id);  // after erasing: the TU may not respond again
}

void TransactionLayer::receiveRequest(sip::Message& request, const transport::Source& source) {
  ++depth_;
  const bool isAck = request.method() == "ACK";
  std::string key = serverTransactionKey(request);
  auto found = serverByKey_.find(key);
  if (found == serverByKey_.end() && isAck && key.starts_with("2|")) {
    // RFC 2543: the INVITE had no To tag; its ACK must carry the one of our response.
    found = serverByKey_.find(serverTransactionKey(request, {}, std::string_view()));
    const auto to = request.to();
    if (found != serverByKey_.end() &&
        (!to || servers_.at(found->second)->responseToTag != to->tag)) {
      found = serverByKey_.end();
    }
  }
  if (found != serverByKey_.end()) {
    ServerTransaction& t = *servers_.at(found->second);
    Actions actions;
    if (isAck) {
      auto* invite = std::get_if<InviteServerTransaction>(&t.machine);
      if (invite != nullptr) {
        actions = invite->onAck();
        if (!actions.has(Kind::deliver)) ++counters_.acksAbsorbed;
      }
    } else {
      actions = std::visit([](auto& m) { return m.onRequestRetransmission(); }, t.machine);
      ++counters_.requestRetransmissionsAbsorbed;
      if (actions.has(Kind::sendResponse)) ++counters_.responseRetransmissionsSent;
    }
    execute(t, actions, &request, &source);
  } else if (isAck) {
    user_.onAck(request, source);  // an ACK for a 2xx after its transaction, or a stray one
  } else {
    const TransactionId id = nextId_++;
    const auto via = request.topVia();
    const bool reliable = transport::isReliable(source.protocol);
    const bool invite = request.method() == "INVITE";
    using Machine = decltype(ServerTransaction::machine);
    // Braces with every field, not make_unique's parentheses: clang 14 (the fuzz build) has
    // no C++20 parenthesized aggregate initialisation, and warns on a field left out.
    auto t = std::make_unique<ServerTransaction>(ServerTransaction{
        id,
        key,
        invite ? Machine(InviteServerTransaction(settings_.timers, reliable))
               : Machine(NonInviteServerTransaction(settings_.timers, reliable)),
        transport::responseDestination(transport::ViaSentBy{via->port, via->hasRport}, source),
        {},
        {},
        {}});
    ServerTransaction& ref = *t;
    serverByKey_.emplace(std::move(key), id);
    servers_.emplace(id, std::move(t));
    ++counters_.serverTransactionsCreated;
    if (invite && settings_.send100Trying) {
      // §17.2.1: quench retransmissions at once; no To tag on a 100 (§8.2.6.2).
      respond(id, 100, sip::buildResponse(request, 100, "Trying"));
    }
    const Actions actions = std::visit([](auto& m) { return m.start(); }, ref.machine);
    execute(ref, actions, &request, &source);
  }
  --depth_;
  drainTransportErrors();
}

void TransactionLayer::receiveResponse(sip::Message& response, const transport::Source& source) {
  ++depth_;
  const auto via = response.topVia();
  const auto cseq = response.cseq();
  auto found = via && cseq ? clientByKey_.find(clientTransactionKey(via->branch, cseq->method))
                           : clientByKey_.end();
  if (found == clientByKey_.end()) {
    ++counters_.strayResponses;
    user_.onStrayResponse(response, source);
  } else {
    ClientTransaction& t = *clients_.at(found->second);
    const TransactionId id = t.id;
    const int status = response.statusCode();
    t.answered = true;
    const Actions actions =
        std::visit([status](auto& m) { return m.onResponse(status); }, t.machine);
    if (!actions.has(Kind::deliver)) ++counters_.responsesAbsorbed;
    execute(t, actions, &response, &source);
    if (auto still = clients_.find(id); status >= 200 && still != clients_.end()) {
      // Nothing is sent again but the ACK (kept as bytes) and there is nothing left to cancel.
      still->second->request.reset();
      std::string().swap(still->second->bytes);
    }
  }
  --depth_;
  drainTransportErrors();
}

bool TransactionLayer::respond(TransactionId server, int status, std::string bytes) {
  auto found = servers_.find(server);
  if (found == servers_.end()) return false;
  ++depth_;
  ServerTransaction& t = *found->second;
  const Actions actions =
      std::visit([status](auto& m) { return m.onTuResponse(status); }, t.machine);
  if (actions.has(Kind::sendResponse)) {
    ++counters_.responsesSent[metrics::statusClassIndex(status)];
    if (t.key.starts_with("2|") && status >= 200) {
      sip::ParseResult parsed = sip::Message::parse(bytes);
      if (parsed.message && parsed.message->to()) t.responseToTag = parsed.message->to()->tag;
    }
    t.lastResponse = std::move(bytes);
  }
  execute(t, actions, nullptr, nullptr);
  --depth_;
  drainTransportErrors();
  return true;
}

TransactionId TransactionLayer::startClient(ClientRequest request) {
  ++depth_;
  const TransactionId id = nextId_++;
  sip::OutgoingRequest& outgoing = request.request;
  const bool invite = outgoing.method() == "INVITE";
  std::string key = clientTransactionKey(outgoing.branch(), outgoing.method());
  std::string bytes = outgoing.serialize();
  const transport::Protocol wanted = request.destination.protocol;
  const transport::Protocol protocol = transport::chooseRequestProtocol(
      wanted, bytes.size(), settings_.udpMtu, request.targetAllowsTcp);
  const bool moved = protocol != wanted && outgoing.setViaTransport(transport::toString(protocol));
  if (moved) bytes = outgoing.serialize();
  auto t = std::make_unique<ClientTransaction>(
      id, std::move(key),
      clientMachine(invite, settings_.timers, transport::isReliable(moved ? protocol : wanted)),
      std::move(outgoing));
  t->bytes = std::move(bytes);
  t->destination = std::move(request.destination);
  if (moved) {
    t->udpFallback = t->destination;
    t->destination.protocol = protocol;
    t->destination.local.reset();  // a TCP connection picks its own local end
    ++counters_.requestsMovedToTcp;
  }
  ClientTransaction& ref = *t;
  clientByKey_[ref.key] = id;
  clients_.emplace(id, std::move(t));
  ++counters_.clientTransactionsCreated;
  const Actions actions = std::visit([](auto& m) { return m.start(); }, ref.machine);
  execute(ref, actions, nullptr, nullptr);
  --depth_;
  drainTransportErrors();
  return id;
}

std::optional<TransactionId> TransactionLayer::cancelClient(TransactionId invite,
                                                            std::uint32_t maxForwards) {
  const auto found = clients_.find(invite);
  if (found == clients_.end() || !found->second->request) return std::nullopt;
  const ClientTransaction& t = *found->second;
  std::optional<sip::OutgoingRequest> cancel = t.request->cancel(maxForwards);
  if (!cancel) return std::nullopt;
  // Already on the INVITE's transport: no second choice by size.
  const TransactionId id = startClient(ClientRequest{std::move(*cancel), t.destination, false});
  // Found by fuzz_core (issue 8): a CANCELled INVITE whose callee had rung and then sent
  // nothing kept its client transaction for ever; Timer B bounds it again.
  ClientTransaction& inviteTransaction = *clients_.at(invite);
  if (auto* machine = std::get_if<InviteClientTransaction>(&inviteTransaction.machine)) {
    execute(inviteTransaction, machine->onCancelSent(), nullptr, nullptr);
  }
  return id;
}

bool TransactionLayer::retryOverUdp(ClientTransaction& t, std::error_code error) {
  if (!t.udpFallback || t.answered || !t.request || !refusedOrReset(error)) return false;
  if (!t.request->setViaTransport(transport::toString(transport::Protocol::udp))) return false;
  spdlog::info("{} to {} over {}: {}, sent over UDP instead (RFC 3261 18.1.1)", t.request->method(),
               transport::toString(t.destination.remote),
               transport::toString(t.destination.protocol), error.message());
  t.bytes = t.request->serialize();
  t.destination = *t.udpFallback;
  t.udpFallback.reset();
  ++t.attempt;
  for (std::uint16_t& generation : t.generations) ++generation;  // the TCP attempt's timers
  t.machine = clientMachine(std::holds_alternative<InviteClientTransaction>(t.machine),
                            settings_.timers, false);
  ++counters_.requestsRetriedOverUdp;
  const Actions actions = std::visit([](auto& m) { return m.start(); }, t.machine);
  execute(t, actions, nullptr, nullptr);
  return true;
}

void TransactionLayer::destinationUnreachable(const transport::Destination& destination) {
  for (const auto& [id, client] : clients_) {
    if (client->destination.protocol == transport::Protocol::udp &&
        client->destination.remote == destination.remote) {
      failedSends_.push_back(
          FailedSend{id, client->attempt, std::make_error_code(std::errc::host_unreachable)});
    }
  }
  drainTransportErrors();
}

std::optional<TransactionId> TransactionLayer::inviteForCancel(const sip::Message& cancel) const {
  auto found = serverByKey_.find(serverTransactionKey(cancel, "INVITE"));
  if (found == serverByKey_.end()) return std::nullopt;
  return found->second;
}

std::optional<TimePoint> TransactionLayer::nextExpiry() {
  // Drop stale entries on top so the loop timer is not woken for nothing.
  while (!timers_.empty()) {
    const TimerEntry& top = timers_.top();
    bool live = false;
    if (auto s = servers_.find(top.id); s != servers_.end()) {
      live = generationOf(s->second->generations, top.timer) == top.generation;
    } else if (auto c = clients_.find(top.id); c != clients_.end()) {
      live = generationOf(c->second->generations, top.timer) == top.generation;
    }
    if (live) return top.due;
    timers_.pop();
  }
  return std::nullopt;
}

void TransactionLayer::fireDueTimers() {
  ++depth_;
  const TimePoint now = clock_.now();
  while (!timers_.empty() && timers_.top().due <= now) {
    const TimerEntry entry = timers_.top();
    timers_.pop();
    if (auto s = servers_.find(entry.id); s != servers_.end()) {
      ServerTransaction& t = *s->second;
      if (generationOf(t.generations, entry.timer) != entry.generation) continue;
      const Actions actions =
          std::visit([&](auto& m) { return m.onTimer(entry.timer); }, t.machine);
      if (actions.has(Kind::sendResponse)) ++counters_.responseRetransmissionsSent;
      execute(t, actions, nullptr, nullptr);
    } else if (auto c = clients_.find(entry.id); c != clients_.end()) {
      ClientTransaction& t = *c->second;
      if (generationOf(t.generations, entry.timer) != entry.generation) continue;
      const Actions actions =
          std::visit([&](auto& m) { return m.onTimer(entry.timer); }, t.machine);
      if (actions.has(Kind::sendRequest)) ++counters_.requestRetransmissionsSent;
      execute(t, actions, nullptr, nullptr);
    }
  }
  --depth_;
  drainTransportErrors();
}

void TransactionLayer::drainTransportErrors() {
  while (depth_ == 0 && !failedSends_.empty()) {
    const FailedSend failure = failedSends_.back();
    failedSends_.pop_back();
    onTransportError(failure);
  }
}

void TransactionLayer::onTransportError(const FailedSend& failure) {
  ++depth_;
  const TransactionId id = failure.id;
  if (auto s = servers_.find(id); s != servers_.end()) {
    ++counters_.transportErrors;
    ServerTransaction& t = *s->second;
    const Actions actions = std::visit([](auto& m) { return m.onTransportError(); }, t.machine);
    execute(t, actions, nullptr, nullptr);
  } else if (auto c = clients_.find(id); c != clients_.end()) {
    ClientTransaction& t = *c->second;
    if (failure.attempt == t.attempt && !retryOverUdp(t, failure.error)) {
      ++counters_.transportErrors;
      const Actions actions = std::visit([](auto& m) { return m.onTransportError(); }, t.machine);
      execute(t, actions, nullptr, nullptr);
    }
  }
  --depth_;
}

void TransactionLayer::eraseServer(TransactionId id) {
  auto found = servers_.find(id);
  if (found == servers_.end()) return;
  auto byKey = serverByKey_.find(found->second->key);
  if (byKey != serverByKey_.end() && byKey->second == id) serverByKey_.erase(byKey);
  servers_.erase(found);
}

void TransactionLayer::eraseClient(TransactionId id) {
  auto found = clients_.find(id);
  if (found == clients_.end()) return;
  auto byKey = clientByKey_.find(found->second->key);
  if (byKey != clientByKey_.end() && byKey->second == id) clientByKey_.erase(byKey);
  clients_.erase(found);
}

const TransactionCounters& TransactionLayer::counters() const {
  counters_.liveServerTransactions = servers_.size();
  counters_.liveClientTransactions = clients_.size();
  counters_.pendingTimers = timers_.size();
  return counters_;
}

}  // namespace waypoint::transaction
