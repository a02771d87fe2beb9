#pragma once
// Text helpers for the parts of SIP that compare case-insensitively (host names, tokens).

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>

namespace waypoint::sip {

inline std::string lowerAscii(std::string_view text) {
  std::string result(text);
  std::transform(result.begin(), result.end(), result.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return result;
}

// Equal but for the case of ASCII letters; allocates nothing (for per-request matching).
inline bool equalsIgnoringCase(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](unsigned char x, unsigned char y) {
    return std::tolower(x) == std::tolower(y);
  });
}

// RFC 3261 §25.1 token: alphanumerics and -.!%*_+`'~ (methods, parameter names, ...).
inline bool isTokenChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
         (c != '\0' && std::string_view("-.!%*_+`'~").find(c) != std::string_view::npos);
}

// Sixteen lower-case hex digits: tags, branch parts, hashes.
inline std::string hex64(std::uint64_t value) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text(16, '0');
  for (std::size_t i = text.size(); i-- > 0; value >>= 4) text[i] = kHex[value & 0xf];
  return text;
}

}  // namespace waypoint::sip
