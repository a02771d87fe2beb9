// Heap bytes per registered binding: 100,000 AORs registered through the registrar, as
// the harness registers them (one contact each, Expires 3600), measured with mallinfo2().
// The harness's PSS figure also holds the REGISTER server transactions still in Timer J
// (32 s over UDP); this one is the location service alone.
//
//   build/bench/waypoint_binding_cost [aors]

#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "waypoint/registrar/registrar.hpp"

int main(int argc, char** argv) {
  using namespace waypoint;
  const std::size_t count = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100000;
  registrar::InMemoryLocationStore store;
  registrar::Registrar registrar(store, {"bench.test"}, registrar::RegistrarSettings{});
  const transport::Source source{transport::Protocol::udp,
                                 {boost::asio::ip::make_address("127.0.0.1"), 15160},
                                 {boost::asio::ip::make_address("127.0.0.1"), 15221},
                                 0};
  std::vector<std::string> texts;
  texts.reserve(count);
  for (std::size_t i = 1; i <= count; ++i) {
    char user[32];
    std::snprintf(user, sizeof user, "u%06zu", i);
    texts.push_back(std::string("REGISTER sip:bench.test SIP/2.0\r\n") +
                    "Via: SIP/2.0/UDP 127.0.0.1:15221;branch=z9hG4bK-" + user +
                    ";rport=15221;received=127.0.0.1\r\n" +
                    "Max-Forwards: 70\r\nFrom: <sip:" + user + "@bench.test>;tag=1R" + user +
                    "\r\n" + "To: <sip:" + user + "@bench.test>\r\nCall-ID: " + std::to_string(i) +
                    "-23550@127.0.0.1\r\n" + "CSeq: 1 REGISTER\r\nContact: <sip:" + user +
                    "@127.0.0.1:15203;transport=UDP>\r\n" +
                    "Expires: 3600\r\nUser-Agent: sipp-bench\r\nContent-Length: 0\r\n\r\n");
  }
  const auto now = registrar::TimePoint{} + std::chrono::hours(1);
  const std::size_t before = mallinfo2().uordblks;
  std::size_t accepted = 0;
  for (const std::string& text : texts) {
    sip::ParseResult parsed = sip::Message::parse(text);
    accepted += registrar.handle(*parsed.message, source, now).status == 200;
  }
  const std::size_t after = mallinfo2().uordblks;
  std::printf("bindings: %zu (accepted %zu), AORs: %zu\n", store.bindingCount(), accepted,
              store.aorCount());
  std::printf("heap per binding: %.0f bytes (%.1f MiB)\n",
              static_cast<double>(after - before) / static_cast<double>(store.bindingCount()),
              static_cast<double>(after - before) / (1024.0 * 1024.0));
  std::printf("sizeof(Binding): %zu bytes\n", sizeof(registrar::Binding));
  return accepted == count ? 0 : 1;
}
