// The WAL-gathering VFS under SqliteConnection: what one connection commits
// is on disk for another at once; transactions bigger than the page cache
// (frames spilled and rewritten before the commit), rollbacks and
// checkpoints leave a sound database.
#include "sql/sqlite_wal_vfs.h"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <filesystem>
#include <string>

#include "base/crypto.h"
#include "sql/sqlite_connection.h"

namespace turnkey::sql {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

class SqliteWalVfsTest : public testing::Test {
 protected:
  SqliteWalVfsTest() : dir_(fs::temp_directory_path() / ("tk-walvfs-" + base::RandomHex(8))) {
    fs::create_directories(dir_);
    path_ = (dir_ / "t.db").string();
  }
  ~SqliteWalVfsTest() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::unique_ptr<SqliteConnection> Open() {
    auto conn = SqliteConnection::Open(path_, seconds(5));
    EXPECT_TRUE(conn.has_value()) << conn.error().message;
    return conn ? std::move(*conn) : nullptr;
  }

  static void Run(SqliteConnection& conn, std::string_view sql) {
    auto done = conn.Exec(sql, {});
    ASSERT_TRUE(done.has_value()) << sql << ": " << done.error().message;
  }

  static int64_t Count(SqliteConnection& conn) {
    auto rows = conn.Exec("SELECT count(*) FROM t", {});
    EXPECT_TRUE(rows.has_value());
    return rows ? std::get<int64_t>(rows->rows.at(0).at(0)) : -1;
  }

  static std::string IntegrityCheck(SqliteConnection& conn) {
    auto rows = conn.Exec("PRAGMA integrity_check", {});
    EXPECT_TRUE(rows.has_value());
    return rows ? std::get<std::string>(rows->rows.at(0).at(0)) : "";
  }

  // Inserts `n` rows of `size` bytes each in one transaction.
  static void InsertRows(SqliteConnection& conn, int n, int size, bool commit = true) {
    ASSERT_TRUE(conn.Begin());
    const std::string payload(static_cast<size_t>(size), 'p');
    for (int i = 0; i < n; ++i) {
      const std::string key = base::RandomHex(8);
      const std::array<Param, 2> params{std::string_view(key), std::string_view(payload)};
      auto inserted = conn.Exec("INSERT INTO t (k, v) VALUES (?, ?)", params);
      ASSERT_TRUE(inserted.has_value()) << inserted.error().message;
    }
    if (commit) {
      ASSERT_TRUE(conn.Commit());
    } else {
      conn.Rollback();
    }
  }

  fs::path dir_;
  std::string path_;
};

TEST_F(SqliteWalVfsTest, RegistersOnce) {
  EXPECT_STREQ(WalBufferVfsName(), WalBufferVfsName());
  EXPECT_NE(WalBufferVfsName(), nullptr);
}

TEST_F(SqliteWalVfsTest, EachCommitIsOnDiskForAnotherConnection) {
  auto writer = Open();
  auto reader = Open();
  ASSERT_TRUE(writer && reader);
  Run(*writer, "CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB)");
  int64_t expected = 0;
  for (int round = 0; round < 20; ++round) {
    InsertRows(*writer, 1 + round * 3, 300 + round * 50);
    expected += 1 + round * 3;
    // The reader has its own file handle: it sees only what was written out.
    EXPECT_EQ(Count(*reader), expected) << "round " << round;
  }
  // And a connection opened afresh, after the writer is gone.
  writer.reset();
  auto later = Open();
  ASSERT_TRUE(later);
  EXPECT_EQ(Count(*later), expected);
  EXPECT_EQ(IntegrityCheck(*later), "ok");
}

TEST_F(SqliteWalVfsTest, TransactionsLargerThanTheCacheCommitAndRollBack) {
  auto writer = Open();
  auto reader = Open();
  ASSERT_TRUE(writer && reader);
  Run(*writer, "CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB)");
  // A tiny cache makes SQLite spill dirty pages to the WAL before the
  // commit and write some of them again later in the same transaction.
  Run(*writer, "PRAGMA cache_size = 8");
  InsertRows(*writer, 3000, 700);
  EXPECT_EQ(Count(*reader), 3000);
  InsertRows(*writer, 3000, 700, /*commit=*/false);
  EXPECT_EQ(Count(*writer), 3000);
  EXPECT_EQ(Count(*reader), 3000);
  InsertRows(*writer, 500, 2000);
  EXPECT_EQ(Count(*reader), 3500);
  EXPECT_EQ(IntegrityCheck(*reader), "ok");
  EXPECT_EQ(IntegrityCheck(*writer), "ok");
}

TEST_F(SqliteWalVfsTest, CheckpointsAndWalRestartsKeepEveryRow) {
  auto writer = Open();
  ASSERT_TRUE(writer);
  Run(*writer, "CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB)");
  Run(*writer, "PRAGMA wal_autocheckpoint = 50");
  int64_t expected = 0;
  for (int round = 0; round < 60; ++round) {
    InsertRows(*writer, 20, 500);
    expected += 20;
    if (round % 15 == 14) {
      // A full checkpoint lets the next commit start the WAL from its beginning.
      Run(*writer, "PRAGMA wal_checkpoint(RESTART)");
    }
  }
  auto reader = Open();
  ASSERT_TRUE(reader);
  EXPECT_EQ(Count(*reader), expected);
  EXPECT_EQ(IntegrityCheck(*reader), "ok");
}

}  // namespace
}  // namespace turnkey::sql
