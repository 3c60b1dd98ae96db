#include "sql/sqlite_connection.h"

#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>

#include "sql/sqlite_wal_vfs.h"

namespace turnkey::sql {

namespace {

// Deletes a statement that failed to make it into the cache.
struct StatementCloser {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};

}  // namespace

// SQLite's own message for these is a bare "unable to open database file" or
// "attempt to write a readonly database" (even when the file is writable and
// its directory is not).
std::string SqlitePathProblem(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      return "it is a directory";
    }
    if (::access(path.c_str(), R_OK | W_OK) != 0) {
      return fmt::format("cannot read and write it: {}", std::strerror(errno));
    }
  }
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) {
    dir = ".";
  }
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    return fmt::format(
        "its directory {} is not writable ({}); SQLite creates {}-wal and {}-shm there", dir,
        std::strerror(errno), path, path);
  }
  return {};
}

base::Result<std::unique_ptr<SqliteConnection>> SqliteConnection::Open(
    const std::string& path, std::chrono::milliseconds busy_timeout) {
  if (sqlite3_threadsafe() == 0) {
    return base::Internal("sqlite: the library was built without thread support");
  }
  sqlite3* db = nullptr;
  // NOMUTEX: the pool hands a connection to one thread at a time, so
  // SQLite's own per-connection mutex would only cost time.
  // The WAL-gathering VFS relies on synchronous=FULL, set below
  // (sql/sqlite_wal_vfs.h).
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           WalBufferVfsName());
  if (rc != SQLITE_OK) {
    std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    if (std::string problem = SqlitePathProblem(path); !problem.empty()) {
      message = std::move(problem);
    }
    return base::Unavailable(fmt::format("sqlite: cannot open {}: {}", path, message));
  }
  std::unique_ptr<SqliteConnection> conn(new SqliteConnection(db));
  // SQLite opens a file it may not write read-only, without a word; every
  // write would then fail while the server looks ready.
  if (sqlite3_db_readonly(db, "main") == 1) {
    std::string problem = SqlitePathProblem(path);
    return base::Unavailable(fmt::format("sqlite: cannot write {}: {}", path,
                                         problem.empty() ? "opened read-only" : problem));
  }
  sqlite3_extended_result_codes(db, 1);
  int timeout_ms =
      busy_timeout.count() > INT_MAX ? INT_MAX : static_cast<int>(busy_timeout.count());
  sqlite3_busy_timeout(db, timeout_ms);

  auto journal = conn->Exec("PRAGMA journal_mode = WAL", {});
  if (!journal) {
    if (std::string problem = SqlitePathProblem(path); !problem.empty()) {
      return base::Unavailable(fmt::format("sqlite: cannot use {}: {}", path, problem));
    }
    return std::unexpected(journal.error());
  }
  // An in-memory database answers "memory"; anything else means WAL is off.
  bool wal = !journal->rows.empty() && std::holds_alternative<std::string>(journal->rows[0][0]) &&
             (std::get<std::string>(journal->rows[0][0]) == "wal" ||
              std::get<std::string>(journal->rows[0][0]) == "memory");
  if (!wal) {
    return base::Unavailable(fmt::format("sqlite: {}: cannot switch to WAL journal mode", path));
  }
  // FULL: in WAL mode NORMAL may lose the last commits on power loss; an
  // acknowledged write must survive (DESIGN.md section 6). The VFS also
  // needs it: a commit's sync writes out the frames it gathered.
  //
  // wal_autocheckpoint: a checkpoint copies every page the WAL holds into the
  // database file and syncs it. The call history's index pages are written
  // again and again (each call adds to both participants' ranges), so
  // checkpointing every 10000 pages (up to 40 MB of WAL at 4 KiB pages)
  // instead of SQLite's 1000 copies each such page once where it was copied
  // ten times: 17% less CPU on the history writers at 1,000 calls/s
  // (bench/README.md).
  for (std::string_view pragma : {"PRAGMA synchronous = FULL", "PRAGMA foreign_keys = ON",
                                  "PRAGMA wal_autocheckpoint = 10000"}) {
    if (auto ok = conn->Exec(pragma, {}); !ok) {
      return std::unexpected(ok.error());
    }
  }
  return conn;
}

SqliteConnection::~SqliteConnection() {
  for (auto& [sql, stmt] : statements_) {
    sqlite3_finalize(stmt);
  }
  sqlite3_close_v2(db_);
}

base::Error SqliteConnection::LastError(int code, std::string_view what) const {
  std::string message = fmt::format("sqlite: {}: {}", what, sqlite3_errmsg(db_));
  switch (code & 0xFF) {
    case SQLITE_CONSTRAINT:
      // The message names table.column, never the value.
      if (code == SQLITE_CONSTRAINT_UNIQUE || code == SQLITE_CONSTRAINT_PRIMARYKEY) {
        return {base::ErrorCode::kAlreadyExists, std::move(message)};
      }
      if (code == SQLITE_CONSTRAINT_FOREIGNKEY) {
        return {base::ErrorCode::kNotFound, std::move(message)};
      }
      return {base::ErrorCode::kInternal, std::move(message)};
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
      return {base::ErrorCode::kUnavailable, std::move(message)};
    default:
      return {base::ErrorCode::kInternal, std::move(message)};
  }
}

