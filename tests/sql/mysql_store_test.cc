// MySQL-only behaviour; the shared behaviour is in store_test_suite.h.
#include "sql/mysql_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "sql/store_factory.h"
#include "tests/sql/commit_answer_cutter.h"
#include "tests/sql/test_backends.h"

namespace turnkey::sql::testing {
namespace {

using base::ErrorCode;

TEST(MysqlStoreTest, RefusesBadOptions) {
  MysqlStoreOptions options;
  options.pool_size = 0;
  EXPECT_EQ(MysqlStore::Open(options).error().code, ErrorCode::kInvalidArgument);
  options.pool_size = 1;
  options.database = "";
  EXPECT_EQ(MysqlStore::Open(options).error().code, ErrorCode::kInvalidArgument);
}

TEST(MysqlStoreTest, OpensThroughTheFactory) {
  MysqlBackend backend;
  ASSERT_EQ(backend.setup_error(), "");
  StoreOptions options;
  options.driver = Dialect::kMysql;
  options.mysql = backend.options();
  auto store = OpenStore(options);
  ASSERT_TRUE(store) << store.error().message;
  EXPECT_TRUE((*store)->Ping());
  EXPECT_TRUE((*store)->Migrate());
  EXPECT_TRUE((*store)->CheckSchema());
}

TEST(MysqlStoreTest, BadCredentialsArePermissionDeniedNotACrash) {
  MysqlBackend backend;
  ASSERT_EQ(backend.setup_error(), "");
  MysqlStoreOptions options = backend.options();
  options.password = "wrong";
  // Opening does not connect: a server that is down (or a typo) at start-up
  // shows in Ping() and /readyz, and the store recovers when it is fixed.
  auto store = MysqlStore::Open(options);
  ASSERT_TRUE(store);
  auto ping = (*store)->Ping();
  ASSERT_FALSE(ping);
  // Not kUnavailable: start-up waits for an unreachable server, not for this.
  EXPECT_EQ(ping.error().code, ErrorCode::kPermissionDenied);
  EXPECT_NE(ping.error().message.find("Access denied"), std::string::npos) << ping.error().message;
  EXPECT_EQ(ping.error().message.find("wrong"), std::string::npos);  // never the password
  // Within the backoff the next call does not even try.
  auto again = (*store)->GetUserById("someone");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kUnavailable);
}

// "localhost" is a host name like any other: TCP to it on the configured
// port, not the client library's default Unix socket.
TEST(MysqlStoreTest, LocalhostMeansTcpToThePort) {
  MysqlBackend backend;
  ASSERT_EQ(backend.setup_error(), "");
  MysqlStoreOptions options = backend.options();
  ASSERT_EQ(options.host, "127.0.0.1");
  ASSERT_TRUE(options.unix_socket.empty());
  options.host = "localhost";
  auto store = MysqlStore::Open(options);
  ASSERT_TRUE(store);
  EXPECT_TRUE((*store)->Ping());
  options.port = 1;  // nothing there: refused, whatever socket the library knows
  auto elsewhere = MysqlStore::Open(options);
  ASSERT_TRUE(elsewhere);
  auto ping = (*elsewhere)->Ping();
  ASSERT_FALSE(ping);
  EXPECT_NE(ping.error().message.find("localhost:1"), std::string::npos) << ping.error().message;
}

TEST(MysqlStoreTest, NothingListensOnThePort) {
  MysqlStoreOptions options;
  options.host = "127.0.0.1";
  options.port = 1;  // privileged and unused: connection refused at once
  auto store = MysqlStore::Open(options);
  ASSERT_TRUE(store);
  const auto started = std::chrono::steady_clock::now();
  auto ping = (*store)->Ping();
  ASSERT_FALSE(ping);
  EXPECT_EQ(ping.error().code, ErrorCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - started, options.connect_timeout * 2);
}

// Tests on the server ctest starts, each with a fresh database (backend_).
class MysqlServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = MariadbServer::FromEnvironment();
    ASSERT_TRUE(server) << server.error().message;
    server_ = std::move(*server);
    ASSERT_EQ(backend_.setup_error(), "");
  }
  void TearDown() override {
    if (!reset_global_.empty()) {
      EXPECT_TRUE(server_.AdminSql(reset_global_));
    }
  }

  // Runs `set` (a SET GLOBAL) as the server's admin now, `reset` after the
  // test: the server is shared, the tests on it run one at a time.
  void SetGlobal(const std::string& set, const std::string& reset) {
    reset_global_ = reset;
    ASSERT_TRUE(server_.AdminSql(set));
  }

  // The test database's options with another of the server's accounts.
  MysqlStoreOptions OptionsAs(const std::string& env_key) {
    MysqlStoreOptions options = backend_.options();
    options.user = server_.env[env_key];
    return options;
  }

  std::unique_ptr<MysqlStore> Open(const MysqlStoreOptions& options) {
    auto store = MysqlStore::Open(options);
    EXPECT_TRUE(store) << store.error().message;
    return store ? std::move(*store) : nullptr;
  }

  std::unique_ptr<MysqlStore> OpenMigrated() {
    auto store = Open(backend_.options());
    if (store == nullptr) {
      return nullptr;
    }
    auto migrated = store->Migrate();
    EXPECT_TRUE(migrated) << migrated.error().message;
    return store;
  }

  static NewUser MakeUser(const std::string& handle, const std::string& display_name = "Someone") {
    NewUser user;
    user.handle = handle;
    user.email = handle + "@example.org";
    user.display_name = display_name;
    user.password_hash = "$argon2id$hash";
    user.now_ms = 1'700'000'000'000;
    return user;
  }

  MariadbServer server_;
  MysqlBackend backend_;
  std::string reset_global_;
};

