#pragma once
// Checks a parsed message against RFC 3261 §8.2 / §16.3 (requests) and §18.1.2
// (responses). A failure is a reason phrase that names the problem; a request that
// fails is answered "400 <reason>", a response that fails is dropped and counted.

#include <optional>
#include <string>

#include "waypoint/sip/message.hpp"

namespace waypoint::sip {

// Why a request is refused: the status to answer with and a reason phrase that names the
// problem ("Missing Call-ID"). Mostly 400; 416 for an unknown URI scheme (§16.3 item 2),
// 505 for a SIP version other than 2.0.
struct Rejection {
  int status = 400;
  std::string reason;
};

std::optional<Rejection> validateRequest(const Message& request);
// A response that fails is dropped; the reason goes to the log and a counter.
std::optional<std::string> validateResponse(const Message& response);

}  // namespace waypoint::sip
