// SchemaMigrator: reads and applies the numbered migrations recorded in
// schema_migrations (version, name, applied_at). Internal to sql/; SqlStore
// runs it on one connection of its Database.
#pragma once

#include <span>

#include "base/status.h"
#include "sql/database.h"
#include "sql/migrations.h"
#include "sql/store.h"

namespace turnkey::sql {

class SchemaMigrator {
 public:
  // `migrations` (ascending versions from 1) must outlive the migrator.
  SchemaMigrator(Dialect dialect, std::span<const Migration> migrations)
      : dialect_(dialect), migrations_(migrations) {}

  int latest_version() const { return migrations_.empty() ? 0 : migrations_.back().version; }

  base::Result<SchemaState> State(Connection& conn) const;
  // Ok only if every known migration and nothing else is applied.
  base::Status Check(Connection& conn) const;
  // Applies the pending migrations, each in a transaction (on MySQL, DDL
  // commits implicitly and a named lock keeps two migrating processes
  // apart). Manages its own transactions: run it as an OpKind::kSession op.
  base::Result<int> Apply(Connection& conn) const;

 private:
  base::Result<int> ApplyPending(Connection& conn) const;

  Dialect dialect_;
  std::span<const Migration> migrations_;
};

}  // namespace turnkey::sql
