#include "waypoint/config/yaml_reader.hpp"

#include <charconv>
#include <map>
#include <set>
#include <sstream>

namespace waypoint::config {

std::string Reader::where(const YAML::Mark& mark) const {
  std::ostringstream text;
  text << path_ << ':' << (mark.line + 1) << ':' << (mark.column + 1) << ": ";
  return text.str();
}

void Reader::fail(const YAML::Mark& mark, const std::string& message) const {
  throw ConfigError(where(mark) + message);
}

void Reader::expectMap(const YAML::Node& node, const std::string& what) const {
  if (!node.IsMap()) fail(node.Mark(), what + " must be a mapping");
}

void Reader::onlyKeys(const YAML::Node& map, const std::string& where,
                      const KeyTable& allowed) const {
  const std::set<std::string> names(allowed.keys.begin(), allowed.keys.end());
  std::map<std::string, YAML::Mark> seen;
  for (const auto& entry : map) {
    const std::string key = entry.first.Scalar();
    if (const auto [first, isNew] = seen.emplace(key, entry.first.Mark()); !isNew) {
      fail(entry.first.Mark(), "'" + key + "' is given twice in " + where + " (first at line " +
                                   std::to_string(first->second.line + 1) + ")");
    }
    if (names.count(key) == 0) {
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
      fail(entry.first.Mark(),
           "unknown key '" + key + "' in " + where + " (expected one of: " + list + ")");
    }
  }
}

std::string Reader::string(const YAML::Node& node, const std::string& what) const {
  if (!node.IsScalar()) fail(node.Mark(), what + " must be a string");
  return node.Scalar();
}

bool Reader::boolean(const YAML::Node& node, const std::string& what) const {
  const std::string value = node.IsScalar() ? node.Scalar() : std::string();
  if (value != "true" && value != "false") fail(node.Mark(), what + " must be true or false");
  return value == "true";
}

std::uint64_t Reader::unsignedValue(const YAML::Node& node, const std::string& what,
                                    std::uint64_t min, std::uint64_t max) const {
  const std::string text = node.IsScalar() ? node.Scalar() : std::string();
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (!node.IsScalar() || ec != std::errc() || end != text.data() + text.size()) {
    fail(node.Mark(), what + " must be a whole number");
  }
  if (value < min || value > max) {
    fail(node.Mark(),
         what + " must be between " + std::to_string(min) + " and " + std::to_string(max));
  }
  return value;
}

std::chrono::milliseconds Reader::duration(const YAML::Node& node, const std::string& what,
                                           std::chrono::milliseconds min) const {
  const std::string text = node.IsScalar() ? node.Scalar() : std::string();
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  const std::string unit(end, text.data() + text.size());
  std::uint64_t factor = 0;
  if (unit == "ms") factor = 1;
  if (unit == "s") factor = 1000;
  if (unit == "m") factor = 60000;
  if (!node.IsScalar() || ec != std::errc() || end == text.data() || factor == 0) {
    fail(node.Mark(),
         what + " must be a duration with a unit, like 500ms, 4s or 2m (got '" + text + "')");
  }
  if (value > 24ull * 3600 * 1000 / factor) fail(node.Mark(), what + " is longer than a day");
  const std::chrono::milliseconds result(value * factor);
  if (result < min)
    fail(node.Mark(), what + " must be at least " + std::to_string(min.count()) + "ms");
  return result;
}

std::vector<std::string> Reader::stringList(const YAML::Node& node, const std::string& what) const {
  if (!node.IsSequence()) fail(node.Mark(), what + " must be a list");
  std::vector<std::string> result;
  for (const auto& item : node) {
    const std::string value = string(item, what + " entry");
    if (value.empty()) fail(item.Mark(), what + " entry must not be empty");
    result.push_back(value);
  }
  return result;
}

std::vector<YAML::Node> Reader::oneOrMany(const YAML::Node& node, const std::string& what) const {
  if (!node.IsSequence()) {
    if (node.IsNull()) fail(node.Mark(), what + " must not be empty");
    return {node};
  }
  if (node.size() == 0) fail(node.Mark(), what + " must not be an empty list");
  return std::vector<YAML::Node>(node.begin(), node.end());
}

}  // namespace waypoint::config
