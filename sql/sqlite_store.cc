#include "sql/sqlite_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "base/log.h"
#include "sql/sqlite_connection.h"
#include "sql/sqlite_database.h"

namespace turnkey::sql {

namespace {

class SqliteDatabase final : public Database {
 public:
  // `writer` may be null: then `readers` (one) runs the writes too.
  SqliteDatabase(std::unique_ptr<SqliteConnection> writer,
                 std::vector<std::unique_ptr<SqliteConnection>> readers,
                 std::chrono::milliseconds acquire_timeout)
      : writer_(std::move(writer)), idle_(std::move(readers)), acquire_timeout_(acquire_timeout) {}

  Dialect dialect() const override { return Dialect::kSqlite; }

  base::Status Run(const OpOptions& options, const Op& op) override {
    // Writers queue here rather than in SQLite's busy handler, which polls.
    std::unique_lock<std::mutex> write_lock;
    if (options.kind != OpKind::kRead) {
      write_lock = std::unique_lock<std::mutex>(write_mutex_);
      if (writer_) {
        return RunOn(*writer_, options, op);
      }
    }
    auto conn = Acquire();
    if (!conn) {
      return std::unexpected(conn.error());
    }
    base::Status status = RunOn(**conn, options, op);
    Release(std::move(*conn));
    return status;
  }

 private:
  static base::Status RunOn(SqliteConnection& conn, const OpOptions& options, const Op& op) {
    if (options.kind != OpKind::kWrite) {
      return op(conn);
    }
    if (auto begun = conn.Begin(); !begun) {
      return begun;
    }
    base::Status status = op(conn);
    if (!status) {
      conn.Rollback();
      return status;
    }
    return conn.Commit();
  }

  base::Result<std::unique_ptr<SqliteConnection>> Acquire() {
    std::unique_lock<std::mutex> lock(pool_mutex_);
    if (!available_.wait_for(lock, acquire_timeout_, [this] { return !idle_.empty(); })) {
      return base::MakeError(base::ErrorCode::kResourceExhausted,
                             "sqlite: no free connection in time");
    }
    auto conn = std::move(idle_.back());
    idle_.pop_back();
    return conn;
  }

  void Release(std::unique_ptr<SqliteConnection> conn) {
    {
      std::lock_guard<std::mutex> lock(pool_mutex_);
      idle_.push_back(std::move(conn));
    }
    available_.notify_one();
  }

  std::mutex write_mutex_;
  std::unique_ptr<SqliteConnection> writer_;  // used under write_mutex_; see sqlite_database.h
  std::mutex pool_mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<SqliteConnection>> idle_;  // guarded by pool_mutex_
  const std::chrono::milliseconds acquire_timeout_;
};

// The file holds password and token hashes: create it readable by its owner
// only. SQLite gives the -wal and -shm files the mode of the database file.
base::Status CreatePrivateFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ::close(fd);
    return base::Ok();
  }
  if (errno == EEXIST) {
    return base::Ok();
  }
  return base::Unavailable(fmt::format("sqlite: cannot create {}: {}", path, std::strerror(errno)));
}

}  // namespace

base::Result<std::unique_ptr<Database>> MakeSqliteDatabase(
    std::vector<std::unique_ptr<SqliteConnection>> connections,
    std::chrono::milliseconds acquire_timeout) {
  std::unique_ptr<SqliteConnection> writer;
  if (connections.size() >= 2) {
    writer = std::move(connections.front());
    connections.erase(connections.begin());
    // What writes change again and again: the call history index's last
    // leaf of each user who called lately, and the pages above them. In the
    // signaling bench's closed loop (554 users, a 786 MB database) SQLite's
    // default of 2 MiB read about one page per call back from the file;
    // 32 MiB read none. The cache grows only as it is used.
    if (auto sized = writer->Exec("PRAGMA cache_size = -32768", {}); !sized) {
      return std::unexpected(sized.error());
    }
  }
  return std::make_unique<SqliteDatabase>(std::move(writer), std::move(connections),
                                          acquire_timeout);
}

