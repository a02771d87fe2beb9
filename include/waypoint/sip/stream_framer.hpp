#pragma once
// Cuts a byte stream (TCP, TLS) into SIP messages by Content-Length (RFC 3261 §18.3),
// and recognises RFC 5626 §4.4.1 CRLF keepalives between messages.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace waypoint::sip {

class StreamFramer {
 public:
  enum class Kind {
    needMore,  // no complete frame buffered yet
    message,   // frame() holds one complete message (no leading CR/LF)
    ping,      // a double CRLF: answer with a single CRLF
    pong,      // a single CRLF (a pong to our ping), seen once a message follows it
    error,     // the stream is broken (reason()); close the connection
  };

  explicit StreamFramer(std::size_t maxMessageSize) : maxMessageSize_(maxMessageSize) {}

  void feed(std::string_view bytes) { buffer_.append(bytes); }
  // Takes the next event out of the buffer. After error every call returns error.
  Kind next();
  std::string_view frame() const { return frame_; }
  const std::string& reason() const { return reason_; }
  // After error: the stream broke because a message grew past the maximum size.
  bool oversize() const { return oversize_; }
  std::size_t buffered() const { return buffer_.size() - consumed_; }
  // Bytes looked at in search of the end of a header block, over the framer's life: each
  // byte a bounded number of times however the stream is split, so a slowly dripped
  // header block costs linear time, not quadratic.
  std::size_t bytesScanned() const { return bytesScanned_; }

 private:
  Kind fail(std::string reason, bool oversize = false);
  void compact();
  std::string buffer_;
  std::size_t consumed_ = 0;
  // The message being framed, from consumed_ on: how far its header block has been
  // searched, and once its end is found, how long the whole frame is.
  std::size_t scanned_ = 0;
  std::optional<std::size_t> frameSize_;
  std::size_t bytesScanned_ = 0;
  std::string frame_;
  std::string reason_;
  std::size_t maxMessageSize_;
  bool broken_ = false;
  bool oversize_ = false;
};

}  // namespace waypoint::sip
