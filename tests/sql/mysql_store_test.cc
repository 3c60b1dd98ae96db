// MySQL-only behaviour; the shared behaviour is in store_test_suite.h.
#include "sql/mysql_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "sql/store_factory.h"
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

// A pool larger than the server lets the account have: the refused extra
// connection must not fail calls while the store's own connection works.
TEST(MysqlStoreTest, ARefusedExtraConnectionWaitsForOneOfItsOwn) {
  auto server = MariadbServer::FromEnvironment();
  ASSERT_TRUE(server) << server.error().message;
  MysqlBackend backend;
  ASSERT_EQ(backend.setup_error(), "");
  MysqlStoreOptions options = backend.options();
  options.user = server->env["MARIADB_ONE_USER"];  // MAX_USER_CONNECTIONS 1
  options.pool_size = 3;
  auto store = MysqlStore::Open(options);
  ASSERT_TRUE(store) << store.error().message;
  ASSERT_TRUE((*store)->Ping());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) {
        if (auto ping = (*store)->Ping(); !ping) {
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

std::unique_ptr<MysqlStore> OpenMigrated(const MysqlStoreOptions& options) {
  auto store = MysqlStore::Open(options);
  EXPECT_TRUE(store) << store.error().message;
  if (!store) {
    return nullptr;
  }
  auto migrated = (*store)->Migrate();
  EXPECT_TRUE(migrated) << migrated.error().message;
  return std::move(*store);
}

// DDL commits on its own in MySQL: a migrate cut off after CREATE INDEX but
// before recording the version finds the index there when run again.
TEST(MysqlStoreTest, AMigrationCutOffAfterItsIndexCompletesWhenRunAgain) {
  auto server = MariadbServer::FromEnvironment();
  ASSERT_TRUE(server) << server.error().message;
  MysqlBackend backend;
  ASSERT_EQ(backend.setup_error(), "");
  auto store = OpenMigrated(backend.options());
  ASSERT_NE(store, nullptr);
  const int latest = store->GetSchemaState()->latest_version;
  ASSERT_GE(latest, 3);
  // As if the run had stopped after 003's CREATE INDEX.
  ASSERT_TRUE(server->RunSql("DELETE FROM " + backend.options().database +
                             ".schema_migrations WHERE version >= 3"));
  ASSERT_FALSE(store->CheckSchema());
  auto again = store->Migrate();
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(*again, latest - 2);
  EXPECT_TRUE(store->CheckSchema());
}

// The operator guide's least-privilege account for serve: rows only. It
// runs the store, and `turnkey migrate` on an up-to-date schema.
TEST(MysqlStoreTest, AnAccountWithoutDdlRightsServesAndMigratesAnUpToDateSchema) {
  auto server = MariadbServer::FromEnvironment();
  ASSERT_TRUE(server) << server.error().message;
  MysqlBackend backend;
  ASSERT_EQ(backend.setup_error(), "");
  ASSERT_NE(OpenMigrated(backend.options()), nullptr);
  MysqlStoreOptions options = backend.options();
  options.user = server->env["MARIADB_DML_USER"];
  auto store = MysqlStore::Open(options);
  ASSERT_TRUE(store) << store.error().message;
  auto migrated = (*store)->Migrate();
  ASSERT_TRUE(migrated) << migrated.error().message;
  EXPECT_EQ(*migrated, 0);
  EXPECT_TRUE((*store)->CheckSchema());
  NewUser user;
  user.handle = "dml_only";
  user.email = "dml_only@example.org";
  user.display_name = "Rows only";
  user.password_hash = "$argon2id$hash";
  user.now_ms = 1'700'000'000'000;
  auto created = (*store)->CreateUser(user);
  ASSERT_TRUE(created) << created.error().message;
  // And without the right a real schema change needs, it says so.
  MysqlBackend empty;
  ASSERT_EQ(empty.setup_error(), "");
  options.database = empty.options().database;
  auto fresh = MysqlStore::Open(options);
  ASSERT_TRUE(fresh);
  auto refused = (*fresh)->Migrate();
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("denied"), std::string::npos) << refused.error().message;
}

// A server that puts sessions on another character set than the one the
// client asked for (skip-character-set-client-handshake; here init_connect,
// which runs for accounts without admin rights): text must still be stored
// as utf8mb4, not double-encoded.
TEST(MysqlStoreTest, TextIsStoredAsUtf8mb4WhenTheServerPicksAnotherSessionCharset) {
  auto server = MariadbServer::FromEnvironment();
  ASSERT_TRUE(server) << server.error().message;
  MysqlBackend backend;
  ASSERT_EQ(backend.setup_error(), "");
  ASSERT_NE(OpenMigrated(backend.options()), nullptr);
  ASSERT_TRUE(server->AdminSql("SET GLOBAL init_connect = 'SET NAMES latin1'"));
  struct Restore {
    const MariadbServer& server;
    ~Restore() { EXPECT_TRUE(server.AdminSql("SET GLOBAL init_connect = ''")); }
  } restore{*server};
  const std::string name = "Zo\xc3\xab \xf0\x9f\xa6\x84";  // "Zoë 🦄"
  std::string id;
  {
    auto store = MysqlStore::Open(backend.options());
    ASSERT_TRUE(store);
    NewUser user;
    user.handle = "zoe";
    user.email = "zoe@example.org";
    user.display_name = name;
    user.password_hash = "$argon2id$hash";
    user.now_ms = 1'700'000'000'000;
    auto created = (*store)->CreateUser(user);
    ASSERT_TRUE(created) << created.error().message;
    id = created->id;
  }
  ASSERT_TRUE(server->AdminSql("SET GLOBAL init_connect = ''"));
  // Read back by a session the server leaves on utf8mb4.
  auto store = MysqlStore::Open(backend.options());
  ASSERT_TRUE(store);
  auto user = (*store)->GetUserById(id);
  ASSERT_TRUE(user) << user.error().message;
  EXPECT_EQ(user->display_name, name);
}

// A server that takes no writes (read_only after a failover): a write is
// kUnavailable (503 to the client) and Ping says writes fail, not an
// internal error; reads go on.
TEST(MysqlStoreTest, AReadOnlyServerMakesWritesUnavailable) {
  auto server = MariadbServer::FromEnvironment();
  ASSERT_TRUE(server) << server.error().message;
  MysqlBackend backend;
  ASSERT_EQ(backend.setup_error(), "");
  auto store = OpenMigrated(backend.options());
  ASSERT_NE(store, nullptr);
  NewUser user;
  user.handle = "before";
  user.email = "before@example.org";
  user.display_name = "Before";
  user.password_hash = "$argon2id$hash";
  user.now_ms = 1'700'000'000'000;
  auto before = store->CreateUser(user);
  ASSERT_TRUE(before) << before.error().message;
  ASSERT_TRUE(server->AdminSql("SET GLOBAL read_only = 1"));
  struct Restore {
    const MariadbServer& server;
    ~Restore() { EXPECT_TRUE(server.AdminSql("SET GLOBAL read_only = 0")); }
  } restore{*server};
  user.handle = "during";
  user.email = "during@example.org";
  auto refused = store->CreateUser(user);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kUnavailable) << refused.error().message;
  auto ping = store->Ping();
  ASSERT_FALSE(ping);
  EXPECT_NE(ping.error().message.find("read-only"), std::string::npos) << ping.error().message;
  EXPECT_TRUE(store->GetUserById(before->id));
}