base::Result<sqlite3_stmt*> SqliteConnection::Prepare(std::string_view sql) {
  auto it = statements_.find(std::string(sql));
  if (it != statements_.end()) {
    return it->second;
  }
  if (sql.size() > INT_MAX) {
    return base::Internal("sqlite: statement too long");
  }
  sqlite3_stmt* raw = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &raw, &tail);
  std::unique_ptr<sqlite3_stmt, StatementCloser> stmt(raw);
  if (rc != SQLITE_OK) {
    return std::unexpected(LastError(rc, "prepare"));
  }
  if (stmt == nullptr) {
    return base::Internal("sqlite: empty statement");
  }
  if (tail != nullptr && tail != sql.data() + sql.size()) {
    for (const char* p = tail; p != sql.data() + sql.size(); ++p) {
      if (*p != ' ' && *p != '\n' && *p != '\t' && *p != '\r') {
        return base::Internal("sqlite: more than one statement in one Exec");
      }
    }
  }
  sqlite3_stmt* cached = stmt.release();
  statements_.emplace(std::string(sql), cached);
  return cached;
}

base::Result<ExecResult> SqliteConnection::Exec(std::string_view sql,
                                                std::span<const Param> params) {
  auto prepared = Prepare(sql);
  if (!prepared) {
    return std::unexpected(prepared.error());
  }
  sqlite3_stmt* stmt = *prepared;
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  if (static_cast<size_t>(sqlite3_bind_parameter_count(stmt)) != params.size()) {
    return base::Internal(fmt::format("sqlite: statement has {} placeholders, {} given",
                                      sqlite3_bind_parameter_count(stmt), params.size()));
  }
  for (size_t i = 0; i < params.size(); ++i) {
    int index = static_cast<int>(i) + 1;
    int rc = SQLITE_OK;
    if (const auto* n = std::get_if<int64_t>(&params[i])) {
      rc = sqlite3_bind_int64(stmt, index, *n);
    } else if (const auto* text = std::get_if<std::string_view>(&params[i])) {
      // SQLITE_STATIC: the view outlives this call, and the statement is
      // reset before we return.
      // A null data pointer would bind NULL instead of an empty string.
      const char* data = text->data() != nullptr ? text->data() : "";
      rc = sqlite3_bind_text64(stmt, index, data, text->size(), SQLITE_STATIC, SQLITE_UTF8);
    } else {
      rc = sqlite3_bind_null(stmt, index);
    }
    if (rc != SQLITE_OK) {
      sqlite3_clear_bindings(stmt);
      return std::unexpected(LastError(rc, "bind"));
    }
  }

  ExecResult result;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    int columns = sqlite3_column_count(stmt);
    Row row;
    row.reserve(static_cast<size_t>(columns));
    for (int c = 0; c < columns; ++c) {
      switch (sqlite3_column_type(stmt, c)) {
        case SQLITE_NULL:
          row.emplace_back(nullptr);
          break;
        case SQLITE_INTEGER:
          row.emplace_back(static_cast<int64_t>(sqlite3_column_int64(stmt, c)));
          break;
        default: {
          const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, c));
          int bytes = sqlite3_column_bytes(stmt, c);
          row.emplace_back(std::string(text != nullptr ? text : "", static_cast<size_t>(bytes)));
          break;
        }
      }
    }
    result.rows.push_back(std::move(row));
  }
  if (rc != SQLITE_DONE) {
    base::Error error = LastError(sqlite3_extended_errcode(db_), "step");
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return std::unexpected(std::move(error));
  }
  if (sqlite3_stmt_readonly(stmt) == 0) {
    result.affected_rows = sqlite3_changes64(db_);
  }
  // Releases the statement's read snapshot and the bound views.
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  return result;
}

base::Status SqliteConnection::Begin() {
  auto ok = Exec("BEGIN IMMEDIATE", {});
  return ok ? base::Ok() : base::Status(std::unexpected(ok.error()));
}

base::Status SqliteConnection::Commit() {
  auto ok = Exec("COMMIT", {});
  if (!ok) {
    // A failed COMMIT leaves the transaction open (e.g. SQLITE_BUSY).
    Rollback();
    return std::unexpected(ok.error());
  }
  return base::Ok();
}

void SqliteConnection::Rollback() {
  if (sqlite3_get_autocommit(db_) == 0) {
    (void)Exec("ROLLBACK", {});
  }
}

}  // namespace turnkey::sql
