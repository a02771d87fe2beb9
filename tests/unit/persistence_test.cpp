// The binding database, its writer, the persistent store and the start-up replay (issue
// 11, "Registrations survive a restart"), with fake wall and steady clocks.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "waypoint/persistence/binding_persistence.hpp"
#include "waypoint/persistence/restore.hpp"

namespace waypoint::persistence {
namespace {

using namespace std::chrono_literals;
using registrar::Binding;
using ::testing::HasSubstr;
using transport::Protocol;

transport::Endpoint endpoint(const char* address, std::uint16_t port) {
  return transport::Endpoint{boost::asio::ip::make_address(address), port};
}

// Two clocks the test moves by hand: the wall clock on disk, the steady one in memory.
struct FakeClocks {
  WallTime wall = WallTime(std::chrono::seconds(1'800'000'000));
  registrar::TimePoint steady = registrar::TimePoint(std::chrono::hours(100));
  Clocks clocks() {
    return Clocks{[this] { return wall; }, [this] { return steady; }};
  }
};

Binding bindingFor(const std::string& contact, Protocol protocol, registrar::TimePoint expiresAt) {
  Binding b;
  b.contact = contact;
  b.qMilli = 700;
  b.callId = "call-" + contact;
  b.cseq = 42;
  b.expiresAt = expiresAt;
  b.instance = "\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\"";
  b.regId = "1";
  b.path = {"<sip:edge1.example;lr>", "<sip:edge2.example;lr>"};
  b.flow =
      transport::Source{protocol, endpoint("127.0.0.1", 5060), endpoint("192.0.2.7", 40123), 17};
  b.behindNat = false;
  return b;
}

class PersistenceTest : public ::testing::Test {
 protected:
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_ = (std::filesystem::temp_directory_path() /
                      std::string("waypoint-persistence-test-").append(std::to_string(::getpid())))
                         .string();
  std::string file_ = dir_ + "/bindings.sqlite";
  FakeClocks fake_;
};

TEST_F(PersistenceTest, EveryBindingFieldSurvivesTheRoundTrip) {
  Binding udp = bindingFor("sip:alice@192.0.2.7:5060", Protocol::udp, {});
  Binding tls = bindingFor("sips:alice@[2001:db8::5]:5061", Protocol::tls, {});
  tls.flow.local = endpoint("::1", 5061);
  tls.flow.remote = endpoint("2001:db8::5", 51000);
  tls.behindNat = true;
  tls.path.clear();
  tls.instance.clear();
  tls.regId.clear();
  tls.qMilli = 1000;
  const WallTime expires = WallTime(std::chrono::milliseconds(1'800'000'123'456));
  {
    BindingDatabase db(file_);
    db.write({StoredAor{"sip:alice@example.com", {{udp, expires}, {tls, expires + 1ms}}}});
  }
  BindingDatabase db(file_);
  const auto aors = db.load();
  ASSERT_EQ(aors.size(), 1u);
  EXPECT_EQ(aors[0].aor, "sip:alice@example.com");
  ASSERT_EQ(aors[0].bindings.size(), 2u);
  const auto& first = aors[0].bindings[0];
  EXPECT_EQ(first.expiresAt, expires);
  EXPECT_EQ(first.binding.contact, udp.contact);
  EXPECT_EQ(first.binding.qMilli, 700);
  EXPECT_EQ(first.binding.callId, udp.callId);
  EXPECT_EQ(first.binding.cseq, 42u);
  EXPECT_EQ(first.binding.instance, udp.instance);
  EXPECT_EQ(first.binding.regId, "1");
  EXPECT_EQ(first.binding.path, udp.path);
  EXPECT_EQ(first.binding.flow.protocol, Protocol::udp);
  EXPECT_EQ(first.binding.flow.local, udp.flow.local);
  EXPECT_EQ(first.binding.flow.remote, udp.flow.remote);
  EXPECT_EQ(first.binding.flow.connectionId, 0u);  // a connection does not outlive its process
  EXPECT_FALSE(first.binding.behindNat);
  const auto& second = aors[0].bindings[1];
  EXPECT_EQ(second.expiresAt, expires + 1ms);
  EXPECT_EQ(second.binding.contact, tls.contact);
  EXPECT_EQ(second.binding.qMilli, 1000);
  EXPECT_TRUE(second.binding.path.empty());
  EXPECT_TRUE(second.binding.instance.empty());
  EXPECT_EQ(second.binding.flow.protocol, Protocol::tls);
  EXPECT_EQ(second.binding.flow.local, tls.flow.local);
  EXPECT_EQ(second.binding.flow.remote, tls.flow.remote);
  EXPECT_TRUE(second.binding.behindNat);
}

TEST_F(PersistenceTest, OneTransactionPerBatchWithTheLatestListOfEachAor) {
  BindingDatabase db(file_);
  PersistenceCounters counters;
  BindingWriter writer(db, fake_.clocks(), counters);
  const auto expires = fake_.steady + 600s;
  writer.enqueue("sip:a@x", {bindingFor("sip:a@192.0.2.1", Protocol::udp, expires)});
  writer.enqueue("sip:b@x", {bindingFor("sip:b@192.0.2.2", Protocol::udp, expires)});
  writer.enqueue("sip:c@x", {bindingFor("sip:c@192.0.2.3", Protocol::udp, expires)});
  writer.enqueue("sip:a@x", {bindingFor("sip:a@192.0.2.9", Protocol::udp, expires),
                             bindingFor("sip:a@192.0.2.10", Protocol::udp, expires)});
  const auto before = db.commits();
  ASSERT_TRUE(writer.writePending());
  EXPECT_EQ(db.commits(), before + 1);
  EXPECT_EQ(counters.batchesWritten, 1u);
  EXPECT_EQ(counters.bindingsWritten, 4u);
  EXPECT_EQ(writer.pendingAors(), 0u);

  ASSERT_TRUE(writer.writePending());  // nothing queued: no empty transaction
  EXPECT_EQ(db.commits(), before + 1);
  EXPECT_EQ(counters.batchesWritten, 1u);

  writer.enqueue("sip:b@x", {});  // the AOR's last binding went: its rows go
  ASSERT_TRUE(writer.writePending());
  EXPECT_EQ(db.commits(), before + 2);
  const auto aors = db.load();
  ASSERT_EQ(aors.size(), 2u);
  EXPECT_EQ(aors[0].aor, "sip:a@x");
  ASSERT_EQ(aors[0].bindings.size(), 2u);
  EXPECT_EQ(aors[0].bindings[0].binding.contact, "sip:a@192.0.2.9");
  EXPECT_EQ(aors[0].bindings[0].expiresAt, fake_.wall + 600s);  // steady -> wall
  EXPECT_EQ(aors[1].aor, "sip:c@x");
}

TEST_F(PersistenceTest, ReplaceAndExpiryAreQueuedAndLookupsStayInMemory) {
  BindingDatabase db(file_);
  PersistenceCounters counters;
  BindingWriter writer(db, fake_.clocks(), counters);
  registrar::InMemoryLocationStore memory;
  PersistentLocationStore store(memory, writer);
  store.replace("sip:a@x", {bindingFor("sip:a@192.0.2.1", Protocol::udp, fake_.steady + 60s),
                            bindingFor("sip:a@192.0.2.2", Protocol::udp, fake_.steady + 600s)});
  store.replace("sip:b@x", {bindingFor("sip:b@192.0.2.3", Protocol::udp, fake_.steady + 60s)});
  EXPECT_EQ(store.lookup("sip:a@x").size(), 2u);  // at once, before any write
  EXPECT_EQ(store.bindingCount(), 3u);
  EXPECT_EQ(writer.pendingAors(), 2u);
  ASSERT_TRUE(writer.writePending());

  EXPECT_EQ(store.expire(fake_.steady + 60s), 2u);
  EXPECT_EQ(writer.pendingAors(), 2u);  // a lost one of two, b lost its only one
  ASSERT_TRUE(writer.writePending());
  const auto aors = db.load();
  ASSERT_EQ(aors.size(), 1u);
  ASSERT_EQ(aors[0].bindings.size(), 1u);
  EXPECT_EQ(aors[0].bindings[0].binding.contact, "sip:a@192.0.2.2");
}

TEST_F(PersistenceTest, ReplayGivesTheTimeLeftAndDropsWhatExpiredMeanwhile) {
  {
    BindingDatabase db(file_);
    PersistenceCounters counters;
    BindingWriter writer(db, fake_.clocks(), counters);
    writer.enqueue("sip:a@x", {bindingFor("sip:a@192.0.2.1", Protocol::udp, fake_.steady + 600s),
                               bindingFor("sip:a@192.0.2.2", Protocol::udp, fake_.steady + 90s)});
    writer.enqueue("sip:b@x", {bindingFor("sip:b@192.0.2.3", Protocol::udp, fake_.steady + 30s)});
    ASSERT_TRUE(writer.writePending());
  }
  // 100 s later on the wall clock; the steady clock started again from elsewhere (reboot).
  fake_.wall += 100s;
  fake_.steady = registrar::TimePoint(std::chrono::hours(3));
  registrar::InMemoryLocationStore memory;
  BindingPersistence persistence(PersistenceSettings{true, file_, 100ms}, memory, fake_.clocks());
  persistence.stop();
  ASSERT_TRUE(persistence.writing());
  EXPECT_EQ(&persistence.store() != &memory, true);
  const auto a = memory.lookup("sip:a@x");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].contact, "sip:a@192.0.2.1");
  EXPECT_EQ(a[0].expiresAt, fake_.steady + 500s);
  EXPECT_TRUE(memory.lookup("sip:b@x").empty());
  EXPECT_EQ(persistence.counters().restored, 1u);
  EXPECT_EQ(persistence.counters().droppedAtRestore, 2u);
  // The dropped rows were written away by the final batch.
  BindingDatabase db(file_);
  const auto aors = db.load();
  ASSERT_EQ(aors.size(), 1u);
  EXPECT_EQ(aors[0].bindings.size(), 1u);
}

TEST_F(PersistenceTest, UdpFlowsComeBackStreamsOnlyWhereTheContactIsReachable) {
  const WallTime wallNow = fake_.wall;
  const auto steadyNow = fake_.steady;
  auto decide = [&](Binding b) { return restoredBinding({b, wallNow + 60s}, wallNow, steadyNow); };

  auto udp = decide(bindingFor("sip:a@10.0.0.5:5062", Protocol::udp, {}));
  ASSERT_TRUE(std::holds_alternative<Binding>(udp));
  EXPECT_EQ(std::get<Binding>(udp).flow.remote, endpoint("192.0.2.7", 40123));  // the NAT's
  EXPECT_EQ(std::get<Binding>(udp).flow.local, endpoint("127.0.0.1", 5060));
  EXPECT_EQ(std::get<Binding>(udp).expiresAt, steadyNow + 60s);
  Binding natUdp = bindingFor("sip:a@10.0.0.5:5062", Protocol::udp, {});
  natUdp.behindNat = true;
  EXPECT_TRUE(std::holds_alternative<Binding>(decide(natUdp)));

  auto tcp = decide(bindingFor("sip:a@192.0.2.7:5070;transport=tcp", Protocol::tcp, {}));
  ASSERT_TRUE(std::holds_alternative<Binding>(tcp));
  EXPECT_EQ(std::get<Binding>(tcp).flow.remote, endpoint("192.0.2.7", 5070));  // the Contact
  EXPECT_EQ(std::get<Binding>(tcp).flow.connectionId, 0u);
  auto tls = decide(bindingFor("sips:a@192.0.2.7", Protocol::tls, {}));
  ASSERT_TRUE(std::holds_alternative<Binding>(tls));
  EXPECT_EQ(std::get<Binding>(tls).flow.remote, endpoint("192.0.2.7", 5061));

  Binding natTcp = bindingFor("sip:a@10.0.0.5;transport=tcp", Protocol::tcp, {});
  natTcp.behindNat = true;
  EXPECT_EQ(std::get<DropReason>(decide(natTcp)), DropReason::streamBehindNat);
  EXPECT_EQ(std::get<DropReason>(decide(bindingFor("sip:a@phone.example", Protocol::tcp, {}))),
            DropReason::contactUnreachable);
  EXPECT_EQ(std::get<DropReason>(decide(bindingFor("sip:a@192.0.2.7", Protocol::ws, {}))),
            DropReason::websocket);
  EXPECT_EQ(std::get<DropReason>(decide(bindingFor("sip:a@192.0.2.7", Protocol::wss, {}))),
            DropReason::websocket);
  EXPECT_EQ(std::get<DropReason>(restoredBinding(
                {bindingFor("sip:a@192.0.2.7", Protocol::udp, {}), wallNow}, wallNow, steadyNow)),
            DropReason::expired);
}

// Captures what the persistence logs, for the lines an operator reads.
class LogCapture {
 public:
  LogCapture()
      : previous_(spdlog::default_logger()),
        logger_(std::make_shared<spdlog::logger>(
            "capture", std::make_shared<spdlog::sinks::ostream_sink_st>(text_))) {
    spdlog::set_default_logger(logger_);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  std::string text() const { return text_.str(); }

 private:
  std::ostringstream text_;
  std::shared_ptr<spdlog::logger> previous_;
  std::shared_ptr<spdlog::logger> logger_;
};

TEST_F(PersistenceTest, ACorruptFileIsNamedInTheErrorAndTheStoreServesFromMemory) {
  std::filesystem::create_directories(dir_);
  std::ofstream(file_) << std::string(8192, 'x');
  registrar::InMemoryLocationStore memory;
  LogCapture log;
  BindingPersistence persistence(PersistenceSettings{true, file_, 100ms}, memory, fake_.clocks());
  EXPECT_THAT(log.text(), HasSubstr(file_));
  EXPECT_THAT(log.text(), HasSubstr("file is not a database"));
  EXPECT_THAT(log.text(), HasSubstr("serving from memory only"));
  EXPECT_FALSE(persistence.writing());
  EXPECT_EQ(&persistence.store(), &memory);
  EXPECT_EQ(persistence.counters().writeErrors, 1u);
  EXPECT_EQ(persistence.counters().failing, 1u);
  persistence.store().replace("sip:a@x",
                              {bindingFor("sip:a@192.0.2.1", Protocol::udp, fake_.steady + 60s)});
  EXPECT_EQ(memory.lookup("sip:a@x").size(), 1u);
  std::ifstream check(file_);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(check), {}), std::string(8192, 'x'))
      << "the corrupt file was changed: it is the operator's to look at";
}

TEST_F(PersistenceTest, AnUnopenableFileAndANewerSchemaAreRefusedByName) {
  std::filesystem::create_directories(file_);  // a folder where the file should be
  try {
    BindingDatabase db(file_);
    ADD_FAILURE() << "a folder opened as a database";
  } catch (const DatabaseError& error) {
    EXPECT_THAT(error.what(), HasSubstr(file_ + ": cannot open"));
  }
  std::filesystem::remove(file_);
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(file_.c_str(), &raw), SQLITE_OK);
    sqlite3_exec(raw, "PRAGMA user_version = 7", nullptr, nullptr, nullptr);
    sqlite3_close(raw);
  }
  try {
    BindingDatabase db(file_);
    ADD_FAILURE() << "a newer schema was taken";
  } catch (const DatabaseError& error) {
    EXPECT_THAT(error.what(), HasSubstr("schema version 7"));
  }
}