base::Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(
    const SqliteStoreOptions& options, std::span<const Migration> migrations) {
  if (options.path.empty()) {
    return base::InvalidArgument("sqlite.path: required");
  }
  if (options.pool_size < 1 || options.pool_size > 64) {
    return base::InvalidArgument("sqlite pool_size: must be 1-64");
  }
  // Each connection to ":memory:" would be a database of its own.
  const bool in_memory = options.path == ":memory:";
  const int pool_size = in_memory ? 1 : options.pool_size;
  if (!in_memory) {
    if (auto created = CreatePrivateFile(options.path); !created) {
      return std::unexpected(created.error());
    }
  }
  std::vector<std::unique_ptr<SqliteConnection>> connections;
  for (int i = 0; i < pool_size; ++i) {
    auto conn = SqliteConnection::Open(options.path, options.busy_timeout);
    if (!conn) {
      return std::unexpected(conn.error());
    }
    connections.push_back(std::move(*conn));
  }
  auto db = MakeSqliteDatabase(std::move(connections), options.acquire_timeout);
  if (!db) {
    return std::unexpected(db.error());
  }
  return std::unique_ptr<SqliteStore>(
      new SqliteStore(std::move(*db), migrations, in_memory ? "" : options.path));
}

SqliteStore::SqliteStore(std::unique_ptr<Database> db, std::span<const Migration> migrations,
                         std::string path)
    : SqlStore(std::move(db), migrations), path_(std::move(path)) {
  struct stat st {};
  if (!path_.empty() && ::stat(path_.c_str(), &st) == 0) {
    device_ = st.st_dev;
    inode_ = st.st_ino;
  }
  // The connections are open in WAL mode, so the -wal file exists.
  if (!path_.empty() && ::stat((path_ + "-wal").c_str(), &st) == 0) {
    wal_device_ = st.st_dev;
    wal_inode_ = st.st_ino;
  }
}

SqliteStore::~SqliteStore() {
  CloseDatabase();
  if (path_.empty() || inode_ == 0 || wal_inode_ == 0) {
    return;
  }
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0 || (st.st_dev == device_ && st.st_ino == inode_)) {
    // Still ours (SQLite closed it as usual), or moved away and nothing in
    // its place: its WAL stays with its name, for a move back.
    return;
  }
  // Another file is at the path (a restore). The old file's WAL, still at
  // the path with frames SQLite could not check back in, would be taken for
  // the new file's at the next open.
  const std::string wal = path_ + "-wal";
  if (::stat(wal.c_str(), &st) != 0 || st.st_dev != wal_device_ || st.st_ino != wal_inode_) {
    return;  // not the one we wrote: it came with the new file
  }
  for (const std::string& file : {wal, path_ + "-shm"}) {
    if (::unlink(file.c_str()) != 0 && errno != ENOENT) {
      TK_LOG_ERROR(
          "sqlite: cannot remove {} of the replaced database file: {}; remove it "
          "before the next start, or SQLite replays it into the file now at {}",
          file, std::strerror(errno), path_);
      return;
    }
  }
  TK_LOG_WARN(
      "sqlite: {} was replaced while open; removed the old file's -wal and -shm (what "
      "was written since the replacement is not in the new file)",
      path_);
}

base::Status SqliteStore::Ping() {
  if (base::Status ping = SqlStore::Ping(); !ping) {
    return ping;
  }
  if (path_.empty() || inode_ == 0) {
    return base::Ok();
  }
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) {
    return base::Unavailable(fmt::format(
        "sqlite: {}: the database file is gone (deleted or moved while open); what is written "
        "now is lost at the next start",
        path_));
  }
  if (st.st_dev != device_ || st.st_ino != inode_) {
    return base::Unavailable(fmt::format(
        "sqlite: {}: another file is at the database's path (replaced while open); restart "
        "turnkey to use it",
        path_));
  }
  return base::Ok();
}

}  // namespace turnkey::sql
