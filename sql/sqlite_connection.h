// SqliteConnection: one sqlite3 database handle with its prepared statements
// cached by SQL text. Internal to sql/ (SqliteStore's pool owns these).
// Not thread-safe: one thread at a time (it is opened SQLITE_OPEN_NOMUTEX).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "sql/database.h"

struct sqlite3;
struct sqlite3_stmt;

namespace turnkey::sql {

// Why `path` cannot be used for a writable WAL database, as far as the file
// system tells (a directory, a file this user cannot read and write, a
// directory it cannot create the -wal and -shm files in); "" if it sees no
// reason. For open errors, and for check-config.
std::string SqlitePathProblem(const std::string& path);

class SqliteConnection final : public Connection {
 public:
  // Opens (creating if missing) the database at `path` and sets it up: WAL
  // journal (which persists in the file), synchronous=FULL, foreign keys on,
  // `busy_timeout` for locks held by other processes.
  static base::Result<std::unique_ptr<SqliteConnection>> Open(
      const std::string& path, std::chrono::milliseconds busy_timeout);
  ~SqliteConnection() override;
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;

  base::Result<ExecResult> Exec(std::string_view sql, std::span<const Param> params) override;
  // BEGIN IMMEDIATE: takes the write lock up front, so a transaction never
  // fails half way trying to upgrade a read lock.
  base::Status Begin() override;
  base::Status Commit() override;
  void Rollback() override;

 private:
  explicit SqliteConnection(sqlite3* db) : db_(db) {}
  base::Result<sqlite3_stmt*> Prepare(std::string_view sql);
  base::Error LastError(int code, std::string_view what) const;

  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> statements_;  // owned
};

}  // namespace turnkey::sql
