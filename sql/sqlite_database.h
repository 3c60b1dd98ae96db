// The Database over a pool of SQLite connections to one file (internal to
// sql/; SqliteStore's). Writes are serialized by a mutex; with two
// connections or more the first runs every write, with a 32 MiB page cache,
// and the others the reads. Spread over the pool, each write started with an
// empty cache (SQLite empties a connection's page cache whenever another
// connection committed since its last transaction) and read the pages it
// changed back from the file. A single connection runs both.
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include "base/status.h"
#include "sql/database.h"
#include "sql/sqlite_connection.h"

namespace turnkey::sql {

// `connections` not empty. A read waits up to `acquire_timeout` for a free
// reading connection, then fails with kResourceExhausted. Fails if the
// writer's cache size cannot be set.
base::Result<std::unique_ptr<Database>> MakeSqliteDatabase(
    std::vector<std::unique_ptr<SqliteConnection>> connections,
    std::chrono::milliseconds acquire_timeout);

}  // namespace turnkey::sql
