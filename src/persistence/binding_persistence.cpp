#include "waypoint/persistence/binding_persistence.hpp"

#include <spdlog/spdlog.h>

#include "waypoint/persistence/restore.hpp"

namespace waypoint::persistence {

BindingPersistence::BindingPersistence(const PersistenceSettings& settings,
                                       registrar::InMemoryLocationStore& memory, Clocks clocks)
    : memory_(memory) {
  if (!settings.enabled) {
    spdlog::info("registrar: persistence off, bindings are kept in memory only");
    return;
  }
  std::vector<StoredAor> stored;
  try {
    database_ = std::make_unique<BindingDatabase>(settings.file);
    stored = database_->load();
  } catch (const DatabaseError& error) {
    database_.reset();
    ++counters_.writeErrors;
    counters_.failing = 1;
    spdlog::error("registrar: bindings will not survive a restart, serving from memory only: {}",
                  error.what());
    return;
  }
  writer_ = std::make_unique<BindingWriter>(*database_, clocks, counters_);
  const RestoreReport report = restoreInto(stored, clocks, memory, *writer_);
  counters_.restored = report.bindings;
  counters_.droppedAtRestore = report.dropped;
  spdlog::info("registrar: restored {} bindings of {} AORs from {} ({} dropped{}{})",
               report.bindings, report.aors, settings.file, report.dropped,
               report.dropped == 0 ? "" : ": ", report.droppedText());
  store_ = std::make_unique<PersistentLocationStore>(memory, *writer_);
  writer_->start(settings.batchInterval);
}

BindingPersistence::~BindingPersistence() { stop(); }

registrar::LocationStore& BindingPersistence::store() {
  if (store_) return *store_;
  return memory_;
}

void BindingPersistence::stop() {
  if (writer_) writer_->stop();
}

}  // namespace waypoint::persistence
