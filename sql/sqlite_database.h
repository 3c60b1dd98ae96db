// The Database over a pool of SQLite connections to one file (internal to
// sql/; SqliteStore's). Writes are serialized by a mutex; with two
// connections or more the first runs every write and the others the reads,
// so a write finds the pages the last one cached (SQLite empties a
// connection's page cache whenever another connection committed since its
// last transaction). A single connection runs both.
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include "sql/database.h"
#include "sql/sqlite_connection.h"

namespace turnkey::sql {

// `connections` not empty. A read waits up to `acquire_timeout` for a free
// reading connection, then fails with kResourceExhausted.
std::unique_ptr<Database> MakeSqliteDatabase(
    std::vector<std::unique_ptr<SqliteConnection>> connections,
    std::chrono::milliseconds acquire_timeout);

}  // namespace turnkey::sql
