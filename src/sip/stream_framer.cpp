#include "waypoint/sip/stream_framer.hpp"

#include "content_length.hpp"

namespace waypoint::sip {

namespace {

enum class LengthResult { found, missing, malformed };

// Reads Content-Length from the header block (start line excluded is fine: it has no
// colon before the first space that could match).
LengthResult contentLength(std::string_view headers, std::size_t& length) {
  std::size_t pos = headers.find("\r\n");
  while (pos != std::string_view::npos && pos < headers.size()) {
    pos += 2;
    std::size_t eol = headers.find("\r\n", pos);
    if (eol == std::string_view::npos) eol = headers.size();
    const auto found = detail::contentLengthLine(headers.substr(pos, eol - pos));
    pos = eol;
    if (!found) continue;
    if (!found->value) return LengthResult::malformed;
    length = *found->value;
    return LengthResult::found;
  }
  return LengthResult::missing;
}

}  // namespace

StreamFramer::Kind StreamFramer::fail(std::string reason, bool oversize) {
  broken_ = true;
  oversize_ = oversize;
  reason_ = std::move(reason);
  return Kind::error;
}

StreamFramer::Kind StreamFramer::next() {
  if (broken_) return Kind::error;
  frame_.clear();
  std::string_view pending(buffer_);
  pending.remove_prefix(consumed_);

  // RFC 5626 §4.4.1: "\r\n\r\n" is a ping, a lone "\r\n" the pong. Between messages only.
  // Stray CR and LF are skipped in a loop: a peer may send any number of them.
  while (!pending.empty() && (pending.front() == '\r' || pending.front() == '\n')) {
    if (pending.starts_with("\r\n\r\n")) {
      consumed_ += 4;
      return Kind::ping;
    }
    if (pending.size() < 4 && std::string_view("\r\n\r\n").starts_with(pending)) {
      // "\r", "\r\n" or "\r\n\r": a ping split over reads may still be arriving. A
      // CRLF is known to be a pong only once the next bytes are not CRLF.
      compact();
      return Kind::needMore;
    }
    if (pending.starts_with("\r\n")) {
      consumed_ += 2;
      return Kind::pong;
    }
    consumed_ += 1;  // a stray CR or LF
    pending.remove_prefix(1);
  }

  // The header block is searched once: each call goes on from where the last one stopped
  // (less the 3 bytes a "\r\n\r\n" split over reads may have left at the end).
  if (!frameSize_) {
    const std::size_t from = scanned_ >= 3 ? scanned_ - 3 : 0;
    const std::size_t found = pending.find("\r\n\r\n", from);
    bytesScanned_ += (found == std::string_view::npos ? pending.size() : found + 4) - from;
    if (found == std::string_view::npos) {
      scanned_ = pending.size();
      if (pending.size() > maxMessageSize_)
        return fail("Headers exceed the maximum message size", true);
      compact();
      return Kind::needMore;
    }
    std::size_t length = 0;
    switch (contentLength(pending.substr(0, found), length)) {
      case LengthResult::missing:
        return fail("Missing Content-Length on a stream transport");
      case LengthResult::malformed:
        return fail("Malformed Content-Length");
      case LengthResult::found:
        break;
    }
    const std::size_t total = found + 4;
    if (length > maxMessageSize_ || total + length > maxMessageSize_) {
      return fail("Message exceeds the maximum message size", true);
    }
    frameSize_ = total + length;
  }
  if (pending.size() < *frameSize_) {
    compact();
    return Kind::needMore;
  }
  frame_.assign(pending.substr(0, *frameSize_));
  consumed_ += *frameSize_;
  frameSize_.reset();
  scanned_ = 0;
  return Kind::message;
}

void StreamFramer::compact() {
  if (consumed_ > 0) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
}

}  // namespace waypoint::sip
