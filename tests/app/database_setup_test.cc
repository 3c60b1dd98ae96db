#include "app/database_setup.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "sql/migrations.h"
#include "sql/sqlite_store.h"

namespace turnkey::app {
namespace {

class DatabaseSetupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/tk-dbsetup-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    config_.state_dir = dir_ + "/state";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // The embedded migrations plus one more, as a newer turnkey would carry.
  std::vector<sql::Migration> NewerMigrations() {
    auto embedded = sql::EmbeddedMigrations(sql::Dialect::kSqlite);
    std::vector<sql::Migration> migrations(embedded.begin(), embedded.end());
    migrations.push_back({static_cast<int>(migrations.size()) + 1, "future_table",
                          "CREATE TABLE future_table (id INTEGER PRIMARY KEY)"});
    return migrations;
  }

  std::string dir_;
  config::Config config_;
};

TEST_F(DatabaseSetupTest, StoreOptionsFromConfig) {
  sql::StoreOptions sqlite = MakeStoreOptions(config_);
  EXPECT_EQ(sqlite.driver, sql::Dialect::kSqlite);
  EXPECT_EQ(sqlite.sqlite.path, config_.state_dir + "/turnkey.db");
  config_.database.sqlite.path = "/elsewhere/x.db";
  EXPECT_EQ(MakeStoreOptions(config_).sqlite.path, "/elsewhere/x.db");

  config_.database.driver = config::DatabaseDriver::kMysql;
  config_.database.mysql.host = "db.internal";
  config_.database.mysql.port = 3307;
  config_.database.mysql.user = "tk";
  config_.database.mysql.password = "pw-from-file";
  config_.database.mysql.database = "calls";
  config_.database.mysql.pool_size = 9;
  sql::StoreOptions mysql = MakeStoreOptions(config_);
  EXPECT_EQ(mysql.driver, sql::Dialect::kMysql);
  EXPECT_EQ(mysql.mysql.host, "db.internal");
  EXPECT_EQ(mysql.mysql.port, 3307);
  EXPECT_EQ(mysql.mysql.user, "tk");
  EXPECT_EQ(mysql.mysql.password, "pw-from-file");
  EXPECT_EQ(mysql.mysql.database, "calls");
  EXPECT_EQ(mysql.mysql.pool_size, 9);
  const std::string described = DescribeDatabase(config_);
  EXPECT_EQ(described, "mysql tk@db.internal:3307/calls");
  EXPECT_EQ(described.find("pw-from-file"), std::string::npos);

  // The calls' cluster: "" for a single node, whatever cluster.name says.
  config_.cluster.name = "calls-eu";
  EXPECT_EQ(MakeStoreOptions(config_).cluster, "");
  config_.cluster.enabled = true;
  EXPECT_EQ(MakeStoreOptions(config_).cluster, "calls-eu");
}

// A CA file that cannot be read is named before any connection is tried
// (the client library would say only "No such file or directory").
TEST_F(DatabaseSetupTest, AnUnreadableTlsCaFileIsNamed) {
  config_.database.driver = config::DatabaseDriver::kMysql;
  config_.database.mysql.port = 1;  // never reached
  config_.database.mysql.tls = true;
  config_.database.mysql.tls_ca_file = dir_ + "/missing-ca.pem";
  auto store = OpenDatabase(config_);
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.error().code, base::ErrorCode::kInvalidArgument);
  EXPECT_NE(store.error().message.find("database.mysql.tls_ca_file: cannot read \"" + dir_ +
                                       "/missing-ca.pem\": No such file or directory"),
            std::string::npos)
      << store.error().message;
  config_.database.mysql.tls_ca_file = dir_;
  EXPECT_NE(CheckDatabaseFiles(config_).error().message.find("Is a directory"), std::string::npos);
  config_.database.mysql.tls = false;  // not read then (the loader refuses that pair anyway)
  EXPECT_TRUE(CheckDatabaseFiles(config_).has_value());
}

TEST_F(DatabaseSetupTest, AFreshSqliteDatabaseIsMigratedOnServe) {
  auto store = OpenDatabase(config_);
  ASSERT_TRUE(store.has_value()) << store.error().message;
  EXPECT_TRUE(std::filesystem::is_directory(config_.state_dir));
  ASSERT_TRUE(PrepareSchemaForServe(**store, config_).has_value());
  auto state = (*store)->GetSchemaState();
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->current_version, state->latest_version);
  EXPECT_TRUE(PrepareSchemaForServe(**store, config_).has_value());
}

TEST_F(DatabaseSetupTest, ANewerSchemaIsRefused) {
  ASSERT_TRUE(EnsureStateDir(config_.state_dir).has_value());
  sql::SqliteStoreOptions options = MakeStoreOptions(config_).sqlite;
  std::vector<sql::Migration> newer = NewerMigrations();
  {
    auto future = sql::SqliteStore::Open(options, newer);
    ASSERT_TRUE(future.has_value());
    ASSERT_TRUE((*future)->Migrate().has_value());
  }
  auto store = OpenDatabase(config_);
  ASSERT_TRUE(store.has_value());
  auto prepared = PrepareSchemaForServe(**store, config_);
  ASSERT_FALSE(prepared.has_value());
  EXPECT_NE(prepared.error().message.find("upgrade turnkey"), std::string::npos)
      << prepared.error().message;
}

TEST_F(DatabaseSetupTest, AnOlderNonEmptySchemaNeedsMigrate) {
  ASSERT_TRUE(EnsureStateDir(config_.state_dir).has_value());
  sql::SqliteStoreOptions options = MakeStoreOptions(config_).sqlite;
  {
    auto current = sql::SqliteStore::Open(options);
    ASSERT_TRUE(current.has_value());
    ASSERT_TRUE((*current)->Migrate().has_value());
  }
  // A newer binary (one more migration) meets this database.
  std::vector<sql::Migration> newer = NewerMigrations();
  auto store = sql::SqliteStore::Open(options, newer);
  ASSERT_TRUE(store.has_value());
  auto prepared = PrepareSchemaForServe(**store, config_);
  ASSERT_FALSE(prepared.has_value());
  EXPECT_NE(prepared.error().message.find("turnkey migrate"), std::string::npos)
      << prepared.error().message;
}

}  // namespace
}  // namespace turnkey::app
