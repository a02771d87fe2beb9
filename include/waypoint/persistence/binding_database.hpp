#pragma once
// The SQLite file that keeps the bindings across restarts: one row per binding, each AOR
// rewritten as a whole in one transaction per batch. WAL journal, synchronous=NORMAL: a
// commit is durable against a crash of the process as soon as it returns, and against a
// power loss once the WAL is checkpointed or synced (see docs/configuration.md).
// Not thread-safe: one thread at a time (the writer thread, or start-up before it runs).

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "waypoint/registrar/location_store.hpp"

struct sqlite3;

namespace waypoint::persistence {

using WallTime = std::chrono::system_clock::time_point;

// What went wrong with the file, as "FILE: what we did: SQLite's reason".
class DatabaseError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A binding as stored: its expiry on the wall clock (the steady clock does not survive a
// reboot); binding.expiresAt and binding.flow.connectionId mean nothing here.
struct StoredBinding {
  registrar::Binding binding;
  WallTime expiresAt{};
};

struct StoredAor {
  std::string aor;
  std::vector<StoredBinding> bindings;  // empty: the AOR has none left (its rows go)
};

class BindingDatabase {
 public:
  static constexpr int kSchemaVersion = 1;

  // Opens or creates the file (and its folder) and the schema. Throws DatabaseError for a
  // file that is not a database, unreadable, read-only, or of a newer schema.
  explicit BindingDatabase(std::string path);
  ~BindingDatabase();
  BindingDatabase(const BindingDatabase&) = delete;
  BindingDatabase& operator=(const BindingDatabase&) = delete;

  // Every stored AOR with its bindings in stored order. Throws DatabaseError.
  std::vector<StoredAor> load();
  // Replaces the rows of each AOR, all in one transaction (rolled back on error). Throws
  // DatabaseError.
  void write(const std::vector<StoredAor>& aors);
  // Transactions committed on this connection (SQLite's commit hook counts them).
  std::uint64_t commits() const { return commits_; }
  const std::string& path() const { return path_; }

 private:
  [[noreturn]] void fail(const std::string& what) const;
  void exec(const char* sql, const char* what);

  struct Close {
    void operator()(sqlite3* db) const;
  };
  std::string path_;
  std::unique_ptr<sqlite3, Close> db_;
  std::uint64_t commits_ = 0;
};

}  // namespace waypoint::persistence
