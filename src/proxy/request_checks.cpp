#include "waypoint/proxy/request_checks.hpp"

#include <spdlog/spdlog.h>

#include "waypoint/proxy/identifiers.hpp"
#include "waypoint/sip/text.hpp"

namespace waypoint::proxy {

namespace {

// §16.6 step 8 / §16.3 item 4: the fields that stay the same when a request comes back
// in a loop and change in a spiral (Request-URI, Route). The top Via is left out (RFC 5393
// §4.2): a loop through another stateful proxy changes it every time round.
}  // namespace

std::string loopKeyOf(const sip::Message& request) {
  std::uint64_t hash = fnv1a(request.requestUri());
  const auto from = request.from();
  const auto to = request.to();
  const auto cseq = request.cseq();
  hash = fnv1a(from ? from->tag : "", fnv1a("|", hash));
  hash = fnv1a(to ? to->tag : "", fnv1a("|", hash));
  hash = fnv1a(request.callId(), fnv1a("|", hash));
  hash = fnv1a(cseq ? std::to_string(cseq->number) : "", fnv1a("|", hash));
  for (const char* name : {"Proxy-Require", "Proxy-Authorization", "Route"}) {
    for (const auto& value : request.headerValues(name)) hash = fnv1a(value, fnv1a("|", hash));
  }
  return sip::hex64(hash);
}

std::optional<Refusal> checkRequest(const sip::Message& request, std::string_view loopKey,
                                    const LocalIdentity& identity, ProxyCounters& counters) {
  if (const auto mf = request.maxForwards(); mf && *mf == 0) {  // §16.3 item 3
    ++counters.maxForwardsExceeded;
    return Refusal{483, "Too Many Hops", {}};
  }
  if (const auto required = request.proxyRequire(); !required.empty()) {  // §16.3 item 5
    ++counters.badExtensions;
    std::string list;
    for (const auto& tag : required) list.append(list.empty() ? "" : ", ").append(tag);
    return Refusal{420, "Bad Extension", {"Unsupported: " + list}};
  }
  const std::string ourBranchPrefix = std::string(kMagicCookie) + std::string(loopKey) + ".";
  for (const auto& via : request.vias()) {  // §16.3 item 4
    if (via.branch.starts_with(ourBranchPrefix) && identity.isLocalSentBy(via.host, via.port)) {
      ++counters.loopsDetected;
      spdlog::warn("{} Call-ID {}: loop detected", request.method(), request.callId());
      return Refusal{482, "Loop Detected", {}};
    }
  }
  return std::nullopt;
}

}  // namespace waypoint::proxy
