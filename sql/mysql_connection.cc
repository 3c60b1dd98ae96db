#include "sql/mysql_connection.h"

#include <fmt/format.h>
#include <mysql.h>

#include <algorithm>
#include <mutex>
#include <vector>

#include "sql/row_reader.h"

namespace turnkey::sql {

namespace {

// Client error codes (errmsg.h) and server error codes (mysqld_error.h) we
// act on, spelled out so the meaning is next to the number.
constexpr unsigned int kCrConnectionError = 2002;          // CR_CONNECTION_ERROR
constexpr unsigned int kCrConnHostError = 2003;            // CR_CONN_HOST_ERROR
constexpr unsigned int kCrServerGoneError = 2006;          // CR_SERVER_GONE_ERROR
constexpr unsigned int kCrServerLost = 2013;               // CR_SERVER_LOST
constexpr unsigned int kCrSslConnectionError = 2026;       // CR_SSL_CONNECTION_ERROR
constexpr unsigned int kCrCommandsOutOfSync = 2014;        // CR_COMMANDS_OUT_OF_SYNC
constexpr unsigned int kCrServerLostExtended = 2055;       // CR_SERVER_LOST_EXTENDED
constexpr unsigned int kErServerShutdown = 1053;           // ER_SERVER_SHUTDOWN
constexpr unsigned int kErConnectionKilled = 1927;         // ER_CONNECTION_KILLED (MariaDB)
constexpr unsigned int kErClientIdleTimeout = 4031;        // MySQL 8: idle session closed
constexpr unsigned int kErDupEntry = 1062;                 // ER_DUP_ENTRY
constexpr unsigned int kErDupEntryWithKeyName = 1586;      // ER_DUP_ENTRY_WITH_KEY_NAME
constexpr unsigned int kErNoReferencedRow = 1216;          // ER_NO_REFERENCED_ROW
constexpr unsigned int kErNoReferencedRow2 = 1452;         // ER_NO_REFERENCED_ROW_2
constexpr unsigned int kErLockWaitTimeout = 1205;          // ER_LOCK_WAIT_TIMEOUT
constexpr unsigned int kErLockDeadlock = 1213;             // ER_LOCK_DEADLOCK
constexpr unsigned int kErNeedReprepare = 1615;            // ER_NEED_REPREPARE
constexpr unsigned int kErConCount = 1040;                 // ER_CON_COUNT_ERROR
constexpr unsigned int kErAccessDenied = 1045;             // ER_ACCESS_DENIED_ERROR
constexpr unsigned int kErBadDb = 1049;                    // ER_BAD_DB_ERROR
constexpr unsigned int kErDbAccessDenied = 1044;           // ER_DBACCESS_DENIED_ERROR
constexpr unsigned int kErOptionPreventsStatement = 1290;  // --read-only, --super-read-only
constexpr unsigned int kErReadOnlyMode = 1836;             // MySQL: ER_READ_ONLY_MODE
constexpr unsigned int kErDupFieldName = 1060;             // ER_DUP_FIELDNAME
constexpr unsigned int kErDupKeyName = 1061;               // ER_DUP_KEYNAME

// Strict mode makes MySQL refuse (not truncate or coerce) bad values, as
// SQLite's STRICT tables do.
constexpr std::string_view kSetSqlMode =
    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,"
    "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'";
// READ COMMITTED: no gap locks, so concurrent inserts of history rows do not
// deadlock each other; every check-then-write in the store is guarded by a
// unique index or a conditional UPDATE, not by the isolation level.
constexpr std::string_view kSetIsolation = "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED";

constexpr std::string_view kSessionCharsets =
    "SELECT @@character_set_client, @@character_set_connection, @@character_set_results";

std::once_flag library_once;

bool IsIntegerType(enum_field_types type) {
  switch (type) {
    case MYSQL_TYPE_TINY:
    case MYSQL_TYPE_SHORT:
    case MYSQL_TYPE_LONG:
    case MYSQL_TYPE_LONGLONG:
    case MYSQL_TYPE_INT24:
    case MYSQL_TYPE_YEAR:
      return true;
    default:
      return false;
  }
}

// The index name of a duplicate-key message, "Duplicate entry '<value>' for
// key '<name>'", without the value (user data stays out of errors and logs).
std::string DuplicateKeyName(std::string_view message) {
  constexpr std::string_view kMarker = " for key '";
  size_t at = message.rfind(kMarker);
  if (at == std::string_view::npos) {
    return "unknown key";
  }
  std::string_view name = message.substr(at + kMarker.size());
  if (!name.empty() && name.back() == '\'') {
    name.remove_suffix(1);
  }
  return std::string(name);
}

unsigned int Seconds(std::chrono::seconds s) {
  return static_cast<unsigned int>(std::clamp<int64_t>(s.count(), 1, 3600));
}

// Frees a statement's buffered result when leaving a scope.
class ResultGuard {
 public:
  ResultGuard(MYSQL_STMT* stmt, MYSQL_RES* meta) : stmt_(stmt), meta_(meta) {}
  ~ResultGuard() {
    mysql_stmt_free_result(stmt_);
    mysql_free_result(meta_);
  }
  ResultGuard(const ResultGuard&) = delete;
  ResultGuard& operator=(const ResultGuard&) = delete;

