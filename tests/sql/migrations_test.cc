#include "sql/migrations.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace turnkey::sql {
namespace {

using Statements = std::vector<std::string>;

TEST(SplitSqlStatementsTest, SplitsOnSemicolons) {
  EXPECT_EQ(SplitSqlStatements("CREATE TABLE a (x INT); CREATE TABLE b (y INT);"),
            (Statements{"CREATE TABLE a (x INT)", "CREATE TABLE b (y INT)"}));
  EXPECT_EQ(SplitSqlStatements("SELECT 1"), (Statements{"SELECT 1"}));
  EXPECT_EQ(SplitSqlStatements(""), Statements{});
  EXPECT_EQ(SplitSqlStatements(" ;\n; ;"), Statements{});
}

TEST(SplitSqlStatementsTest, KeepsQuotedSemicolons) {
  EXPECT_EQ(SplitSqlStatements("INSERT INTO t VALUES ('a;b', \"c;d\", `e;f`); SELECT 2"),
            (Statements{"INSERT INTO t VALUES ('a;b', \"c;d\", `e;f`)", "SELECT 2"}));
  EXPECT_EQ(SplitSqlStatements("SELECT 'it''s; fine'; SELECT 3"),
            (Statements{"SELECT 'it''s; fine'", "SELECT 3"}));
  EXPECT_EQ(SplitSqlStatements("SELECT '-- not a comment'"),
            (Statements{"SELECT '-- not a comment'"}));
}

TEST(SplitSqlStatementsTest, DropsComments) {
  EXPECT_EQ(SplitSqlStatements("-- header; with semicolon\n"
                               "CREATE TABLE a (x INT); -- trailing; comment\n"
                               "/* block; comment */ CREATE TABLE b (y INT);\n"
                               "-- only a comment at the end"),
            (Statements{"CREATE TABLE a (x INT)", "CREATE TABLE b (y INT)"}));
  EXPECT_EQ(SplitSqlStatements("-- it's an apostrophe in a comment\nSELECT 1"),
            (Statements{"SELECT 1"}));
}

TEST(SplitSqlStatementsTest, UnterminatedInputDoesNotCrash) {
  EXPECT_EQ(SplitSqlStatements("SELECT 'open"), (Statements{"SELECT 'open"}));
  EXPECT_EQ(SplitSqlStatements("SELECT 1 /* open"), (Statements{"SELECT 1"}));
}

TEST(EmbeddedMigrationsTest, BothDialectsCarryTheSameNumberedList) {
  auto sqlite = EmbeddedMigrations(Dialect::kSqlite);
  auto mysql = EmbeddedMigrations(Dialect::kMysql);
  ASSERT_FALSE(sqlite.empty());
  ASSERT_EQ(sqlite.size(), mysql.size());
  for (size_t i = 0; i < sqlite.size(); ++i) {
    EXPECT_EQ(sqlite[i].version, static_cast<int>(i) + 1);
    EXPECT_EQ(mysql[i].version, static_cast<int>(i) + 1);
    EXPECT_EQ(sqlite[i].name, mysql[i].name);
    // A change may concern one dialect only (002 drops SQLite indexes that
    // InnoDB needs); the other's file then says why it runs nothing.
    EXPECT_FALSE(SplitSqlStatements(sqlite[i].sql).empty() &&
                 SplitSqlStatements(mysql[i].sql).empty());
  }
  EXPECT_EQ(sqlite[0].name, "initial");
}

TEST(EmbeddedMigrationsTest, CreateTheTablesOfTheDesign) {
  for (Dialect dialect : {Dialect::kSqlite, Dialect::kMysql}) {
    std::string all;
    for (const Migration& m : EmbeddedMigrations(dialect)) {
      all.append(m.sql);
    }
    for (const char* table :
         {"users", "refresh_tokens", "contacts", "calls", "call_participants"}) {
      EXPECT_NE(all.find(std::string("CREATE TABLE ") +
                         (dialect == Dialect::kMysql ? "IF NOT EXISTS " : "") + table + " ("),
                std::string::npos)
          << DialectName(dialect) << " " << table;
    }
  }
}

}  // namespace
}  // namespace turnkey::sql