// A pool larger than the server lets the account have: the refused extra
// connection must not fail calls while the store's own connection works.
TEST_F(MysqlServerTest, ARefusedExtraConnectionWaitsForOneOfItsOwn) {
  MysqlStoreOptions options = OptionsAs("MARIADB_ONE_USER");  // MAX_USER_CONNECTIONS 1
  options.pool_size = 3;
  auto store = Open(options);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Ping());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) {
        if (auto ping = store->Ping(); !ping) {
          if (failures.fetch_add(1) == 0) {
            ADD_FAILURE() << ping.error().message;
          }
        }
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(failures.load(), 0);
}

// DDL commits on its own in MySQL: a migrate cut off after CREATE INDEX but
// before recording the version finds the index there when run again.
TEST_F(MysqlServerTest, AMigrationCutOffAfterItsIndexCompletesWhenRunAgain) {
  auto store = OpenMigrated();
  ASSERT_NE(store, nullptr);
  const int latest = store->GetSchemaState()->latest_version;
  ASSERT_GE(latest, 3);
  // As if the run had stopped after 003's CREATE INDEX.
  ASSERT_TRUE(server_.RunSql("DELETE FROM " + backend_.options().database +
                             ".schema_migrations WHERE version >= 3"));
  ASSERT_FALSE(store->CheckSchema());
  auto again = store->Migrate();
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(*again, latest - 2);
  EXPECT_TRUE(store->CheckSchema());
}

// The operator guide's least-privilege account for serve: rows only. It
// runs the store, and `turnkey migrate` on an up-to-date schema.
TEST_F(MysqlServerTest, AnAccountWithoutDdlRightsServesAndMigratesAnUpToDateSchema) {
  ASSERT_NE(OpenMigrated(), nullptr);
  MysqlStoreOptions options = OptionsAs("MARIADB_DML_USER");
  auto store = Open(options);
  ASSERT_NE(store, nullptr);
  auto migrated = store->Migrate();
  ASSERT_TRUE(migrated) << migrated.error().message;
  EXPECT_EQ(*migrated, 0);
  EXPECT_TRUE(store->CheckSchema());
  auto created = store->CreateUser(MakeUser("dml_only"));
  ASSERT_TRUE(created) << created.error().message;
  // And without the right a real schema change needs, it says so.
  MysqlBackend empty;
  ASSERT_EQ(empty.setup_error(), "");
  options.database = empty.options().database;
  auto fresh = Open(options);
  ASSERT_NE(fresh, nullptr);
  auto refused = fresh->Migrate();
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("denied"), std::string::npos) << refused.error().message;
}