TEST_F(PersistenceTest, AFailedBatchIsLoggedOnceCountedAndRetried) {
  BindingDatabase db(file_);
  PersistenceCounters counters;
  BindingWriter writer(db, fake_.clocks(), counters);
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(file_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "ALTER TABLE bindings RENAME TO away", nullptr, nullptr, nullptr),
            SQLITE_OK);
  LogCapture log;
  writer.enqueue("sip:a@x", {bindingFor("sip:a@192.0.2.1", Protocol::udp, fake_.steady + 60s)});
  EXPECT_FALSE(writer.writePending());
  EXPECT_FALSE(writer.writePending());
  EXPECT_EQ(counters.writeErrors, 2u);
  EXPECT_EQ(counters.failing, 1u);
  EXPECT_EQ(writer.pendingAors(), 1u);
  EXPECT_THAT(log.text(), HasSubstr(file_));
  EXPECT_EQ(log.text().find("not saved"), log.text().rfind("not saved")) << log.text();

  ASSERT_EQ(sqlite3_exec(other, "ALTER TABLE away RENAME TO bindings", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(other);
  EXPECT_TRUE(writer.writePending());
  EXPECT_EQ(counters.failing, 0u);
  EXPECT_EQ(counters.batchesWritten, 1u);
  EXPECT_THAT(log.text(), HasSubstr("saved to " + file_ + " again"));
  EXPECT_EQ(db.load().size(), 1u);
}

TEST_F(PersistenceTest, AStopWritesTheFinalBatchAndTheNextStartRestoresIt) {
  {
    registrar::InMemoryLocationStore memory;
    // A long interval: only the stop can have written the binding.
    BindingPersistence persistence(PersistenceSettings{true, file_, 10s}, memory, fake_.clocks());
    persistence.store().replace("sip:a@x",
                                {bindingFor("sip:a@192.0.2.1", Protocol::udp, fake_.steady + 60s)});
    persistence.stop();
    EXPECT_EQ(persistence.counters().batchesWritten, 1u);
  }
  registrar::InMemoryLocationStore memory;
  LogCapture log;
  BindingPersistence persistence(PersistenceSettings{true, file_, 10s}, memory, fake_.clocks());
  EXPECT_EQ(memory.lookup("sip:a@x").size(), 1u);
  EXPECT_THAT(log.text(),
              HasSubstr("registrar: restored 1 bindings of 1 AORs from " + file_ + " (0 dropped)"));
}

TEST_F(PersistenceTest, OffMeansMemoryOnlyAndNoFile) {
  registrar::InMemoryLocationStore memory;
  BindingPersistence persistence(PersistenceSettings{false, file_, 100ms}, memory, fake_.clocks());
  EXPECT_EQ(&persistence.store(), &memory);
  EXPECT_FALSE(std::filesystem::exists(file_));
  EXPECT_EQ(persistence.counters().failing, 0u);
}

}  // namespace
}  // namespace waypoint::persistence
