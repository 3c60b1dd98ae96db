// MysqlStore against a MariaDB server that dies and comes back: calls during
// the outage fail with kUnavailable within the configured timeouts, the same
// store works again after the restart (reconnect, statements prepared
// again), and every write it acknowledged is still there.
//
// The server is the one ctest starts (tests/sql/mariadb_server.sh); this test
// kills it with SIGKILL and starts it again through the same script.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "sql/mysql_store.h"
#include "tests/sql/test_backends.h"

namespace turnkey::sql::testing {
namespace {

using base::ErrorCode;
using Clock = std::chrono::steady_clock;

constexpr int64_t kNow = 1'700'000'000'000;

NewUser MakeUser(const std::string& handle) {
  NewUser user;
  user.handle = handle;
  user.email = handle + "@example.org";
  user.display_name = "Name of " + handle;
  user.password_hash = "$argon2id$hash-of-" + handle;
  user.now_ms = kNow;
  return user;
}

class MysqlOutageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = MariadbServer::FromEnvironment();
    ASSERT_TRUE(server) << server.error().message;
    server_ = std::move(*server);
    backend_.emplace();
    ASSERT_EQ(backend_->setup_error(), "");
    options_ = backend_->options();
    options_.pool_size = 3;
    options_.connect_timeout = std::chrono::seconds(2);
    options_.read_timeout = std::chrono::seconds(5);
    options_.write_timeout = std::chrono::seconds(5);
    options_.reconnect_backoff_initial = std::chrono::milliseconds(20);
    options_.reconnect_backoff_max = std::chrono::milliseconds(200);
    auto store = MysqlStore::Open(options_);
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(*store);
    auto migrated = store_->Migrate();
    ASSERT_TRUE(migrated) << migrated.error().message;
  }

  void TearDown() override {
    // Whatever happened, leave a running server for the tests after us.
    if (server_down_) {
      EXPECT_TRUE(server_.Script("up"));
    }
    store_.reset();
    backend_.reset();
  }

  void Down() {
    auto ok = server_.Script("down");
    ASSERT_TRUE(ok) << ok.error().message;
    server_down_ = true;
  }

  void Up() {
    auto ok = server_.Script("up");
    ASSERT_TRUE(ok) << ok.error().message;
    server_down_ = false;
  }

  // Waits for the server to answer through the store, up to `timeout`, by
  // reading the given user. The store fails fast while its reconnect backoff
  // runs, so this asks again every few milliseconds instead of sleeping for
  // a guessed time. Not Ping(): after the writes refused during an outage it
  // keeps failing for 30 s with the server back, until a write succeeds.
  bool WaitUntilReachable(std::chrono::seconds timeout, const std::string& user_id) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (store_->GetUserById(user_id)) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  // Every reader of the pool at once, so several connections are open (and
  // later all go stale together).
  void OpenSeveralConnections() {
    std::vector<std::thread> threads;
    for (int i = 0; i < options_.pool_size; ++i) {
      threads.emplace_back([this] {
        for (int k = 0; k < 20; ++k) {
          EXPECT_TRUE(store_->Ping());
        }
      });
    }
    for (std::thread& t : threads) {
      t.join();
    }
  }

  MariadbServer server_;
  std::optional<MysqlBackend> backend_;
  MysqlStoreOptions options_;
  std::unique_ptr<MysqlStore> store_;
  bool server_down_ = false;
};