// A server that puts sessions on another character set than the one the
// client asked for (skip-character-set-client-handshake; here init_connect,
// which runs for accounts without admin rights): text must still be stored
// as utf8mb4, not double-encoded.
TEST_F(MysqlServerTest, TextIsStoredAsUtf8mb4WhenTheServerPicksAnotherSessionCharset) {
  ASSERT_NE(OpenMigrated(), nullptr);
  SetGlobal("SET GLOBAL init_connect = 'SET NAMES latin1'", "SET GLOBAL init_connect = ''");
  const std::string name = "Zo\xc3\xab \xf0\x9f\xa6\x84";  // "Zoë 🦄"
  std::string id;
  {
    auto store = Open(backend_.options());
    ASSERT_NE(store, nullptr);
    auto created = store->CreateUser(MakeUser("zoe", name));
    ASSERT_TRUE(created) << created.error().message;
    id = created->id;
  }
  ASSERT_TRUE(server_.AdminSql("SET GLOBAL init_connect = ''"));
  // Read back by a session the server leaves on utf8mb4.
  auto store = Open(backend_.options());
  ASSERT_NE(store, nullptr);
  auto user = store->GetUserById(id);
  ASSERT_TRUE(user) << user.error().message;
  EXPECT_EQ(user->display_name, name);
}

// A server that takes no writes (read_only after a failover): a write is
// kUnavailable (503 to the client) and Ping says writes fail, not an
// internal error; reads go on.
TEST_F(MysqlServerTest, AReadOnlyServerMakesWritesUnavailable) {
  auto store = OpenMigrated();
  ASSERT_NE(store, nullptr);
  auto before = store->CreateUser(MakeUser("before"));
  ASSERT_TRUE(before) << before.error().message;
  SetGlobal("SET GLOBAL read_only = 1", "SET GLOBAL read_only = 0");
  auto refused = store->CreateUser(MakeUser("during"));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kUnavailable) << refused.error().message;
  auto ping = store->Ping();
  ASSERT_FALSE(ping);
  EXPECT_NE(ping.error().message.find("read-only"), std::string::npos) << ping.error().message;
  EXPECT_TRUE(store->GetUserById(before->id));
}

// database.mysql.tls: the test server's account refuses unencrypted
// connections; its certificate (IP 127.0.0.1) is signed by MARIADB_TLS_CA.
TEST_F(MysqlServerTest, TlsConnectsOnlyToAServerItCanVerify) {
  MysqlStoreOptions options = OptionsAs("MARIADB_TLS_USER");
  // Without TLS the account is refused: the server requires it.
  auto plain = Open(options)->Ping();
  ASSERT_FALSE(plain);
  EXPECT_EQ(plain.error().code, ErrorCode::kPermissionDenied);

  options.tls = true;
  options.tls_ca_file = server_.env["MARIADB_TLS_CA"];
  auto store = Open(options);
  ASSERT_TRUE(store->Ping());
  auto migrated = store->Migrate();
  ASSERT_TRUE(migrated) << migrated.error().message;
  EXPECT_TRUE(store->CheckSchema());

  // A certificate that does not chain to the CA given (or, with none given,
  // to the system's) fails at once, as a wrong password does: it will not
  // fix itself.
  for (const std::string& ca : {server_.env["MARIADB_TLS_OTHER_CA"], std::string()}) {
    options.tls_ca_file = ca;
    auto refused = Open(options)->Ping();
    ASSERT_FALSE(refused) << "CA " << ca;
    EXPECT_EQ(refused.error().code, ErrorCode::kPermissionDenied) << refused.error().message;
    EXPECT_NE(refused.error().message.find("certificate"), std::string::npos)
        << refused.error().message;
  }
}

// A COMMIT that ran on the server but whose answer was lost: a write that
// must not run twice reports exactly kCommitOutcomeUnknown and is in once; a
// write that may run twice is run again and succeeds.
class MysqlLostCommitTest : public MysqlServerTest {
 protected:
  void SetUp() override {
    MysqlServerTest::SetUp();
    direct_ = OpenMigrated();
    ASSERT_NE(direct_, nullptr);
    cutter_ = std::make_unique<CommitAnswerCutter>(server_.options.host, server_.options.port);
    ASSERT_NE(cutter_->port(), 0);
    MysqlStoreOptions options = backend_.options();
    options.host = "127.0.0.1";
    options.port = cutter_->port();
    options.pool_size = 1;
    proxied_ = Open(options);
    ASSERT_NE(proxied_, nullptr);
    // A first write prepares the transaction's statements.
    auto user = direct_->CreateUser(MakeUser("alice"));
    ASSERT_TRUE(user) << user.error().message;
    alice_ = *user;
    ASSERT_TRUE(proxied_->UpdateProfile(alice_.id, {.display_name = "Alice"}, kNowMs));
  }

  static RefreshToken Token(const std::string& hash, const std::string& user_id) {
    RefreshToken token;
    token.token_hash = hash;
    token.user_id = user_id;
    token.family_id = "family-" + hash;
    token.created_at_ms = kNowMs;
    token.expires_at_ms = kNowMs + 3'600'000;
    return token;
  }

