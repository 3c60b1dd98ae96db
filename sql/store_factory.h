// Opens the Store that the options name. The app translates
// config::DatabaseOptions into StoreOptions (sql/ does not depend on config/).
#pragma once

#include <memory>

#include "base/status.h"
#include "sql/dialect.h"
#include "sql/mysql_options.h"
#include "sql/sqlite_store.h"
#include "sql/store.h"

namespace turnkey::sql {

struct StoreOptions {
  // Which backend. Default SQLite.
  Dialect driver = Dialect::kSqlite;
  // Used when driver is kSqlite.
  SqliteStoreOptions sqlite;
  // Used when driver is kMysql.
  MysqlStoreOptions mysql;
  // SqlStore::set_cluster: "" for a single signaling node, else the name of
  // the node's cluster.
  std::string cluster;
};

// Opens (does not migrate) the store; see SqliteStore::Open and
// MysqlStore::Open for what is checked. Call Migrate() and/or CheckSchema()
// before serving.
base::Result<std::unique_ptr<Store>> OpenStore(const StoreOptions& options);

}  // namespace turnkey::sql
