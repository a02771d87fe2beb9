#pragma once
// RFC 3261 §17.1 client transactions, with RFC 6026's Accepted state for INVITE.
// Each is a state machine only: see actions.hpp.

#include "waypoint/transaction/actions.hpp"

namespace waypoint::transaction {

// Figure 5 of RFC 3261 as amended by RFC 6026 §8.4.
class InviteClientTransaction {
 public:
  enum class State : std::uint8_t { calling, proceeding, completed, accepted, terminated };

  InviteClientTransaction(const TimerSettings& timers, bool reliable)
      : timers_(timers), reliable_(reliable) {}

  Actions start();                 // the INVITE goes out
  Actions onResponse(int status);  // a response matched this transaction
  Actions onTimer(TimerName timer);
  Actions onTransportError();
  // A CANCEL went out for this INVITE (§9.1): without a final response within 64*T1 the
  // transaction ends, so a callee that rang and went silent cannot keep it for ever.
  Actions onCancelSent();
  State state() const { return state_; }

 private:
  TimerSettings timers_;
  bool reliable_;
  State state_ = State::calling;
  Duration timerA_{0};
  bool cancelled_ = false;  // a CANCEL went out while Proceeding: Timer B runs again
};

// Figure 6 of RFC 3261.
class NonInviteClientTransaction {
 public:
  enum class State : std::uint8_t { trying, proceeding, completed, terminated };

  NonInviteClientTransaction(const TimerSettings& timers, bool reliable)
      : timers_(timers), reliable_(reliable) {}

  Actions start();
  Actions onResponse(int status);
  Actions onTimer(TimerName timer);
  Actions onTransportError();
  State state() const { return state_; }

 private:
  TimerSettings timers_;
  bool reliable_;
  State state_ = State::trying;
  Duration timerE_{0};
};

}  // namespace waypoint::transaction
