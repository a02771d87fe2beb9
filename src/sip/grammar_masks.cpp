#include "grammar_masks.hpp"

#include <strings.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>

#include "waypoint/sip/text.hpp"

namespace waypoint::sip::detail {

namespace {

bool isToken(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    if (!isTokenChar(c)) return false;
  }
  return true;
}

// The methods sofia knows by name; it parses these correctly.
bool isSofiaMethod(std::string_view method) {
  static constexpr std::array<std::string_view, 14> kKnown = {
      "ACK",     "BYE",   "CANCEL",  "INFO",  "INVITE",   "MESSAGE",   "NOTIFY",
      "OPTIONS", "PRACK", "PUBLISH", "REFER", "REGISTER", "SUBSCRIBE", "UPDATE"};
  for (const auto known : kKnown) {
    if (method == known) return true;
  }
  return false;
}

bool isBlank(char c) { return c == ' ' || c == '\t'; }

// Masks an extension method at offset; returns it (empty when nothing was masked).
std::string maskMethod(std::string_view bytes, std::size_t offset, std::size_t length,
                       GrammarMasks& masks) {
  const std::string_view method = bytes.substr(offset, length);
  if (!isToken(method) || isSofiaMethod(method)) return {};
  masks.ranges.push_back({offset, std::string(method)});
  return std::string(method);
}

// The CSeq method: after the name, the colon, LWS, the number and LWS (folding included).
void maskCSeqMethod(std::string_view bytes, std::size_t valueStart, std::size_t headerEnd,
                    GrammarMasks& masks) {
  std::size_t pos = valueStart;
  auto skipLws = [&] {
    while (pos < headerEnd) {
      if (isBlank(bytes[pos])) {
        ++pos;
      } else if (bytes[pos] == '\r' || bytes[pos] == '\n') {
        std::size_t next =
            pos + (bytes[pos] == '\r' && pos + 1 < headerEnd && bytes[pos + 1] == '\n' ? 2 : 1);
        if (next < headerEnd && isBlank(bytes[next])) {
          pos = next;
        } else {
          return;
        }
      } else {
        return;
      }
    }
  };
  skipLws();
  while (pos < headerEnd && std::isdigit(static_cast<unsigned char>(bytes[pos])) != 0) ++pos;
  skipLws();
  std::size_t end = pos;
  while (end < headerEnd && isTokenChar(bytes[end])) ++end;
  if (end == pos ||
      (end < headerEnd && !isBlank(bytes[end]) && bytes[end] != '\r' && bytes[end] != '\n')) {
    return;  // not a method token: sofia's own error stands
  }
  if (masks.cseqMethod.empty()) masks.cseqMethod = maskMethod(bytes, pos, end - pos, masks);
}

// A NUL is allowed only as the second byte of a quoted-pair (it is masked); anywhere else
// it makes the message broken. Only run when the header block holds a NUL at all.
void maskQuotedNuls(std::string_view bytes, std::size_t from, std::size_t headerEnd,
                    GrammarMasks& masks) {
  bool inQuotes = false;
  bool lineStart = true;
  for (std::size_t pos = from; pos < headerEnd; ++pos) {
    const char c = bytes[pos];
    if (c == '\n') {
      lineStart = true;
      continue;
    }
    if (lineStart) {
      lineStart = false;
      if (!isBlank(c)) inQuotes = false;  // a new header line; an open quote is sofia's to refuse
    }
    if (c == '\0') {
      masks.strayNul = true;
    } else if (c == '"') {
      inQuotes = !inQuotes;
    } else if (c == '\\' && inQuotes && pos + 1 < headerEnd) {
      ++pos;  // quoted-pair: the next byte is taken as it is
      if (bytes[pos] == '\0') masks.ranges.push_back({pos, std::string(1, '\0')});
      if (bytes[pos] == '\n') lineStart = true;
    }
  }
}

// The header line starting at pos is CSeq: its name, then optional blanks and the colon.
std::size_t cseqValueStart(std::string_view bytes, std::size_t pos, std::size_t lineEnd) {
  if (lineEnd - pos < 5 || strncasecmp(bytes.data() + pos, "CSeq", 4) != 0) {
    return std::string_view::npos;
  }
  std::size_t at = pos + 4;
  while (at < lineEnd && isBlank(bytes[at])) ++at;
  return at < lineEnd && bytes[at] == ':' ? at + 1 : std::string_view::npos;
}

}  // namespace

GrammarMasks findGrammarMasks(std::string_view bytes, std::size_t headerEnd) {
  GrammarMasks masks;
  headerEnd = std::min(headerEnd, bytes.size());
  const std::size_t lineEnd = std::min(bytes.find('\n'), headerEnd);
  const std::string_view startLine = bytes.substr(0, lineEnd);
  if (startLine.find('\0') != std::string_view::npos) masks.strayNul = true;
  const bool request = !startLine.starts_with("SIP/");
  if (request) {
    const std::size_t space = startLine.find(' ');
    if (space != std::string_view::npos) masks.requestMethod = maskMethod(bytes, 0, space, masks);
  }

  // Line by line with memchr: this runs on every message, so it must not cost a branch per
  // byte (it did: a tenth of a forwarded response's parse).
  const char* const data = bytes.data();
  for (std::size_t pos = lineEnd; pos < headerEnd;) {
    const std::size_t start = pos + 1;  // pos is at a '\n'
    if (start >= headerEnd) break;
    const void* newline = std::memchr(data + start, '\n', headerEnd - start);
    const std::size_t end = newline != nullptr
                                ? static_cast<std::size_t>(static_cast<const char*>(newline) - data)
                                : headerEnd;
    if (!isBlank(data[start]) && masks.cseqMethod.empty()) {
      const std::size_t value = cseqValueStart(bytes, start, end);
      if (value != std::string_view::npos) maskCSeqMethod(bytes, value, headerEnd, masks);
    }
    pos = end;
  }
  if (lineEnd < headerEnd && std::memchr(data + lineEnd, '\0', headerEnd - lineEnd) != nullptr) {
    maskQuotedNuls(bytes, lineEnd, headerEnd, masks);
  }
  return masks;
}

void applyGrammarMasks(char* buffer, const GrammarMasks& masks) {
  for (const auto& range : masks.ranges) {
    const char placeholder = range.original == std::string_view("\0", 1) ? '0' : 'X';
    std::memset(buffer + range.offset, placeholder, range.original.size());
  }
}

void restoreGrammarMasks(char* buffer, const GrammarMasks& masks) {
  for (const auto& range : masks.ranges) {
    std::memcpy(buffer + range.offset, range.original.data(), range.original.size());
  }
}

}  // namespace waypoint::sip::detail
