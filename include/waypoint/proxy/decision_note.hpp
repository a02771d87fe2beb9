#pragma once
// How the proxy decided a request, in words, for the debug line the dispatcher logs for
// each message: the rule and target set, or why it was answered here. The dispatcher
// attaches a string while it hands a request down and only when debug logging is on, so
// with debug off every note is a null-pointer test and nothing is formatted.

#include <string>
#include <string_view>

#include "waypoint/proxy/router.hpp"

namespace waypoint::proxy {

class DecisionNote {
 public:
  // `text` receives the notes until detached (nullptr); the caller owns it.
  void attach(std::string* text) { text_ = text; }
  bool active() const { return text_ != nullptr; }
  // Adds a part of the decision ("; "-separated), when attached.
  void add(std::string_view part) {
    if (text_ == nullptr) return;
    if (!text_->empty()) text_->append("; ");
    text_->append(part);
  }

 private:
  std::string* text_ = nullptr;
};

// `rule "calls": sip:bob@192.0.2.4 (UDP 192.0.2.4:5060)`, groups tried in turn joined by
// " then ", targets of one group by ", "; a refusal as `rule "x": 403 Forbidden`.
std::string describeRouted(const Routed& routed);

}  // namespace waypoint::proxy
