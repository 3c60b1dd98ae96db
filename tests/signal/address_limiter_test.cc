#include "signal/address_limiter.h"

#include <gtest/gtest.h>

namespace turnkey::signal {
namespace {

using std::chrono::seconds;

base::SocketAddress Ip(const char* text, uint16_t port = 1000) {
  return *base::SocketAddress::ParseIp(text, port);
}

TEST(AddressLimiterTest, BurstThenRatePerAddress) {
  AddressLimiter limiter(/*rate=*/0.5, /*burst=*/3);
  const base::MonoTime t0{};
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(limiter.TryTake(Ip("192.0.2.1"), t0)) << i;
  }
  EXPECT_FALSE(limiter.TryTake(Ip("192.0.2.1", 2000), t0));  // any port
  EXPECT_TRUE(limiter.TryTake(Ip("192.0.2.2"), t0));         // another address
  EXPECT_FALSE(limiter.TryTake(Ip("192.0.2.1"), t0 + seconds(1)));
  EXPECT_TRUE(limiter.TryTake(Ip("192.0.2.1"), t0 + seconds(2)));  // one token back
  EXPECT_EQ(limiter.RetryAfter(), seconds(2));
}

TEST(AddressLimiterTest, Ipv6CountsPerSlash64AndMappedIpv4AsIpv4) {
  AddressLimiter limiter(0.01, 1);
  const base::MonoTime t0{};
  EXPECT_TRUE(limiter.TryTake(Ip("2001:db8:1:2::1"), t0));
  EXPECT_FALSE(limiter.TryTake(Ip("2001:db8:1:2:ffff::9"), t0));  // same /64
  EXPECT_TRUE(limiter.TryTake(Ip("2001:db8:1:3::1"), t0));        // next /64
  EXPECT_TRUE(limiter.TryTake(Ip("203.0.113.4"), t0));
  EXPECT_FALSE(limiter.TryTake(Ip("::ffff:203.0.113.4"), t0));
}

TEST(AddressLimiterTest, ZeroRateIsNoLimitAndRefilledBucketsAreForgotten) {
  AddressLimiter off(0, 1);
  for (int i = 0; i < 100; ++i) {
    EXPECT_TRUE(off.TryTake(Ip("192.0.2.1"), base::MonoTime{}));
  }
  EXPECT_EQ(off.tracked(), 0u);

  AddressLimiter limiter(1, 2);  // full again 2 s after the last take
  const base::MonoTime t0{};
  for (int i = 0; i < 200; ++i) {
    limiter.TryTake(base::SocketAddress::V4({10, 0, static_cast<uint8_t>(i), 1}, 1), t0);
  }
  EXPECT_EQ(limiter.tracked(), 200u);
  for (int i = 0; i < 100; ++i) {  // the sweep comes with the 256th take
    limiter.TryTake(Ip("192.0.2.1"), t0 + seconds(3));
  }
  EXPECT_EQ(limiter.tracked(), 1u);
}

}  // namespace
}  // namespace turnkey::signal
