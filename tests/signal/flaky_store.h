// FlakyStore: a sql::Store that forwards to a real one, for the call
// history writer's tests: ApplyCallWrites can be made to fail as a whole
// (the database is unreachable) a number of times, can be held at a gate
// (a slow commit) so that writes pile up behind it, and records the size of
// every batch it was given. For the account service's: the answer to a
// commit can be lost (LoseNextCommitAnswer).
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sql/sqlite_store.h"
#include "sql/store.h"

namespace turnkey::signal::testing {

class FlakyStore final : public sql::Store {
 public:
  explicit FlakyStore(std::unique_ptr<sql::Store> inner) : inner_(std::move(inner)) {}

  // The next `n` ApplyCallWrites fail with kUnavailable.
  void FailNext(int n) {
    std::lock_guard lock(mutex_);
    failures_ = n;
  }
  // Every ApplyCallWrites holding an insert of call `id` fails as a whole
  // with kInternal (a write the database cannot take).
  void Poison(std::string id) {
    std::lock_guard lock(mutex_);
    poison_ = std::move(id);
  }
  // ApplyCallWrites waits until Open() (true) or passes (false).
  void Close() {
    std::lock_guard lock(mutex_);
    gate_open_ = false;
  }
  void Open() {
    {
      std::lock_guard lock(mutex_);
      gate_open_ = true;
    }
    changed_.notify_all();
  }
  // Waits until a batch is held at the closed gate.
  bool WaitHeld(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return held_ > 0; });
  }
  // The next CreateUser, ChangePassword or RotateRefreshToken that succeeds
  // is reported as a commit whose answer was lost
  // (sql::kCommitOutcomeUnknown): it is in.
  void LoseNextCommitAnswer() {
    std::lock_guard lock(mutex_);
    lose_commit_answer_ = true;
  }
  // The next InsertRefreshToken or InsertLoginRefreshToken fails with
  // kUnavailable and writes nothing (false: no longer).
  void FailNextTokenInsert(bool fail = true) {
    std::lock_guard lock(mutex_);
    fail_token_insert_ = fail;
  }
  // Sizes of the batches given to ApplyCallWrites (failed ones included).
  std::vector<size_t> batches() {
    std::lock_guard lock(mutex_);
    return batches_;
  }

  base::Result<std::vector<base::Status>> ApplyCallWrites(
      std::span<const sql::CallWrite> writes) override {
    {
      std::unique_lock lock(mutex_);
      batches_.push_back(writes.size());
      ++held_;
      changed_.notify_all();
      changed_.wait(lock, [&] { return gate_open_; });
      --held_;
      if (failures_ > 0) {
        --failures_;
        return base::Unavailable("database unreachable (test)");
      }
      for (const sql::CallWrite& write : writes) {
        const auto* call = std::get_if<sql::Call>(&write);
        if (call != nullptr && !poison_.empty() && call->id == poison_) {
          return base::Internal("a write the database cannot take (test)");
        }
      }
    }
    return inner_->ApplyCallWrites(writes);
  }

  // ---- Forwarded unchanged.
  base::Result<sql::User> CreateUser(const sql::NewUser& user) override {
    return LoseAnswerIfAsked(inner_->CreateUser(user));
  }
  base::Result<sql::User> GetUserById(std::string_view id) override {
    return inner_->GetUserById(id);
  }
  base::Result<sql::User> GetUserByEmail(std::string_view email) override {
    return inner_->GetUserByEmail(email);
  }
  base::Result<sql::User> GetUserByHandle(std::string_view handle) override {
    return inner_->GetUserByHandle(handle);
  }
  base::Result<sql::UserSummary> GetUserSummaryById(std::string_view id) override {
    return inner_->GetUserSummaryById(id);
  }
  base::Result<sql::User> UpdateProfile(std::string_view user_id, const sql::ProfileUpdate& update,
                                        int64_t now_ms) override {
    return inner_->UpdateProfile(user_id, update, now_ms);
  }
  base::Status UpdatePasswordHash(std::string_view user_id, std::string_view expected_hash,
                                  std::string_view password_hash, int64_t now_ms) override {
    return inner_->UpdatePasswordHash(user_id, expected_hash, password_hash, now_ms);
  }
  base::Result<int64_t> ChangePassword(std::string_view user_id, std::string_view password_hash,
                                       int64_t now_ms,
                                       const sql::RefreshToken* new_login) override {
    return LoseAnswerIfAsked(inner_->ChangePassword(user_id, password_hash, now_ms, new_login));
  }
  base::Result<std::vector<sql::UserSummary>> SearchUsersByHandlePrefix(
      std::string_view prefix, std::string_view exclude_user_id, int limit) override {
    return inner_->SearchUsersByHandlePrefix(prefix, exclude_user_id, limit);
  }
  base::Status InsertRefreshToken(const sql::RefreshToken& token) override {
    if (TakeTokenInsertFailure()) {
      return base::Unavailable("database unreachable (test)");
    }
    return inner_->InsertRefreshToken(token);
  }
  base::Status InsertLoginRefreshToken(const sql::RefreshToken& token,
                                       std::string_view password_hash) override {
    if (TakeTokenInsertFailure()) {
      return base::Unavailable("database unreachable (test)");
    }
    return inner_->InsertLoginRefreshToken(token, password_hash);
  }
  base::Result<sql::RefreshToken> FindRefreshToken(std::string_view token_hash) override {
    return inner_->FindRefreshToken(token_hash);
  }
  base::Result<sql::RotateResult> RotateRefreshToken(std::string_view old_hash,
                                                     std::string_view new_hash,
                                                     int64_t new_expires_at_ms,
                                                     int64_t now_ms) override {
    return LoseAnswerIfAsked(
        inner_->RotateRefreshToken(old_hash, new_hash, new_expires_at_ms, now_ms));
  }
  base::Result<bool> RevokeRefreshToken(std::string_view token_hash, int64_t now_ms) override {
    return inner_->RevokeRefreshToken(token_hash, now_ms);
  }
  base::Result<int64_t> RevokeAllRefreshTokens(std::string_view user_id, int64_t now_ms) override {
    return inner_->RevokeAllRefreshTokens(user_id, now_ms);
  }
  base::Result<std::vector<sql::EndedLogin>> ListEndedLogins(int64_t since_ms) override {
    return inner_->ListEndedLogins(since_ms);
  }
  base::Result<int64_t> PurgeExpiredRefreshTokens(int64_t expired_before_ms,
                                                  int64_t limit) override {
    return inner_->PurgeExpiredRefreshTokens(expired_before_ms, limit);
  }
  base::Result<std::vector<sql::Contact>> ListContacts(std::string_view owner_id) override {
    return inner_->ListContacts(owner_id);
  }
  base::Result<bool> AddContact(std::string_view owner_id, std::string_view contact_id,
                                int64_t now_ms) override {
    return inner_->AddContact(owner_id, contact_id, now_ms);
  }
  base::Result<bool> RemoveContact(std::string_view owner_id,
                                   std::string_view contact_id) override {
    return inner_->RemoveContact(owner_id, contact_id);
  }
  base::Result<sql::ContactSync> ReplaceContacts(std::string_view owner_id,
                                                 std::span<const std::string> user_ids,
                                                 std::span<const std::string> handles,
                                                 int64_t now_ms) override {
    return inner_->ReplaceContacts(owner_id, user_ids, handles, now_ms);
  }
  base::Status InsertCall(const sql::Call& call) override { return inner_->InsertCall(call); }
  base::Status UpdateCallState(const sql::CallStateUpdate& update) override {
    return inner_->UpdateCallState(update);
  }
  base::Status RecordIceReport(const sql::IceUpdate& update) override {
    return inner_->RecordIceReport(update);
  }
  base::Result<sql::Call> GetCall(std::string_view call_id) override {
    return inner_->GetCall(call_id);
  }
  base::Result<sql::HistoryPage> CallHistory(const sql::HistoryQuery& query) override {
    return inner_->CallHistory(query);
  }
  base::Result<sql::HistoryPage> MissedCalls(std::string_view user_id, int limit,
                                             int skip) override {
    return inner_->MissedCalls(user_id, limit, skip);
  }
  base::Result<int> EndUnfinishedCallsById(std::span<const std::string> ids) override {
    return inner_->EndUnfinishedCallsById(ids);
  }
  base::Result<int> EndUnfinishedCalls(std::optional<int64_t> created_before_ms) override {
    return inner_->EndUnfinishedCalls(created_before_ms);
  }
  base::Status HideCall(std::string_view call_id, std::string_view user_id) override {
    return inner_->HideCall(call_id, user_id);
  }
  base::Status Ping() override { return inner_->Ping(); }
  base::Result<sql::SchemaState> GetSchemaState() override { return inner_->GetSchemaState(); }
  base::Result<int> Migrate() override { return inner_->Migrate(); }
  base::Status CheckSchema() override { return inner_->CheckSchema(); }

 private:
  template <typename T>
  base::Result<T> LoseAnswerIfAsked(base::Result<T> result) {
    std::lock_guard lock(mutex_);
    if (result && std::exchange(lose_commit_answer_, false)) {
      return base::Unavailable(std::string(sql::kCommitOutcomeUnknown));
    }
    return result;
  }

  bool TakeTokenInsertFailure() {
    std::lock_guard lock(mutex_);
    return std::exchange(fail_token_insert_, false);
  }

  std::unique_ptr<sql::Store> inner_;
  bool lose_commit_answer_ = false;
  bool fail_token_insert_ = false;
  std::mutex mutex_;
  std::condition_variable changed_;
  int failures_ = 0;
  std::string poison_;
  bool gate_open_ = true;
  int held_ = 0;
  std::vector<size_t> batches_;
};

// A FlakyStore over a migrated in-memory SQLite store holding the users
// "alice-id" and "bob-id" (created at `now_ms`), whom calls can be between.
inline base::Result<std::unique_ptr<FlakyStore>> OpenStoreOfAliceAndBob(int64_t now_ms) {
  sql::SqliteStoreOptions options;
  options.path = ":memory:";
  auto inner = sql::SqliteStore::Open(options);
  if (!inner) {
    return std::unexpected(inner.error());
  }
  if (auto migrated = (*inner)->Migrate(); !migrated) {
    return std::unexpected(migrated.error());
  }
  auto store = std::make_unique<FlakyStore>(std::move(*inner));
  for (const char* name : {"alice", "bob"}) {
    sql::NewUser user;
    user.id = std::string(name) + "-id";
    user.email = std::string(name) + "@example.test";
    user.handle = name;
    user.password_hash = "x";
    user.now_ms = now_ms;
    if (auto created = store->CreateUser(user); !created) {
      return std::unexpected(created.error());
    }
  }
  return store;
}

}  // namespace turnkey::signal::testing
