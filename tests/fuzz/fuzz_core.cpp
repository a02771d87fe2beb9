// libFuzzer target for the whole sans-I/O core, the way ngtcp2's fuzz/read_write_pkt.cc
// drives its connection: fuzzer bytes arrive as datagrams and stream chunks at the real
// dispatcher, whose transaction layer, proxy and registrar answer through a fake sender,
// while a fake clock moves by fuzzer-chosen steps so every timer (A-K, Timer C, binding
// expiry) fires. Synthetic downstream answers to what the proxy sent let branches progress.
//
// The input is a list of records, read front to back (so seeds can be written by hand or
// by tests/fuzz/core_seed.py); a record cut short by the end of the input is dropped.
//   0 SRC LEN:u16be BYTES   a datagram from UDP source SRC % 4
//   1 CONN LEN:u16be BYTES  a chunk of TCP connection CONN % 2, framed as a connection does
//   2 SHIFT STEP:u16be      the clock moves STEP << (SHIFT % 12) ms, timers firing on the way
//   3 PICK STATUS           the PICK-th last request the proxy sent is answered with
//                           kStatuses[STATUS % n] from where it went
//   4 PICK                  the PICK-th last send fails later (asynchronous transport error)
//   5 PICK                  the PICK-th last send's destination is reported unreachable
//   6 PICK                  the PICK-th last message sent comes back in (a loop, a spiral)
//   7 AHEAD                 the (AHEAD % 4 + 1)-th send from now fails inside send()
// Op bytes are taken modulo 8. At the end, the clock runs far ahead: every transaction,
// response context and binding must then be gone (a leak or hang is a finding too).
//
// Addresses are documentation ranges; nothing is sent anywhere.
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "../unit/fakes.hpp"
#include "waypoint/app/dispatcher.hpp"
#include "waypoint/proxy/local_identity.hpp"
#include "waypoint/proxy/proxy.hpp"
#include "waypoint/registrar/location_store.hpp"
#include "waypoint/registrar/registrar.hpp"
#include "waypoint/routing/rules.hpp"
#include "waypoint/sip/message.hpp"
#include "waypoint/sip/stream_framer.hpp"

namespace {

using namespace std::chrono_literals;
using waypoint::testkit::endpoint;
using waypoint::transport::Protocol;
using waypoint::transport::Source;
namespace sip = waypoint::sip;
namespace transaction = waypoint::transaction;

constexpr std::size_t kMaxMessageSize = 8192;
constexpr const char* kProxyAddress = "203.0.113.1";

// Forwarding, serial failover, a reject rule and a loop back to the proxy itself, beside
// the built-in location routing of the served domain.
constexpr const char* kRules = R"(
rules:
  - name: blocked
    match: { from_host: spam.example }
    reject: { status: 603 }
  - name: gateway
    match: { host: gw.example.org }
    forward: { to: ['sip:198.51.100.30:5060', 'sip:198.51.100.31:5060;transport=tcp'], forking: serial }
  - name: both
    match: { host: fork.example.org }
    forward: { to: ['sip:198.51.100.32:5060', 'sip:198.51.100.33:5060'], forking: parallel }
  - name: loop
    match: { host: loop.example.org }
    forward: { to: ['sip:203.0.113.1:5060'] }
)";

constexpr std::array<int, 18> kStatuses = {100, 180, 183, 200, 202, 301, 302, 401, 404,
                                           407, 408, 480, 486, 487, 500, 503, 600, 603};

