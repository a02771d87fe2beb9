#include "waypoint/proxy/decision_note.hpp"

#include <spdlog/fmt/fmt.h>

namespace waypoint::proxy {

std::string describeRouted(const Routed& routed) {
  std::string text;
  if (routed.inDialog) {
    text = "in dialog (our Route token)";
  } else if (!routed.rule.empty()) {
    text = fmt::format("rule \"{}\"", routed.rule);
    if (routed.preloaded) text.append(" (preloaded Route)");
  } else {
    text = "no rule";
  }
  if (routed.status != 0) {
    text.append(fmt::format(": {} {}", routed.status, routed.reason));
    if (!routed.why.empty()) text.append(fmt::format(" ({})", routed.why));
    return text;
  }
  if (routed.groups.empty()) return text.append(": for the proxy itself");
  text.append(": ");
  for (std::size_t g = 0; g < routed.groups.size(); ++g) {
    if (g > 0) text.append(" then ");
    const auto& group = routed.groups[g];
    for (std::size_t t = 0; t < group.size(); ++t) {
      if (t > 0) text.append(", ");
      text.append(
          fmt::format("{} ({})", group[t].requestUri, transport::toString(group[t].destination)));
    }
  }
  return text;
}

}  // namespace waypoint::proxy
