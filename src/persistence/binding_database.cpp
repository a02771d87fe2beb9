#include "waypoint/persistence/binding_database.hpp"

#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>

namespace waypoint::persistence {

namespace {

// Version 1: one row per binding, keyed by AOR and the binding's place in its list.
// Times are Unix milliseconds; path holds the Path header values one per line (a header
// value has no line break).
constexpr const char* kCreateSchema = R"sql(
CREATE TABLE bindings (
  aor TEXT NOT NULL,
  position INTEGER NOT NULL,
  contact TEXT NOT NULL,
  q_milli INTEGER NOT NULL,
  call_id TEXT NOT NULL,
  cseq INTEGER NOT NULL,
  expires_at_unix_ms INTEGER NOT NULL,
  instance TEXT NOT NULL,
  reg_id TEXT NOT NULL,
  path TEXT NOT NULL,
  flow_protocol TEXT NOT NULL,
  flow_local_address TEXT NOT NULL,
  flow_local_port INTEGER NOT NULL,
  flow_remote_address TEXT NOT NULL,
  flow_remote_port INTEGER NOT NULL,
  behind_nat INTEGER NOT NULL,
  PRIMARY KEY (aor, position)
) WITHOUT ROWID;
PRAGMA user_version = 1;
)sql";

constexpr const char* kColumns =
    "aor, position, contact, q_milli, call_id, cseq, expires_at_unix_ms, instance, reg_id, path, "
    "flow_protocol, flow_local_address, flow_local_port, flow_remote_address, flow_remote_port, "
    "behind_nat";

// One prepared statement, finalized when it goes out of scope.
class Statement {
 public:
  Statement(sqlite3* db, const std::string& sql) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &statement_, nullptr) != SQLITE_OK) {
      statement_ = nullptr;
    }
  }
  ~Statement() { sqlite3_finalize(statement_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  bool ok() const { return statement_ != nullptr; }
  void bind(int index, const std::string& text) {
    sqlite3_bind_text(statement_, index, text.data(), static_cast<int>(text.size()),
                      SQLITE_TRANSIENT);
  }
  void bind(int index, std::int64_t value) { sqlite3_bind_int64(statement_, index, value); }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int step() { return sqlite3_step(statement_); }
  void reset() {
    sqlite3_reset(statement_);
    sqlite3_clear_bindings(statement_);
  }
  std::string text(int column) const {
    const auto* bytes = sqlite3_column_text(statement_, column);
    return bytes == nullptr
               ? std::string()
               : std::string(reinterpret_cast<const char*>(bytes),
                             static_cast<std::size_t>(sqlite3_column_bytes(statement_, column)));
  }
  std::int64_t integer(int column) const { return sqlite3_column_int64(statement_, column); }

 private:
  sqlite3_stmt* statement_ = nullptr;
};

std::string joinedPath(const std::vector<std::string>& path) {
  std::string text;
  for (const auto& value : path) text.append(text.empty() ? "" : "\n").append(value);
  return text;
}

std::vector<std::string> splitPath(const std::string& text) {
  std::vector<std::string> path;
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = std::min(text.find('\n', start), text.size());
    path.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return path;
}

std::int64_t unixMilliseconds(WallTime time) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

std::optional<transport::Endpoint> endpointOf(const std::string& address, std::int64_t port) {
  boost::system::error_code ec;
  const auto parsed = boost::asio::ip::make_address(address, ec);
  if (ec || port < 0 || port > 65535) return std::nullopt;
  return transport::Endpoint{parsed, static_cast<std::uint16_t>(port)};
}

int countCommit(void* commits) {
  ++*static_cast<std::uint64_t*>(commits);
  return 0;  // 0: let the commit go ahead
}

}  // namespace

BindingDatabase::BindingDatabase(std::string path) : path_(std::move(path)) {
  const auto folder = std::filesystem::path(path_).parent_path();
  if (!folder.empty() && ::mkdir(folder.c_str(), 0700) != 0 && errno != EEXIST) {
    throw DatabaseError(path_ + ": cannot make its folder: " + std::strerror(errno));
  }
  sqlite3* opened = nullptr;
  const int status =
      sqlite3_open_v2(path_.c_str(), &opened, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  db_.reset(opened);  // closed on every way out, a failed open included
  if (status != SQLITE_OK) fail("cannot open");
  // A second process holding the file: give up quickly rather than hold up start-up.
  sqlite3_busy_timeout(db_.get(), 200);
  sqlite3_commit_hook(db_.get(), countCommit, &commits_);
  if (sqlite3_db_readonly(db_.get(), "main") == 1) {
    throw DatabaseError(path_ + ": cannot write: the file is read-only");
  }
  // The first statement reads the file: this is where a corrupt one shows.
  std::string journalMode;
  {
    Statement journal(db_.get(), "PRAGMA journal_mode=WAL");
    if (!journal.ok() || journal.step() != SQLITE_ROW) fail("cannot read");
    journalMode = journal.text(0);
  }
  if (journalMode != "wal") {
    throw DatabaseError(path_ + ": cannot use the WAL journal (journal mode stays " + journalMode +
                        ")");
  }
  exec("PRAGMA synchronous=NORMAL", "cannot set synchronous=NORMAL");
  std::int64_t found = 0;
  {
    Statement version(db_.get(), "PRAGMA user_version");
    if (!version.ok() || version.step() != SQLITE_ROW) fail("cannot read the schema version");
    found = version.integer(0);
  }
  if (found == 0) {
    exec("BEGIN", "cannot create the schema");
    exec(kCreateSchema, "cannot create the schema");
    exec("COMMIT", "cannot create the schema");
  } else if (found != kSchemaVersion) {
    throw DatabaseError(std::string(path_)
                            .append(": schema version ")
                            .append(std::to_string(found))
                            .append(", this waypointd reads version ")
                            .append(std::to_string(kSchemaVersion)));
  }
}

BindingDatabase::~BindingDatabase() = default;

void BindingDatabase::Close::operator()(sqlite3* db) const { sqlite3_close(db); }

void BindingDatabase::fail(const std::string& what) const {
  throw DatabaseError(path_ + ": " + what + ": " +
                      (db_ ? sqlite3_errmsg(db_.get()) : "out of memory"));
}

void BindingDatabase::exec(const char* sql, const char* what) {
  if (sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr) != SQLITE_OK) fail(what);
}

