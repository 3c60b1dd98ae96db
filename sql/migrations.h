// Schema migrations: numbered SQL files per dialect
// (sql/migrations/<dialect>/NNN_name.sql), embedded into the binary at build
// time by embed_migrations.cmake, so no file is read at run time.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sql/dialect.h"

namespace turnkey::sql {

struct Migration {
  int version = 0;        // NNN: 1, 2, ... without gaps
  std::string_view name;  // the file name without number and extension
  std::string_view sql;   // statements separated by ';'
};

// The migrations built into this binary for `dialect`, by ascending version.
// Both dialects carry the same versions and names (the build checks it).
std::span<const Migration> EmbeddedMigrations(Dialect dialect);

// Splits a migration script into statements: on ';' outside quotes
// ('...', "...", `...`), with "-- ..." and "/* ... */" comments removed and
// empty statements dropped. Enough for our own files, not a general parser.
std::vector<std::string> SplitSqlStatements(std::string_view script);

}  // namespace turnkey::sql
