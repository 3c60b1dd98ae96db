// Backends for the store tests: each gives a test a fresh, empty database and
// opens SqlStores on it. The typed suite in store_test.h runs the same tests
// with identical expectations on both.
#pragma once

#include <map>
#include <memory>
#include <span>
#include <string>

#include "base/status.h"
#include "sql/migrations.h"
#include "sql/mysql_options.h"
#include "sql/sql_store.h"

namespace turnkey::sql::testing {

// A fresh SQLite file in a temporary directory, removed with the backend.
class SqliteBackend {
 public:
  static constexpr Dialect kDialect = Dialect::kSqlite;
  SqliteBackend();
  ~SqliteBackend();
  // Empty if the database was set up; otherwise why not.
  const std::string& setup_error() const { return setup_error_; }
  base::Result<std::unique_ptr<SqlStore>> Open(std::span<const Migration> migrations);
  // Runs one statement on the database, outside any store.
  base::Status RunSql(const std::string& sql);

 private:
  std::string path() const { return dir_ + "/turnkey.db"; }
  std::string dir_;
  std::string setup_error_;
};

// The server started by mariadb_server.sh (TURNKEY_MARIADB_DIR names its
// directory): reads server.env. Failures are reported, never skipped.
struct MariadbServer {
  std::string dir;  // the script's DIR
  std::string script;
  std::map<std::string, std::string> env;
  MysqlStoreOptions options;  // for the default database
  std::string db_prefix;

  static base::Result<MariadbServer> FromEnvironment();
  // Runs `sql` with the mariadb client as the test account over TCP.
  base::Status RunSql(const std::string& sql) const;
  // Runs "mariadb_server.sh <action> DIR".
  base::Status Script(const std::string& action) const;
  // Runs `sql` as the server's admin (root), for server-wide settings.
  base::Status AdminSql(const std::string& sql) const;
};

// A fresh database on the test MariaDB server, dropped with the backend.
class MysqlBackend {
 public:
  static constexpr Dialect kDialect = Dialect::kMysql;
  MysqlBackend();
  ~MysqlBackend();
  const std::string& setup_error() const { return setup_error_; }
  base::Result<std::unique_ptr<SqlStore>> Open(std::span<const Migration> migrations);
  // Runs one statement on the database, outside any store.
  base::Status RunSql(const std::string& sql);
  const MysqlStoreOptions& options() const { return options_; }

 private:
  MariadbServer server_;
  MysqlStoreOptions options_;
  std::string setup_error_;
};

// Runs a shell command; returns its exit status and fills `output` (stdout
// and stderr).
int RunCommand(const std::string& command, std::string* output);

}  // namespace turnkey::sql::testing