 private:
  MYSQL_STMT* stmt_;
  MYSQL_RES* meta_;
};

}  // namespace

base::Result<std::unique_ptr<MysqlConnection>> MysqlConnection::Connect(
    const MysqlStoreOptions& options) {
  // mysql_library_init is not thread-safe; mysql_init would call it
  // implicitly from whichever pool thread connects first.
  std::call_once(library_once, [] { mysql_library_init(0, nullptr, nullptr); });
  MYSQL* mysql = mysql_init(nullptr);
  if (mysql == nullptr) {
    return base::MakeError(base::ErrorCode::kResourceExhausted, "mysql: out of memory");
  }
  unsigned int connect_timeout = Seconds(options.connect_timeout);
  unsigned int read_timeout = Seconds(options.read_timeout);
  unsigned int write_timeout = Seconds(options.write_timeout);
  unsigned int local_infile = 0;
  mysql_options(mysql, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
  mysql_options(mysql, MYSQL_OPT_READ_TIMEOUT, &read_timeout);
  mysql_options(mysql, MYSQL_OPT_WRITE_TIMEOUT, &write_timeout);
  mysql_options(mysql, MYSQL_OPT_LOCAL_INFILE, &local_infile);
  mysql_options(mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  if (options.tls) {
    my_bool on = 1;
    mysql_options(mysql, MYSQL_OPT_SSL_ENFORCE, &on);
    mysql_options(mysql, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &on);
    if (!options.tls_ca_file.empty()) {
      mysql_options(mysql, MYSQL_OPT_SSL_CA, options.tls_ca_file.c_str());
    }
  }

  const char* socket = options.unix_socket.empty() ? nullptr : options.unix_socket.c_str();
  if (socket == nullptr) {
    // The configured host and port, always: the client library would take
    // "localhost" to mean its default Unix socket and ignore the port (a
    // second, local server would answer instead of the one configured).
    unsigned int protocol = MYSQL_PROTOCOL_TCP;
    mysql_options(mysql, MYSQL_OPT_PROTOCOL, &protocol);
  }
  if (mysql_real_connect(mysql, options.host.c_str(), options.user.c_str(),
                         options.password.c_str(), options.database.c_str(), options.port, socket,
                         CLIENT_FOUND_ROWS) == nullptr) {
    const unsigned int code = mysql_errno(mysql);
    std::string message = fmt::format(
        "mysql: cannot connect to {}: {} ({})",
        socket != nullptr ? options.unix_socket : fmt::format("{}:{}", options.host, options.port),
        mysql_error(mysql), code);
    mysql_close(mysql);
    // A server that answered but refused the account or database, or whose
    // certificate did not verify, will not change its mind by itself: not
    // kUnavailable, which callers may wait on.
    if (code == kErAccessDenied || code == kErDbAccessDenied || code == kErBadDb ||
        code == kCrSslConnectionError) {
      return base::MakeError(base::ErrorCode::kPermissionDenied, std::move(message));
    }
    return base::Unavailable(std::move(message));
  }
  std::unique_ptr<MysqlConnection> conn(new MysqlConnection(mysql));
  if (options.tls && mysql_get_ssl_cipher(mysql) == nullptr) {
    return base::MakeError(base::ErrorCode::kPermissionDenied,
                           "mysql: database.mysql.tls is on but the connection is not encrypted");
  }
  // The handshake asked for utf8mb4, but a server started with
  // skip-character-set-client-handshake (or an init_connect) can leave the
  // session on its own character set while the library believes utf8mb4:
  // text would be stored double-encoded. SET NAMES is obeyed there; the
  // session's own variables then tell whether it took.
  if (mysql_set_character_set(mysql, "utf8mb4") != 0) {
    return std::unexpected(
        conn->Fail(mysql_errno(mysql), mysql_error(mysql), "set character set utf8mb4"));
  }
  if (auto ok = conn->CheckSessionCharset(); !ok) {
    return std::unexpected(ok.error());
  }
  for (std::string_view setup : {kSetSqlMode, kSetIsolation}) {
    if (auto ok = conn->Exec(setup, {}); !ok) {
      return std::unexpected(ok.error());
    }
  }
  return conn;
}

base::Status MysqlConnection::CheckSessionCharset() {
  auto result = Exec(kSessionCharsets, {});
  if (!result) {
    return std::unexpected(result.error());
  }
  if (result->rows.size() != 1) {
    return base::Internal("mysql: no answer for the session's character sets");
  }
  RowReader row(result->rows[0]);
  const std::string client = row.Text();
  const std::string connection = row.Text();
  const std::string results = row.Text();
  if (!row.ok() || client != "utf8mb4" || connection != "utf8mb4" || results != "utf8mb4") {
    return base::Internal(fmt::format(
        "mysql: the session uses character sets client={} connection={} results={}, not "
        "utf8mb4; text would be stored mangled (check the server's character-set options)",
        client, connection, results));
  }
  return base::Ok();
}

MysqlConnection::~MysqlConnection() {
  for (auto& [sql, stmt] : statements_) {
    mysql_stmt_close(stmt);
  }
  mysql_close(mysql_);
}

void MysqlConnection::ResetAttempt() {
  rolled_back_ = false;
  commit_sent_ = false;
}

base::Error MysqlConnection::Fail(unsigned int code, const char* text, std::string_view what) {
  std::string message = fmt::format("mysql: {}: {} ({})", what, text, code);
  switch (code) {
    case kCrConnectionError:
    case kCrConnHostError:
    case kCrServerGoneError:
    case kCrServerLost:
    case kCrServerLostExtended:
    case kCrCommandsOutOfSync:
    case kErServerShutdown:
    case kErConnectionKilled:
    case kErClientIdleTimeout:
      lost_error_ = message;
      return {base::ErrorCode::kUnavailable, std::move(message)};
    case kErDupEntry:
    case kErDupEntryWithKeyName:
      return {base::ErrorCode::kAlreadyExists,
              fmt::format("mysql: {}: duplicate key {}", what, DuplicateKeyName(text))};
    // A column or index that is there already: a schema change made before
    // (DDL commits on its own, so a cut-off migration leaves it behind).
    case kErDupFieldName:
    case kErDupKeyName:
      return {base::ErrorCode::kAlreadyExists, std::move(message)};
    case kErNoReferencedRow:
    case kErNoReferencedRow2:
      return {base::ErrorCode::kNotFound, std::move(message)};
    case kErLockDeadlock:
      rolled_back_ = true;
      return {base::ErrorCode::kUnavailable, std::move(message)};
    // A server that takes no writes now (read_only: a replica, or a primary
    // demoted by a failover) is unavailable for them, as a down one is: 503
    // and a failing /readyz, not an internal error.
    case kErOptionPreventsStatement:
    case kErReadOnlyMode:
    case kErLockWaitTimeout:
    case kErConCount:
    case kErAccessDenied:
    case kErBadDb:
      return {base::ErrorCode::kUnavailable, std::move(message)};
    case kErNeedReprepare:
      need_reprepare_ = true;
      return {base::ErrorCode::kInternal, std::move(message)};
    default:
      return {base::ErrorCode::kInternal, std::move(message)};
  }
}

base::Error MysqlConnection::StmtFail(MYSQL_STMT* stmt, std::string_view what) {
  return Fail(mysql_stmt_errno(stmt), mysql_stmt_error(stmt), what);
}

void MysqlConnection::Forget(std::string_view sql) {
  auto it = statements_.find(std::string(sql));
  if (it != statements_.end()) {
    mysql_stmt_close(it->second);
    statements_.erase(it);
  }
}

base::Result<MYSQL_STMT*> MysqlConnection::Prepare(std::string_view sql) {
  auto it = statements_.find(std::string(sql));
  if (it != statements_.end()) {
    return it->second;
  }
  MYSQL_STMT* stmt = mysql_stmt_init(mysql_);
  if (stmt == nullptr) {
    return std::unexpected(Fail(mysql_errno(mysql_), mysql_error(mysql_), "prepare"));
  }
  if (mysql_stmt_prepare(stmt, sql.data(), sql.size()) != 0) {
    base::Error error = StmtFail(stmt, "prepare");
    mysql_stmt_close(stmt);
    return std::unexpected(std::move(error));
  }
  // Makes mysql_stmt_store_result() fill in max_length, so result buffers
  // are sized exactly instead of guessed.
  my_bool update_max_length = 1;
  mysql_stmt_attr_set(stmt, STMT_ATTR_UPDATE_MAX_LENGTH, &update_max_length);
  statements_.emplace(std::string(sql), stmt);
  return stmt;
}

base::Result<ExecResult> MysqlConnection::Exec(std::string_view sql,
                                               std::span<const Param> params) {
  if (lost()) {
    return base::Unavailable("mysql: connection lost");
  }
  for (int attempt = 0;; ++attempt) {
    auto stmt = Prepare(sql);
    if (!stmt) {
      return std::unexpected(stmt.error());
    }
    need_reprepare_ = false;
    auto result = Execute(*stmt, params);
    // The server asks for it when a table changed under a prepared statement.
    if (!result && need_reprepare_ && attempt == 0) {
      Forget(sql);
      continue;
    }
    return result;
  }
}

base::Result<ExecResult> MysqlConnection::Execute(MYSQL_STMT* stmt, std::span<const Param> params) {
  if (mysql_stmt_param_count(stmt) != params.size()) {
    return base::Internal(fmt::format("mysql: statement has {} placeholders, {} given",
                                      mysql_stmt_param_count(stmt), params.size()));
  }
  std::vector<MYSQL_BIND> binds(params.size());
  std::vector<long long> ints(params.size());
  std::vector<unsigned long> lengths(params.size());
  static char empty[] = "";
  for (size_t i = 0; i < params.size(); ++i) {
    MYSQL_BIND& b = binds[i];
    if (const auto* n = std::get_if<int64_t>(&params[i])) {
      ints[i] = *n;
      b.buffer_type = MYSQL_TYPE_LONGLONG;
      b.buffer = &ints[i];
    } else if (const auto* text = std::get_if<std::string_view>(&params[i])) {
      // The library only reads input buffers; the cast is its C signature.
      b.buffer_type = MYSQL_TYPE_STRING;
      b.buffer = text->empty() ? empty : const_cast<char*>(text->data());
      b.buffer_length = text->size();
      lengths[i] = text->size();
      b.length = &lengths[i];
    } else {
      b.buffer_type = MYSQL_TYPE_NULL;
    }
  }
  if (!params.empty() && mysql_stmt_bind_param(stmt, binds.data()) != 0) {
    return std::unexpected(StmtFail(stmt, "bind"));
  }
  if (mysql_stmt_execute(stmt) != 0) {
    return std::unexpected(StmtFail(stmt, "execute"));
  }

  ExecResult result;
  MYSQL_RES* meta = mysql_stmt_result_metadata(stmt);
  if (meta == nullptr) {
    if (mysql_stmt_errno(stmt) != 0) {
      return std::unexpected(StmtFail(stmt, "metadata"));
    }
    result.affected_rows = static_cast<int64_t>(mysql_stmt_affected_rows(stmt));
    return result;
  }
  ResultGuard guard(stmt, meta);
  if (mysql_stmt_store_result(stmt) != 0) {
    return std::unexpected(StmtFail(stmt, "store result"));
  }
  const unsigned int columns = mysql_num_fields(meta);
  const MYSQL_FIELD* fields = mysql_fetch_fields(meta);
  std::vector<MYSQL_BIND> out(columns);
  std::vector<long long> out_ints(columns);
  std::vector<std::vector<char>> buffers(columns);
  std::vector<unsigned long> out_lengths(columns);
  std::vector<my_bool> nulls(columns);
  std::vector<my_bool> errors(columns);
  for (unsigned int c = 0; c < columns; ++c) {
    MYSQL_BIND& b = out[c];
    if (IsIntegerType(fields[c].type)) {
      b.buffer_type = MYSQL_TYPE_LONGLONG;
      b.buffer = &out_ints[c];
      b.is_unsigned = (fields[c].flags & UNSIGNED_FLAG) != 0 ? 1 : 0;
    } else {
      buffers[c].resize(fields[c].max_length + 1);
      b.buffer_type = MYSQL_TYPE_STRING;
      b.buffer = buffers[c].data();
      b.buffer_length = buffers[c].size();
    }
    b.length = &out_lengths[c];
    b.is_null = &nulls[c];
    b.error = &errors[c];
  }
  if (mysql_stmt_bind_result(stmt, out.data()) != 0) {
    return std::unexpected(StmtFail(stmt, "bind result"));
  }
  for (;;) {
    int rc = mysql_stmt_fetch(stmt);
    if (rc == MYSQL_NO_DATA) {
      break;
    }
    if (rc == MYSQL_DATA_TRUNCATED) {
      return base::Internal("mysql: result column truncated");
    }
    if (rc != 0) {
      return std::unexpected(StmtFail(stmt, "fetch"));
    }
    Row row;
    row.reserve(columns);
    for (unsigned int c = 0; c < columns; ++c) {
      if (nulls[c] != 0) {
        row.emplace_back(nullptr);
      } else if (out[c].buffer_type == MYSQL_TYPE_LONGLONG) {
        row.emplace_back(static_cast<int64_t>(out_ints[c]));
      } else {
        row.emplace_back(std::string(buffers[c].data(), out_lengths[c]));
      }
    }
    result.rows.push_back(std::move(row));
  }
  return result;
}

base::Status MysqlConnection::Begin() {
  auto ok = Exec("START TRANSACTION", {});
  return ok ? base::Ok() : base::Status(std::unexpected(ok.error()));
}

base::Status MysqlConnection::Commit() {
  commit_sent_ = true;
  auto ok = Exec("COMMIT", {});
  return ok ? base::Ok() : base::Status(std::unexpected(ok.error()));
}

void MysqlConnection::Rollback() {
  if (!lost()) {
    (void)Exec("ROLLBACK", {});
  }
}

}  // namespace turnkey::sql