// Reads the records front to back.
class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  std::optional<std::uint8_t> byte() {
    if (pos_ >= size_) return std::nullopt;
    return data_[pos_++];
  }
  std::optional<std::uint16_t> u16() {
    if (size_ - pos_ < 2) return std::nullopt;
    const auto value = static_cast<std::uint16_t>(data_[pos_] << 8 | data_[pos_ + 1]);
    pos_ += 2;
    return value;
  }
  // Up to `length` bytes: fewer when the input ends first.
  std::string_view bytes(std::size_t length) {
    const std::size_t n = std::min(length, size_ - pos_);
    const std::string_view out(reinterpret_cast<const char*>(data_) + pos_, n);
    pos_ += n;
    return out;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

Source udpFrom(const char* address, std::uint16_t port) {
  return Source{Protocol::udp, endpoint(kProxyAddress, 5060), endpoint(address, port), 0};
}

// Alice's phone, a phone behind NAT, a stranger, an IPv6 phone.
const std::array<Source, 4>& udpSources() {
  static const std::array<Source, 4> sources = {
      udpFrom("192.0.2.10", 5060), udpFrom("198.51.100.20", 40000), udpFrom("192.0.2.66", 5062),
      Source{Protocol::udp, endpoint("2001:db8::1", 5060), endpoint("2001:db8::10", 5060), 0}};
  return sources;
}

class Core {
 public:
  Core()
      : sender_(clock_),
        registrar_(store_, {"biloxi.example.com"}, waypoint::registrar::RegistrarSettings{}),
        proxy_(clock_, sender_, transaction::LayerSettings{}, identity(), registrar_,
               waypoint::proxy::ProxySettings{}),
        dispatcher_(sender_, proxy_, sip::ParseLimits{kMaxMessageSize}) {
    proxy_.setRules(rules());
  }

  void run(Input& in) {
    while (const auto op = in.byte()) {
      switch (*op % 8) {
        case 0: {
          const auto source = in.byte();
          const auto length = in.u16();
          if (!source || !length) return;
          deliver(udpSources()[*source % udpSources().size()], in.bytes(*length));
          break;
        }
        case 1: {
          const auto connection = in.byte();
          const auto length = in.u16();
          if (!connection || !length) return;
          streamChunk(*connection % streams_.size(), in.bytes(*length));
          break;
        }
        case 2: {
          const auto shift = in.byte();
          const auto step = in.u16();
          if (!shift || !step) return;
          advance(std::chrono::milliseconds(std::int64_t{*step} << (*shift % 12)));
          break;
        }
        case 3: {
          const auto pick = in.byte();
          const auto status = in.byte();
          if (!pick || !status) return;
          answer(*pick, kStatuses[*status % kStatuses.size()]);
          break;
        }
        case 4: {
          const auto pick = in.byte();
          if (!pick) return;
          if (const auto n = recentSend(*pick)) sender_.failLater(*n + 1);
          break;
        }
        case 5: {
          const auto pick = in.byte();
          if (!pick) return;
          if (const auto n = recentSend(*pick)) {
            proxy_.transactions().destinationUnreachable(sender_.sent()[*n].destination);
          }
          break;
        }
        case 6: {
          const auto pick = in.byte();
          if (!pick) return;
          if (const auto n = recentSend(*pick)) {
            const waypoint::testkit::SentMessage sent = sender_.sent()[*n];
            deliver(cameFrom(sent.destination), sent.bytes);
          }
          break;
        }
        case 7: {
          const auto ahead = in.byte();
          if (!ahead) return;
          sender_.failNthSend(sender_.count() + 1 + *ahead % 4);
          break;
        }
      }
    }
  }

  // Long after the last input every transaction, context and binding has ended.
  void drain() {
    advance(std::chrono::hours(3));
    const auto& layer = proxy_.transactions().counters();
    if (layer.liveServerTransactions != 0 || layer.liveClientTransactions != 0 ||
        proxy_.counters().liveContexts != 0 || store_.bindingCount() != 0) {
      std::fprintf(stderr,
                   "fuzz_core: state left after 3 h: %llu server, %llu client transactions, "
                   "%llu contexts, %zu bindings\n",
                   static_cast<unsigned long long>(layer.liveServerTransactions),
                   static_cast<unsigned long long>(layer.liveClientTransactions),
                   static_cast<unsigned long long>(proxy_.counters().liveContexts),
                   store_.bindingCount());
      std::abort();
    }
  }

 private:
  static const waypoint::proxy::LocalIdentity& identity() {
    static const waypoint::proxy::LocalIdentity local = [] {
      waypoint::proxy::LocalIdentity id;
      id.addName("biloxi.example.com");
      id.addListener(Protocol::udp, endpoint(kProxyAddress, 5060));
      id.addListener(Protocol::tcp, endpoint(kProxyAddress, 5060));
      id.addListener(Protocol::udp, endpoint("2001:db8::1", 5060));
      return id;
    }();
    return local;
  }
  static std::shared_ptr<const waypoint::routing::RuleSet> rules() {
    static const auto compiled =
        waypoint::routing::RuleSet::compile(YAML::Load(kRules), "fuzz_core.yaml");
    return compiled;
  }

  // What the daemon's transport callback does: dispatch, then the timer driver looks again.
  void deliver(const Source& source, std::string_view bytes) {
    dispatcher_.onMessage(source, bytes);
  }

  void streamChunk(std::size_t index, std::string_view chunk) {
    Stream& stream = streams_[index];
    stream.framer.feed(chunk);
    for (;;) {
      switch (stream.framer.next()) {
        case sip::StreamFramer::Kind::needMore:
          return;
        case sip::StreamFramer::Kind::message:
          deliver(stream.source(), stream.framer.frame());
          break;
        case sip::StreamFramer::Kind::ping:
        case sip::StreamFramer::Kind::pong:
          break;
        case sip::StreamFramer::Kind::error:
          // The connection is closed; the peer's next bytes come on a new one.
          stream.framer = sip::StreamFramer(kMaxMessageSize);
          ++stream.connectionId;
          return;
      }
    }
  }

  // The loop's timer: fire at each deadline of the proxy (and its layer) and of the
  // location store until `by` has passed. Bounded: a core that keeps re-arming for the same
  // instant must not hang the fuzzer.
  void advance(std::chrono::milliseconds by) {
    const transaction::TimePoint until = clock_.now() + by;
    for (int rounds = 0; rounds < 100000; ++rounds) {
      auto next = proxy_.nextExpiry();
      if (const auto bindings = store_.nextExpiry(); bindings && (!next || *bindings < *next)) {
        next = bindings;
      }
      if (!next || *next > until) break;
      if (*next > clock_.now()) clock_.set(*next);
      proxy_.fireDueTimers();
      registrar_.expire(clock_.now());
    }
    clock_.set(until);
    proxy_.fireDueTimers();
    registrar_.expire(clock_.now());
  }

  // Index into sender_.sent() of the pick-th last send (0: the latest).
  std::optional<std::size_t> recentSend(std::uint8_t pick) const {
    const std::size_t count = sender_.count();
    if (count == 0) return std::nullopt;
    const std::size_t back = pick % std::min<std::size_t>(count, 16);
    return count - 1 - back;
  }

  // The pick-th last request the proxy sent downstream, answered by its target.
  void answer(std::uint8_t pick, int status) {
    const auto& sent = sender_.sent();
    std::size_t seen = 0;
    for (std::size_t i = sent.size(); i-- > 0;) {
      if (std::string_view(sent[i].bytes).starts_with("SIP/2.0 ")) continue;
      if (seen++ != pick % 8) continue;
      const sip::ParseResult parsed = sip::Message::parse(sent[i].bytes);
      if (!parsed.message || !parsed.message->topVia() || parsed.message->method() == "ACK") {
        return;
      }
      const std::string response = sip::buildResponse(
          *parsed.message, status, "Fuzz", status == 100 ? "" : "fuzz" + std::to_string(i));
      deliver(cameFrom(sent[i].destination), response);
      return;
    }
  }

  // The flow a message from that destination arrives on.
  static Source cameFrom(const waypoint::transport::Destination& destination) {
    return Source{destination.protocol, destination.local.value_or(endpoint(kProxyAddress, 5060)),
                  destination.remote, destination.connectionId};
  }

  struct Stream {
    Stream(const char* address, std::uint16_t port, std::uint64_t id)
        : remote(endpoint(address, port)), connectionId(id) {}
    Source source() const {
      return Source{Protocol::tcp, endpoint(kProxyAddress, 5060), remote, connectionId};
    }
    waypoint::transport::Endpoint remote;
    std::uint64_t connectionId;
    sip::StreamFramer framer{kMaxMessageSize};
  };

  waypoint::testkit::FakeClock clock_;
  waypoint::testkit::FakeSender sender_;
  waypoint::registrar::InMemoryLocationStore store_;
  waypoint::registrar::Registrar registrar_;
  waypoint::proxy::Proxy proxy_;
  waypoint::app::Dispatcher dispatcher_;
  std::array<Stream, 2> streams_ = {Stream("192.0.2.10", 49152, 7),
                                    Stream("198.51.100.20", 49153, 1007)};
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Log lines are formatted (their code runs) and thrown away.
  auto logger = std::make_shared<spdlog::logger>("fuzz_core",
                                                 std::make_shared<spdlog::sinks::null_sink_st>());
  logger->set_level(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in(data, size);
  Core core;
  core.run(in);
  core.drain();
  return 0;
}
