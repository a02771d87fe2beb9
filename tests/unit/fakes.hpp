#pragma once
// Test doubles for the transaction layer's three dependencies, and the sample messages
// its tests feed it:
//  - FakeClock: time moves only when a test says so.
//  - FakeSender: records every send with the fake time it happened; can fail the Nth send
//    from inside send(), or report a failure later through the handler it kept.
//  - RecordingUser: records every TransactionUser callback, in order.
// Nothing here sleeps or opens a socket.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "waypoint/sip/message.hpp"
#include "waypoint/sip/outgoing.hpp"
#include "waypoint/transaction/actions.hpp"
#include "waypoint/transaction/transaction_layer.hpp"
#include "waypoint/transport/address.hpp"

namespace waypoint::testkit {

using namespace std::chrono_literals;
using transaction::Duration;
using transaction::TimePoint;
using transaction::TransactionId;

// ---- FakeClock ----

// Starts at an arbitrary, non-zero instant; elapsed() is the time since construction, which
// is what the tests' schedules are written in.
class FakeClock final : public transaction::Clock {
 public:
  TimePoint now() const override { return now_; }
  void advance(Duration by) { now_ += by; }
  void set(TimePoint to) { now_ = to; }
  TimePoint start() const { return start_; }
  Duration elapsed() const { return std::chrono::duration_cast<Duration>(now_ - start_); }

 private:
  TimePoint start_ = TimePoint{} + std::chrono::hours(1000);
  TimePoint now_ = start_;
};

// ---- FakeSender ----

struct SentMessage {
  transport::Destination destination;
  std::string bytes;
  Duration at;        // FakeClock::elapsed() when sent
  bool failedAtOnce;  // the send failed from inside send()
};

class FakeSender final : public transaction::Sender {
 public:
  explicit FakeSender(const FakeClock& clock) : clock_(clock) {}

  void send(const transport::Destination& destination, const std::string& bytes,
            ErrorHandler onError) override {
    const std::size_t number = sent_.size() + 1;
    const bool fail = failNth_ == number;
    sent_.push_back(SentMessage{destination, bytes, clock_.elapsed(), fail});
    handlers_.push_back(onError);
    if (fail && onError) onError(std::make_error_code(std::errc::connection_refused));
  }

  // The nth send (1-based, counting every send since construction) fails inside send().
  void failNthSend(std::size_t n) { failNth_ = n; }

  // Reports, now, that the nth send (1-based) failed, through the handler send() was given,
  // as a transport would after an asynchronous write or connect error.
  void failLater(std::size_t n,
                 std::error_code error = std::make_error_code(std::errc::connection_reset)) {
    ASSERT_GE(n, 1u);
    ASSERT_LE(n, handlers_.size());
    // As the daemon's TransportSender: a send without a handler reports nothing.
    if (handlers_[n - 1]) handlers_[n - 1](error);
  }

  const std::vector<SentMessage>& sent() const { return sent_; }
  std::size_t count() const { return sent_.size(); }
  const SentMessage& last() const { return sent_.back(); }

  // When (in ms of FakeClock::elapsed()) each message starting with `startLinePrefix` was sent.
  std::vector<std::int64_t> timesOf(std::string_view startLinePrefix = {}) const {
    std::vector<std::int64_t> times;
    for (const SentMessage& m : sent_) {
      if (std::string_view(m.bytes).starts_with(startLinePrefix)) times.push_back(m.at.count());
    }
    return times;
  }
  std::size_t countOf(std::string_view startLinePrefix) const {
    return timesOf(startLinePrefix).size();
  }

 private:
  const FakeClock& clock_;
  std::vector<SentMessage> sent_;
  std::vector<ErrorHandler> handlers_;
  std::optional<std::size_t> failNth_;
};

// ---- RecordingUser ----

struct UserEvent {
  enum class Kind {
    request,
    ack,
    response,
    strayResponse,
    clientTimeout,
    clientTransportError,
    serverFailure
  };
  Kind kind;
  TransactionId id = 0;  // 0 for ack and strayResponse
  std::string method;    // requests: the method; responses: the CSeq method
  int status = 0;        // responses
  std::string bytes;     // the message as serialized when it was handed over
  transport::Source source;
  Duration at;
};

class RecordingUser final : public transaction::TransactionUser {
 public:
  using Kind = UserEvent::Kind;
  explicit RecordingUser(const FakeClock& clock) : clock_(clock) {}

