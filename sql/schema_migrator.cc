#include "sql/schema_migrator.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <string>
#include <vector>

#include "base/log.h"
#include "sql/fields.h"
#include "sql/query_util.h"
#include "sql/row_reader.h"

namespace turnkey::sql {

namespace {

constexpr std::string_view kSqliteMigrationsTable =
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER NOT NULL PRIMARY KEY, "
    "name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT";
constexpr std::string_view kMysqlMigrationsTable =
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INT NOT NULL PRIMARY KEY, "
    "name VARCHAR(255) NOT NULL, applied_at BIGINT NOT NULL) "
    "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin";
constexpr std::string_view kSqliteHasMigrationsTable =
    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'";
constexpr std::string_view kMysqlHasMigrationsTable =
    "SELECT COUNT(*) FROM information_schema.tables "
    "WHERE table_schema = DATABASE() AND table_name = 'schema_migrations'";
// What else the database holds, for a database without schema_migrations.
constexpr std::string_view kSqliteOtherTables =
    "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
    "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name LIMIT 4";
constexpr std::string_view kMysqlOtherTables =
    "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
    "ORDER BY table_name LIMIT 4";
constexpr std::string_view kAppliedMigrations =
    "SELECT version, name FROM schema_migrations ORDER BY version";
constexpr std::string_view kMigrationApplied =
    "SELECT COUNT(*) FROM schema_migrations WHERE version = ?";
constexpr std::string_view kRecordMigration =
    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)";
// MySQL commits DDL implicitly, so a transaction cannot keep two migrating
// processes apart there; a named server lock does.
constexpr std::string_view kMysqlLockMigrations = "SELECT GET_LOCK('turnkey.migrate', 60)";
constexpr std::string_view kMysqlUnlockMigrations = "SELECT RELEASE_LOCK('turnkey.migrate')";

struct AppliedMigration {
  int version = 0;
  std::string name;
};

int64_t UnixMillisNow() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

base::Result<int64_t> HasMigrationsTable(Connection& conn, Dialect dialect) {
  return QueryInt(
      conn, dialect == Dialect::kMysql ? kMysqlHasMigrationsTable : kSqliteHasMigrationsTable);
}

base::Result<std::vector<AppliedMigration>> QueryApplied(Connection& conn, Dialect dialect) {
  auto has_table = HasMigrationsTable(conn, dialect);
  if (!has_table) {
    return ErrorOf(has_table);
  }
  std::vector<AppliedMigration> applied;
  if (*has_table == 0) {
    return applied;
  }
  auto result = conn.Exec(kAppliedMigrations, {});
  if (!result) {
    return ErrorOf(result);
  }
  for (const Row& row : result->rows) {
    RowReader r(row);
    AppliedMigration m;
    m.version = static_cast<int>(r.Int());
    m.name = r.Text();
    if (!r.ok()) {
      return base::Internal("schema_migrations: unexpected row");
    }
    applied.push_back(std::move(m));
  }
  return applied;
}

// CREATE ... or ALTER ...: statements MySQL commits on their own.
bool IsSchemaChange(std::string_view statement) {
  const size_t start = statement.find_first_not_of(" \t\r\n");
  if (start == std::string_view::npos) {
    return false;
  }
  const std::string word = AsciiLower(statement.substr(start, 6));
  return word.starts_with("create") || word.starts_with("alter");
}

// Refuses a database this binary does not understand: a version beyond ours,
// or a recorded name that is not ours (a different build's history).
base::Status CheckApplied(const std::vector<AppliedMigration>& applied,
                          std::span<const Migration> known) {
  const int latest = known.empty() ? 0 : known.back().version;
  int highest = 0;
  for (const AppliedMigration& m : applied) {
    if (m.version < 1) {
      return base::Internal(
          fmt::format("schema_migrations records version {}, which no turnkey has", m.version));
    }
    highest = std::max(highest, m.version);
  }
  if (highest > latest) {
    // The highest, as serve and GetSchemaState name it, not the first unknown.
    return base::Internal(fmt::format(
        "database schema version {} is newer than this turnkey knows ({}): upgrade turnkey "
        "or restore a backup that matches it",
        highest, latest));
  }
  for (const AppliedMigration& m : applied) {
    const Migration& ours = known[static_cast<size_t>(m.version) - 1];
    if (ours.name != m.name) {
      return base::Internal(
          fmt::format("schema_migrations records version {} as '{}' but this turnkey's is '{}'",
                      m.version, m.name, ours.name));
    }
  }
  return base::Ok();
}

}  // namespace

base::Result<SchemaState> SchemaMigrator::State(Connection& conn) const {
  auto applied = QueryApplied(conn, dialect_);
  if (!applied) {
    return ErrorOf(applied);
  }
  SchemaState state;
  state.latest_version = latest_version();
  for (const AppliedMigration& m : *applied) {
    state.current_version = std::max(state.current_version, m.version);
  }
  return state;
}

