#pragma once
// Full-text SIP message traces, switched on at run time (waypointctl trace): every message
// in or out whose peer is a given address (or address:port), or whose Call-ID is a given
// one, is logged whole at info level, each line prefixed "trace N| ". A trace is bounded:
// it ends by itself after its message count or its time, so one forgotten cannot fill the
// disk. Sans-I/O: time from the clock function, lines to the sink; the dispatcher and the
// sender call observe() only while a trace is active (one test of a flag otherwise).

#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "waypoint/transport/address.hpp"

namespace waypoint::app {

using SteadyTime = std::chrono::steady_clock::time_point;

// What a trace matches: a peer address (and port, when given) or a Call-ID.
struct TraceFilter {
  std::optional<boost::asio::ip::address> address;
  std::optional<std::uint16_t> port;
  std::string callId;

  // "192.0.2.7", "192.0.2.7:5060", "::1", "[::1]:5060"; nullopt when it is none of these.
  static std::optional<TraceFilter> forSource(std::string_view text);
  static TraceFilter forCallId(std::string callId);
  std::string describe() const;  // "source 192.0.2.7:5060", "call-id abc"
};

struct TraceLimits {
  std::size_t maxMessages = 1000;
  std::chrono::seconds maxTime{600};
};

// The Call-ID header's value in the raw text of a message (long or compact name), or
// empty: traces look at bytes, so an unparseable message from a traced call still shows.
std::string_view callIdOf(std::string_view bytes);

class MessageTracer {
 public:
  using Now = std::function<SteadyTime()>;
  using Sink = std::function<void(const std::string& text)>;

  struct Trace {
    std::uint64_t id = 0;
    TraceFilter filter;
    std::size_t maxMessages = 0;
    std::size_t traced = 0;
    SteadyTime until;
  };
  enum class Direction { received, sent };

  static constexpr std::size_t kMaxTraces = 16;

  // `sink` takes the trace text (default: spdlog at info level).
  explicit MessageTracer(Now now, Sink sink = {});

  // A new trace; its limits are capped at TraceLimits' defaults times ten. Nullopt when
  // kMaxTraces are running.
  std::optional<Trace> start(TraceFilter filter, TraceLimits limits);
  // Ends every trace (or the one with this id); returns how many ended.
  std::size_t stop(std::optional<std::uint64_t> id = std::nullopt);
  // The traces still running (those whose time is over end now).
  std::vector<Trace> list();

  bool active() const { return !traces_.empty(); }
  SteadyTime now() const { return now_(); }
  // Logs the message when a trace matches it; the peer is the source of a message
  // received, the destination of one sent.
  void observe(Direction direction, transport::Protocol protocol, const transport::Endpoint& peer,
               std::string_view bytes);

 private:
  void endExpired(SteadyTime now);
  void ended(const Trace& trace, std::string_view why);

  Now now_;
  Sink sink_;
  std::vector<Trace> traces_;
  std::uint64_t nextId_ = 1;
};

// The message as log text: "trace 1| " before every line, CR LF as one line break, bytes
// that are not printable as \xNN (so a binary datagram cannot garble the log).
std::string traceText(std::string_view prefix, std::string_view bytes);

}  // namespace waypoint::app
