#pragma once
// RFC 3261 §17.2 server transactions, with RFC 6026's Accepted state for INVITE.
// Each is a state machine only: see actions.hpp.

#include "waypoint/transaction/actions.hpp"

namespace waypoint::transaction {

// Figure 7 of RFC 3261 as amended by RFC 6026 §8.5-8.7.
class InviteServerTransaction {
 public:
  enum class State : std::uint8_t { proceeding, completed, confirmed, accepted, terminated };

  InviteServerTransaction(const TimerSettings& timers, bool reliable)
      : timers_(timers), reliable_(reliable) {}

  Actions start();                   // the INVITE arrived: pass it up
  Actions onTuResponse(int status);  // the TU sends a response (the layer holds its bytes)
  Actions onRequestRetransmission();
  Actions onAck();
  Actions onTimer(TimerName timer);
  Actions onTransportError();
  State state() const { return state_; }
  bool hasResponse() const { return hasResponse_; }

 private:
  TimerSettings timers_;
  bool reliable_;
  State state_ = State::proceeding;
  bool hasResponse_ = false;
  Duration timerG_{0};
};

// Figure 8 of RFC 3261.
class NonInviteServerTransaction {
 public:
  enum class State : std::uint8_t { trying, proceeding, completed, terminated };

  NonInviteServerTransaction(const TimerSettings& timers, bool reliable)
      : timers_(timers), reliable_(reliable) {}

  Actions start();
  Actions onTuResponse(int status);
  Actions onRequestRetransmission();
  Actions onTimer(TimerName timer);
  Actions onTransportError();
  State state() const { return state_; }

 private:
  TimerSettings timers_;
  bool reliable_;
  State state_ = State::trying;
};

}  // namespace waypoint::transaction
