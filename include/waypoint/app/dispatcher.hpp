#pragma once
// Where every parsed message from the transports goes first: parse, validate, then
// answer what the daemon answers itself (OPTIONS to one of its own names). Requests the
// proxy core will handle are answered 501 until it exists.

#include <cstdint>
#include <random>
#include <string_view>

#include "waypoint/app/local_identity.hpp"
#include "waypoint/sip/message.hpp"
#include "waypoint/transport/transports.hpp"

namespace waypoint::app {

struct DispatcherCounters {
  std::uint64_t messagesUnparseable = 0;
  std::uint64_t requestsReceived = 0;
  std::uint64_t requestsMalformed = 0;  // answered 400 (or 416/505)
  std::uint64_t requestsDropped = 0;    // malformed and unanswerable: no Via, or an ACK
  std::uint64_t responsesReceived = 0;
  std::uint64_t responsesDropped = 0;
  std::uint64_t optionsAnswered = 0;
  std::uint64_t requestsNotImplemented = 0;
};

class Dispatcher {
 public:
  Dispatcher(transport::Transports& transports, const LocalIdentity& identity, sip::ParseLimits limits);

  void onMessage(const transport::Source& source, std::string_view bytes);
  const DispatcherCounters& counters() const { return counters_; }

 private:
  void onRequest(const transport::Source& source, const sip::Message& request);
  void respond(const transport::Source& source, const sip::Message& request, int status, std::string_view reason,
               const std::vector<std::string>& extraHeaders = {});
  std::string newTag();

  transport::Transports& transports_;
  const LocalIdentity& identity_;
  sip::ParseLimits limits_;
  DispatcherCounters counters_;
  std::mt19937_64 random_;
};

}  // namespace waypoint::app
