#pragma once
// The proxy's tags and branch numbers, from one generator: a seed makes the bytes sent
// the same on every run (tests, golden files).

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "waypoint/sip/text.hpp"

namespace waypoint::proxy {

inline constexpr std::string_view kMagicCookie = "z9hG4bK";

// FNV-1a: loop keys and the branches of stateless ACKs.
inline std::uint64_t fnv1a(std::string_view text, std::uint64_t hash = 14695981039346656037ull) {
  for (const unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

class Identifiers {
 public:
  explicit Identifiers(std::optional<std::uint64_t> seed)
      : random_(seed ? *seed : std::random_device{}()), branchCounter_(random_()) {}

  // "z9hG4bK<loop key>.<counter>": the loop key lets §16.3 item 4 recognise our branches.
  std::string branch(std::string_view loopKey) {
    std::string branch(kMagicCookie);
    branch.append(loopKey).append(".").append(sip::hex64(branchCounter_++));
    return branch;
  }
  std::string tag() { return sip::hex64(random_()); }

 private:
  std::mt19937_64 random_;
  std::uint64_t branchCounter_;
};

}  // namespace waypoint::proxy
