#pragma once
// Bytes that RFC 3261 allows but sofia-sip's grammar refuses, hidden from sofia while it
// parses and put back into the message buffer afterwards, so that the message is parsed
// with every other check sofia makes and still goes out byte for byte as it came
// (SOFIA-NOTES trap 7). Private to src/sip.
//
// - Extension methods: sofia's sip_method_d() takes only "unreserved" characters, not
//   every token character (RFC 4475 §3.1.1.2's method has %, + and `), and it refuses a
//   short unknown method that starts like a known one (NEW-M, AB, N: it compares the
//   known name's length past the end of the method). An extension method in the
//   Request-Line and in CSeq (of requests and of their responses) is parsed as a
//   same-length run of 'X' instead.
// - A NUL inside a quoted-pair (RFC 4475 §3.1.1.2's To display name): sofia stops at it
//   (SOFIA-NOTES trap 3). It is parsed as '0' instead. A NUL anywhere else is an error.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace waypoint::sip::detail {

struct MaskedRange {
  std::size_t offset = 0;
  std::string original;
};

struct GrammarMasks {
  std::vector<MaskedRange> ranges;
  std::string requestMethod;  // the extension method masked in the Request-Line, if any
  std::string cseqMethod;     // the extension method masked in CSeq, if any
  bool strayNul = false;      // a NUL outside a quoted-pair: the message is broken
};

// bytes: the whole message; headerEnd: where the body starts (after the empty line).
GrammarMasks findGrammarMasks(std::string_view bytes, std::size_t headerEnd);

// Writes the placeholders over a copy of the bytes (same offsets), or the originals back.
void applyGrammarMasks(char* buffer, const GrammarMasks& masks);
void restoreGrammarMasks(char* buffer, const GrammarMasks& masks);

}  // namespace waypoint::sip::detail
