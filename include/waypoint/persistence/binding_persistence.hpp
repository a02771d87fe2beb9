#pragma once
// What the daemon holds to keep bindings across restarts: at start it opens the file,
// puts the stored bindings back into memory (restore.hpp), and starts the writer thread;
// the registrar then works on store(). A file that cannot be used (corrupt, unreadable,
// read-only, of a newer schema) is logged with its name and SQLite's reason and counted,
// and the daemon serves from memory: it never stops start-up.

#include <chrono>
#include <memory>
#include <string>

#include "waypoint/persistence/binding_writer.hpp"
#include "waypoint/persistence/persistent_location_store.hpp"

namespace waypoint::persistence {

struct PersistenceSettings {
  bool enabled = true;
  std::string file;  // the config fills in <state_dir>/bindings.sqlite
  std::chrono::milliseconds batchInterval{100};
};

class BindingPersistence {
 public:
  BindingPersistence(const PersistenceSettings& settings, registrar::InMemoryLocationStore& memory,
                     Clocks clocks = {});
  ~BindingPersistence();  // stop()
  BindingPersistence(const BindingPersistence&) = delete;
  BindingPersistence& operator=(const BindingPersistence&) = delete;

  // The store the registrar uses: persistent, or the memory store itself when off or
  // when the file could not be used.
  registrar::LocationStore& store();
  // Writes the final batch and ends the writer thread (a clean stop). Idempotent.
  void stop();
  const PersistenceCounters& counters() const { return counters_; }
  // Whether bindings are being written (on, and the file opened).
  bool writing() const { return writer_ != nullptr; }

 private:
  registrar::InMemoryLocationStore& memory_;
  PersistenceCounters counters_;
  std::unique_ptr<BindingDatabase> database_;
  std::unique_ptr<BindingWriter> writer_;
  std::unique_ptr<PersistentLocationStore> store_;
};

}  // namespace waypoint::persistence
