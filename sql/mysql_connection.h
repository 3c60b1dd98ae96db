// MysqlConnection: one libmysqlclient (MariaDB Connector/C) session, used
// only through prepared statements (mysql_stmt_*), cached by SQL text.
// Internal to sql/ (MysqlStore's pool owns these). Not thread-safe: one
// thread at a time.
//
// There is no automatic reconnect (MYSQL_OPT_RECONNECT stays off: a silent
// reconnect loses session state and transactions). After a lost-connection
// error lost() is true and the pool replaces the connection; statements are
// prepared again on the new one.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "sql/database.h"
#include "sql/mysql_options.h"

struct st_mysql;
struct st_mysql_stmt;

namespace turnkey::sql {

class MysqlConnection final : public Connection {
 public:
  // Connects with utf8mb4, the timeouts of `options`, CLIENT_FOUND_ROWS (so
  // affected rows count matched rows, as SQLite does), LOCAL INFILE off, and
  // sets the session to strict SQL mode and READ COMMITTED. A server that
  // refuses the account or the database gives kPermissionDenied; one that
  // cannot be reached, kUnavailable.
  static base::Result<std::unique_ptr<MysqlConnection>> Connect(const MysqlStoreOptions& options);
  ~MysqlConnection() override;
  MysqlConnection(const MysqlConnection&) = delete;
  MysqlConnection& operator=(const MysqlConnection&) = delete;

  base::Result<ExecResult> Exec(std::string_view sql, std::span<const Param> params) override;
  base::Status Begin() override;
  base::Status Commit() override;
  void Rollback() override;

  // What the last operation met, for the pool's retry decision.
  void ResetAttempt();
  // The session is gone (2006/2013 and kin): discard this connection.
  bool lost() const { return !lost_error_.empty(); }
  // The error that lost it (with the client's own words: a read timeout
  // reads "Lost connection to server during query"), for the log.
  const std::string& lost_error() const { return lost_error_; }
  // The server rolled the whole transaction back (deadlock): safe to rerun.
  bool rolled_back() const { return rolled_back_; }
  // COMMIT was sent in this attempt: if the connection was lost after that,
  // the transaction may or may not have committed.
  bool commit_sent() const { return commit_sent_; }

 private:
  explicit MysqlConnection(st_mysql* mysql) : mysql_(mysql) {}
  base::Result<st_mysql_stmt*> Prepare(std::string_view sql);
  base::Result<ExecResult> Execute(st_mysql_stmt* stmt, std::span<const Param> params);
  void Forget(std::string_view sql);
  // Ok if the session reads and writes utf8mb4 (see Connect).
  base::Status CheckSessionCharset();
  // Classifies a client or server error, updating lost_error_ / rolled_back_.
  base::Error Fail(unsigned int code, const char* text, std::string_view what);
  base::Error StmtFail(st_mysql_stmt* stmt, std::string_view what);

  st_mysql* mysql_;
  std::unordered_map<std::string, st_mysql_stmt*> statements_;  // owned
  std::string lost_error_;                                      // non-empty once lost
  bool rolled_back_ = false;
  bool commit_sent_ = false;
  bool need_reprepare_ = false;
};

}  // namespace turnkey::sql
