#pragma once
// How a component declares its counters to the metrics code: beside each counters struct,
// one table names every field once (name, help, type, the member, its labels). The
// renderer (src/app/metrics.cpp) walks the tables, so the HTTP endpoint, the SIGUSR1 file
// and docs/metrics.md cannot drift. The counters stay plain integers that the loop thread
// bumps: a labelled family is a small fixed array indexed by the owner's enum, and a
// histogram a fixed array of buckets, so counting costs an increment and no lookup.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace waypoint::metrics {

enum class Type : std::uint8_t { counter, gauge, histogram };

// One integer per label value; the owner indexes it with its enum. Sized for the largest
// family (the request methods).
struct Family {
  static constexpr std::size_t capacity = 16;
  std::array<std::uint64_t, capacity> values{};

  template <class Index>
  std::uint64_t& operator[](Index index) {
    return values[static_cast<std::size_t>(index)];
  }
  template <class Index>
  std::uint64_t operator[](Index index) const {
    return values[static_cast<std::size_t>(index)];
  }
  std::uint64_t total() const {
    std::uint64_t sum = 0;
    for (const std::uint64_t value : values) sum += value;
    return sum;
  }
};

// A latency histogram with fixed buckets (upper bounds in microseconds, so observing is
// integer compares; rendered in seconds). Non-cumulative counts; the renderer sums them.
struct Histogram {
  static constexpr std::array<std::int64_t, 14> boundsMicroseconds{
      100,   250,   500,    1000,   2500,   5000,    10000,
      25000, 50000, 100000, 250000, 500000, 1000000, 5000000};
  std::array<std::uint64_t, boundsMicroseconds.size()> buckets{};  // the rest is +Inf only
  std::uint64_t count = 0;
  std::chrono::microseconds sum{0};

  void observe(std::chrono::microseconds duration) {
    ++count;
    sum += duration;
    for (std::size_t i = 0; i < boundsMicroseconds.size(); ++i) {
      if (duration.count() <= boundsMicroseconds[i]) {
        ++buckets[i];
        return;
      }
    }
  }
};

// The status class label of a response, "1xx" ... "6xx", as a Family index.
inline constexpr std::array<std::string_view, 6> statusClassLabels{"1xx", "2xx", "3xx",
                                                                   "4xx", "5xx", "6xx"};
inline constexpr std::size_t statusClassIndex(int status) {
  const int index = status / 100 - 1;
  return index < 0 ? 0 : index > 5 ? 5 : static_cast<std::size_t>(index);
}

// One row of a table: a field of `Counters`, rendered as waypoint_<name> (with _total for
// a counter). A row is one of:
//   value                      one series; with `labels` (e.g. `reason="idle"`) it is one
//                              series of a family whose other rows follow it directly;
//   family, label, labelValues one series per label value;
//   histogram                  _bucket, _sum and _count series.
template <class Counters>
struct Metric {
  std::string_view name;
  Type type = Type::counter;
  std::string_view help;
  std::uint64_t Counters::*value = nullptr;
  std::string_view labels{};
  Family Counters::*family = nullptr;
  std::string_view label{};
  std::span<const std::string_view> labelValues{};
  Histogram Counters::*histogram = nullptr;

  static constexpr Metric counter(std::string_view name, std::string_view help,
                                  std::uint64_t Counters::*value, std::string_view labels = {}) {
    return Metric{name, Type::counter, help, value, labels};
  }
  static constexpr Metric gauge(std::string_view name, std::string_view help,
                                std::uint64_t Counters::*value, std::string_view labels = {}) {
    return Metric{name, Type::gauge, help, value, labels};
  }
  static constexpr Metric counterFamily(std::string_view name, std::string_view help,
                                        Family Counters::*family, std::string_view label,
                                        std::span<const std::string_view> labelValues) {
    return Metric{name, Type::counter, help, nullptr, {}, family, label, labelValues};
  }
  static constexpr Metric gaugeFamily(std::string_view name, std::string_view help,
                                      Family Counters::*family, std::string_view label,
                                      std::span<const std::string_view> labelValues) {
    return Metric{name, Type::gauge, help, nullptr, {}, family, label, labelValues};
  }
  static constexpr Metric histogramOf(std::string_view name, std::string_view help,
                                      Histogram Counters::*histogram) {
    return Metric{name, Type::histogram, help, nullptr, {}, nullptr, {}, {}, histogram};
  }
};

}  // namespace waypoint::metrics