  void onRequest(TransactionId server, sip::Message& request,
                 const transport::Source& source) override {
    events_.push_back(UserEvent{Kind::request, server, std::string(request.method()), 0,
                                request.serialize(), source, clock_.elapsed()});
    if (whenRequest) whenRequest(server, request);
  }
  void onAck(sip::Message& ack, const transport::Source& source) override {
    events_.push_back(UserEvent{Kind::ack, 0, std::string(ack.method()), 0, ack.serialize(), source,
                                clock_.elapsed()});
  }
  void onResponse(TransactionId client, sip::Message& response) override {
    events_.push_back(UserEvent{Kind::response,
                                client,
                                cseqMethod(response),
                                response.statusCode(),
                                response.serialize(),
                                {},
                                clock_.elapsed()});
  }
  void onStrayResponse(sip::Message& response, const transport::Source& source) override {
    events_.push_back(UserEvent{Kind::strayResponse, 0, cseqMethod(response), response.statusCode(),
                                response.serialize(), source, clock_.elapsed()});
  }
  void onClientTimeout(TransactionId client) override {
    events_.push_back(UserEvent{Kind::clientTimeout, client, {}, 0, {}, {}, clock_.elapsed()});
  }
  void onClientTransportError(TransactionId client) override {
    events_.push_back(
        UserEvent{Kind::clientTransportError, client, {}, 0, {}, {}, clock_.elapsed()});
  }
  void onServerFailure(TransactionId server) override {
    events_.push_back(UserEvent{Kind::serverFailure, server, {}, 0, {}, {}, clock_.elapsed()});
  }

  const std::vector<UserEvent>& events() const { return events_; }
  std::vector<UserEvent> of(Kind kind) const {
    std::vector<UserEvent> matching;
    for (const UserEvent& e : events_) {
      if (e.kind == kind) matching.push_back(e);
    }
    return matching;
  }
  std::size_t count(Kind kind) const { return of(kind).size(); }
  // When (in ms of FakeClock::elapsed()) each callback of `kind` came.
  std::vector<std::int64_t> timesOf(Kind kind) const {
    std::vector<std::int64_t> times;
    for (const UserEvent& e : of(kind)) times.push_back(e.at.count());
    return times;
  }

  // Runs after onRequest is recorded: lets a test answer from inside the callback, as the
  // daemon's own UAS does.
  std::function<void(TransactionId, const sip::Message&)> whenRequest;

