// The accounts database as the config describes it: config::DatabaseOptions
// translated into sql::StoreOptions, opening the store, and the schema
// policy of `turnkey serve` and `turnkey migrate`.
//
// Schema policy of serve (PrepareSchemaForServe):
//   - a schema newer than this binary knows: refuse to start ("upgrade
//     turnkey");
//   - SQLite (the embedded default) with an empty database: apply the
//     migrations, so the quick start needs no extra step;
//   - anything else that is behind (any MySQL/MariaDB database, or an SQLite
//     file with an older schema): refuse to start until `turnkey migrate`
//     ran. Production schema changes are an explicit operator step; there is
//     deliberately no "migrate on start" switch for MySQL.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "config/config.h"
#include "sql/store.h"
#include "sql/store_factory.h"

namespace turnkey::app {

// database.* -> StoreOptions: a relative sqlite.path is joined to
// state_dir; the MySQL password is the one the loader read from
// password_file.
sql::StoreOptions MakeStoreOptions(const config::Config& config);

// Creates `dir` (and parents) with mode 0700 if it does not exist.
base::Status EnsureStateDir(const std::string& dir);

// The file in state_dir where call history writes a stop could not make wait
// for the next start (signal/unwritten_calls.h).
std::string UnwrittenCallsPath(const config::Config& config);

// The files the database connection will read, checked before it is made:
// database.mysql.tls_ca_file (with the mysql driver and tls) must be a
// readable file. The error names the key, the file and why (the client
// library says only "TLS/SSL error: No such file or directory").
base::Status CheckDatabaseFiles(const config::Config& config);

// Opens the store (creating state_dir first for SQLite; CheckDatabaseFiles
// first). Does not migrate.
base::Result<std::unique_ptr<sql::Store>> OpenDatabase(const config::Config& config);

// "sqlite /var/lib/turnkey/turnkey.db" or "mysql turnkey@127.0.0.1:3306/turnkey"
// (never the password).
std::string DescribeDatabase(const config::Config& config);

// Applies the policy above; logs what it did. kInternal with a message
// saying what to do when serve must not start.
base::Status PrepareSchemaForServe(sql::Store& store, const config::Config& config);

}  // namespace turnkey::app