std::vector<StoredAor> BindingDatabase::load() {
  Statement select(db_.get(), std::string("SELECT ").append(kColumns).append(
                                  " FROM bindings ORDER BY aor, position"));
  if (!select.ok()) fail("cannot read the bindings");
  std::vector<StoredAor> aors;
  int status = SQLITE_ROW;
  while ((status = select.step()) == SQLITE_ROW) {
    std::string aor = select.text(0);
    if (aors.empty() || aors.back().aor != aor) aors.push_back(StoredAor{std::move(aor), {}});
    StoredBinding stored;
    auto& b = stored.binding;
    b.contact = select.text(2);
    b.qMilli = static_cast<int>(select.integer(3));
    b.callId = select.text(4);
    b.cseq = static_cast<std::uint32_t>(select.integer(5));
    stored.expiresAt = WallTime(std::chrono::milliseconds(select.integer(6)));
    b.instance = select.text(7);
    b.regId = select.text(8);
    b.path = splitPath(select.text(9));
    const auto protocol = transport::protocolFromString(select.text(10));
    const auto local = endpointOf(select.text(11), select.integer(12));
    const auto remote = endpointOf(select.text(13), select.integer(14));
    // A row this version cannot make sense of is left out, not guessed at.
    if (!protocol || !local || !remote) continue;
    b.flow = transport::Source{*protocol, *local, *remote, 0};
    b.behindNat = select.integer(15) != 0;
    aors.back().bindings.push_back(std::move(stored));
  }
  if (status != SQLITE_DONE) fail("cannot read the bindings");
  std::erase_if(aors, [](const StoredAor& aor) { return aor.bindings.empty(); });
  return aors;
}

void BindingDatabase::write(const std::vector<StoredAor>& aors) {
  Statement remove(db_.get(), "DELETE FROM bindings WHERE aor = ?1");
  Statement insert(db_.get(),
                   std::string("INSERT INTO bindings (")
                       .append(kColumns)
                       .append(") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
                               "?13, ?14, ?15, ?16)"));
  if (!remove.ok() || !insert.ok()) fail("cannot write");
  exec("BEGIN", "cannot write");
  auto rollBack = [&](const char* what) {
    const std::string reason = sqlite3_errmsg(db_.get());
    sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    throw DatabaseError(path_ + ": " + what + ": " + reason);
  };
  for (const auto& aor : aors) {
    remove.bind(1, aor.aor);
    if (remove.step() != SQLITE_DONE) rollBack("cannot write");
    remove.reset();
    std::int64_t position = 0;
    for (const auto& stored : aor.bindings) {
      const auto& b = stored.binding;
      insert.bind(1, aor.aor);
      insert.bind(2, position++);
      insert.bind(3, b.contact);
      insert.bind(4, std::int64_t{b.qMilli});
      insert.bind(5, b.callId);
      insert.bind(6, std::int64_t{b.cseq});
      insert.bind(7, unixMilliseconds(stored.expiresAt));
      insert.bind(8, b.instance);
      insert.bind(9, b.regId);
      insert.bind(10, joinedPath(b.path));
      insert.bind(11, std::string(transport::toString(b.flow.protocol)));
      insert.bind(12, transport::toString(b.flow.local.address));
      insert.bind(13, std::int64_t{b.flow.local.port});
      insert.bind(14, transport::toString(b.flow.remote.address));
      insert.bind(15, std::int64_t{b.flow.remote.port});
      insert.bind(16, std::int64_t{b.behindNat ? 1 : 0});
      if (insert.step() != SQLITE_DONE) rollBack("cannot write");
      insert.reset();
    }
  }
  if (sqlite3_exec(db_.get(), "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK)
    rollBack("cannot commit");
}

}  // namespace waypoint::persistence
