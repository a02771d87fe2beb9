// libFuzzer target: a TCP byte stream cut into reads of fuzzer-chosen sizes, framed and
// each frame parsed, as a connection does.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "waypoint/sip/message.hpp"
#include "waypoint/sip/stream_framer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace waypoint::sip;
  if (size < 1) return 0;
  const std::size_t chunk = 1 + data[0] % 64;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  StreamFramer framer(4096);
  for (std::size_t pos = 0; pos < stream.size(); pos += chunk) {
    framer.feed(stream.substr(pos, chunk));
    for (;;) {
      const StreamFramer::Kind kind = framer.next();
      if (kind == StreamFramer::Kind::message) {
        ParseResult result = Message::parse(framer.frame(), ParseLimits{4096});
        if (result.message) (void)result.message->serialize();
        continue;
      }
      if (kind == StreamFramer::Kind::error) return 0;
      if (kind == StreamFramer::Kind::needMore) break;
    }
  }
  return 0;
}