 private:
  static std::string cseqMethod(const sip::Message& response) {
    const auto cseq = response.cseq();
    return cseq ? cseq->method : std::string();
  }
  const FakeClock& clock_;
  std::vector<UserEvent> events_;
};

// ---- Driving the layer ----

// Moves the clock forward by `total` in `step`s, firing due timers after every step, the
// way the daemon's loop timer would (only later, never earlier).
inline void runFor(FakeClock& clock, transaction::TransactionLayer& layer, Duration total,
                   Duration step = 1ms) {
  for (Duration done{0}; done < total;) {
    const Duration by = std::min(step, total - done);
    clock.advance(by);
    done += by;
    layer.fireDueTimers();
  }
}

// Runs until the clock reads `until` (FakeClock::elapsed()).
inline void runUntil(FakeClock& clock, transaction::TransactionLayer& layer, Duration until,
                     Duration step = 1ms) {
  if (until > clock.elapsed()) runFor(clock, layer, until - clock.elapsed(), step);
}

// An Actions list as words, for gmock matchers: "sendRequest", "deliver", "start A 500ms", "stop
// B".
inline std::vector<std::string> describe(const transaction::Actions& actions) {
  using Kind = transaction::Action::Kind;
  std::vector<std::string> words;
  for (const transaction::Action& a : actions) {
    switch (a.kind) {
      case Kind::sendRequest:
        words.emplace_back("sendRequest");
        break;
      case Kind::sendAck:
        words.emplace_back("sendAck");
        break;
      case Kind::sendResponse:
        words.emplace_back("sendResponse");
        break;
      case Kind::deliver:
        words.emplace_back("deliver");
        break;
      case Kind::timeout:
        words.emplace_back("timeout");
        break;
      case Kind::transportError:
        words.emplace_back("transportError");
        break;
      case Kind::startTimer:
        words.push_back(std::string("start ") + transaction::toString(a.timer) + " " +
                        std::to_string(a.delay.count()) + "ms");
        break;
      case Kind::stopTimer:
        words.push_back(std::string("stop ") + transaction::toString(a.timer));
        break;
      case Kind::terminate:
        words.emplace_back("terminate");
        break;
    }
  }
  return words;
}

// ---- Sample messages ----

inline sip::Message parse(std::string_view bytes) {
  sip::ParseResult result = sip::Message::parse(bytes);
  if (!result.message || !result.error.empty()) {
    throw std::runtime_error("test message does not parse (" + result.error + "):\n" +
                             std::string(bytes));
  }
  return std::move(*result.message);
}

inline std::string firstLine(std::string_view bytes) {
  return std::string(bytes.substr(0, bytes.find("\r\n")));
}

// A request, written out header by header. The defaults make an RFC 3261 INVITE from
// Alice's phone; change what a test is about.
struct RequestSpec {
  std::string method = "INVITE";
  std::string requestUri = "sip:bob@biloxi.example.com";
  std::string viaTransport = "UDP";
  std::string sentBy = "192.0.2.10:5060";
  std::optional<std::string> branch =
      "z9hG4bK776asdhds";              // nullopt: no branch parameter (RFC 2543)
  std::vector<std::string> lowerVias;  // full values, below the top Via
  std::vector<std::string> routes;     // one Route header each
  std::string fromTag = "1928301774";
  std::string toTag;
  std::string callId = "a84b4c76e66710@pc33.atlanta.example.com";
  std::uint32_t cseq = 314159;
  std::string cseqMethod;  // empty: the method
};

inline std::string requestText(const RequestSpec& s) {
  std::string text;
  text.append(s.method).append(" ").append(s.requestUri).append(" SIP/2.0\r\n");
  text.append("Via: SIP/2.0/").append(s.viaTransport).append(" ").append(s.sentBy);
  if (s.branch) text.append(";branch=").append(*s.branch);
  text.append("\r\n");
  for (const std::string& via : s.lowerVias) text.append("Via: ").append(via).append("\r\n");
  for (const std::string& route : s.routes) text.append("Route: ").append(route).append("\r\n");
  text.append("Max-Forwards: 70\r\n");
  text.append("From: Alice <sip:alice@atlanta.example.com>;tag=").append(s.fromTag).append("\r\n");
  text.append("To: Bob <sip:bob@biloxi.example.com>");
  if (!s.toTag.empty()) text.append(";tag=").append(s.toTag);
  text.append("\r\n");
  text.append("Call-ID: ").append(s.callId).append("\r\n");
  text.append("CSeq: ").append(std::to_string(s.cseq)).append(" ");
  text.append(s.cseqMethod.empty() ? s.method : s.cseqMethod).append("\r\n");
  if (s.method == "INVITE") text.append("Contact: <sip:alice@192.0.2.10:5060>\r\n");
  text.append("Content-Length: 0\r\n\r\n");
  return text;
}

inline sip::Message request(const RequestSpec& s) { return parse(requestText(s)); }

// The ACK a UAC sends for a non-2xx final response to `invite` (§17.1.1.3): the INVITE's
// top Via (and branch), the response's To tag, CSeq method ACK.
inline std::string ackFor(RequestSpec invite, std::string toTag) {
  invite.method = "ACK";
  invite.cseqMethod.clear();
  invite.toTag = std::move(toTag);
  return requestText(invite);
}

// The response a downstream element would send to `requestBytes` (every Via copied).
inline std::string responseText(std::string_view requestBytes, int status, std::string_view reason,
                                std::string_view toTag = "8321234356") {
  return sip::buildResponse(parse(requestBytes), status, reason, toTag);
}

inline transport::Endpoint endpoint(const char* address, std::uint16_t port) {
  return transport::Endpoint{boost::asio::ip::make_address(address), port};
}

// Alice's phone (192.0.2.10:5060) reaching the proxy (203.0.113.1:5060).
inline transport::Source udpSource(std::uint16_t remotePort = 5060) {
  return transport::Source{transport::Protocol::udp, endpoint("203.0.113.1", 5060),
                           endpoint("192.0.2.10", remotePort), 0};
}
inline transport::Source tcpSource(std::uint64_t connectionId = 7) {
  return transport::Source{transport::Protocol::tcp, endpoint("203.0.113.1", 5060),
                           endpoint("192.0.2.10", 49152), connectionId};
}

// Bob's phone (198.51.100.20:5060), where the proxy's client transactions go.
inline transport::Destination downstream(transport::Protocol protocol = transport::Protocol::udp) {
  return transport::Destination{protocol, endpoint("198.51.100.20", 5060), 0, std::nullopt, {}, {}};
}
inline transport::Source downstreamSource(transport::Protocol protocol = transport::Protocol::udp) {
  return transport::Source{protocol, endpoint("203.0.113.1", 5060), endpoint("198.51.100.20", 5060),
                           0};
}

// A request as the proxy forwards it: its own Via (with `branch`) on top of Alice's.
inline RequestSpec forwarded(std::string method, std::string branch,
                             std::string viaTransport = "UDP") {
  RequestSpec s;
  s.method = std::move(method);
  s.viaTransport = viaTransport;
  s.sentBy = "203.0.113.1:5060";
  s.branch = std::move(branch);
  s.lowerVias = {"SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;received=192.0.2.10"};
  return s;
}

inline transaction::ClientRequest clientRequest(
    const RequestSpec& s, transport::Protocol protocol = transport::Protocol::udp) {
  return transaction::ClientRequest{sip::OutgoingRequest(parse(requestText(s))),
                                    downstream(protocol)};
}

}  // namespace waypoint::testkit