base::Status SchemaMigrator::Check(Connection& conn) const {
  auto applied = QueryApplied(conn, dialect_);
  if (!applied) {
    return ErrorOf(applied);
  }
  if (auto ok = CheckApplied(*applied, migrations_); !ok) {
    return ok;
  }
  if (applied->size() < migrations_.size()) {
    const int current = applied->empty() ? 0 : applied->back().version;
    return base::Internal(
        fmt::format("database schema version {} is behind this turnkey ({}): run `turnkey migrate`",
                    current, latest_version()));
  }
  return base::Ok();
}

base::Result<int> SchemaMigrator::Apply(Connection& conn) const {
  if (dialect_ != Dialect::kMysql) {
    return ApplyPending(conn);
  }
  auto locked = QueryInt(conn, kMysqlLockMigrations);
  if (!locked) {
    return ErrorOf(locked);
  }
  if (*locked != 1) {
    return base::Unavailable("another turnkey is migrating this database; try again");
  }
  base::Result<int> result = ApplyPending(conn);
  if (auto unlocked = QueryInt(conn, kMysqlUnlockMigrations); !unlocked && result) {
    return ErrorOf(unlocked);
  }
  return result;
}

base::Result<int> SchemaMigrator::ApplyPending(Connection& conn) const {
  // Looked for first, so a database that is up to date needs no right to
  // create tables (an account without DDL can run `turnkey migrate`).
  auto has_table = HasMigrationsTable(conn, dialect_);
  if (!has_table) {
    return ErrorOf(has_table);
  }
  if (*has_table == 0) {
    // No record of any migration: only an empty database is taken, so a
    // path or database name pointing at another program's data is refused
    // before anything is added to it.
    auto others =
        QueryIds(conn, dialect_ == Dialect::kMysql ? kMysqlOtherTables : kSqliteOtherTables, {});
    if (!others) {
      return ErrorOf(others);
    }
    if (!others->empty()) {
      const bool more = others->size() > 3;
      others->resize(std::min<size_t>(others->size(), 3));
      return base::InvalidArgument(fmt::format(
          "the database holds tables that are not turnkey's ({}{}) and no schema_migrations: "
          "point turnkey at a new or empty database",
          fmt::join(*others, ", "), more ? ", ..." : ""));
    }
    if (auto created = conn.Exec(
            dialect_ == Dialect::kMysql ? kMysqlMigrationsTable : kSqliteMigrationsTable, {});
        !created) {
      return ErrorOf(created);
    }
  }
  auto applied = QueryApplied(conn, dialect_);
  if (!applied) {
    return ErrorOf(applied);
  }
  if (auto ok = CheckApplied(*applied, migrations_); !ok) {
    return std::unexpected(ok.error());
  }
  int count = 0;
  for (const Migration& m : migrations_) {
    if (auto begun = conn.Begin(); !begun) {
      return std::unexpected(begun.error());
    }
    // Looked up again inside the transaction: another process may have
    // applied it meanwhile (on SQLite the write lock is held from here).
    const std::array<Param, 1> version{int64_t{m.version}};
    auto done = QueryInt(conn, kMigrationApplied, version);
    if (!done) {
      conn.Rollback();
      return ErrorOf(done);
    }
    if (*done > 0) {
      conn.Rollback();
      continue;
    }
    const std::string label = fmt::format("{:03}_{}", m.version, m.name);
    for (const std::string& statement : SplitSqlStatements(m.sql)) {
      auto ran = conn.Exec(statement, {});
      if (!ran && dialect_ == Dialect::kMysql && IsSchemaChange(statement) &&
          ran.error().code == base::ErrorCode::kAlreadyExists) {
        // MySQL commits DDL on its own: a run cut off before recording this
        // version left the index or column behind. It is there; go on.
        TK_LOG_INFO("migration {}: {}; already applied by an earlier run", label,
                    ran.error().message);
        continue;
      }
      if (!ran) {
        conn.Rollback();
        return base::MakeError(ran.error().code,
                               fmt::format("migration {}: {}", label, ran.error().message));
      }
    }
    const std::array<Param, 3> record{int64_t{m.version}, m.name, UnixMillisNow()};
    if (auto recorded = conn.Exec(kRecordMigration, record); !recorded) {
      conn.Rollback();
      return ErrorOf(recorded);
    }
    if (auto committed = conn.Commit(); !committed) {
      return base::MakeError(committed.error().code,
                             fmt::format("migration {}: {}", label, committed.error().message));
    }
    TK_LOG_INFO("applied migration {} ({})", label, DialectName(dialect_));
    ++count;
  }
  return count;
}

}  // namespace turnkey::sql
