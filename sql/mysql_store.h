// MysqlStore: the Store on a MySQL or MariaDB server through libmysqlclient
// (MariaDB Connector/C), for production deployments.
//
// Threads: any number of threads may call it; each call borrows one
// connection of a pool of MysqlStoreOptions::pool_size (waiting up to
// acquire_timeout for one). Connections are opened lazily, so opening the
// store never fails because the server is down; Ping() tells.
//
// Lost connections (server restarted, killed, network cut): the broken
// connection and every idle one (likely broken too) are dropped, a new one
// is opened with statements prepared again, and the operation runs once more
// if that is safe: reads always; writes if COMMIT had not been sent yet (the
// server rolled the transaction back), or if the write is idempotent.
// Otherwise, or if the retry fails too, the call returns kUnavailable: a
// write is reported as failed, never silently dropped. After a failed
// connect, connects are not retried for a backoff (100 ms doubling to 2 s by
// default). Meanwhile a store that holds no connection fails calls at once
// with kUnavailable; one that holds some (the server refused one more: "Too
// many connections", a per-account limit) has callers wait for those.
#pragma once

#include <memory>
#include <span>

#include "base/status.h"
#include "sql/migrations.h"
#include "sql/mysql_options.h"
#include "sql/sql_store.h"

namespace turnkey::sql {

class MysqlStore final : public SqlStore {
 public:
  // Checks the options; does not connect (see above) and does not migrate.
  // `migrations` defaults to the embedded ones (tests pass others).
  static base::Result<std::unique_ptr<MysqlStore>> Open(
      const MysqlStoreOptions& options,
      std::span<const Migration> migrations = EmbeddedMigrations(Dialect::kMysql));

 private:
  using SqlStore::SqlStore;
};

}  // namespace turnkey::sql
