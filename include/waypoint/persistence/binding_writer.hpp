#pragma once
// Writes the bindings behind the registrar: the loop thread hands over an AOR's new
// binding list (enqueue: a mutex-protected map, never a wait on SQLite) and the writer
// thread commits what has gathered every batch interval, one transaction per batch. An
// AOR changed twice within a batch is written once, with its latest list.

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "waypoint/metrics/metric.hpp"
#include "waypoint/persistence/binding_database.hpp"

namespace waypoint::persistence {

// The two clocks a binding's expiry moves between: steady in memory, wall on disk.
struct Clocks {
  std::function<WallTime()> wall = [] { return std::chrono::system_clock::now(); };
  std::function<registrar::TimePoint()> steady = [] { return std::chrono::steady_clock::now(); };
};

// Written by the writer thread and start-up, read by the metrics on the loop thread.
struct PersistenceCounters {
  std::atomic<std::uint64_t> batchesWritten{0};
  std::atomic<std::uint64_t> bindingsWritten{0};
  std::atomic<std::uint64_t> writeErrors{0};  // failed batches, and a file that would not open
  std::atomic<std::uint64_t> restored{0};
  std::atomic<std::uint64_t> droppedAtRestore{0};
  // 1 while the bindings are not being written: the file would not open, or the last
  // batch failed (its AORs are retried with the next one).
  std::atomic<std::uint64_t> failing{0};
};

// PersistenceCounters as plain values, read on the loop thread when metrics are rendered;
// persistenceMetrics declares them.
struct PersistenceMetricValues {
  std::uint64_t batchesWritten = 0;
  std::uint64_t bindingsWritten = 0;
  std::uint64_t writeErrors = 0;
  std::uint64_t restored = 0;
  std::uint64_t droppedAtRestore = 0;
  std::uint64_t failing = 0;
};
inline PersistenceMetricValues metricValues(const PersistenceCounters& c) {
  return {c.batchesWritten.load(), c.bindingsWritten.load(),  c.writeErrors.load(),
          c.restored.load(),       c.droppedAtRestore.load(), c.failing.load()};
}

using PersistenceMetric = metrics::Metric<PersistenceMetricValues>;

inline constexpr std::array persistenceMetrics{
    PersistenceMetric::counter(
        "registrar_persistence_batches_written",
        "Batches (one SQLite transaction each) of binding changes written to the database",
        &PersistenceMetricValues::batchesWritten),
    PersistenceMetric::counter("registrar_persistence_bindings_written",
                               "Bindings written in those batches",
                               &PersistenceMetricValues::bindingsWritten),
    PersistenceMetric::counter(
        "registrar_persistence_write_errors",
        "Batches that failed (retried with the next one), and a database that would not open",
        &PersistenceMetricValues::writeErrors),
    PersistenceMetric::counter("registrar_persistence_restored",
                               "Bindings put back from the database at start-up",
                               &PersistenceMetricValues::restored),
    PersistenceMetric::counter(
        "registrar_persistence_dropped_at_restore",
        "Stored bindings not put back at start-up: expired, WebSocket, or a connection behind NAT",
        &PersistenceMetricValues::droppedAtRestore),
    PersistenceMetric::gauge("registrar_persistence_failing",
                             "1 while bindings are not being saved: the database would not open or "
                             "the last batch failed",
                             &PersistenceMetricValues::failing),
};

class BindingWriter {
 public:
  BindingWriter(BindingDatabase& database, Clocks clocks, PersistenceCounters& counters);
  ~BindingWriter();  // stop()
  BindingWriter(const BindingWriter&) = delete;
  BindingWriter& operator=(const BindingWriter&) = delete;

  // Any thread; cheap: a lock, a map insert.
  void enqueue(const std::string& aor, std::vector<registrar::Binding> bindings);
  // Writes what is queued as one transaction; false when that failed (then it stays
  // queued, unless a newer list for the same AOR came meanwhile). Nothing queued: no
  // transaction. The writer thread calls it; so do tests and stop().
  bool writePending();
  // The writer thread: writePending() every interval.
  void start(std::chrono::milliseconds interval);
  // Ends the thread and writes what is left (the final batch). Idempotent.
  void stop();
  std::size_t pendingAors() const;

 private:
  void run(std::chrono::milliseconds interval);

  BindingDatabase& database_;
  Clocks clocks_;
  PersistenceCounters& counters_;
  mutable std::mutex mutex_;  // pending_ and stopping_
  std::condition_variable wake_;
  std::unordered_map<std::string, std::vector<registrar::Binding>> pending_;
  bool stopping_ = false;
  std::mutex writing_;  // one writePending() at a time
  std::thread thread_;
};

}  // namespace waypoint::persistence
