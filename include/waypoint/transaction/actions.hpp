#pragma once
// What the RFC 3261 §17 state machines ask for. A machine takes an event and returns
// Actions; the transaction layer carries them out (sends, arms timers, tells the TU).
// Machines never read a clock: timer delays are relative, the layer adds "now".

#include <array>
#include <cassert>
#include <chrono>
#include <cstdint>

namespace waypoint::transaction {

using Duration = std::chrono::milliseconds;

struct TimerSettings {
  Duration t1{500};
  Duration t2{4000};
  Duration t4{5000};
};

// The timers of RFC 3261 §17 and RFC 6026 (C is the proxy's, not the transaction's).
enum class TimerName : std::uint8_t { A, B, D, E, F, G, H, I, J, K, L, M };
inline constexpr std::size_t kTimerCount = 12;
const char* toString(TimerName timer);

struct Action {
  enum class Kind : std::uint8_t {
    sendRequest,     // client: (re)send the request
    sendAck,         // INVITE client: send the ACK for a non-2xx final response
    sendResponse,    // server: (re)send the most recent response
    deliver,         // pass the message of this event up to the TU
    timeout,         // client: no final response (Timer B/F) -> TU answers 408
    transportError,  // client: the transport failed -> TU answers 503
    startTimer,      // (re)start `timer` to fire after `delay`
    stopTimer,
    terminate,  // the transaction is over; the layer destroys it
  };
  Kind kind;
  TimerName timer = TimerName::A;
  Duration delay{0};
};

// A handful of actions per event, without a heap allocation.
class Actions {
 public:
  void add(Action::Kind kind) { push(Action{kind, TimerName::A, Duration{0}}); }
  void start(TimerName timer, Duration delay) {
    push(Action{Action::Kind::startTimer, timer, delay});
  }
  void stop(TimerName timer) { push(Action{Action::Kind::stopTimer, timer, Duration{0}}); }

  const Action* begin() const { return items_.data(); }
  const Action* end() const { return items_.data() + count_; }
  std::size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  bool has(Action::Kind kind) const {
    for (const Action& a : *this) {
      if (a.kind == kind) return true;
    }
    return false;
  }

 private:
  void push(const Action& action) {
    assert(count_ < items_.size());
    items_[count_++] = action;
  }
  std::array<Action, 8> items_{};
  std::uint8_t count_ = 0;
};

}  // namespace waypoint::transaction
