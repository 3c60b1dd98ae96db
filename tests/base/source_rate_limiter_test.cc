#include "base/source_rate_limiter.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <string_view>

namespace turnkey::base {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

SocketAddress Ip(std::string_view text, uint16_t port = 0) {
  return *SocketAddress::ParseIp(text, port);
}

const MonoTime kT0 = MonoTime{} + seconds(100);

int Allowed(SourceRateLimiter& limiter, const SocketAddress& source, int tries, MonoTime now) {
  int allowed = 0;
  for (int i = 0; i < tries; ++i) {
    if (limiter.Allow(source, now)) {
      ++allowed;
    }
  }
  return allowed;
}

TEST(SourceRateLimiterTest, BurstThenRate) {
  SourceRateLimiter limiter(2, 5, 64);
  const auto source = Ip("203.0.113.5", 1234);
  EXPECT_EQ(Allowed(limiter, source, 10, kT0), 5);
  EXPECT_EQ(Allowed(limiter, source, 10, kT0 + milliseconds(250)), 0);  // half a token
  EXPECT_EQ(Allowed(limiter, source, 10, kT0 + milliseconds(1000)), 2);
  EXPECT_EQ(Allowed(limiter, source, 10, kT0 + milliseconds(2000)), 2);
  // Saved tokens stop at the burst.
  EXPECT_EQ(Allowed(limiter, source, 100, kT0 + seconds(1000)), 5);
}

TEST(SourceRateLimiterTest, PortIsIgnored) {
  SourceRateLimiter limiter(1, 2, 64);
  EXPECT_TRUE(limiter.Allow(Ip("203.0.113.5", 1), kT0));
  EXPECT_TRUE(limiter.Allow(Ip("203.0.113.5", 2), kT0));
  EXPECT_FALSE(limiter.Allow(Ip("203.0.113.5", 3), kT0));
}

TEST(SourceRateLimiterTest, AnIpv6ClientIsItsSlash64AndMappedIpv4IsIpv4) {
  SourceRateLimiter limiter(0.01, 1, 4096);
  EXPECT_TRUE(limiter.Allow(Ip("2001:db8:1:2::1"), kT0));
  EXPECT_FALSE(limiter.Allow(Ip("2001:db8:1:2:ffff::9"), kT0));  // the same /64
  EXPECT_TRUE(limiter.Allow(Ip("2001:db8:1:3::1"), kT0));
  EXPECT_TRUE(limiter.Allow(Ip("203.0.113.4"), kT0));
  EXPECT_FALSE(limiter.Allow(Ip("::ffff:203.0.113.4"), kT0));
}

TEST(SourceRateLimiterTest, SourcesHaveTheirOwnBuckets) {
  SourceRateLimiter limiter(1, 3, 4096);
  const auto a = Ip("203.0.113.5");
  const auto b = Ip("2001:db8::5");
  EXPECT_EQ(Allowed(limiter, a, 10, kT0), 3);
  EXPECT_EQ(Allowed(limiter, b, 10, kT0), 3);
  EXPECT_EQ(Allowed(limiter, a, 10, kT0), 0);
}

TEST(SourceRateLimiterTest, TableNeverGrowsAndACollisionResetsTheBucket) {
  // One slot: every address lands on it. A newcomer takes it over with a
  // full bucket, which is the documented price of bounded state.
  SourceRateLimiter limiter(1, 2, 1);
  const auto a = Ip("203.0.113.5");
  const auto b = Ip("203.0.113.6");
  EXPECT_EQ(Allowed(limiter, a, 5, kT0), 2);
  EXPECT_EQ(Allowed(limiter, b, 5, kT0), 2);
  EXPECT_EQ(Allowed(limiter, a, 5, kT0), 2);
}

// Which addresses share a slot differs from one limiter (one process, one
// worker) to the next: a pair that resets each other's bucket cannot be
// worked out in advance.
TEST(SourceRateLimiterTest, SlotsDependOnAKeyOfEachLimiter) {
  SourceRateLimiter one(1, 2, 4096);
  SourceRateLimiter other(1, 2, 4096);
  int same = 0;
  for (int i = 1; i <= 64; ++i) {
    const auto address = Ip("198.51.100." + std::to_string(i));
    EXPECT_LT(one.SlotOf(address), 4096u);
    EXPECT_EQ(one.SlotOf(address), one.SlotOf(Ip("198.51.100." + std::to_string(i), 9)));
    same += one.SlotOf(address) == other.SlotOf(address) ? 1 : 0;
  }
  EXPECT_LT(same, 8);  // 64 / 4096 expected by chance
}

TEST(SourceRateLimiterTest, ClockGoingBackwardsGivesNothing) {
  SourceRateLimiter limiter(10, 1, 8);
  const auto a = Ip("203.0.113.5");
  EXPECT_TRUE(limiter.Allow(a, kT0));
  EXPECT_FALSE(limiter.Allow(a, kT0 - seconds(50)));
  EXPECT_FALSE(limiter.Allow(a, kT0));
  EXPECT_TRUE(limiter.Allow(a, kT0 + milliseconds(250)));
}

}  // namespace
}  // namespace turnkey::base
