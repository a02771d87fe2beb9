#pragma once
// Text helpers for the parts of SIP that compare case-insensitively (host names, tokens).

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

namespace waypoint::sip {

inline std::string lowerAscii(std::string_view text) {
  std::string result(text);
  std::transform(result.begin(), result.end(), result.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return result;
}

}  // namespace waypoint::sip
