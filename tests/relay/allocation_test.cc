// Allocation's permission and channel tables and TokenBucket, on their own.
#include "relay/allocation.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string_view>

namespace turnkey::relay {
namespace {

using std::chrono::seconds;

base::SocketAddress Ip(std::string_view text, uint16_t port = 0) {
  return *base::SocketAddress::ParseIp(text, port);
}

class AllocationTest : public ::testing::Test {
 protected:
  AllocationTest() : allocation_(FiveTuple{}, "1700000000:alice", "alice") {}

  const base::MonoTime t0_ = base::MonoTime{} + seconds(1000);
  Allocation allocation_;
};

TEST_F(AllocationTest, KnowsItsOwnerAndEndpoints) {
  EXPECT_EQ(allocation_.username(), "1700000000:alice");
  EXPECT_EQ(allocation_.quota_user(), "alice");
  EXPECT_EQ(allocation_.relay(0).owner, &allocation_);
  EXPECT_EQ(allocation_.relay(1).owner, &allocation_);
  EXPECT_FALSE(allocation_.HasFamily(Ip("8.8.8.8")));
  allocation_.relay(1).handle = 7;
  EXPECT_FALSE(allocation_.HasFamily(Ip("8.8.8.8")));
  EXPECT_TRUE(allocation_.HasFamily(Ip("2606:4700::1")));
}

TEST_F(AllocationTest, PermissionsArePerIpAndExpireAtTheirDeadline) {
  bool added = false;
  ASSERT_TRUE(allocation_.InstallPermission(Ip("8.8.8.8", 53), t0_ + seconds(300), 0, &added));
  EXPECT_TRUE(added);
  EXPECT_NE(allocation_.FindPermission(Ip("8.8.8.8", 9999), t0_), nullptr);
  EXPECT_EQ(allocation_.FindPermission(Ip("8.8.8.8", 53), t0_)->ip.port(), 0);
  EXPECT_EQ(allocation_.FindPermission(Ip("8.8.4.4", 53), t0_), nullptr);
  // An IPv4-mapped form is another address here (the policy reduces it).
  EXPECT_EQ(allocation_.FindPermission(Ip("::ffff:8.8.8.8", 53), t0_), nullptr);
  EXPECT_NE(allocation_.FindPermission(Ip("8.8.8.8"), t0_ + seconds(299)), nullptr);
  EXPECT_EQ(allocation_.FindPermission(Ip("8.8.8.8"), t0_ + seconds(300)), nullptr);
  // Refreshing keeps one entry.
  ASSERT_TRUE(allocation_.InstallPermission(Ip("8.8.8.8", 1), t0_ + seconds(600), 0, &added));
  EXPECT_FALSE(added);
  EXPECT_EQ(allocation_.permission_count(), 1u);
  EXPECT_NE(allocation_.FindPermission(Ip("8.8.8.8"), t0_ + seconds(599)), nullptr);
}

TEST_F(AllocationTest, PermissionLimit) {
  bool added = false;
  ASSERT_TRUE(allocation_.InstallPermission(Ip("1.1.1.1"), t0_, 2, &added));
  ASSERT_TRUE(allocation_.InstallPermission(Ip("1.0.0.1"), t0_, 2, &added));
  EXPECT_FALSE(allocation_.InstallPermission(Ip("9.9.9.9"), t0_, 2, &added));
  EXPECT_FALSE(added);
  EXPECT_TRUE(allocation_.InstallPermission(Ip("1.1.1.1"), t0_, 2, &added));  // refresh
  EXPECT_EQ(allocation_.permission_count(), 2u);
}

TEST_F(AllocationTest, LookupCacheDoesNotConfuseEntries) {
  bool added = false;
  for (uint8_t i = 1; i <= 10; ++i) {
    ASSERT_TRUE(allocation_.InstallPermission(base::SocketAddress::V4({8, 8, 8, i}, 0),
                                              t0_ + seconds(i), 0, &added));
  }
  for (int round = 0; round < 2; ++round) {
    for (uint8_t i = 1; i <= 10; ++i) {
      const Permission* p =
          allocation_.FindPermission(base::SocketAddress::V4({8, 8, 8, i}, 1), t0_);
      ASSERT_NE(p, nullptr);
      EXPECT_EQ(p->ip.bytes()[3], i);
      EXPECT_EQ(p->expires, t0_ + seconds(i));
    }
  }
}

TEST_F(AllocationTest, ChannelsMapNumbersToTransportAddresses) {
  bool added = false;
  const auto peer = Ip("8.8.8.8", 1000);
  ASSERT_TRUE(allocation_.BindChannel(0x4000, peer, t0_ + seconds(600), 0, &added));
  EXPECT_TRUE(added);
  ASSERT_NE(allocation_.FindChannel(0x4000, t0_), nullptr);
  EXPECT_EQ(allocation_.FindChannel(0x4000, t0_)->peer, peer);
  EXPECT_EQ(allocation_.FindChannel(0x4001, t0_), nullptr);
  EXPECT_EQ(allocation_.FindChannelByPeer(peer, t0_)->number, 0x4000);
  EXPECT_EQ(allocation_.FindChannelByPeer(Ip("8.8.8.8", 1001), t0_), nullptr);
  EXPECT_EQ(allocation_.FindChannel(0x4000, t0_ + seconds(600)), nullptr);
  EXPECT_EQ(allocation_.FindChannelByPeer(peer, t0_ + seconds(600)), nullptr);
}

TEST_F(AllocationTest, ChannelConflicts) {
  bool added = false;
  const auto a = Ip("8.8.8.8", 1000);
  const auto b = Ip("8.8.8.8", 2000);
  ASSERT_TRUE(allocation_.BindChannel(0x4000, a, t0_ + seconds(600), 0, &added));
  EXPECT_FALSE(allocation_.ChannelConflicts(0x4000, a, t0_));  // a refresh
  EXPECT_TRUE(allocation_.ChannelConflicts(0x4000, b, t0_));
  EXPECT_TRUE(allocation_.ChannelConflicts(0x4001, a, t0_));
  EXPECT_FALSE(allocation_.ChannelConflicts(0x4001, b, t0_));
  // Expired bindings conflict with nothing.
  EXPECT_FALSE(allocation_.ChannelConflicts(0x4000, b, t0_ + seconds(600)));
  EXPECT_FALSE(allocation_.ChannelConflicts(0x4001, a, t0_ + seconds(600)));
}

TEST_F(AllocationTest, RebindingReplacesExpiredBindingsSoEachNumberAndPeerAppearOnce) {
  bool added = false;
  const auto a = Ip("8.8.8.8", 1000);
  const auto b = Ip("1.1.1.1", 1000);
  ASSERT_TRUE(allocation_.BindChannel(0x4000, a, t0_, 0, &added));
  ASSERT_TRUE(allocation_.BindChannel(0x4001, b, t0_, 0, &added));
  // Both expired at t0_; 0x4000 now goes to b.
  ASSERT_FALSE(allocation_.ChannelConflicts(0x4000, b, t0_));
  ASSERT_TRUE(allocation_.BindChannel(0x4000, b, t0_ + seconds(600), 0, &added));
  EXPECT_FALSE(added);
  EXPECT_EQ(allocation_.channel_count(), 1u);
  EXPECT_EQ(allocation_.FindChannel(0x4000, t0_)->peer, b);
  EXPECT_EQ(allocation_.FindChannel(0x4001, t0_), nullptr);
  EXPECT_EQ(allocation_.FindChannelByPeer(a, t0_), nullptr);
}

TEST_F(AllocationTest, EachHalfOfADualAllocationHasItsOwnExpiry) {
  allocation_.relay(0).handle = 7;
  allocation_.relay(1).handle = 8;
  EXPECT_TRUE(allocation_.dual());
  allocation_.set_expires(t0_ + seconds(600));
  allocation_.relay(1).expires = t0_ + seconds(900);
  EXPECT_EQ(allocation_.expires(), t0_ + seconds(900));  // the later one
  EXPECT_EQ(allocation_.NextExpiry(), t0_ + seconds(600));
  bool added = false;
  ASSERT_TRUE(allocation_.InstallPermission(Ip("8.8.8.8"), t0_ + seconds(300), 0, &added));
  ASSERT_TRUE(allocation_.InstallPermission(Ip("2606:4700::1"), t0_ + seconds(300), 0, &added));
  ASSERT_TRUE(
      allocation_.BindChannel(0x4000, Ip("2606:4700::1", 1), t0_ + seconds(300), 0, &added));
  size_t permissions = 0;
  size_t channels = 0;
  allocation_.RemoveFamily(1, &permissions, &channels);
  EXPECT_EQ(permissions, 1u);
  EXPECT_EQ(channels, 1u);
  EXPECT_NE(allocation_.FindPermission(Ip("8.8.8.8"), t0_), nullptr);
  allocation_.relay(1).handle = 0;
  EXPECT_FALSE(allocation_.dual());
  EXPECT_EQ(allocation_.expires(), t0_ + seconds(600));  // only the open half counts
}

TEST_F(AllocationTest, ChannelLimit) {
  bool added = false;
  ASSERT_TRUE(allocation_.BindChannel(0x4000, Ip("8.8.8.8", 1), t0_, 1, &added));
  EXPECT_FALSE(allocation_.BindChannel(0x4001, Ip("8.8.8.8", 2), t0_, 1, &added));
  EXPECT_TRUE(allocation_.BindChannel(0x4000, Ip("8.8.8.8", 1), t0_ + seconds(1), 1, &added));
  EXPECT_EQ(allocation_.channel_count(), 1u);
}

TEST_F(AllocationTest, ExpireRemovesWhatIsDueAndSaysHowMuch) {
  bool added = false;
  allocation_.relay(0).handle = 7;  // the lifetime is its relayed addresses'
  allocation_.set_expires(t0_ + seconds(600));
  EXPECT_EQ(allocation_.expires(), t0_ + seconds(600));
  EXPECT_EQ(allocation_.NextExpiry(), t0_ + seconds(600));
  ASSERT_TRUE(allocation_.InstallPermission(Ip("8.8.8.8"), t0_ + seconds(300), 0, &added));
  ASSERT_TRUE(allocation_.InstallPermission(Ip("1.1.1.1"), t0_ + seconds(100), 0, &added));
  ASSERT_TRUE(allocation_.BindChannel(0x4000, Ip("8.8.8.8", 1), t0_ + seconds(200), 0, &added));
  EXPECT_EQ(allocation_.NextExpiry(), t0_ + seconds(100));

  size_t permissions = 9;
  size_t channels = 9;
  allocation_.Expire(t0_ + seconds(99), &permissions, &channels);
  EXPECT_EQ(permissions, 0u);
  EXPECT_EQ(channels, 0u);
  allocation_.Expire(t0_ + seconds(200), &permissions, &channels);
  EXPECT_EQ(permissions, 1u);
  EXPECT_EQ(channels, 1u);
  EXPECT_EQ(allocation_.NextExpiry(), t0_ + seconds(300));
  EXPECT_NE(allocation_.FindPermission(Ip("8.8.8.8"), t0_ + seconds(200)), nullptr);
  EXPECT_EQ(allocation_.FindPermission(Ip("1.1.1.1"), base::MonoTime::min()), nullptr);
  allocation_.Expire(t0_ + seconds(300), &permissions, &channels);
  EXPECT_EQ(allocation_.permission_count(), 0u);
  EXPECT_EQ(allocation_.NextExpiry(), t0_ + seconds(600));
}

TEST(TokenBucketTest, UnlimitedByDefault) {
  TokenBucket bucket;
  for (int i = 0; i < 100; ++i) {
    EXPECT_TRUE(bucket.Take(1'000'000, base::MonoTime{}));
  }
}

TEST(TokenBucketTest, OneSecondOfBurstThenTheRate) {
  TokenBucket bucket;
  bucket.SetRate(1000);
  const base::MonoTime t0 = base::MonoTime{} + seconds(5);
  EXPECT_TRUE(bucket.Take(1000, t0));
  EXPECT_FALSE(bucket.Take(1, t0));
  EXPECT_TRUE(bucket.Take(100, t0 + std::chrono::milliseconds(100)));
  EXPECT_FALSE(bucket.Take(1, t0 + std::chrono::milliseconds(100)));
  // Idle time saves up at most one second.
  EXPECT_TRUE(bucket.Take(1000, t0 + seconds(60)));
  EXPECT_FALSE(bucket.Take(1, t0 + seconds(60)));
  // A packet larger than the burst never passes.
  EXPECT_FALSE(bucket.Take(1001, t0 + seconds(120)));
  // A refused packet takes nothing.
  EXPECT_TRUE(bucket.Take(1000, t0 + seconds(120)));
}

}  // namespace
}  // namespace turnkey::relay
