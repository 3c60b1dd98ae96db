// SqlStore: the Store logic written once over the Database driver interface,
// so the SQLite and MySQL stores run the same statements, checks and
// transactions and behave the same. SqliteStore and MysqlStore only add how
// to open their Database.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <utility>

#include "sql/database.h"
#include "sql/migrations.h"
#include "sql/query_util.h"
#include "sql/schema_migrator.h"
#include "sql/store.h"

namespace turnkey::sql {

class SqlStore : public Store {
 public:
  // `migrations` (ascending versions from 1, the dialect of `db`) must
  // outlive the store; EmbeddedMigrations() are static.
  SqlStore(std::unique_ptr<Database> db, std::span<const Migration> migrations);
  ~SqlStore() override;
  SqlStore(const SqlStore&) = delete;
  SqlStore& operator=(const SqlStore&) = delete;

  base::Result<User> CreateUser(const NewUser& user) override;
  base::Result<User> GetUserById(std::string_view id) override;
  base::Result<User> GetUserByEmail(std::string_view email) override;
  base::Result<User> GetUserByHandle(std::string_view handle) override;
  base::Result<UserSummary> GetUserSummaryById(std::string_view id) override;
  base::Result<User> UpdateProfile(std::string_view user_id, const ProfileUpdate& update,
                                   int64_t now_ms) override;
  base::Status UpdatePasswordHash(std::string_view user_id, std::string_view expected_hash,
                                  std::string_view password_hash, int64_t now_ms) override;
  base::Result<int64_t> ChangePassword(std::string_view user_id, std::string_view password_hash,
                                       int64_t now_ms, const RefreshToken* new_login) override;
  base::Result<std::vector<UserSummary>> SearchUsersByHandlePrefix(std::string_view prefix,
                                                                   std::string_view exclude_user_id,
                                                                   int limit) override;

  base::Status InsertRefreshToken(const RefreshToken& token) override;
  base::Status InsertLoginRefreshToken(const RefreshToken& token,
                                       std::string_view password_hash) override;
  base::Result<RefreshToken> FindRefreshToken(std::string_view token_hash) override;
  base::Result<RotateResult> RotateRefreshToken(std::string_view old_hash,
                                                std::string_view new_hash,
                                                int64_t new_expires_at_ms, int64_t now_ms) override;
  base::Result<bool> RevokeRefreshToken(std::string_view token_hash, int64_t now_ms) override;
  base::Result<int64_t> RevokeAllRefreshTokens(std::string_view user_id, int64_t now_ms) override;
  base::Result<std::vector<EndedLogin>> ListEndedLogins(int64_t since_ms) override;
  base::Result<int64_t> PurgeExpiredRefreshTokens(int64_t expired_before_ms,
                                                  int64_t limit) override;

  base::Result<std::vector<Contact>> ListContacts(std::string_view owner_id) override;
  base::Result<bool> AddContact(std::string_view owner_id, std::string_view contact_id,
                                int64_t now_ms) override;
  base::Result<bool> RemoveContact(std::string_view owner_id, std::string_view contact_id) override;
  base::Result<ContactSync> ReplaceContacts(std::string_view owner_id,
                                            std::span<const std::string> user_ids,
                                            std::span<const std::string> handles,
                                            int64_t now_ms) override;

  base::Status InsertCall(const Call& call) override;
  base::Status UpdateCallState(const CallStateUpdate& update) override;
  base::Status RecordIceReport(const IceUpdate& update) override;
  base::Result<std::vector<base::Status>> ApplyCallWrites(
      std::span<const CallWrite> writes) override;
  base::Result<Call> GetCall(std::string_view call_id) override;
  base::Result<HistoryPage> CallHistory(const HistoryQuery& query) override;
  base::Result<HistoryPage> MissedCalls(std::string_view user_id, int limit, int skip) override;
  base::Status HideCall(std::string_view call_id, std::string_view user_id) override;
  base::Result<int> EndUnfinishedCalls(std::optional<int64_t> created_before_ms) override;
  base::Result<int> EndUnfinishedCallsById(std::span<const std::string> ids) override;

  // Whose call state the calls this store writes are in, and the only calls
  // EndUnfinishedCalls ends: "" (the default) for a single signaling node,
  // the cluster's name for a node of one. Two services on one database (a
  // node started with a mistyped cluster.name) then leave each other's live
  // calls alone. Set before the store is used.
  void set_cluster(std::string cluster) { cluster_ = std::move(cluster); }

  // SELECT 1, and kUnavailable while writes fail: the last write within the
  // past 30 s could not be made (a lock, a full disk, a read-only file)
  // and none was made since. Reads alone would not show those.
  base::Status Ping() override;
  base::Result<SchemaState> GetSchemaState() override;
  base::Result<int> Migrate() override;
  base::Status CheckSchema() override;

 protected:
  // Closes every connection (a subclass's destructor, before it tidies the
  // files up). The store is not used afterwards.
  void CloseDatabase() { db_.reset(); }

 private:
  // Every operation goes through here: db_->Run, and NoteWrite for writes.
  base::Status Run(const OpOptions& options, const Op& op);
  base::Status Read(const Op& op);
  // One call-history write of any kind, validated, in its own transaction.
  base::Status WriteCall(const CallWrite& write);
  base::Status Write(bool idempotent, const Op& op);
  // Runs one operation that yields a base::Result: its value, or its error,
  // or the store's. ReadValue and WriteValue are Read() and Write() of it.
  template <typename Query>
  auto RunValue(const OpOptions& options, const Query& query) {
    decltype(query(std::declval<Connection&>())) result;
    auto status = Run(options, [&](Connection& conn) -> base::Status {
      result = query(conn);
      return result ? base::Ok() : base::Status(ErrorOf(result));
    });
    if (!status) {
      return decltype(result)(std::unexpected(status.error()));
    }
    return result;
  }
  template <typename Query>
  auto ReadValue(const Query& query) {
    return RunValue({OpKind::kRead, true}, query);
  }
  template <typename Query>
  auto WriteValue(bool idempotent, const Query& query) {
    return RunValue({OpKind::kWrite, idempotent}, query);
  }

  // Records how a write went: a database that answers (success or a refusal
  // of its own) or one that does not (kUnavailable: down, locked, full).
  void NoteWrite(const base::Status& status);

  std::unique_ptr<Database> db_;
  SchemaMigrator migrator_;
  std::string cluster_;
  // Steady-clock nanoseconds of the last write the database took and of the
  // last it could not (0 = none), and the error of that one.
  std::atomic<int64_t> last_write_ok_ns_{0};
  std::atomic<int64_t> last_write_failed_ns_{0};
  std::mutex write_error_mutex_;
  std::string write_error_;  // guarded by write_error_mutex_
};

}  // namespace turnkey::sql