TEST_F(MysqlOutageTest, FailsFastDuringAnOutageAndRecoversWithTheSameStore) {
  // Acknowledged before the outage.
  std::vector<User> users;
  for (int i = 0; i < 10; ++i) {
    auto user = store_->CreateUser(MakeUser("before" + std::to_string(i)));
    ASSERT_TRUE(user) << user.error().message;
    users.push_back(*user);
  }
  for (int i = 0; i < 5; ++i) {
    Call call;
    call.id = "call" + std::to_string(i);
    call.caller_id = users[0].id;
    call.callee_id = users[i + 1].id;
    call.status = CallStatus::kCompleted;
    call.created_at_ms = kNow + i;
    call.duration_seconds = i;
    ASSERT_TRUE(store_->InsertCall(call));
  }
  RefreshToken token{"tok0", users[0].id, "fam0", "", kNow, kNow + 3'600'000, std::nullopt};
  ASSERT_TRUE(store_->InsertRefreshToken(token));
  OpenSeveralConnections();

  Down();

  // Each call either reaches the dead server (connection refused, or a
  // stale connection that reads EOF) or is stopped by the reconnect backoff;
  // none may hang past the timeouts, and none may report success.
  const auto bound = options_.connect_timeout + options_.read_timeout + options_.write_timeout;
  const std::vector<std::pair<std::string, std::function<std::optional<ErrorCode>()>>> calls = {
      {"Ping",
       [&] {
         auto r = store_->Ping();
         return r ? std::nullopt : std::optional(r.error().code);
       }},
      {"GetUserById",
       [&] {
         auto r = store_->GetUserById(users[1].id);
         return r ? std::nullopt : std::optional(r.error().code);
       }},
      {"CreateUser",
       [&] {
         auto r = store_->CreateUser(MakeUser("during"));
         return r ? std::nullopt : std::optional(r.error().code);
       }},
      {"UpdateCallState",
       [&] {
         auto r = store_->UpdateCallState({"call0", CallStatus::kFailed, "x", {}, kNow, 0});
         return r ? std::nullopt : std::optional(r.error().code);
       }},
      {"RotateRefreshToken",
       [&] {
         auto r = store_->RotateRefreshToken("tok0", "tok1", kNow + 7'200'000, kNow + 1);
         return r ? std::nullopt : std::optional(r.error().code);
       }},
      {"CallHistory",
       [&] {
         auto r = store_->CallHistory({.user_id = users[0].id});
         return r ? std::nullopt : std::optional(r.error().code);
       }},
  };
  for (int round = 0; round < 3; ++round) {
    for (const auto& [name, call] : calls) {
      SCOPED_TRACE(name + " round " + std::to_string(round));
      const auto started = Clock::now();
      std::optional<ErrorCode> code = call();
      const auto took = Clock::now() - started;
      ASSERT_TRUE(code.has_value()) << "succeeded against a dead server";
      EXPECT_EQ(*code, ErrorCode::kUnavailable);
      EXPECT_LT(took, bound);
    }
  }

  Up();
  ASSERT_TRUE(WaitUntilReachable(std::chrono::seconds(60), users[1].id));

  // The same store works again, and nothing it acknowledged is gone.
  for (const User& user : users) {
    auto found = store_->GetUserById(user.id);
    ASSERT_TRUE(found) << found.error().message;
    EXPECT_EQ(found->handle, user.handle);
    EXPECT_EQ(found->password_hash, user.password_hash);
  }
  auto history = store_->CallHistory({.user_id = users[0].id});
  ASSERT_TRUE(history) << history.error().message;
  EXPECT_EQ(history->entries.size(), 5u);
  EXPECT_EQ(store_->GetCall("call0")->status, CallStatus::kCompleted);  // the failed update
  // The write that was refused during the outage did not happen.
  EXPECT_EQ(store_->GetUserByHandle("during").error().code, ErrorCode::kNotFound);
  auto rotated = store_->RotateRefreshToken("tok0", "tok1", kNow + 7'200'000, kNow + 2);
  ASSERT_TRUE(rotated) << rotated.error().message;
  EXPECT_EQ(rotated->outcome, RotateOutcome::kRotated);
  auto after = store_->CreateUser(MakeUser("after"));
  ASSERT_TRUE(after) << after.error().message;
  EXPECT_TRUE(store_->GetUserById(after->id));
  // Writes the server took since the refused ones: Ping is healthy again.
  auto ping = store_->Ping();
  EXPECT_TRUE(ping) << ping.error().message;
}

TEST_F(MysqlOutageTest, StaleConnectionsAfterARestartAreReplacedWithinTheCall) {
  auto alice = store_->CreateUser(MakeUser("alice"));
  ASSERT_TRUE(alice);
  auto bob = store_->CreateUser(MakeUser("bob"));
  ASSERT_TRUE(bob);
  OpenSeveralConnections();

  // Restarted while the store sat idle: every pooled connection is dead and
  // its prepared statements gone with it.
  Down();
  Up();

  // The very first calls succeed: the dead connection fails, the pool is
  // flushed, and the op runs again on a new connection with statements
  // prepared again. A read, a non-idempotent write (its START TRANSACTION
  // failed, so nothing was sent), and an idempotent one.
  auto found = store_->GetUserById(alice->id);
  ASSERT_TRUE(found) << found.error().message;
  EXPECT_EQ(found->handle, "alice");
  Call call;
  call.id = "after-restart";
  call.caller_id = alice->id;
  call.callee_id = bob->id;
  call.created_at_ms = kNow;
  auto inserted = store_->InsertCall(call);
  ASSERT_TRUE(inserted) << inserted.error().message;
  auto updated =
      store_->UpdateCallState({"after-restart", CallStatus::kActive, "", kNow + 1, {}, 0});
  ASSERT_TRUE(updated) << updated.error().message;
  EXPECT_EQ(store_->GetCall("after-restart")->status, CallStatus::kActive);
  EXPECT_EQ(store_->CallHistory({.user_id = bob->id})->entries.size(), 1u);
}

}  // namespace
}  // namespace turnkey::sql::testing
