// SqliteStore: the Store on an SQLite 3 file (the embedded default).
//
// Threads: any number of threads may call it. It keeps a small pool of
// connections to the file: reads run in parallel on WAL snapshots, writes
// are serialized by a mutex in this process (SQLite allows one writer) and by
// SQLite's lock against other processes (busy_timeout), and run on one
// connection of their own (with a larger page cache) so that what one write
// cached is still there for the next. A connection is used by one thread at
// a time.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <span>
#include <string>

#include "base/status.h"
#include "sql/migrations.h"
#include "sql/sql_store.h"

namespace turnkey::sql {

struct SqliteStoreOptions {
  // The database file, created mode 0600 if missing (its directory must
  // exist). The
  // app joins a relative config path with state_dir. ":memory:" gives a
  // private in-memory database (tests; pool_size is then 1).
  std::string path = "turnkey.db";
  // Connections kept open, 1-64. Default 4. With two or more, one of them
  // runs every write and the others the reads; a single one runs both.
  int pool_size = 4;
  // How long a statement waits for another process's lock before failing
  // with kUnavailable. Default 5 s.
  std::chrono::milliseconds busy_timeout{5000};
  // How long a call waits for a free connection before kResourceExhausted.
  // Default 10 s.
  std::chrono::milliseconds acquire_timeout{10000};
};

class SqliteStore final : public SqlStore {
 public:
  // Opens the file and checks it can be used (WAL); does not migrate.
  // `migrations` defaults to the embedded ones (tests pass others).
  static base::Result<std::unique_ptr<SqliteStore>> Open(
      const SqliteStoreOptions& options,
      std::span<const Migration> migrations = EmbeddedMigrations(Dialect::kSqlite));

  // SqlStore::Ping, and kUnavailable once the file at `path` is not the
  // one open (deleted, or replaced by a restore): writes would go on into
  // an unlinked file and be gone at the next start.
  base::Status Ping() override;

  // Closes the connections. When another file is at `path` by then (a
  // restore while turnkey ran), the -wal and -shm files there are the
  // replaced database's and are removed: SQLite would replay that WAL into
  // the restored file at the next open and corrupt it. (A file copied over
  // the open one keeps its inode and is not told apart.)
  ~SqliteStore() override;

 private:
  SqliteStore(std::unique_ptr<Database> db, std::span<const Migration> migrations,
              std::string path);

  std::string path_;  // empty for ":memory:"
  dev_t device_ = 0;  // of the file opened
  ino_t inode_ = 0;
  dev_t wal_device_ = 0;  // of its -wal file, as opened
  ino_t wal_inode_ = 0;
};

}  // namespace turnkey::sql
