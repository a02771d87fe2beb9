#pragma once
// For the tests that use real loopback sockets: runs the io_context until done() holds,
// at most 10 s (a bound, not a wait: done() is checked every 10 ms of loop time).

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>

namespace waypoint::testkit {

inline bool runUntil(boost::asio::io_context& io, const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    io.run_for(std::chrono::milliseconds(10));
    if (io.stopped()) io.restart();
  }
  return done();
}

}  // namespace waypoint::testkit
