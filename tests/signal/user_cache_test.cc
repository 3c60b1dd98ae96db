#include "signal/user_cache.h"

#include <gtest/gtest.h>

namespace turnkey::signal {
namespace {

const UserInfo kAlice{.id = "a1", .handle = "Alice", .display_name = "Alice A."};

TEST(UserCacheTest, HoldsAUserWhileItHasReferences) {
  UserCache cache;
  EXPECT_FALSE(cache.FindById("a1"));
  cache.Acquire(kAlice);
  cache.Acquire(kAlice);
  EXPECT_EQ(cache.FindById("a1"), kAlice);
  cache.Release("a1");
  EXPECT_EQ(cache.FindById("a1"), kAlice);
  cache.Release("a1");
  EXPECT_FALSE(cache.FindById("a1"));
  EXPECT_FALSE(cache.FindByHandle("alice"));
  EXPECT_EQ(cache.size(), 0u);
  cache.Release("a1");        // unknown: ignored
  cache.Acquire(UserInfo{});  // no id: ignored
  EXPECT_EQ(cache.size(), 0u);
}

TEST(UserCacheTest, HandlesCompareIgnoringAsciiCase) {
  UserCache cache;
  cache.Acquire(kAlice);
  EXPECT_EQ(cache.FindByHandle("alice"), kAlice);
  EXPECT_EQ(cache.FindByHandle("ALICE"), kAlice);
  EXPECT_FALSE(cache.FindByHandle("alic"));
}

TEST(UserCacheTest, ANewerReadReplacesTheFieldsAndTheHandleIndex) {
  UserCache cache;
  cache.Acquire(kAlice);
  UserInfo renamed = kAlice;
  renamed.handle = "ally";
  cache.Refresh(renamed);
  EXPECT_FALSE(cache.FindByHandle("alice"));
  EXPECT_EQ(cache.FindByHandle("Ally"), renamed);
  // A second socket connecting with yet newer fields keeps both references.
  UserInfo again = renamed;
  again.display_name = "Ally";
  cache.Acquire(again);
  cache.Release("a1");
  EXPECT_EQ(cache.FindById("a1"), again);
  // Refresh never adds.
  cache.Refresh(UserInfo{.id = "b2", .handle = "bob"});
  EXPECT_FALSE(cache.FindById("b2"));
}

TEST(UserCacheTest, AHandleTakenOverByAnotherUserPointsToThem) {
  UserCache cache;
  cache.Acquire(kAlice);
  cache.Refresh(UserInfo{.id = "a1", .handle = "ally"});
  cache.Acquire(UserInfo{.id = "c3", .handle = "alice"});
  EXPECT_EQ(cache.FindByHandle("alice")->id, "c3");
  cache.Release("a1");
  EXPECT_EQ(cache.FindByHandle("alice")->id, "c3");
}

}  // namespace
}  // namespace turnkey::signal
