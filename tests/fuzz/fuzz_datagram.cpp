// libFuzzer target: any bytes as one datagram, through everything the daemon does with
// it (parse, validate, proxy edits, serialize, stateless response).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "waypoint/sip/message.hpp"
#include "waypoint/sip/validation.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace waypoint::sip;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const std::size_t start = bytes.find_first_not_of("\r\n");
  if (start == std::string_view::npos) return 0;
  ParseResult result = Message::parse(bytes.substr(start), ParseLimits{8192});
  if (!result.message) return 0;
  Message& m = *result.message;
  (void)m.vias();
  (void)m.contacts();
  (void)m.routes();
  (void)m.recordRoutes();
  (void)m.from();
  (void)m.to();
  (void)m.cseq();
  (void)m.body();
  (void)m.requestUriParts();
  if (m.isRequest()) {
    const auto rejection = validateRequest(m);
    if (m.topVia()) (void)buildResponse(m, rejection ? rejection->status : 200, "OK", "fuzz");
    if (!rejection) {
      m.setTopViaReceived("192.0.2.1", 5060);
      m.decrementMaxForwards();
      m.popRoute();
      m.pushRecordRoute("<sip:127.0.0.1;lr>");
      m.pushVia("SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKfuzz");
    }
  } else {
    (void)validateResponse(m);
    m.popVia();
  }
  (void)m.serialize();
  return 0;
}
