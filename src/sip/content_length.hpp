#pragma once
// Reading a Content-Length header line as written, for the decisions made on raw bytes
// before sofia parses them: datagram bodies (message.cpp) and stream framing
// (stream_framer.cpp). Private to src/sip.

#include <strings.h>

#include <charconv>
#include <cstddef>
#include <optional>
#include <string_view>

namespace waypoint::sip::detail {

// A "Content-Length" (or compact "l") header line.
struct ContentLengthLine {
  std::size_t nameLength = 0;        // the name as written, for renaming it
  std::optional<std::size_t> value;  // nullopt when the value is not 1*DIGIT
};

inline std::string_view trimBlanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// nullopt when the line (without its line end) is not a Content-Length header.
inline std::optional<ContentLengthLine> contentLengthLine(std::string_view line) {
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view name = line.substr(0, colon);
  while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
  const bool isLength =
      (name.size() == 14 && strncasecmp(name.data(), "Content-Length", 14) == 0) ||
      (name.size() == 1 && (name[0] == 'l' || name[0] == 'L'));
  if (!isLength) return std::nullopt;
  ContentLengthLine result{name.size(), std::nullopt};
  const std::string_view value = trimBlanks(line.substr(colon + 1));
  std::size_t number = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
  if (ec == std::errc() && !value.empty() && end == value.data() + value.size())
    result.value = number;
  return result;
}

}  // namespace waypoint::sip::detail
