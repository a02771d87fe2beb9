#include "waypoint/app/message_log.hpp"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

namespace waypoint::app {

namespace {

std::string_view orDash(std::string_view text) { return text.empty() ? "-" : text; }

}  // namespace

std::string messageLine(std::string_view direction, const sip::Message& message,
                        transport::Protocol protocol, const transport::Endpoint& peer) {
  std::string line(direction);
  if (message.isRequest()) {
    line.append(fmt::format(" {} {}", message.method(), message.requestUri()));
  } else {
    line.append(fmt::format(" {} {}", message.statusCode(), message.reasonPhrase()));
  }
  const auto cseq = message.cseq();
  const auto from = message.from();
  const auto to = message.to();
  line.append(fmt::format(" call-id={} cseq=\"{}\" from-tag={} to-tag={} peer={} transport={}",
                          orDash(message.callId()),
                          cseq ? fmt::format("{} {}", cseq->number, cseq->method) : "",
                          orDash(from ? std::string_view(from->tag) : std::string_view()),
                          orDash(to ? std::string_view(to->tag) : std::string_view()),
                          transport::toString(peer), transport::toString(protocol)));
  return line;
}

void DebugLines::write(std::string line) {
  if (held_) {
    kept_.push_back(std::move(line));
    return;
  }
  spdlog::debug("{}", line);
}

void DebugLines::release(std::string_view first) {
  held_ = false;
  spdlog::debug("{}", first);
  for (const auto& line : kept_) spdlog::debug("{}", line);
  kept_.clear();
}

}  // namespace waypoint::app
