#pragma once
// The time the transports judge idle, connecting and handshaking connections by. The
// daemon uses the steady clock; unit tests inject a fake one and never sleep.

#include <chrono>

namespace waypoint::transport {

using SteadyTime = std::chrono::steady_clock::time_point;

class TransportClock {
 public:
  virtual ~TransportClock() = default;
  virtual SteadyTime now() const = 0;
};

// std::chrono::steady_clock behind the interface; lives for the whole program.
const TransportClock& steadyClock();

}  // namespace waypoint::transport
