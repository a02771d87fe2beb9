#pragma once
// The debug line of one SIP message in or out, one line per message, so that
// `grep call-id=X` follows a call through the log:
//   recv INVITE sip:bob@example.com call-id=a84b4c76e66710 cseq="314159 INVITE"
//     from-tag=1928301774 to-tag=- peer=192.0.2.7:5060 transport=UDP
//     decision: rule "calls": sip:bob@192.0.2.4 (UDP 192.0.2.4:5060); forwarded
// The callers check spdlog::should_log(debug) first: with debug off nothing is formatted.

#include <string>
#include <string_view>
#include <vector>

#include "waypoint/sip/message.hpp"
#include "waypoint/transport/address.hpp"

namespace waypoint::app {

// `direction` is "recv" or "send"; the peer is the source or the destination. The
// dispatcher appends " decision: ..." to the line of a request received.
std::string messageLine(std::string_view direction, const sip::Message& message,
                        transport::Protocol protocol, const transport::Endpoint& peer);

// Keeps the debug lines in the order things happened. A request's line is written once
// the proxy has decided, and by then the layers below may have sent messages for it (100
// Trying, the forwarded request, a local answer): while the dispatcher holds, the lines of
// those sends wait here and follow the request's own line.
class DebugLines {
 public:
  void hold() { held_ = true; }
  // Writes `line` (at debug level), or keeps it while held.
  void write(std::string line);
  // Writes `first`, then the lines kept, and stops holding.
  void release(std::string_view first);

 private:
  bool held_ = false;
  std::vector<std::string> kept_;
};

}  // namespace waypoint::app
