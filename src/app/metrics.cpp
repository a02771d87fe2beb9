#include "waypoint/app/metrics.hpp"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <span>

namespace waypoint::app {

namespace {

void header(std::string& out, std::string_view name, std::string_view help, std::string_view type) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void sample(std::string& out, std::string_view name, std::string_view labels, std::uint64_t value) {
  if (labels.empty()) {
    fmt::format_to(std::back_inserter(out), "{} {}\n", name, value);
  } else {
    fmt::format_to(std::back_inserter(out), "{}{{{}}} {}\n", name, labels, value);
  }
}

double seconds(std::int64_t microseconds) { return static_cast<double>(microseconds) / 1e6; }

void histogram(std::string& out, std::string_view name, const metrics::Histogram& h) {
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < h.buckets.size(); ++i) {
    cumulative += h.buckets[i];
    fmt::format_to(std::back_inserter(out), "{}_bucket{{le=\"{}\"}} {}\n", name,
                   seconds(metrics::Histogram::boundsMicroseconds[i]), cumulative);
  }
  fmt::format_to(std::back_inserter(out), "{}_bucket{{le=\"+Inf\"}} {}\n", name, h.count);
  fmt::format_to(std::back_inserter(out), "{}_sum {}\n", name, seconds(h.sum.count()));
  fmt::format_to(std::back_inserter(out), "{}_count {}\n", name, h.count);
}

// One table: HELP and TYPE once per metric name (the rows of a family declared by
// fields follow each other and only the first carries the help), counters with _total.
template <class Counters, std::size_t N>
void render(std::string& out, const std::array<metrics::Metric<Counters>, N>& table,
            const Counters& counters) {
  std::string_view previous;
  for (const metrics::Metric<Counters>& metric : table) {
    const bool isCounter = metric.type == metrics::Type::counter;
    const std::string name = fmt::format("waypoint_{}{}", metric.name, isCounter ? "_total" : "");
    if (metric.name != previous) {
      const std::string_view type = isCounter                             ? "counter"
                                    : metric.type == metrics::Type::gauge ? "gauge"
                                                                          : "histogram";
      header(out, name, metric.help, type);
      previous = metric.name;
    }
    if (metric.histogram != nullptr) {
      histogram(out, name, counters.*metric.histogram);
    } else if (metric.family != nullptr) {
      const metrics::Family& family = counters.*metric.family;
      for (std::size_t i = 0; i < metric.labelValues.size(); ++i) {
        sample(out, name, fmt::format("{}=\"{}\"", metric.label, metric.labelValues[i]),
               family.values[i]);
      }
    } else {
      sample(out, name, metric.labels, counters.*metric.value);
    }
  }
}

}  // namespace

std::string renderMetrics(const MetricSources& sources) {
  std::string out;
  out.reserve(16384);
  header(out, "waypoint_build_info", "The running waypointd's version (always 1)", "gauge");
  fmt::format_to(std::back_inserter(out), "waypoint_build_info{{version=\"{}\"}} 1\n",
                 sources.version);
  header(out, "process_start_time_seconds", "When waypointd started, in seconds since the epoch",
         "gauge");
  fmt::format_to(std::back_inserter(out), "process_start_time_seconds {}\n",
                 sources.startTimeSeconds);
  render(out, transport::transportMetrics, sources.transport);
  render(out, dispatcherMetrics, sources.dispatcher);
  render(out, transaction::transactionMetrics, sources.transactions);
  render(out, registrar::registrarMetrics, sources.registrar);
  render(out, registrar::registrarGaugeMetrics, sources.registrarGauges);
  render(out, proxy::proxyMetrics, sources.proxy);
  render(out, auth::floodMetrics, sources.flood);
  render(out, persistence::persistenceMetrics, sources.persistence);
  if (sources.auth != nullptr) {
    render(out, auth::authMetrics, *sources.auth);
    render(out, auth::authGaugeMetrics, sources.authGauges);
  }
  return out;
}

bool writeMetricsFile(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream file(temporary, std::ios::trunc);
    file << text;
    if (!file.flush()) {
      spdlog::error("cannot write metrics file {}", temporary);
      return false;
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    spdlog::error("cannot rename {} to {}", temporary, path);
    return false;
  }
  return true;
}

}  // namespace waypoint::app
