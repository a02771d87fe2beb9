#pragma once
// Reading waypoint.yaml: one Reader turns every problem into "FILE:LINE:COLUMN: message",
// so that app/ (listeners, timers...) and routing/ (rules) report errors alike.

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

namespace waypoint::config {

// A configuration error an operator can act on: "FILE:LINE:COLUMN: what is wrong".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The keys one mapping of the file may hold, and where the configuration reference
// (docs/configuration.md) documents them: under the heading of `section`, the top-level
// key the mapping is part of ("" for the top level itself). A test checks every table
// against the reference, so a key cannot be added without its documentation.
struct KeyTable {
  std::string section;
  std::vector<std::string> keys;
};

// Checks and converts the nodes of one YAML file; every method throws ConfigError that
// names the file and the offending node's position. Holds only the file's path.
class Reader {
 public:
  explicit Reader(std::string path) : path_(std::move(path)) {}

  const std::string& path() const { return path_; }

  [[noreturn]] void fail(const YAML::Mark& mark, const std::string& message) const;
  // "FILE:LINE:COLUMN: ", the prefix of fail()'s message (for warnings).
  std::string where(const YAML::Mark& mark) const;

  void expectMap(const YAML::Node& node, const std::string& what) const;

  // Unknown keys are errors: a typo must not silently fall back to a default. So is a key
  // given twice (YAML parsers differ on which one wins).
  void onlyKeys(const YAML::Node& map, const std::string& where, const KeyTable& allowed) const;

  std::string string(const YAML::Node& node, const std::string& what) const;

  // Only the literal words true and false.
  bool boolean(const YAML::Node& node, const std::string& what) const;

  std::uint64_t unsignedValue(const YAML::Node& node, const std::string& what, std::uint64_t min,
                              std::uint64_t max) const;

  // "500ms", "4s", "2m": a unit is required so that nobody guesses.
  std::chrono::milliseconds duration(const YAML::Node& node, const std::string& what,
                                     std::chrono::milliseconds min) const;

  // A list of non-empty strings.
  std::vector<std::string> stringList(const YAML::Node& node, const std::string& what) const;

  // A single string or a non-empty list of them; each entry with its own node (for errors).
  std::vector<YAML::Node> oneOrMany(const YAML::Node& node, const std::string& what) const;

 private:
  std::string path_;
};

}  // namespace waypoint::config