  static constexpr int64_t kNowMs = 1'700'000'000'000;
  std::unique_ptr<CommitAnswerCutter> cutter_;
  std::unique_ptr<MysqlStore> direct_;
  std::unique_ptr<MysqlStore> proxied_;
  User alice_;
};

TEST_F(MysqlLostCommitTest, ANewAccountIsReportedUnknownAndIsThereOnce) {
  NewUser bob = MakeUser("bob");
  bob.refresh_token = Token("bob-login", "");
  cutter_->CutNextCommitAnswer();
  auto created = proxied_->CreateUser(bob);
  ASSERT_FALSE(created);
  EXPECT_TRUE(IsCommitOutcomeUnknown(created.error())) << created.error().message;
  EXPECT_EQ(cutter_->cuts(), 1);
  // In, with its login: what the register route reads to answer as made.
  auto stored = direct_->GetUserByEmail(bob.email);
  ASSERT_TRUE(stored) << stored.error().message;
  auto login = direct_->FindRefreshToken("bob-login");
  ASSERT_TRUE(login) << login.error().message;
  EXPECT_EQ(login->user_id, stored->id);
  // The store goes on, on a new connection.
  EXPECT_TRUE(proxied_->GetUserById(stored->id));
}

TEST_F(MysqlLostCommitTest, APasswordChangeWithItsNewLoginIsNotRunTwice) {
  ASSERT_TRUE(direct_->InsertRefreshToken(Token("phone", alice_.id)));
  ASSERT_TRUE(direct_->InsertRefreshToken(Token("laptop", alice_.id)));
  const RefreshToken new_login = Token("laptop-after", alice_.id);
  cutter_->CutNextCommitAnswer();
  auto changed = proxied_->ChangePassword(alice_.id, "$argon2id$new", kNowMs + 1, &new_login);
  ASSERT_FALSE(changed);
  EXPECT_TRUE(IsCommitOutcomeUnknown(changed.error())) << changed.error().message;
  EXPECT_EQ(cutter_->cuts(), 1);
  auto user = direct_->GetUserById(alice_.id);
  ASSERT_TRUE(user);
  EXPECT_EQ(user->password_hash, "$argon2id$new");
  for (const char* old : {"phone", "laptop"}) {
    auto token = direct_->FindRefreshToken(old);
    ASSERT_TRUE(token) << old;
    EXPECT_TRUE(token->revoked_at_ms.has_value()) << old;
  }
  // Run a second time, the change would have revoked its own new login.
  auto after = direct_->FindRefreshToken("laptop-after");
  ASSERT_TRUE(after) << after.error().message;
  EXPECT_FALSE(after->revoked_at_ms.has_value());
}

TEST_F(MysqlLostCommitTest, ACallHistoryBatchIsReportedUnknownAndItsInsertsAreRefusedAfter) {
  auto bob = direct_->CreateUser(MakeUser("bob"));
  ASSERT_TRUE(bob);
  Call call;
  call.id = "call-1";
  call.caller_id = alice_.id;
  call.callee_id = bob->id;
  call.created_at_ms = kNowMs;
  const std::vector<CallWrite> batch{call};
  cutter_->CutNextCommitAnswer();
  auto applied = proxied_->ApplyCallWrites(batch);
  ASSERT_FALSE(applied);
  EXPECT_TRUE(IsCommitOutcomeUnknown(applied.error())) << applied.error().message;
  EXPECT_TRUE(direct_->GetCall("call-1"));
  // The recorder's retry of the batch: the insert is refused as made.
  auto again = proxied_->ApplyCallWrites(batch);
  ASSERT_TRUE(again) << again.error().message;
  ASSERT_EQ(again->size(), 1u);
  ASSERT_FALSE((*again)[0]);
  EXPECT_EQ((*again)[0].error().code, ErrorCode::kAlreadyExists);
}

TEST_F(MysqlLostCommitTest, AWriteThatMayRunTwiceIsRunAgain) {
  cutter_->CutNextCommitAnswer();
  auto updated = proxied_->UpdateProfile(alice_.id, {.display_name = "Alice B."}, kNowMs + 1);
  ASSERT_TRUE(updated) << updated.error().message;
  EXPECT_EQ(cutter_->cuts(), 1);
  EXPECT_EQ(updated->display_name, "Alice B.");
}

}  // namespace
}  // namespace turnkey::sql::testing
