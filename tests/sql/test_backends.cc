#include "tests/sql/test_backends.h"

#include <fmt/format.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "base/crypto.h"
#include "sql/mysql_store.h"
#include "sql/sqlite_connection.h"
#include "sql/sqlite_store.h"

namespace turnkey::sql::testing {

namespace fs = std::filesystem;

int RunCommand(const std::string& command, std::string* output) {
  std::string full = command + " 2>&1";
  FILE* pipe = ::popen(full.c_str(), "r");
  if (pipe == nullptr) {
    return -1;
  }
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
    if (output != nullptr) {
      output->append(buffer, n);
    }
  }
  int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

SqliteBackend::SqliteBackend() {
  dir_ = (fs::temp_directory_path() / ("tk-sql-test-" + base::RandomHex(8))).string();
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) {
    setup_error_ = "cannot create " + dir_ + ": " + ec.message();
  }
}

SqliteBackend::~SqliteBackend() {
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

base::Result<std::unique_ptr<SqlStore>> SqliteBackend::Open(std::span<const Migration> migrations) {
  SqliteStoreOptions options;
  options.path = path();
  options.pool_size = 3;
  auto store = SqliteStore::Open(options, migrations);
  if (!store) {
    return std::unexpected(store.error());
  }
  return std::unique_ptr<SqlStore>(std::move(*store));
}

base::Status SqliteBackend::RunSql(const std::string& sql) {
  auto connection = SqliteConnection::Open(path(), std::chrono::seconds(5));
  if (!connection) {
    return std::unexpected(connection.error());
  }
  if (auto done = (*connection)->Exec(sql, {}); !done) {
    return std::unexpected(done.error());
  }
  return base::Ok();
}

base::Result<MariadbServer> MariadbServer::FromEnvironment() {
  const char* dir = std::getenv("TURNKEY_MARIADB_DIR");
  const char* script = std::getenv("TURNKEY_MARIADB_SCRIPT");
  if (dir == nullptr || script == nullptr) {
    return base::NotFound(
        "TURNKEY_MARIADB_DIR / TURNKEY_MARIADB_SCRIPT not set: run these tests with ctest, "
        "which starts the server (tests/sql/mariadb_server.sh)");
  }
  MariadbServer server;
  server.dir = dir;
  server.script = script;
  std::ifstream in(server.dir + "/server.env");
  if (!in) {
    return base::NotFound(
        fmt::format("{}/server.env missing: the MariaDB server did not start (see the "
                    "sql_mariadb_start test output)",
                    server.dir));
  }
  std::string line;
  while (std::getline(in, line)) {
    size_t eq = line.find('=');
    if (eq != std::string::npos) {
      server.env[line.substr(0, eq)] = line.substr(eq + 1);
    }
  }
  for (const char* key : {"MARIADB_HOST", "MARIADB_PORT", "MARIADB_USER", "MARIADB_PASSWORD",
                          "MARIADB_DATABASE", "MARIADB_DB_PREFIX"}) {
    if (!server.env.contains(key)) {
      return base::NotFound(fmt::format("server.env lacks {}", key));
    }
  }
  server.options.host = server.env["MARIADB_HOST"];
  server.options.port = static_cast<uint16_t>(std::stoi(server.env["MARIADB_PORT"]));
  server.options.user = server.env["MARIADB_USER"];
  server.options.password = server.env["MARIADB_PASSWORD"];
  server.options.database = server.env["MARIADB_DATABASE"];
  server.db_prefix = server.env["MARIADB_DB_PREFIX"];
  return server;
}

base::Status MariadbServer::RunSql(const std::string& sql) const {
  // The password goes through the environment, not the command line.
  ::setenv("MYSQL_PWD", options.password.c_str(), 1);
  std::string output;
  int rc = RunCommand(fmt::format("mariadb --no-defaults -h {} -P {} -u {} -e \"{}\"", options.host,
                                  options.port, options.user, sql),
                      &output);
  if (rc != 0) {
    return base::Internal(fmt::format("mariadb -e '{}' failed ({}): {}", sql, rc, output));
  }
  return base::Ok();
}

base::Status MariadbServer::Script(const std::string& action) const {
  std::string output;
  int rc = RunCommand(fmt::format("bash {} {} {}", script, action, dir), &output);
  if (rc != 0) {
    return base::Internal(fmt::format("mariadb_server.sh {} failed ({}): {}", action, rc, output));
  }
  return base::Ok();
}

base::Status MariadbServer::AdminSql(const std::string& sql) const {
  std::string output;
  int rc = RunCommand(fmt::format("bash {} sql {} \"{}\"", script, dir, sql), &output);
  if (rc != 0) {
    return base::Internal(
        fmt::format("mariadb_server.sh sql '{}' failed ({}): {}", sql, rc, output));
  }
  return base::Ok();
}

MysqlBackend::MysqlBackend() {
  auto server = MariadbServer::FromEnvironment();
  if (!server) {
    setup_error_ = server.error().message;
    return;
  }
  server_ = std::move(*server);
  options_ = server_.options;
  options_.database = server_.db_prefix + base::RandomHex(8);
  options_.pool_size = 3;
  if (auto ok = server_.RunSql("CREATE DATABASE " + options_.database); !ok) {
    setup_error_ = ok.error().message;
  }
}

MysqlBackend::~MysqlBackend() {
  if (setup_error_.empty()) {
    (void)server_.RunSql("DROP DATABASE IF EXISTS " + options_.database);
  }
}

base::Status MysqlBackend::RunSql(const std::string& sql) {
  return server_.RunSql(fmt::format("USE {}; {}", options_.database, sql));
}

base::Result<std::unique_ptr<SqlStore>> MysqlBackend::Open(std::span<const Migration> migrations) {
  auto store = MysqlStore::Open(options_, migrations);
  if (!store) {
    return std::unexpected(store.error());
  }
  return std::unique_ptr<SqlStore>(std::move(*store));
}

}  // namespace turnkey::sql::testing
