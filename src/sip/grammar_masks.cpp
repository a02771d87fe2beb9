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

  bool inQuotes = false;
  bool lineStart = true;
  for (std::size_t pos = lineEnd; pos < headerEnd; ++pos) {
    const char c = bytes[pos];
    if (c == '\n') {
      lineStart = true;
      continue;
    }
    if (lineStart) {
      lineStart = false;
      if (!isBlank(c)) {
        inQuotes = false;  // a new header line; a quote left open is sofia's to refuse
        // Within this line only: a search past it would make colon-less lines quadratic.
        const std::string_view line =
            bytes.substr(pos, std::min(bytes.find('\n', pos), headerEnd) - pos);
        const std::size_t colon = line.find(':');
        if (colon != std::string_view::npos) {
          std::string_view name = line.substr(0, colon);
          while (!name.empty() && isBlank(name.back())) name.remove_suffix(1);
          if (name.size() == 4 && strncasecmp(name.data(), "CSeq", 4) == 0)
            maskCSeqMethod(bytes, pos + colon + 1, headerEnd, masks);
        }
      }
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
