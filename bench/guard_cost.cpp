// Cost of the flood guard's check, paid by every message before it is parsed: a known
// source within its rate, an always-new (spoofed) source with the table full, so every
// message evicts another, and a banned source. Prints the median of several runs in
// ns/message.
//
//   build/bench/waypoint_guard_cost [iterations-per-run] [runs]

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "waypoint/auth/source_guard.hpp"

namespace {

using waypoint::auth::FloodSettings;
using waypoint::auth::SourceGuard;
using waypoint::auth::SteadyTime;

template <typename Work>
double medianNanos(int iterations, int runs, Work work) {
  std::vector<double> perMessage;
  for (int r = 0; r < runs; ++r) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < iterations; ++i) work(i);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    perMessage.push_back(std::chrono::duration<double, std::nano>(elapsed).count() / iterations);
  }
  std::sort(perMessage.begin(), perMessage.end());
  return perMessage[perMessage.size() / 2];
}

boost::asio::ip::address spoofed(std::uint32_t n) {
  return boost::asio::ip::address_v4(0x0A000000u + n);
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 1000000;
  const int runs = argc > 2 ? std::atoi(argv[2]) : 7;
  const FloodSettings settings;  // the defaults: 200/s, burst 400, 65536 sources
  const SteadyTime start = std::chrono::steady_clock::now();
  // A fake clock advancing 5 ms a message: exactly the default rate, never banned.
  std::uint64_t ticks = 0;
  auto now = [&] { return start + std::chrono::milliseconds(5) * ticks++; };
  std::size_t passed = 0;

  SourceGuard known(settings);
  for (std::uint32_t n = 0; n < settings.maxSources; ++n) known.admit(spoofed(n), start);
  const auto phone = spoofed(1234);
  const double knownCost = medianNanos(iterations, runs, [&](int) {
    passed += known.admit(phone, now()) == SourceGuard::Verdict::pass;
  });

  SourceGuard flooded(settings);
  std::uint32_t next = 0;
  for (; next < settings.maxSources; ++next) flooded.admit(spoofed(next), start);
  const double spoofedCost = medianNanos(iterations, runs, [&](int) {
    passed += flooded.admit(spoofed(next++), start) == SourceGuard::Verdict::pass;
  });

  // The same with a table that fits in the CPU caches: what the full one costs beyond it
  // is memory latency (the evicted and the new source's nodes are cold).
  FloodSettings small = settings;
  small.maxSources = 1024;
  SourceGuard cached(small);
  std::uint32_t nextSmall = 0;
  for (; nextSmall < small.maxSources; ++nextSmall) cached.admit(spoofed(nextSmall), start);
  const double spoofedCachedCost = medianNanos(iterations, runs, [&](int) {
    passed += cached.admit(spoofed(nextSmall++), start) == SourceGuard::Verdict::pass;
  });

  SourceGuard banning(settings);
  for (std::uint32_t n = 0; n < settings.maxSources; ++n) banning.admit(spoofed(n), start);
  banning.ban(phone, std::chrono::seconds(3600), start);
  const double bannedCost = medianNanos(iterations, runs, [&](int) {
    passed += banning.admit(phone, start) == SourceGuard::Verdict::pass;
  });

  std::printf("flood guard, default settings, table full (%zu sources); %d runs x %d messages\n",
              settings.maxSources, runs, iterations);
  std::printf("known source within its rate:        %6.1f ns/message\n", knownCost);
  std::printf("new spoofed source, evicting one:    %6.1f ns/message (%llu evictions)\n",
              spoofedCost, static_cast<unsigned long long>(flooded.counters().evictions));
  std::printf("the same, table of %zu sources:      %6.1f ns/message\n", small.maxSources,
              spoofedCachedCost);
  std::printf("banned source:                       %6.1f ns/message\n", bannedCost);
  return passed == 0 ? 1 : 0;
}
