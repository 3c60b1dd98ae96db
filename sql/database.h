// The small driver interface SqlStore runs its queries over, implemented once
// per backend (SqliteDatabase, MysqlDatabase). Internal to sql/.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/status.h"
#include "sql/dialect.h"

namespace turnkey::sql {

// A parameter bound to a `?` placeholder. Text views must outlive Exec().
using Param = std::variant<std::nullptr_t, int64_t, std::string_view>;
// A result column: NULL, an integer column, or anything else as text.
using Cell = std::variant<std::nullptr_t, int64_t, std::string>;
using Row = std::vector<Cell>;

struct ExecResult {
  std::vector<Row> rows;
  // Rows matched by an INSERT, UPDATE or DELETE (matched, not changed: an
  // UPDATE to the same values counts on both backends). 0 for a SELECT.
  int64_t affected_rows = 0;
};

// One database session. Used by one thread at a time (the Database hands it
// out for the length of one operation).
//
// Errors: kAlreadyExists for a unique violation, its message naming the
// index or column (it contains e.g. "email_lower"); kNotFound for a foreign
// key violation; kUnavailable when the server is unreachable or busy;
// kInternal otherwise. Messages never contain bound values.
class Connection {
 public:
  virtual ~Connection() = default;
  // Runs `sql` with `params` bound to its placeholders in order. The
  // statement is prepared on first use and cached by its text for the life
  // of the connection.
  virtual base::Result<ExecResult> Exec(std::string_view sql, std::span<const Param> params) = 0;
  virtual base::Status Begin() = 0;
  virtual base::Status Commit() = 0;
  // Best effort: a failed rollback leaves the connection to the driver.
  virtual void Rollback() = 0;
};

enum class OpKind {
  kRead,     // reads only, in autocommit mode; retried once after a lost connection
  kWrite,    // runs inside Begin()/Commit() (rolled back if the op fails);
             // retried once after a lost connection if COMMIT was not sent yet,
             // or whenever the op is idempotent
  kSession,  // the op manages its own transactions (migrations); never retried
};

struct OpOptions {
  OpKind kind = OpKind::kRead;
  // Running the op twice leaves the same state as running it once.
  bool idempotent = false;
};

// Whether an op whose attempt failed may run once more: only if running it
// again cannot apply it twice. `lost`: the connection broke; `rolled_back`:
// the server rolled the whole transaction back (deadlock); `commit_sent`:
// COMMIT had been sent when it failed, so it may have committed. kSession ops
// are never rerun.
bool SafeToRerun(const OpOptions& options, bool lost, bool rolled_back, bool commit_sent);

// An operation: statements on one connection. It may run twice (see OpKind),
// so it must (re)assign its outputs rather than append to them.
using Op = std::function<base::Status(Connection&)>;

class Database {
 public:
  virtual ~Database() = default;
  virtual Dialect dialect() const = 0;
  // Runs `op` on a connection of the pool, per `options`. Thread-safe.
  virtual base::Status Run(const OpOptions& options, const Op& op) = 0;
};

}  // namespace turnkey::sql
