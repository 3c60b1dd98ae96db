#include "sql/sql_store.h"

#include <fmt/format.h>

#include <array>
#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "sql/fields.h"
#include "sql/query_util.h"
#include "sql/row_reader.h"
#include "sql/token_queries.h"

namespace turnkey::sql {

namespace {

// How long a write the database could not make keeps Ping failing when no
// write follows: the history retries every 15 s while it waits, so a
// database still broken keeps it failing, and one mended while idle is
// ready again within this time.
constexpr std::chrono::seconds kWriteFailureMemory{30};

int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The columns ReadUser() expects, in order.
constexpr std::string_view kUserColumns =
    "id, email, handle, display_name, password_hash, created_at, updated_at";
constexpr std::string_view kInsertUser =
    "INSERT INTO users (id, email, email_lower, handle, handle_lower, display_name, "
    "password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
constexpr std::string_view kEmailInUse = "SELECT 1 FROM users WHERE email_lower = ?";
constexpr std::string_view kHandleInUse = "SELECT 1 FROM users WHERE handle_lower = ?";
constexpr std::string_view kHandleInUseByOther =
    "SELECT 1 FROM users WHERE handle_lower = ? AND id <> ?";
constexpr std::string_view kUpdateProfile =
    "UPDATE users SET display_name = COALESCE(?, display_name), handle = COALESCE(?, handle), "
    "handle_lower = COALESCE(?, handle_lower), updated_at = ? WHERE id = ?";
constexpr std::string_view kUpdatePassword =
    "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?";
constexpr std::string_view kReplacePassword =
    "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ? AND password_hash = ?";
// Locks the user's row (a write lock on MySQL, the database's on SQLite)
// while its password hash is the given one; changes nothing.
constexpr std::string_view kLockUserIfPassword =
    "UPDATE users SET password_hash = password_hash WHERE id = ? AND password_hash = ?";
constexpr std::string_view kSearchHandles =
    "SELECT id, handle, display_name FROM users WHERE handle_lower LIKE ? ESCAPE '!' "
    "AND id <> ? ORDER BY handle_lower LIMIT ?";
constexpr std::string_view kUserExists = "SELECT id FROM users WHERE id = ?";
constexpr std::string_view kUserIdByHandle = "SELECT id FROM users WHERE handle_lower = ?";

constexpr std::string_view kListContacts =
    "SELECT u.id, u.handle, u.display_name, k.created_at FROM contacts k "
    "JOIN users u ON u.id = k.contact_id WHERE k.owner_id = ? ORDER BY u.handle_lower, u.id";
constexpr std::string_view kContactExists =
    "SELECT 1 FROM contacts WHERE owner_id = ? AND contact_id = ?";
constexpr std::string_view kContactIds = "SELECT contact_id FROM contacts WHERE owner_id = ?";
constexpr std::string_view kInsertContact =
    "INSERT INTO contacts (owner_id, contact_id, created_at) VALUES (?, ?, ?)";
constexpr std::string_view kDeleteContact =
    "DELETE FROM contacts WHERE owner_id = ? AND contact_id = ?";

base::Result<User> ReadUser(const Row& row) {
  RowReader r(row);
  User user;
  user.id = r.Text();
  user.email = r.Text();
  user.handle = r.Text();
  user.display_name = r.Text();
  user.password_hash = r.Text();
  user.created_at_ms = r.Int();
  user.updated_at_ms = r.Int();
  if (!r.ok()) {
    return base::Internal("users: unexpected row");
  }
  return user;
}

// id, handle, display_name.
base::Result<UserSummary> ReadUserSummary(const Row& row) {
  RowReader r(row);
  UserSummary user;
  user.id = r.Text();
  user.handle = r.Text();
  user.display_name = r.Text();
  if (!r.ok()) {
    return base::Internal("users: unexpected row");
  }
  return user;
}

// Runs `sql`, a query of users by one key expected to return at most one
// row, and reads that row with `read`.
template <typename Read>
auto QueryOneUser(Connection& conn, std::string_view sql, std::string_view key, Read read)
    -> decltype(read(std::declval<const Row&>())) {
  const std::array<Param, 1> params{key};
  auto result = conn.Exec(sql, params);
  if (!result) {
    return ErrorOf(result);
  }
  if (result->rows.empty()) {
    return base::NotFound("user not found");
  }
  return read(result->rows.front());
}

base::Result<User> QueryUser(Connection& conn, std::string_view where_column,
                             std::string_view key) {
  const std::string sql =
      fmt::format("SELECT {} FROM users WHERE {} = ?", kUserColumns, where_column);
  return QueryOneUser(conn, sql, key, &ReadUser);
}

// A unique violation on users, as the error callers can tell apart.
base::Error UserConflict(const base::Error& error) {
  if (error.code != base::ErrorCode::kAlreadyExists) {
    return error;
  }
  if (error.message.find("email_lower") != std::string::npos) {
    return {base::ErrorCode::kAlreadyExists, std::string(kEmailTaken)};
  }
  if (error.message.find("handle_lower") != std::string::npos) {
    return {base::ErrorCode::kAlreadyExists, std::string(kHandleTaken)};
  }
  return {base::ErrorCode::kAlreadyExists, std::string(kIdTaken)};
}

base::Status CheckHandle(std::string_view handle) {
  return CheckText("handle", handle, kMaxHandleBytes, true);
}

base::Status CheckNewUser(const NewUser& user) {
  if (!user.id.empty()) {
    if (auto ok = CheckId("id", user.id); !ok) {
      return ok;
    }
  }
  if (auto ok = CheckText("email", user.email, kMaxEmailBytes, true); !ok) {
    return ok;
  }
  if (auto ok = CheckHandle(user.handle); !ok) {
    return ok;
  }
  if (auto ok = CheckText("display_name", user.display_name, kMaxDisplayNameBytes, false); !ok) {
    return ok;
  }
  return CheckText("password_hash", user.password_hash, kMaxPasswordHashBytes, true);
}

// The hash and updated_at of one user; kNotFound if there is none.
base::Status SetPasswordHash(Connection& conn, std::string_view user_id,
                             std::string_view password_hash, int64_t now_ms) {
  const std::array<Param, 3> params{password_hash, now_ms, user_id};
  auto updated = conn.Exec(kUpdatePassword, params);
  if (!updated) {
    return ErrorOf(updated);
  }
  if (updated->affected_rows == 0) {
    return base::NotFound("user not found");
  }
  return base::Ok();
}

base::Result<std::vector<Contact>> QueryContacts(Connection& conn, std::string_view owner_id) {
  const std::array<Param, 1> params{owner_id};
  auto result = conn.Exec(kListContacts, params);
  if (!result) {
    return ErrorOf(result);
  }
  std::vector<Contact> contacts;
  contacts.reserve(result->rows.size());
  for (const Row& row : result->rows) {
    RowReader r(row);
    Contact contact;
    contact.user.id = r.Text();
    contact.user.handle = r.Text();
    contact.user.display_name = r.Text();
    contact.added_at_ms = r.Int();
    if (!r.ok()) {
      return base::Internal("contacts: unexpected row");
    }
    contacts.push_back(std::move(contact));
  }
  return contacts;
}

}  // namespace

SqlStore::SqlStore(std::unique_ptr<Database> db, std::span<const Migration> migrations)
    : db_(std::move(db)), migrator_(db_->dialect(), migrations) {}

SqlStore::~SqlStore() = default;

base::Status SqlStore::Run(const OpOptions& options, const Op& op) {
  base::Status status = db_->Run(options, op);
  if (options.kind == OpKind::kWrite) {
    NoteWrite(status);
  }
  return status;
}

base::Status SqlStore::Read(const Op& op) { return Run({OpKind::kRead, true}, op); }

base::Status SqlStore::Write(bool idempotent, const Op& op) {
  return Run({OpKind::kWrite, idempotent}, op);
}

void SqlStore::NoteWrite(const base::Status& status) {
  if (status || status.error().code != base::ErrorCode::kUnavailable) {
    last_write_ok_ns_ = SteadyNs();
    return;
  }
  {
    std::lock_guard lock(write_error_mutex_);
    write_error_ = status.error().message;
  }
  last_write_failed_ns_ = SteadyNs();
}

// ---- Users

base::Result<User> SqlStore::CreateUser(const NewUser& in) {
  if (auto ok = CheckNewUser(in); !ok) {
    return std::unexpected(ok.error());
  }
  User user;
  user.id = in.id.empty() ? GenerateId() : in.id;
  user.email = in.email;
  user.handle = in.handle;
  user.display_name = in.display_name;
  user.password_hash = in.password_hash;
  user.created_at_ms = in.now_ms;
  user.updated_at_ms = in.now_ms;
  std::optional<RefreshToken> token = in.refresh_token;
  if (token) {
    token->user_id = user.id;
    if (auto ok = ValidateRefreshToken(*token); !ok) {
      return std::unexpected(ok.error());
    }
  }
  const std::string email_lower = AsciiLower(in.email);
  const std::string handle_lower = AsciiLower(in.handle);

  // Checked before inserting so both backends report the email first when
  // both are taken; the unique indexes still decide a race.
  auto status = Write(false, [&](Connection& conn) -> base::Status {
    const std::array<Param, 1> by_email{std::string_view(email_lower)};
    auto email_taken = Exists(conn, kEmailInUse, by_email);
    if (!email_taken) {
      return ErrorOf(email_taken);
    }
    if (*email_taken) {
      return base::MakeError(base::ErrorCode::kAlreadyExists, std::string(kEmailTaken));
    }
    const std::array<Param, 1> by_handle{std::string_view(handle_lower)};
    auto handle_taken = Exists(conn, kHandleInUse, by_handle);
    if (!handle_taken) {
      return ErrorOf(handle_taken);
    }
    if (*handle_taken) {
      return base::MakeError(base::ErrorCode::kAlreadyExists, std::string(kHandleTaken));
    }
    const std::array<Param, 9> params{std::string_view(user.id),
                                      std::string_view(user.email),
                                      std::string_view(email_lower),
                                      std::string_view(user.handle),
                                      std::string_view(handle_lower),
                                      std::string_view(user.display_name),
                                      std::string_view(user.password_hash),
                                      user.created_at_ms,
                                      user.updated_at_ms};
    auto inserted = conn.Exec(kInsertUser, params);
    if (!inserted) {
      return std::unexpected(UserConflict(inserted.error()));
    }
    return token ? InsertRefreshTokenRow(conn, *token) : base::Ok();
  });
  if (!status) {
    return std::unexpected(status.error());
  }
  return user;
}

base::Result<User> SqlStore::GetUserById(std::string_view id) {
  if (!IsValidId(id)) {
    return base::NotFound("user not found");
  }
  return ReadValue([&](Connection& conn) { return QueryUser(conn, "id", id); });
}

base::Result<UserSummary> SqlStore::GetUserSummaryById(std::string_view id) {
  if (!IsValidId(id)) {
    return base::NotFound("user not found");
  }
  // SQLite: only columns of the users_summary index (migration 004), named,
  // because the planner would pick the primary key's unique index and read
  // the row from the table. MySQL: the primary key holds the row.
  const std::string_view sql =
      db_->dialect() == Dialect::kSqlite
          ? "SELECT id, handle, display_name FROM users INDEXED BY users_summary WHERE id = ?"
          : "SELECT id, handle, display_name FROM users WHERE id = ?";
  return ReadValue([&](Connection& conn) { return QueryOneUser(conn, sql, id, &ReadUserSummary); });
}

base::Result<User> SqlStore::GetUserByEmail(std::string_view email) {
  if (!CheckText("email", email, kMaxEmailBytes, true)) {
    return base::NotFound("user not found");
  }
  const std::string key = AsciiLower(email);
  return ReadValue([&](Connection& conn) { return QueryUser(conn, "email_lower", key); });
}

base::Result<User> SqlStore::GetUserByHandle(std::string_view handle) {
  if (!CheckHandle(handle)) {
    return base::NotFound("user not found");
  }
  const std::string key = AsciiLower(handle);
  return ReadValue([&](Connection& conn) { return QueryUser(conn, "handle_lower", key); });
}

base::Result<User> SqlStore::UpdateProfile(std::string_view user_id, const ProfileUpdate& update,
                                           int64_t now_ms) {
  if (auto ok = CheckId("user_id", user_id); !ok) {
    return std::unexpected(ok.error());
  }
  if (update.display_name) {
    if (auto ok = CheckText("display_name", *update.display_name, kMaxDisplayNameBytes, false);
        !ok) {
      return std::unexpected(ok.error());
    }
  }
  std::optional<std::string> handle_lower;
  if (update.handle) {
    if (auto ok = CheckHandle(*update.handle); !ok) {
      return std::unexpected(ok.error());
    }
    handle_lower = AsciiLower(*update.handle);
  }

  base::Result<User> user;
  auto status = Write(true, [&](Connection& conn) -> base::Status {
    if (handle_lower) {
      const std::array<Param, 2> check{std::string_view(*handle_lower), user_id};
      auto taken = Exists(conn, kHandleInUseByOther, check);
      if (!taken) {
        return ErrorOf(taken);
      }
      if (*taken) {
        return base::MakeError(base::ErrorCode::kAlreadyExists, std::string(kHandleTaken));
      }
    }
    const std::array<Param, 5> params{OptionalText(update.display_name),
                                      OptionalText(update.handle), OptionalText(handle_lower),
                                      now_ms, user_id};
    auto updated = conn.Exec(kUpdateProfile, params);
    if (!updated) {
      return std::unexpected(UserConflict(updated.error()));
    }
    if (updated->affected_rows == 0) {
      return base::NotFound("user not found");
    }
    user = QueryUser(conn, "id", user_id);
    return user ? base::Ok() : base::Status(ErrorOf(user));
  });
  if (!status) {
    return std::unexpected(status.error());
  }
  return user;
}

base::Status SqlStore::UpdatePasswordHash(std::string_view user_id, std::string_view expected_hash,
                                          std::string_view password_hash, int64_t now_ms) {
  if (auto ok = CheckId("user_id", user_id); !ok) {
    return ok;
  }
  if (auto ok = CheckText("password_hash", password_hash, kMaxPasswordHashBytes, true); !ok) {
    return ok;
  }
  return Write(true, [&](Connection& conn) -> base::Status {
    const std::array<Param, 4> params{password_hash, now_ms, user_id, expected_hash};
    auto updated = conn.Exec(kReplacePassword, params);
    if (!updated) {
      return ErrorOf(updated);
    }
    if (updated->affected_rows != 0) {
      return base::Ok();
    }
    const std::array<Param, 1> id{user_id};
    auto exists = conn.Exec(kUserExists, id);
    if (!exists) {
      return ErrorOf(exists);
    }
    return exists->rows.empty()
               ? base::NotFound("user not found")
               : base::MakeError(base::ErrorCode::kPermissionDenied, "password changed");
  });
}

base::Result<int64_t> SqlStore::ChangePassword(std::string_view user_id,
                                               std::string_view password_hash, int64_t now_ms,
                                               const RefreshToken* new_login) {
  if (auto ok = CheckId("user_id", user_id); !ok) {
    return std::unexpected(ok.error());
  }
  if (auto ok = CheckText("password_hash", password_hash, kMaxPasswordHashBytes, true); !ok) {
    return std::unexpected(ok.error());
  }
  if (new_login) {
    if (auto ok = ValidateRefreshToken(*new_login); !ok) {
      return std::unexpected(ok.error());
    }
    if (new_login->user_id != user_id) {
      return base::InvalidArgument("new_login: not a token of user_id");
    }
  }
  // Run again after a lost commit only without a new login: with one, a
  // second run after a commit that went in would revoke it and then find its
  // hash taken, where kCommitOutcomeUnknown lets the caller look it up.
  return WriteValue(new_login == nullptr, [&](Connection& conn) -> base::Result<int64_t> {
    if (auto set = SetPasswordHash(conn, user_id, password_hash, now_ms); !set) {
      return std::unexpected(set.error());
    }
    auto revoked = RevokeUserRefreshTokens(conn, user_id, now_ms);
    if (!revoked || !new_login) {
      return revoked;
    }
    if (auto inserted = InsertRefreshTokenRow(conn, *new_login); !inserted) {
      return std::unexpected(inserted.error());
    }
    return revoked;
  });
}

base::Result<std::vector<UserSummary>> SqlStore::SearchUsersByHandlePrefix(
    std::string_view prefix, std::string_view exclude_user_id, int limit) {
  if (limit < 1 || limit > kMaxPageSize) {
    return base::InvalidArgument(fmt::format("limit: must be 1-{}", kMaxPageSize));
  }
  std::vector<UserSummary> found;
  if (!CheckHandle(prefix)) {
    return found;
  }
  const std::string pattern = LikePrefixPattern(AsciiLower(prefix));
  // A malformed id matches no user, so excluding it excludes nobody.
  const std::string_view exclude = IsValidId(exclude_user_id) ? exclude_user_id : "";
  auto status = Read([&](Connection& conn) -> base::Status {
    found.clear();
    const std::array<Param, 3> params{std::string_view(pattern), exclude, int64_t{limit}};
    auto result = conn.Exec(kSearchHandles, params);
    if (!result) {
      return ErrorOf(result);
    }
    for (const Row& row : result->rows) {
      base::Result<UserSummary> user = ReadUserSummary(row);
      if (!user) {
        return std::unexpected(user.error());
      }
      found.push_back(std::move(*user));
    }
    return base::Ok();
  });
  if (!status) {
    return std::unexpected(status.error());
  }
  return found;
}

// ---- Refresh tokens

base::Status SqlStore::InsertRefreshToken(const RefreshToken& token) {
  if (auto ok = ValidateRefreshToken(token); !ok) {
    return ok;
  }
  return Write(false, [&](Connection& conn) { return InsertRefreshTokenRow(conn, token); });
}

base::Status SqlStore::InsertLoginRefreshToken(const RefreshToken& token,
                                               std::string_view password_hash) {
  if (auto ok = ValidateRefreshToken(token); !ok) {
    return ok;
  }
  return Write(false, [&](Connection& conn) -> base::Status {
    const std::array<Param, 2> params{std::string_view(token.user_id), password_hash};
    auto locked = conn.Exec(kLockUserIfPassword, params);
    if (!locked) {
      return ErrorOf(locked);
    }
    if (locked->affected_rows == 0) {
      return base::MakeError(base::ErrorCode::kPermissionDenied, "password changed");
    }
    return InsertRefreshTokenRow(conn, token);
  });
}

base::Result<RefreshToken> SqlStore::FindRefreshToken(std::string_view token_hash) {
  if (!IsValidId(token_hash)) {
    return base::NotFound("refresh token not found");
  }
  return ReadValue([&](Connection& conn) { return SelectRefreshToken(conn, token_hash); });
}

base::Result<RotateResult> SqlStore::RotateRefreshToken(std::string_view old_hash,
                                                        std::string_view new_hash,
                                                        int64_t new_expires_at_ms, int64_t now_ms) {
  if (auto ok = CheckId("new_hash", new_hash); !ok) {
    return std::unexpected(ok.error());
  }
  RotateResult out;
  if (!IsValidId(old_hash)) {
    return out;
  }
  auto status = Write(false, [&](Connection& conn) -> base::Status {
    auto rotated = RotateRefreshTokenRows(conn, old_hash, new_hash, new_expires_at_ms, now_ms);
    if (!rotated) {
      return ErrorOf(rotated);
    }
    out = std::move(*rotated);
    return base::Ok();
  });
  if (!status) {
    return std::unexpected(status.error());
  }
  // A reuse (RotateOutcome::kReused) is logged by the caller, which knows
  // what it does about it.
  return out;
}

base::Result<bool> SqlStore::RevokeRefreshToken(std::string_view token_hash, int64_t now_ms) {
  if (!IsValidId(token_hash)) {
    return false;
  }
  auto changed = WriteValue(
      true, [&](Connection& conn) { return RevokeRefreshTokenRow(conn, token_hash, now_ms); });
  if (!changed) {
    return std::unexpected(changed.error());
  }
  return *changed > 0;
}

base::Result<int64_t> SqlStore::RevokeAllRefreshTokens(std::string_view user_id, int64_t now_ms) {
  if (!IsValidId(user_id)) {
    return 0;
  }
  return WriteValue(
      true, [&](Connection& conn) { return RevokeUserRefreshTokens(conn, user_id, now_ms); });
}

base::Result<std::vector<EndedLogin>> SqlStore::ListEndedLogins(int64_t since_ms) {
  return ReadValue([&](Connection& conn) { return SelectEndedLogins(conn, since_ms); });
}

base::Result<int64_t> SqlStore::PurgeExpiredRefreshTokens(int64_t expired_before_ms,
                                                          int64_t limit) {
  if (limit <= 0) {
    return base::InvalidArgument("purge limit must be positive");
  }
  return WriteValue(true, [&](Connection& conn) {
    return DeleteExpiredRefreshTokens(conn, expired_before_ms, limit);
  });
}

// ---- Contacts

base::Result<std::vector<Contact>> SqlStore::ListContacts(std::string_view owner_id) {
  std::vector<Contact> contacts;
  if (!IsValidId(owner_id)) {
    return contacts;
  }
  auto status = Read([&](Connection& conn) -> base::Status {
    auto listed = QueryContacts(conn, owner_id);
    if (!listed) {
      return ErrorOf(listed);
    }
    contacts = std::move(*listed);
    return base::Ok();
  });
  if (!status) {
    return std::unexpected(status.error());
  }
  return contacts;
}

base::Result<bool> SqlStore::AddContact(std::string_view owner_id, std::string_view contact_id,
                                        int64_t now_ms) {
  if (auto ok = CheckId("owner_id", owner_id); !ok) {
    return std::unexpected(ok.error());
  }
  if (!IsValidId(contact_id)) {
    return base::NotFound("contact user not found");
  }
  if (owner_id == contact_id) {
    return base::InvalidArgument("contact_id: cannot add oneself");
  }
  bool added = false;
  auto status = Write(true, [&](Connection& conn) -> base::Status {
    added = false;
    const std::array<Param, 1> contact{contact_id};
    auto exists = Exists(conn, kUserExists, contact);
    if (!exists) {
      return ErrorOf(exists);
    }
    if (!*exists) {
      return base::NotFound("contact user not found");
    }
    const std::array<Param, 2> pair{owner_id, contact_id};
    auto already = Exists(conn, kContactExists, pair);
    if (!already) {
      return ErrorOf(already);
    }
    if (*already) {
      return base::Ok();
    }
    const std::array<Param, 3> row{owner_id, contact_id, now_ms};
    auto inserted = conn.Exec(kInsertContact, row);
    if (!inserted) {
      // A concurrent add of the same contact won the race: not an error.
      if (inserted.error().code == base::ErrorCode::kAlreadyExists) {
        return base::Ok();
      }
      if (inserted.error().code == base::ErrorCode::kNotFound) {
        return base::NotFound("user not found");
      }
      return ErrorOf(inserted);
    }
    added = true;
    return base::Ok();
  });
  if (!status) {
    return std::unexpected(status.error());
  }
  return added;
}

base::Result<bool> SqlStore::RemoveContact(std::string_view owner_id, std::string_view contact_id) {
  if (!IsValidId(owner_id) || !IsValidId(contact_id)) {
    return false;
  }
  bool removed = false;
  auto status = Write(true, [&](Connection& conn) -> base::Status {
    const std::array<Param, 2> params{owner_id, contact_id};
    auto deleted = conn.Exec(kDeleteContact, params);
    if (!deleted) {
      return ErrorOf(deleted);
    }
    removed = deleted->affected_rows > 0;
    return base::Ok();
  });
  if (!status) {
    return std::unexpected(status.error());
  }
  return removed;
}

base::Result<ContactSync> SqlStore::ReplaceContacts(std::string_view owner_id,
                                                    std::span<const std::string> user_ids,
                                                    std::span<const std::string> handles,
                                                    int64_t now_ms) {
  if (auto ok = CheckId("owner_id", owner_id); !ok) {
    return std::unexpected(ok.error());
  }
  if (user_ids.size() + handles.size() > static_cast<size_t>(kMaxPageSize)) {
    return base::InvalidArgument(
        fmt::format("contacts: at most {} entries in one sync", kMaxPageSize));
  }
  ContactSync sync;
  auto status = Write(true, [&](Connection& conn) -> base::Status {
    sync = ContactSync{};  // a retried transaction starts over
    const std::array<Param, 1> owner{owner_id};
    auto owner_exists = Exists(conn, kUserExists, owner);
    if (!owner_exists) {
      return ErrorOf(owner_exists);
    }
    if (!*owner_exists) {
      return base::NotFound("user not found");
    }
    std::set<std::string> wanted;
    std::set<std::string> asked_ids;
    std::set<std::string> asked_handles;  // lower case
    // Looks `key` up with `sql` once per `asked` set; records `entry` in
    // not_found when it names no user.
    auto resolve = [&](std::set<std::string>& asked, std::string_view sql, bool valid,
                       std::string key, const std::string& entry) -> base::Status {
      if (!asked.insert(key).second) {
        return base::Ok();
      }
      if (!valid) {
        sync.not_found.push_back(entry);
        return base::Ok();
      }
      const std::array<Param, 1> params{std::string_view(key)};
      auto ids = QueryIds(conn, sql, params);
      if (!ids) {
        return ErrorOf(ids);
      }
      if (ids->empty()) {
        sync.not_found.push_back(entry);
      }
      for (std::string& id : *ids) {
        if (id != owner_id) {
          wanted.insert(std::move(id));
        }
      }
      return base::Ok();
    };
    for (const std::string& id : user_ids) {
      if (auto ok = resolve(asked_ids, kUserExists, IsValidId(id), id, id); !ok) {
        return ok;
      }
    }
    for (const std::string& handle : handles) {
      if (auto ok = resolve(asked_handles, kUserIdByHandle, CheckHandle(handle).has_value(),
                            AsciiLower(handle), handle);
          !ok) {
        return ok;
      }
    }
    auto existing = QueryIds(conn, kContactIds, owner);
    if (!existing) {
      return ErrorOf(existing);
    }
    const std::set<std::string> have(existing->begin(), existing->end());
    for (const std::string& id : have) {
      if (!wanted.contains(id)) {
        const std::array<Param, 2> params{owner_id, std::string_view(id)};
        if (auto deleted = conn.Exec(kDeleteContact, params); !deleted) {
          return ErrorOf(deleted);
        }
      }
    }
    for (const std::string& id : wanted) {
      if (!have.contains(id)) {
        const std::array<Param, 3> params{owner_id, std::string_view(id), now_ms};
        // A sync of the same owner running beside this one (two devices at
        // start-up; MariaDB reads committed rows only) may have added it
        // since: it is there, as wanted.
        if (auto inserted = conn.Exec(kInsertContact, params);
            !inserted && inserted.error().code != base::ErrorCode::kAlreadyExists) {
          return ErrorOf(inserted);
        }
      }
    }
    auto listed = QueryContacts(conn, owner_id);
    if (!listed) {
      return ErrorOf(listed);
    }
    sync.contacts = std::move(*listed);
    return base::Ok();
  });
  if (!status) {
    return std::unexpected(status.error());
  }
  return sync;
}

// ---- Health and schema

base::Status SqlStore::Ping() {
  base::Status read = Read([](Connection& conn) -> base::Status {
    auto result = QueryInt(conn, "SELECT 1");
    if (!result) {
      return ErrorOf(result);
    }
    return base::Ok();
  });
  if (!read) {
    return read;
  }
  const int64_t failed = last_write_failed_ns_;
  const int64_t recent =
      SteadyNs() -
      std::chrono::duration_cast<std::chrono::nanoseconds>(kWriteFailureMemory).count();
  if (failed != 0 && failed > last_write_ok_ns_ && failed > recent) {
    std::lock_guard lock(write_error_mutex_);
    return base::Unavailable("writes fail: " + write_error_);
  }
  return base::Ok();
}

base::Result<SchemaState> SqlStore::GetSchemaState() {
  return ReadValue([&](Connection& conn) { return migrator_.State(conn); });
}

base::Result<int> SqlStore::Migrate() {
  base::Result<int> applied;
  auto status = db_->Run({OpKind::kSession, false}, [&](Connection& conn) -> base::Status {
    applied = migrator_.Apply(conn);
    return applied ? base::Ok() : base::Status(ErrorOf(applied));
  });
  if (!status) {
    return std::unexpected(status.error());
  }
  return applied;
}

base::Status SqlStore::CheckSchema() {
  return Read([&](Connection& conn) { return migrator_.Check(conn); });
}

}  // namespace turnkey::sql
