#include "waypoint/transaction/server_transactions.hpp"

#include <algorithm>

namespace waypoint::transaction {

using Kind = Action::Kind;

// ---- INVITE server (RFC 3261 §17.2.1, RFC 6026 §8.5-8.7) ----

Actions InviteServerTransaction::start() {
  Actions out;
  out.add(Kind::deliver);
  return out;
}

Actions InviteServerTransaction::onTuResponse(int status) {
  Actions out;
  if (state_ == State::proceeding) {
    hasResponse_ = true;
    out.add(Kind::sendResponse);
    if (status >= 200 && status < 300) {
      state_ = State::accepted;
      out.start(TimerName::L, 64 * timers_.t1);
    } else if (status >= 300) {
      state_ = State::completed;
      if (!reliable_) {
        timerG_ = timers_.t1;
        out.start(TimerName::G, timerG_);
      }
      out.start(TimerName::H, 64 * timers_.t1);
    }
  } else if (state_ == State::accepted && status >= 200 && status < 300) {
    out.add(Kind::sendResponse);  // RFC 6026 §8.6: the TU's 2xx retransmissions go out
  }
  return out;
}

Actions InviteServerTransaction::onRequestRetransmission() {
  Actions out;
  // Proceeding: the latest provisional again; Completed: the final again. Accepted
  // absorbs (RFC 6026 §8.7): the TU retransmits the 2xx on its own schedule.
  if ((state_ == State::proceeding && hasResponse_) || state_ == State::completed)
    out.add(Kind::sendResponse);
  return out;
}

Actions InviteServerTransaction::onAck() {
  Actions out;
  if (state_ == State::completed) {
    state_ = State::confirmed;
    out.stop(TimerName::G);
    out.stop(TimerName::H);
    if (reliable_) {
      state_ = State::terminated;  // Timer I is zero
      out.add(Kind::terminate);
    } else {
      out.start(TimerName::I, timers_.t4);
    }
  } else if (state_ == State::accepted) {
    out.add(Kind::deliver);  // the ACK for a 2xx belongs to the TU (RFC 6026 §8.7)
  }
  return out;
}

Actions InviteServerTransaction::onTimer(TimerName timer) {
  Actions out;
  if (timer == TimerName::G && state_ == State::completed) {
    out.add(Kind::sendResponse);
    timerG_ = std::min(2 * timerG_, timers_.t2);
    out.start(TimerName::G, timerG_);
  } else if (timer == TimerName::H && state_ == State::completed) {
    state_ = State::terminated;  // no ACK came: §17.2.1 says inform the TU; the layer logs it
    out.stop(TimerName::G);
    out.add(Kind::timeout);
    out.add(Kind::terminate);
  } else if ((timer == TimerName::I && state_ == State::confirmed) ||
             (timer == TimerName::L && state_ == State::accepted)) {
    state_ = State::terminated;
    out.add(Kind::terminate);
  }
  return out;
}

Actions InviteServerTransaction::onTransportError() {
  Actions out;
  if (state_ != State::terminated) {
    state_ = State::terminated;
    out.add(Kind::transportError);
    out.add(Kind::terminate);
  }
  return out;
}

// ---- non-INVITE server (RFC 3261 §17.2.2) ----

Actions NonInviteServerTransaction::start() {
  Actions out;
  out.add(Kind::deliver);
  return out;
}

Actions NonInviteServerTransaction::onTuResponse(int status) {
  Actions out;
  if (state_ != State::trying && state_ != State::proceeding) return out;
  out.add(Kind::sendResponse);
  if (status < 200) {
    state_ = State::proceeding;
    return out;
  }
  state_ = State::completed;
  if (reliable_) {
    state_ = State::terminated;  // Timer J is zero
    out.add(Kind::terminate);
  } else {
    out.start(TimerName::J, 64 * timers_.t1);
  }
  return out;
}

Actions NonInviteServerTransaction::onRequestRetransmission() {
  Actions out;
  // Trying absorbs (nothing sent yet); Proceeding and Completed resend the last response.
  if (state_ == State::proceeding || state_ == State::completed) out.add(Kind::sendResponse);
  return out;
}

Actions NonInviteServerTransaction::onTimer(TimerName timer) {
  Actions out;
  if (timer == TimerName::J && state_ == State::completed) {
    state_ = State::terminated;
    out.add(Kind::terminate);
  }
  return out;
}

Actions NonInviteServerTransaction::onTransportError() {
  Actions out;
  if (state_ != State::terminated) {
    state_ = State::terminated;
    out.add(Kind::transportError);
    out.add(Kind::terminate);
  }
  return out;
}

}  // namespace waypoint::transaction
