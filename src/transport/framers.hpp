#pragma once
// Framers cut what a stream connection reads into SIP messages. A framer is a template
// argument of StreamConnection: feed(bytes, messageDone) then next() until needMore;
// messageDone says the stream itself ended a message there (a WebSocket frame), which a
// byte stream never does. Private to src/transport.

#include <string_view>

#include "waypoint/sip/stream_framer.hpp"

namespace waypoint::transport {

// TCP and TLS: RFC 3261 §18.3, messages cut by Content-Length, RFC 5626 CRLF keepalives.
class ContentLengthFramer {
 public:
  using Kind = sip::StreamFramer::Kind;
  explicit ContentLengthFramer(std::size_t maxMessageSize) : framer_(maxMessageSize) {}
  void feed(std::string_view bytes, bool /*messageDone*/) { framer_.feed(bytes); }
  Kind next() { return framer_.next(); }
  std::string_view frame() const { return framer_.frame(); }
  std::string_view reason() const { return framer_.reason(); }
  bool oversize() const { return framer_.oversize(); }

 private:
  sip::StreamFramer framer_;
};

}  // namespace waypoint::transport
