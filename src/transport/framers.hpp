#pragma once
// Framers cut what a stream connection reads into SIP messages. A framer is a template
// argument of StreamConnection: feed(bytes, messageDone) then next() until needMore;
// messageDone says the stream itself ended a message there (a WebSocket frame), which a
// byte stream never does. Private to src/transport.

#include <string>
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

// WebSocket (RFC 7118 §5.1): each WebSocket message, text or binary, however many frames
// it came in, is one SIP message. A message of only CRLFs is an RFC 5626 keepalive, as
// SIP.js sends them: "\r\n\r\n" is a ping answered with "\r\n", "\r\n" a pong.
class WebSocketFramer {
 public:
  using Kind = sip::StreamFramer::Kind;
  explicit WebSocketFramer(std::size_t maxMessageSize) : maxMessageSize_(maxMessageSize) {}

  // bytes: the next part of the current WebSocket message; messageDone: it ends here.
  void feed(std::string_view bytes, bool messageDone) {
    if (failed_) return;
    if (handedOut_) {
      message_.clear();
      handedOut_ = false;
      complete_ = false;
    }
    if (message_.size() + bytes.size() > maxMessageSize_) {
      failed_ = true;
      message_.clear();
      return;
    }
    message_.append(bytes);
    complete_ = messageDone;
  }

  Kind next() {
    if (failed_) return Kind::error;
    if (!complete_ || handedOut_) return Kind::needMore;
    handedOut_ = true;
    if (message_ == "\r\n\r\n") return Kind::ping;
    if (message_ == "\r\n") return Kind::pong;
    if (message_.empty()) return Kind::needMore;  // an empty message carries nothing
    return Kind::message;
  }

  std::string_view frame() const { return message_; }
  std::string_view reason() const { return failed_ ? "WebSocket message too large" : ""; }
  // The only error a WebSocket framer finds: the frames themselves are Beast's.
  bool oversize() const { return failed_; }

 private:
  std::size_t maxMessageSize_;
  std::string message_;
  bool complete_ = false;
  bool handedOut_ = false;
  bool failed_ = false;
};

}  // namespace waypoint::transport
