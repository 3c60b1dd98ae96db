// SQLite-only behaviour; the shared behaviour is in store_test_suite.h.
#include "sql/sqlite_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/crypto.h"
#include "sql/call_queries.h"
#include "sql/query_util.h"
#include "sql/sqlite_connection.h"
#include "sql/sqlite_database.h"

namespace turnkey::sql {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() : path_(fs::temp_directory_path() / ("tk-sqlite-" + base::RandomHex(8))) {
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

NewUser MakeUser(const std::string& handle) {
  return {.email = handle + "@x", .handle = handle, .password_hash = "h", .now_ms = 1};
}

TEST(SqliteStoreTest, CreatesAPrivateWalDatabase) {
  TempDir dir;
  const std::string path = dir.File("turnkey.db");
  auto store = SqliteStore::Open({.path = path});
  ASSERT_TRUE(store) << store.error().message;
  ASSERT_TRUE((*store)->Migrate());
  ASSERT_TRUE((*store)->CreateUser(MakeUser("alice")));

  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // WAL mode: commits go to the -wal file, which inherits the mode.
  ASSERT_TRUE(fs::exists(path + "-wal"));
  ASSERT_EQ(::stat((path + "-wal").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(SqliteStoreTest, ConnectionsSyncFullyAndCheckpointEvery10000Pages) {
  TempDir dir;
  auto conn = SqliteConnection::Open(dir.File("turnkey.db"), std::chrono::seconds(5));
  ASSERT_TRUE(conn) << conn.error().message;
  auto pragma = [&](std::string_view sql) -> int64_t {
    auto result = (*conn)->Exec(sql, {});
    EXPECT_TRUE(result) << result.error().message;
    return result && !result->rows.empty() ? std::get<int64_t>(result->rows[0][0]) : -1;
  };
  EXPECT_EQ(pragma("PRAGMA synchronous"), 2);  // FULL
  EXPECT_EQ(pragma("PRAGMA foreign_keys"), 1);
  EXPECT_EQ(pragma("PRAGMA wal_autocheckpoint"), 10000);
}

TEST(SqliteStoreTest, DataSurvivesReopening) {
  TempDir dir;
  const std::string path = dir.File("turnkey.db");
  std::string id;
  {
    auto store = SqliteStore::Open({.path = path});
    ASSERT_TRUE(store);
    ASSERT_TRUE((*store)->Migrate());
    auto user = (*store)->CreateUser(MakeUser("alice"));
    ASSERT_TRUE(user);
    id = user->id;
  }
  auto store = SqliteStore::Open({.path = path});
  ASSERT_TRUE(store);
  EXPECT_TRUE((*store)->CheckSchema());
  EXPECT_EQ((*store)->GetUserById(id)->handle, "alice");
}

TEST(SqliteStoreTest, InMemoryDatabaseWorksWithOneConnection) {
  auto store = SqliteStore::Open({.path = ":memory:", .pool_size = 8});
  ASSERT_TRUE(store) << store.error().message;
  ASSERT_TRUE((*store)->Migrate());
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back(
        [&store, i] { EXPECT_TRUE((*store)->CreateUser(MakeUser("user" + std::to_string(i)))); });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  EXPECT_EQ((*store)->SearchUsersByHandlePrefix("user", "", 10)->size(), 4u);
}

// SQLite keeps no memory statistics: they cost a global mutex on every
// allocation, from every thread, and nothing reads them.
TEST(SqliteStoreTest, SqliteKeepsNoMemoryStatistics) {
  TempDir dir;
  auto conn = SqliteConnection::Open(dir.File("t.db"), std::chrono::seconds(5));
  ASSERT_TRUE(conn) << conn.error().message;
  ASSERT_TRUE((*conn)->Exec("CREATE TABLE t (s TEXT)", {}));
  for (int i = 0; i < 100; ++i) {
    const Param text = std::string_view("some text to allocate for");
    ASSERT_TRUE((*conn)->Exec("INSERT INTO t (s) VALUES (?)", {&text, 1}));
  }
  EXPECT_EQ(sqlite3_memory_highwater(0), 0);
}

// A TEMP table lives on the connection that made it: writes that see one
// made by an earlier write ran on the same connection, and reads (on the
// others) do not see it.
TEST(SqliteStoreTest, EveryWriteRunsOnOneConnectionAndReadsOnTheOthers) {
  TempDir dir;
  std::vector<std::unique_ptr<SqliteConnection>> connections;
  for (int i = 0; i < 3; ++i) {
    auto conn = SqliteConnection::Open(dir.File("t.db"), std::chrono::seconds(5));
    ASSERT_TRUE(conn) << conn.error().message;
    connections.push_back(std::move(*conn));
  }
  auto made = MakeSqliteDatabase(std::move(connections), std::chrono::seconds(5));
  ASSERT_TRUE(made) << made.error().message;
  std::unique_ptr<Database>& db = *made;
  const OpOptions write{.kind = OpKind::kWrite};
  const OpOptions read{.kind = OpKind::kRead};
  const OpOptions session{.kind = OpKind::kSession};
  ASSERT_TRUE(db->Run(session, [](Connection& conn) -> base::Status {
    auto made = conn.Exec("CREATE TEMP TABLE mine (n INTEGER)", {});
    return made ? base::Ok() : base::Status(ErrorOf(made));
  }));
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&db, &write, &read, i] {
      for (int j = 0; j < 20; ++j) {
        EXPECT_TRUE(db->Run(write, [&](Connection& conn) -> base::Status {
          const Param n = int64_t{i * 100 + j};
          auto inserted = conn.Exec("INSERT INTO temp.mine (n) VALUES (?)", {&n, 1});
          return inserted ? base::Ok() : base::Status(ErrorOf(inserted));
        }));
        EXPECT_TRUE(db->Run(read, [](Connection& conn) -> base::Status {
          auto seen = conn.Exec("SELECT count(*) FROM temp.mine", {});
          EXPECT_FALSE(seen) << "a read ran on the writing connection";
          return base::Ok();
        }));
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  ASSERT_TRUE(db->Run(write, [](Connection& conn) -> base::Status {
    auto count = conn.Exec("SELECT count(*) FROM temp.mine", {});
    EXPECT_TRUE(count && count->rows.size() == 1 && count->rows[0][0] == Cell(int64_t{80}));
    return base::Ok();
  }));
  // The writer alone has the larger page cache (in KiB when negative).
  auto cache_size = [&](const OpOptions& kind) {
    int64_t size = 0;
    EXPECT_TRUE(db->Run(kind, [&](Connection& conn) -> base::Status {
      auto got = conn.Exec("PRAGMA cache_size", {});
      if (!got) {
        return base::Status(ErrorOf(got));
      }
      EXPECT_EQ(got->rows.size(), 1u);
      size = got->rows.empty() ? 0 : std::get<int64_t>(got->rows[0][0]);
      return base::Ok();
    }));
    return size;
  };
  EXPECT_EQ(cache_size(session), -32768);
  EXPECT_NE(cache_size(read), -32768);
}

// Every start ends the calls left ringing or active. That must not read the
// whole calls table: SQLite's plan goes through the calls_unfinished index.
TEST(SqliteStoreTest, EndingUnfinishedCallsUsesTheirIndex) {
  TempDir dir;
  const std::string path = dir.File("turnkey.db");
  auto store = SqliteStore::Open({.path = path});
  ASSERT_TRUE(store) << store.error().message;
  ASSERT_TRUE((*store)->Migrate());
  auto conn = SqliteConnection::Open(path, std::chrono::seconds(5));
  ASSERT_TRUE(conn) << conn.error().message;
  const std::array<Param, 5> params{"missed", "server_restart", "ringing", int64_t{1}, ""};
  auto plan = (*conn)->Exec("EXPLAIN QUERY PLAN " + std::string(kEndUnfinishedCallsSql), params);
  ASSERT_TRUE(plan) << plan.error().message;
  std::string details;
  for (const Row& row : plan->rows) {
    details += std::get<std::string>(row.back()) + "\n";
  }
  EXPECT_NE(details.find("USING INDEX calls_unfinished"), std::string::npos) << details;
  EXPECT_EQ(details.find("SCAN"), std::string::npos) << details;
}

// /readyz asks Ping. A file deleted or replaced while open would take every
// later write with it at the next start: Ping says so.
TEST(SqliteStoreTest, PingFailsOnceTheFileIsDeletedOrReplaced) {
  TempDir dir;
  const std::string path = dir.File("turnkey.db");
  auto store = SqliteStore::Open({.path = path});
  ASSERT_TRUE(store);
  ASSERT_TRUE((*store)->Migrate());
  EXPECT_TRUE((*store)->Ping());
  fs::rename(path, dir.File("moved.db"));
  auto gone = (*store)->Ping();
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, base::ErrorCode::kUnavailable);
  EXPECT_NE(gone.error().message.find("is gone"), std::string::npos) << gone.error().message;
  {
    auto other = SqliteStore::Open({.path = path});  // a restored backup, say
    ASSERT_TRUE(other);
  }
  auto replaced = (*store)->Ping();
  ASSERT_FALSE(replaced);
  EXPECT_NE(replaced.error().message.find("replaced"), std::string::npos)
      << replaced.error().message;
}

// A backup restored over the file while turnkey runs: at the stop, the old
// file's WAL must not stay next to it, or the next open replays it into the
// restored file (a malformed database, or the restore undone).
TEST(SqliteStoreTest, AFileRestoredWhileOpenIsNotGivenTheOldWal) {
  TempDir dir;
  const std::string path = dir.File("turnkey.db");
  const std::string backup = dir.File("backup.db");
  {
    auto store = SqliteStore::Open({.path = path});
    ASSERT_TRUE(store);
    ASSERT_TRUE((*store)->Migrate());
    ASSERT_TRUE((*store)->CreateUser(MakeUser("alice")));
  }
  fs::copy_file(path, backup);
  {
    auto store = SqliteStore::Open({.path = path});
    ASSERT_TRUE(store);
    for (int i = 0; i < 300; ++i) {
      ASSERT_TRUE((*store)->CreateUser(MakeUser("later" + std::to_string(i))));
    }
    ASSERT_GT(fs::file_size(path + "-wal"), 0u);
    fs::rename(backup, path);
  }
  EXPECT_FALSE(fs::exists(path + "-wal"));
  EXPECT_FALSE(fs::exists(path + "-shm"));
  {
    auto conn = SqliteConnection::Open(path, std::chrono::seconds(5));
    ASSERT_TRUE(conn) << conn.error().message;
    auto check = (*conn)->Exec("PRAGMA integrity_check", {});
    ASSERT_TRUE(check) << check.error().message;
    ASSERT_FALSE(check->rows.empty());
    EXPECT_EQ(std::get<std::string>(check->rows[0][0]), "ok");
  }
  auto store = SqliteStore::Open({.path = path});
  ASSERT_TRUE(store);
  EXPECT_TRUE((*store)->GetUserByHandle("alice"));
  EXPECT_EQ((*store)->GetUserByHandle("later0").error().code, base::ErrorCode::kNotFound);
}

// Reads alone (SELECT 1) do not see a lock held by another process or a full
// disk; a write that could not be made does, until a write gets through.
TEST(SqliteStoreTest, PingFailsWhileWritesFail) {
  TempDir dir;
  const std::string path = dir.File("turnkey.db");
  auto store = SqliteStore::Open({.path = path, .busy_timeout = std::chrono::milliseconds(50)});
  ASSERT_TRUE(store);
  ASSERT_TRUE((*store)->Migrate());
  auto other = SqliteConnection::Open(path, std::chrono::milliseconds(50));
  ASSERT_TRUE(other);
  ASSERT_TRUE((*other)->Exec("BEGIN EXCLUSIVE", {}));
  auto refused = (*store)->CreateUser(MakeUser("alice"));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, base::ErrorCode::kUnavailable);
  auto ping = (*store)->Ping();
  ASSERT_FALSE(ping);
  EXPECT_NE(ping.error().message.find("writes fail"), std::string::npos) << ping.error().message;
  ASSERT_TRUE((*other)->Exec("COMMIT", {}));
  EXPECT_FALSE((*store)->Ping());  // nothing written since
  ASSERT_TRUE((*store)->CreateUser(MakeUser("alice")));
  EXPECT_TRUE((*store)->Ping());
}

TEST(SqliteStoreTest, RefusesBadOptions) {
  EXPECT_EQ(SqliteStore::Open({.path = ""}).error().code, base::ErrorCode::kInvalidArgument);
  EXPECT_EQ(SqliteStore::Open({.path = ":memory:", .pool_size = 0}).error().code,
            base::ErrorCode::kInvalidArgument);
  auto missing_dir = SqliteStore::Open({.path = "/nonexistent-dir/turnkey.db"});
  ASSERT_FALSE(missing_dir);
  EXPECT_EQ(missing_dir.error().code, base::ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace turnkey::sql
