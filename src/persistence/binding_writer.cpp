#include "waypoint/persistence/binding_writer.hpp"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace waypoint::persistence {

BindingWriter::BindingWriter(BindingDatabase& database, Clocks clocks,
                             PersistenceCounters& counters)
    : database_(database), clocks_(std::move(clocks)), counters_(counters) {}

BindingWriter::~BindingWriter() { stop(); }

void BindingWriter::enqueue(const std::string& aor, std::vector<registrar::Binding> bindings) {
  const std::lock_guard lock(mutex_);
  pending_.insert_or_assign(aor, std::move(bindings));
}

std::size_t BindingWriter::pendingAors() const {
  const std::lock_guard lock(mutex_);
  return pending_.size();
}

bool BindingWriter::writePending() {
  const std::lock_guard writing(writing_);
  std::unordered_map<std::string, std::vector<registrar::Binding>> batch;
  {
    const std::lock_guard lock(mutex_);
    batch.swap(pending_);
  }
  if (batch.empty()) return true;
  // The wall/steady offset is read once per batch: every expiry in it moves by the same.
  const WallTime wallNow = clocks_.wall();
  const registrar::TimePoint steadyNow = clocks_.steady();
  std::vector<StoredAor> rows;
  rows.reserve(batch.size());
  std::uint64_t bindings = 0;
  for (const auto& [aor, list] : batch) {
    StoredAor stored{aor, {}};
    stored.bindings.reserve(list.size());
    for (const auto& binding : list) {
      const auto left = binding.expiresAt - steadyNow;
      stored.bindings.push_back(
          StoredBinding{binding, wallNow + std::chrono::duration_cast<WallTime::duration>(left)});
    }
    bindings += list.size();
    rows.push_back(std::move(stored));
  }
  try {
    database_.write(rows);
  } catch (const DatabaseError& error) {
    ++counters_.writeErrors;
    // Logged when writing starts to fail, not for every batch while it does.
    if (counters_.failing.exchange(1) == 0) {
      spdlog::error("registrar: bindings not saved, serving from memory (retried every batch): {}",
                    error.what());
    }
    const std::lock_guard lock(mutex_);
    for (auto& [aor, list] : batch) pending_.try_emplace(aor, std::move(list));
    return false;
  }
  if (counters_.failing.exchange(0) != 0) {
    spdlog::warn("registrar: bindings are saved to {} again", database_.path());
  }
  ++counters_.batchesWritten;
  counters_.bindingsWritten += bindings;
  return true;
}

void BindingWriter::start(std::chrono::milliseconds interval) {
  thread_ = std::thread([this, interval] { run(interval); });
}

void BindingWriter::run(std::chrono::milliseconds interval) {
  // The writer must never take a core from the event loop (REGISTER latency): on a busy
  // machine it runs at a lower priority (nice 10). Refused (a sandbox): it runs as it is.
  if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10) != 0) {
    spdlog::debug("registrar: the bindings writer keeps its priority: {}", std::strerror(errno));
  }
  auto next = std::chrono::steady_clock::now() + interval;
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_until(lock, next, [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    writePending();
    next += interval;
    // Behind (a slow disk): the next batch is a full interval away, not due at once.
    const auto now = std::chrono::steady_clock::now();
    if (next < now) next = now + interval;
    lock.lock();
  }
}

void BindingWriter::stop() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  writePending();
}

}  // namespace waypoint::persistence
