// MySQL-only behaviour; the shared behaviour is in store_test_suite.h.
#include "sql/mysql_store.h"

#include <gtest/gtest.h>

#include <chrono>

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

}  // namespace
}  // namespace turnkey::sql::testing
