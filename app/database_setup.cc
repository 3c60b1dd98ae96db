#include "app/database_setup.h"

#include <fmt/format.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "base/log.h"
#include "signal/unwritten_calls.h"

namespace turnkey::app {

sql::StoreOptions MakeStoreOptions(const config::Config& config) {
  sql::StoreOptions options;
  options.cluster = config.cluster.enabled ? config.cluster.name : std::string();
  const config::DatabaseOptions& db = config.database;
  if (db.driver == config::DatabaseDriver::kMysql) {
    options.driver = sql::Dialect::kMysql;
    options.mysql.host = db.mysql.host;
    options.mysql.port = db.mysql.port;
    options.mysql.user = db.mysql.user;
    options.mysql.password = db.mysql.password;
    options.mysql.database = db.mysql.database;
    options.mysql.pool_size = static_cast<int>(db.mysql.pool_size);
    options.mysql.tls = db.mysql.tls;
    options.mysql.tls_ca_file = db.mysql.tls_ca_file;
    return options;
  }
  options.driver = sql::Dialect::kSqlite;
  std::filesystem::path path(db.sqlite.path);
  if (path.is_relative() && db.sqlite.path != ":memory:") {
    path = std::filesystem::path(config.state_dir) / path;
  }
  options.sqlite.path = path.string();
  return options;
}

base::Status EnsureStateDir(const std::string& dir) {
  std::error_code error;
  if (std::filesystem::is_directory(dir, error)) {
    return base::Ok();
  }
  if (!std::filesystem::create_directories(dir, error) && error) {
    return base::Unavailable(fmt::format("state_dir {}: {}", dir, error.message()));
  }
  // It will hold the database and generated secrets.
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::replace, error);
  if (error) {
    return base::Unavailable(fmt::format("state_dir {}: {}", dir, error.message()));
  }
  return base::Ok();
}

std::string UnwrittenCallsPath(const config::Config& config) {
  return (std::filesystem::path(config.state_dir) / signal::kUnwrittenCallsFileName).string();
}

base::Status CheckDatabaseFiles(const config::Config& config) {
  const config::MysqlOptions& mysql = config.database.mysql;
  if (config.database.driver != config::DatabaseDriver::kMysql || !mysql.tls ||
      mysql.tls_ca_file.empty()) {
    return base::Ok();
  }
  std::error_code error;
  if (std::filesystem::is_directory(mysql.tls_ca_file, error)) {
    error = std::make_error_code(std::errc::is_a_directory);
  } else if (std::ifstream in(mysql.tls_ca_file); !in) {
    error = std::error_code(errno, std::generic_category());
  }
  if (error) {
    return base::InvalidArgument(fmt::format("database.mysql.tls_ca_file: cannot read \"{}\": {}",
                                             mysql.tls_ca_file, error.message()));
  }
  return base::Ok();
}

base::Result<std::unique_ptr<sql::Store>> OpenDatabase(const config::Config& config) {
  if (auto files = CheckDatabaseFiles(config); !files) {
    return std::unexpected(files.error());
  }
  sql::StoreOptions options = MakeStoreOptions(config);
  if (options.driver == sql::Dialect::kSqlite &&
      std::filesystem::path(config.database.sqlite.path).is_relative()) {
    if (auto made = EnsureStateDir(config.state_dir); !made) {
      return std::unexpected(made.error());
    }
  }
  auto store = sql::OpenStore(options);
  if (!store) {
    return std::unexpected(
        base::Error{store.error().code, DescribeDatabase(config) + ": " + store.error().message});
  }
  return std::move(*store);
}

std::string DescribeDatabase(const config::Config& config) {
  sql::StoreOptions options = MakeStoreOptions(config);
  if (options.driver == sql::Dialect::kMysql) {
    return fmt::format("mysql {}@{}:{}/{}{}", options.mysql.user, options.mysql.host,
                       options.mysql.port, options.mysql.database,
                       options.mysql.tls ? " (TLS)" : "");
  }
  return "sqlite " + options.sqlite.path;
}

base::Status PrepareSchemaForServe(sql::Store& store, const config::Config& config) {
  auto state = store.GetSchemaState();
  if (!state) {
    return base::MakeError(state.error().code,
                           DescribeDatabase(config) + ": " + state.error().message);
  }
  const std::string what = DescribeDatabase(config);
  if (state->current_version > state->latest_version) {
    return base::Internal(
        fmt::format("{}: schema version {} is newer than this turnkey knows ({}); upgrade turnkey",
                    what, state->current_version, state->latest_version));
  }
  if (state->current_version < state->latest_version) {
    const bool embedded = config.database.driver == config::DatabaseDriver::kSqlite;
    if (!embedded || state->current_version != 0) {
      return base::Internal(fmt::format(
          "{}: schema version {} is behind this turnkey ({}); run `turnkey migrate` with this "
          "config file first",
          what, state->current_version, state->latest_version));
    }
    auto applied = store.Migrate();
    if (!applied) {
      return base::MakeError(applied.error().code, what + ": migrate: " + applied.error().message);
    }
    TK_LOG_INFO("database: {}: new database, migrated to schema version {} ({} applied)", what,
                state->latest_version, *applied);
  }
  if (auto checked = store.CheckSchema(); !checked) {
    return base::MakeError(checked.error().code, what + ": " + checked.error().message);
  }
  return base::Ok();
}

}  // namespace turnkey::app
