#include "waypoint/transaction/client_transactions.hpp"

#include <algorithm>

namespace waypoint::transaction {

using Kind = Action::Kind;

const char* toString(TimerName timer) {
  static constexpr const char* kNames[kTimerCount] = {"A", "B", "D", "E", "F", "G",
                                                      "H", "I", "J", "K", "L", "M"};
  return kNames[static_cast<std::size_t>(timer)];
}

// ---- INVITE client (RFC 3261 §17.1.1, RFC 6026 §8.4) ----

Actions InviteClientTransaction::start() {
  Actions out;
  out.add(Kind::sendRequest);
  if (!reliable_) {
    timerA_ = timers_.t1;
    out.start(TimerName::A, timerA_);
  }
  out.start(TimerName::B, 64 * timers_.t1);
  return out;
}

Actions InviteClientTransaction::onResponse(int status) {
  Actions out;
  switch (state_) {
    case State::calling:
    case State::proceeding:
      out.stop(TimerName::A);
      if (status < 200) {
        // Figure 5: Timer B only bounds Calling; a ringing INVITE is the proxy's Timer C.
        if (state_ == State::calling) out.stop(TimerName::B);
        state_ = State::proceeding;
        out.add(Kind::deliver);
      } else if (status < 300) {
        // RFC 6026: stay to pass 2xx retransmissions up; the ACK is the TU's.
        state_ = State::accepted;
        out.stop(TimerName::B);
        out.add(Kind::deliver);
        out.start(TimerName::M, 64 * timers_.t1);
      } else {
        state_ = State::completed;
        out.stop(TimerName::B);
        out.add(Kind::sendAck);
        out.add(Kind::deliver);
        if (reliable_) {
          state_ = State::terminated;  // Timer D is zero
          out.add(Kind::terminate);
        } else {
          // "At least 32 seconds" (§17.1.1.2): as long as the server may retransmit.
          out.start(TimerName::D, std::max(Duration(32000), 64 * timers_.t1));
        }
      }
      break;
    case State::completed:
      if (status >= 300) out.add(Kind::sendAck);  // a retransmitted final: ACK again, absorb
      break;
    case State::accepted:
      if (status >= 200 && status < 300) out.add(Kind::deliver);  // 2xx retransmission
      break;
    case State::terminated:
      break;
  }
  return out;
}

Actions InviteClientTransaction::onTimer(TimerName timer) {
  Actions out;
  if (timer == TimerName::A && state_ == State::calling) {
    out.add(Kind::sendRequest);
    timerA_ *= 2;
    out.start(TimerName::A, timerA_);
  } else if (timer == TimerName::B &&
             (state_ == State::calling || (state_ == State::proceeding && cancelled_))) {
    state_ = State::terminated;
    out.stop(TimerName::A);
    out.add(Kind::timeout);
    out.add(Kind::terminate);
  } else if ((timer == TimerName::D && state_ == State::completed) ||
             (timer == TimerName::M && state_ == State::accepted)) {
    state_ = State::terminated;
    out.add(Kind::terminate);
  }
  return out;
}

Actions InviteClientTransaction::onCancelSent() {
  Actions out;
  // In Calling, Timer B already bounds the transaction.
  if (state_ == State::proceeding && !cancelled_) {
    cancelled_ = true;
    out.start(TimerName::B, 64 * timers_.t1);
  }
  return out;
}

Actions InviteClientTransaction::onTransportError() {
  Actions out;
  // Figure 5: "Transport Err. / Inform TU" from Calling, Proceeding and Completed (the ACK).
  if (state_ == State::calling || state_ == State::proceeding || state_ == State::completed) {
    out.add(Kind::transportError);
  }
  if (state_ != State::terminated) {
    state_ = State::terminated;
    out.add(Kind::terminate);
  }
  return out;
}

// ---- non-INVITE client (RFC 3261 §17.1.2) ----

Actions NonInviteClientTransaction::start() {
  Actions out;
  out.add(Kind::sendRequest);
  if (!reliable_) {
    timerE_ = timers_.t1;
    out.start(TimerName::E, timerE_);
  }
  out.start(TimerName::F, 64 * timers_.t1);
  return out;
}

Actions NonInviteClientTransaction::onResponse(int status) {
  Actions out;
  if (state_ != State::trying && state_ != State::proceeding) return out;  // Completed absorbs
  if (status < 200) {
    state_ = State::proceeding;
    out.add(Kind::deliver);
    return out;
  }
  state_ = State::completed;
  out.stop(TimerName::E);
  out.stop(TimerName::F);
  out.add(Kind::deliver);
  if (reliable_) {
    state_ = State::terminated;  // Timer K is zero
    out.add(Kind::terminate);
  } else {
    out.start(TimerName::K, timers_.t4);
  }
  return out;
}

Actions NonInviteClientTransaction::onTimer(TimerName timer) {
  Actions out;
  if (timer == TimerName::E && (state_ == State::trying || state_ == State::proceeding)) {
    out.add(Kind::sendRequest);
    timerE_ = state_ == State::trying ? std::min(2 * timerE_, timers_.t2) : timers_.t2;
    out.start(TimerName::E, timerE_);
  } else if (timer == TimerName::F && (state_ == State::trying || state_ == State::proceeding)) {
    state_ = State::terminated;
    out.stop(TimerName::E);
    out.add(Kind::timeout);
    out.add(Kind::terminate);
  } else if (timer == TimerName::K && state_ == State::completed) {
    state_ = State::terminated;
    out.add(Kind::terminate);
  }
  return out;
}

Actions NonInviteClientTransaction::onTransportError() {
  Actions out;
  if (state_ == State::trying || state_ == State::proceeding) out.add(Kind::transportError);
  if (state_ != State::terminated) {
    state_ = State::terminated;
    out.add(Kind::terminate);
  }
  return out;
}

}  // namespace waypoint::transaction