// database.mysql.tls: the test server's account refuses unencrypted
// connections; its certificate (IP 127.0.0.1) is signed by MARIADB_TLS_CA.
TEST(MysqlStoreTest, TlsConnectsOnlyToAServerItCanVerify) {
  auto server = MariadbServer::FromEnvironment();
  ASSERT_TRUE(server) << server.error().message;
  MysqlBackend backend;
  ASSERT_EQ(backend.setup_error(), "");
  MysqlStoreOptions options = backend.options();
  options.user = server->env["MARIADB_TLS_USER"];
  auto open = [](const MysqlStoreOptions& o) {
    auto store = MysqlStore::Open(o);
    EXPECT_TRUE(store) << store.error().message;
    return std::move(*store);
  };

  // Without TLS the account is refused: the server requires it.
  auto plain = open(options)->Ping();
  ASSERT_FALSE(plain);
  EXPECT_EQ(plain.error().code, ErrorCode::kPermissionDenied);

  options.tls = true;
  options.tls_ca_file = server->env["MARIADB_TLS_CA"];
  auto store = open(options);
  ASSERT_TRUE(store->Ping());
  auto migrated = store->Migrate();
  ASSERT_TRUE(migrated) << migrated.error().message;
  EXPECT_TRUE(store->CheckSchema());

  // A certificate that does not chain to the CA given (or, with none given,
  // to the system's) fails at once, as a wrong password does: it will not
  // fix itself.
  for (const std::string& ca : {server->env["MARIADB_TLS_OTHER_CA"], std::string()}) {
    options.tls_ca_file = ca;
    auto refused = open(options)->Ping();
    ASSERT_FALSE(refused) << "CA " << ca;
    EXPECT_EQ(refused.error().code, ErrorCode::kPermissionDenied) << refused.error().message;
    EXPECT_NE(refused.error().message.find("certificate"), std::string::npos)
        << refused.error().message;
  }
}

}  // namespace
}  // namespace turnkey::sql::testing
