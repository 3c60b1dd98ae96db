#include "auth/login_throttle.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/clock.h"

namespace turnkey::auth {
namespace {

using base::SocketAddress;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

SocketAddress Ip(std::string_view text, uint16_t port = 40000) {
  auto a = SocketAddress::ParseIp(text, port);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(SocketAddress{});
}

LoginThrottle Make(LoginThrottleOptions options) {
  auto throttle = LoginThrottle::Create(options);
  EXPECT_TRUE(throttle.has_value()) << throttle.error().message;
  return std::move(*throttle);
}

class LoginThrottleTest : public ::testing::Test {
 protected:
  // Small numbers so each step is visible.
  LoginThrottleOptions options_{.account_free_failures = 3,
                                .address_free_failures = 10,
                                .first_delay = seconds{1},
                                .max_delay = seconds{16},
                                .forget_after = minutes{10},
                                .max_entries = 1000};
  base::FakeClock clock_;
  const SocketAddress alice_ip_ = Ip("198.51.100.7");
};

TEST_F(LoginThrottleTest, EscalatesPerAccountUpToTheCap) {
  LoginThrottle t = Make(options_);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(t.Check("alice", alice_ip_, clock_.Now()).allowed);
    t.RecordFailure("alice", alice_ip_, clock_.Now());
  }
  // The allowance is used up but each failure so far was free.
  EXPECT_TRUE(t.Check("alice", alice_ip_, clock_.Now()).allowed);

  // Failures 4, 5, 6, ... wait 1, 2, 4, 8, 16, 16 seconds.
  for (int64_t expected : {1, 2, 4, 8, 16, 16, 16}) {
    t.RecordFailure("alice", alice_ip_, clock_.Now());
    const ThrottleVerdict v = t.Check("alice", alice_ip_, clock_.Now());
    EXPECT_FALSE(v.allowed);
    EXPECT_EQ(v.retry_after, seconds{expected});
    // Other accounts from elsewhere are not affected.
    EXPECT_TRUE(t.Check("bob", Ip("203.0.113.9"), clock_.Now()).allowed);
    clock_.Advance(seconds{expected} - milliseconds{1});
    EXPECT_FALSE(t.Check("alice", alice_ip_, clock_.Now()).allowed);
    EXPECT_EQ(t.Check("alice", alice_ip_, clock_.Now()).retry_after, seconds{1});  // rounded up
    clock_.Advance(milliseconds{1});
    EXPECT_TRUE(t.Check("alice", alice_ip_, clock_.Now()).allowed);
  }
}

TEST_F(LoginThrottleTest, ChecksUnderWayCountAsFailuresToCome) {
  // Guesses sent at once must not all pass the check before the first fails.
  LoginThrottle t = Make(options_);
  std::vector<ThrottledAttempt> under_way;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(t.Check("alice", alice_ip_, clock_.Now()).allowed) << i;
    under_way.emplace_back(t, "alice", alice_ip_);
  }
  ThrottleVerdict verdict = t.Check("alice", alice_ip_, clock_.Now());
  EXPECT_FALSE(verdict.allowed);
  EXPECT_EQ(verdict.retry_after, seconds{1});
  // Another account from another address is not held back.
  EXPECT_TRUE(t.Check("bob", Ip("203.0.113.5"), clock_.Now()).allowed);
  // As each check ends as a failure, the failures count instead.
  for (ThrottledAttempt& attempt : under_way) {
    t.RecordFailure(attempt.account(), alice_ip_, clock_.Now());
  }
  under_way.clear();
  EXPECT_TRUE(t.Check("alice", alice_ip_, clock_.Now()).allowed);  // 3 free, as sequentially
  t.RecordFailure("alice", alice_ip_, clock_.Now());
  EXPECT_FALSE(t.Check("alice", alice_ip_, clock_.Now()).allowed);

  // The address's allowance too: 10 checks under way on 10 accounts.
  LoginThrottle u = Make(options_);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(u.Check("user" + std::to_string(i), alice_ip_, clock_.Now()).allowed) << i;
    under_way.emplace_back(u, "user" + std::to_string(i), alice_ip_);
  }
  EXPECT_FALSE(u.Check("user10", alice_ip_, clock_.Now()).allowed);
  under_way.back().End();  // one ended (a success, say)
  EXPECT_TRUE(u.Check("user10", alice_ip_, clock_.Now()).allowed);
  under_way.clear();  // before `u` goes
}

TEST_F(LoginThrottleTest, AccountIsThrottledFromEveryAddress) {
  LoginThrottle t = Make(options_);
  for (int i = 0; i < 4; ++i) {
    t.RecordFailure("alice", Ip("192.0.2." + std::to_string(i + 1)), clock_.Now());
  }
  EXPECT_FALSE(t.Check("alice", Ip("192.0.2.200"), clock_.Now()).allowed);
  EXPECT_TRUE(t.Check("bob", Ip("192.0.2.200"), clock_.Now()).allowed);
}

TEST_F(LoginThrottleTest, StrangersDoNotLockTheOwnerOutOfAnAddressItLoggedInFrom) {
  options_.known_for = minutes{1};
  LoginThrottle t = Make(options_);
  t.RecordSuccess("alice", alice_ip_, clock_.Now());
  clock_.Advance(seconds{30});
  // Eight wrong guesses from strangers: the account waits 16 s everywhere
  // else, but not where its owner logged in from.
  for (int i = 0; i < 8; ++i) {
    t.RecordFailure("alice", Ip("192.0.2." + std::to_string(i + 1)), clock_.Now());
  }
  EXPECT_EQ(t.Check("alice", Ip("192.0.2.200"), clock_.Now()).retry_after, seconds{16});
  EXPECT_TRUE(t.Check("alice", alice_ip_, clock_.Now()).allowed);
  // The same /64 and another port are the same address.
  EXPECT_TRUE(t.Check("alice", Ip("198.51.100.7", 1), clock_.Now()).allowed);
  // Known to alice only.
  t.RecordSuccess("bob", Ip("192.0.2.200"), clock_.Now());
  EXPECT_FALSE(t.Check("alice", Ip("192.0.2.200"), clock_.Now()).allowed);

  // Guesses from the known address are counted there as for anyone else.
  for (int i = 0; i < 3; ++i) {
    t.RecordFailure("alice", alice_ip_, clock_.Now());
    EXPECT_TRUE(t.Check("alice", alice_ip_, clock_.Now()).allowed);
  }
  t.RecordFailure("alice", alice_ip_, clock_.Now());
  EXPECT_EQ(t.Check("alice", alice_ip_, clock_.Now()).retry_after, seconds{1});
  clock_.Advance(seconds{1});
  EXPECT_TRUE(t.Check("alice", alice_ip_, clock_.Now()).allowed);
  EXPECT_EQ(t.pair_entries(), 9u);
  EXPECT_EQ(t.known_entries(), 2u);

  // A minute after the login the address is a stranger again.
  clock_.Advance(seconds{29});
  t.RecordFailure("alice", Ip("192.0.2.1"), clock_.Now());
  EXPECT_EQ(t.Check("alice", alice_ip_, clock_.Now()).retry_after, seconds{16});
  t.Sweep(clock_.Now());
  EXPECT_EQ(t.known_entries(), 1u);
}

TEST_F(LoginThrottleTest, TheOwnersLoginDoesNotCutStrangersWaitShort) {
  LoginThrottle t = Make(options_);
  t.RecordSuccess("alice", alice_ip_, clock_.Now());
  for (int i = 0; i < 8; ++i) {
    t.RecordFailure("alice", Ip("192.0.2." + std::to_string(i + 1)), clock_.Now());
  }
  ASSERT_TRUE(t.Check("alice", alice_ip_, clock_.Now()).allowed);
  t.RecordSuccess("alice", alice_ip_, clock_.Now());
  EXPECT_EQ(t.Check("alice", Ip("192.0.2.100"), clock_.Now()).retry_after, seconds{16});
  // Once the wait is over, a login clears the account's count as before.
  clock_.Advance(seconds{16});
  t.RecordSuccess("alice", alice_ip_, clock_.Now());
  for (int i = 0; i < 3; ++i) {
    t.RecordFailure("alice", Ip("192.0.2.100"), clock_.Now());
  }
  EXPECT_TRUE(t.Check("alice", Ip("192.0.2.101"), clock_.Now()).allowed);
}

TEST_F(LoginThrottleTest, OtherAccountsLoginsDoNotPushOutTheOwnersAddresses) {
  options_.max_entries = 3;
  LoginThrottle t = Make(options_);
  t.RecordSuccess("alice", alice_ip_, clock_.Now());
  // One account logging in from ever new addresses keeps one entry.
  for (int i = 0; i < 100; ++i) {
    t.RecordSuccess("mallory", Ip("203.0.113." + std::to_string(i)), clock_.Now());
  }
  EXPECT_EQ(t.known_entries(), 2u);
  for (int i = 0; i < 8; ++i) {
    t.RecordFailure("alice", Ip("192.0.2." + std::to_string(i + 1)), clock_.Now());
  }
  EXPECT_TRUE(t.Check("alice", alice_ip_, clock_.Now()).allowed);
  // An account remembers its last four addresses.
  for (int i = 1; i <= 4; ++i) {
    clock_.Advance(seconds{1});
    t.RecordSuccess("mallory", Ip("198.18.0." + std::to_string(i)), clock_.Now());
  }
  for (int i = 0; i < 8; ++i) {
    t.RecordFailure("mallory", Ip("192.0.2." + std::to_string(i + 1)), clock_.Now());
  }
  EXPECT_TRUE(t.Check("mallory", Ip("198.18.0.1"), clock_.Now()).allowed);
  EXPECT_TRUE(t.Check("mallory", Ip("198.18.0.4"), clock_.Now()).allowed);
  EXPECT_FALSE(t.Check("mallory", Ip("203.0.113.99"), clock_.Now()).allowed);
}

TEST_F(LoginThrottleTest, SuccessResetsTheAccountButNotTheAddress) {
  LoginThrottle t = Make(options_);
  for (int i = 0; i < 5; ++i) {
    t.RecordFailure("alice", alice_ip_, clock_.Now());
  }
  ASSERT_FALSE(t.Check("alice", alice_ip_, clock_.Now()).allowed);
  clock_.Advance(seconds{2});
  ASSERT_TRUE(t.Check("alice", alice_ip_, clock_.Now()).allowed);
  t.RecordSuccess("alice", alice_ip_, clock_.Now());
  // The count starts over: three free failures again.
  for (int i = 0; i < 3; ++i) {
    t.RecordFailure("alice", alice_ip_, clock_.Now());
    EXPECT_TRUE(t.Check("alice", alice_ip_, clock_.Now()).allowed);
  }
  t.RecordFailure("alice", alice_ip_, clock_.Now());
  EXPECT_EQ(t.Check("alice", alice_ip_, clock_.Now()).retry_after, seconds{1});

  // An address count survives successes: ten failures on ten accounts use up
  // the address allowance, the next one is throttled, and a success on some
  // other account from the same address does not clear it.
  LoginThrottle u = Make(options_);
  for (int i = 0; i < 10; ++i) {
    u.RecordFailure("victim" + std::to_string(i), alice_ip_, clock_.Now());
  }
  u.RecordSuccess("mallory", alice_ip_, clock_.Now());
  EXPECT_TRUE(u.Check("victim99", alice_ip_, clock_.Now()).allowed);
  u.RecordFailure("victim10", alice_ip_, clock_.Now());
  u.RecordSuccess("mallory", alice_ip_, clock_.Now());
  const ThrottleVerdict v = u.Check("victim11", alice_ip_, clock_.Now());
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.retry_after, seconds{1});
  EXPECT_FALSE(u.Check("mallory", alice_ip_, clock_.Now()).allowed);
  EXPECT_TRUE(u.Check("victim11", Ip("198.51.100.8"), clock_.Now()).allowed);
}

TEST_F(LoginThrottleTest, AddressesAreIpv4OrIpv6Slash64) {
  LoginThrottle t = Make(options_);
  // Ports do not matter; an IPv6 /64 is one address; IPv4-mapped is IPv4.
  for (int i = 0; i < 6; ++i) {
    t.RecordFailure("a" + std::to_string(i), Ip("2001:db8:1:2::" + std::to_string(i + 1), i),
                    clock_.Now());
    t.RecordFailure("b" + std::to_string(i), Ip("::ffff:192.0.2.1", i), clock_.Now());
  }
  for (int i = 0; i < 5; ++i) {
    t.RecordFailure("c" + std::to_string(i), Ip("2001:db8:1:2:ffff:ffff:ffff:ffff"), clock_.Now());
    t.RecordFailure("d" + std::to_string(i), Ip("192.0.2.1", 1), clock_.Now());
  }
  EXPECT_EQ(t.address_entries(), 2u);
  EXPECT_FALSE(t.Check("new", Ip("2001:db8:1:2::99"), clock_.Now()).allowed);
  EXPECT_FALSE(t.Check("new", Ip("192.0.2.1"), clock_.Now()).allowed);
  EXPECT_FALSE(t.Check("new", Ip("::ffff:192.0.2.1"), clock_.Now()).allowed);
  EXPECT_TRUE(t.Check("new", Ip("2001:db8:1:3::1"), clock_.Now()).allowed);
  EXPECT_TRUE(t.Check("new", Ip("192.0.2.2"), clock_.Now()).allowed);
  // ::c000:201 is not the IPv4-mapped form of 192.0.2.1.
  EXPECT_TRUE(t.Check("new", Ip("::c000:201"), clock_.Now()).allowed);
}

TEST_F(LoginThrottleTest, CountsAreForgottenAfterQuiet) {
  LoginThrottle t = Make(options_);
  for (int i = 0; i < 8; ++i) {
    t.RecordFailure("alice", alice_ip_, clock_.Now());
  }
  EXPECT_EQ(t.Check("alice", alice_ip_, clock_.Now()).retry_after, seconds{16});
  clock_.Advance(minutes{10} - milliseconds{1});
  EXPECT_TRUE(t.Check("alice", alice_ip_, clock_.Now()).allowed);
  // Still remembered: the next failure escalates further (capped).
  t.RecordFailure("alice", alice_ip_, clock_.Now());
  EXPECT_EQ(t.Check("alice", alice_ip_, clock_.Now()).retry_after, seconds{16});

  clock_.Advance(minutes{10});
  EXPECT_TRUE(t.Check("alice", alice_ip_, clock_.Now()).allowed);
  // Forgotten: the next failure is free again.
  t.RecordFailure("alice", alice_ip_, clock_.Now());
  EXPECT_TRUE(t.Check("alice", alice_ip_, clock_.Now()).allowed);
  EXPECT_EQ(t.account_entries(), 1u);
}

TEST_F(LoginThrottleTest, MemoryIsBounded) {
  options_.account_free_failures = 0;
  options_.max_entries = 3;
  LoginThrottle t = Make(options_);
  for (int i = 0; i < 1000; ++i) {
    t.RecordFailure("user" + std::to_string(i),
                    Ip("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256)),
                    clock_.Now());
    clock_.Advance(milliseconds{1});
    ASSERT_LE(t.account_entries(), 3u);
    ASSERT_LE(t.address_entries(), 3u);
    ASSERT_LE(t.pair_entries(), 3u);
    t.RecordSuccess("ok" + std::to_string(i), Ip("192.0.2.9"), clock_.Now());
    ASSERT_LE(t.known_entries(), 3u);
  }
  // The three most recent are kept; older ones were evicted.
  EXPECT_FALSE(t.Check("user999", Ip("192.0.2.1"), clock_.Now()).allowed);
  EXPECT_FALSE(t.Check("user997", Ip("192.0.2.1"), clock_.Now()).allowed);
  EXPECT_TRUE(t.Check("user996", Ip("192.0.2.1"), clock_.Now()).allowed);

  // A failure on a tracked entry keeps it from being the next evicted.
  t.RecordFailure("user997", Ip("192.0.2.1"), clock_.Now());
  t.RecordFailure("fresh", Ip("192.0.2.1"), clock_.Now());
  EXPECT_FALSE(t.Check("user997", Ip("192.0.2.2"), clock_.Now()).allowed);
  EXPECT_TRUE(t.Check("user998", Ip("192.0.2.2"), clock_.Now()).allowed);

  // Long account names cost no more than short ones (kept as a digest).
  t.RecordFailure(std::string(1 << 20, 'x'), Ip("192.0.2.1"), clock_.Now());
  EXPECT_FALSE(t.Check(std::string(1 << 20, 'x'), Ip("192.0.2.3"), clock_.Now()).allowed);
  EXPECT_TRUE(t.Check(std::string((1 << 20) - 1, 'x'), Ip("192.0.2.3"), clock_.Now()).allowed);
}

TEST_F(LoginThrottleTest, SweepDropsQuietEntries) {
  LoginThrottle t = Make(options_);
  t.RecordFailure("alice", alice_ip_, clock_.Now());
  clock_.Advance(minutes{5});
  t.RecordFailure("bob", Ip("192.0.2.1"), clock_.Now());
  EXPECT_EQ(t.account_entries(), 2u);
  EXPECT_EQ(t.address_entries(), 2u);
  clock_.Advance(minutes{5});
  t.Sweep(clock_.Now());
  EXPECT_EQ(t.account_entries(), 1u);
  EXPECT_EQ(t.address_entries(), 1u);
  // New failures sweep too.
  clock_.Advance(minutes{5});
  t.RecordFailure("carol", Ip("192.0.2.2"), clock_.Now());
  EXPECT_EQ(t.account_entries(), 1u);
  EXPECT_EQ(t.address_entries(), 1u);
}

TEST_F(LoginThrottleTest, DelaySchedule) {
  LoginThrottle t = Make({.first_delay = seconds{2}, .max_delay = seconds{900}});
  EXPECT_EQ(t.DelayAfter(0, 5), base::Duration::zero());
  EXPECT_EQ(t.DelayAfter(5, 5), base::Duration::zero());
  EXPECT_EQ(t.DelayAfter(6, 5), seconds{2});
  EXPECT_EQ(t.DelayAfter(7, 5), seconds{4});
  EXPECT_EQ(t.DelayAfter(13, 5), seconds{256});
  EXPECT_EQ(t.DelayAfter(14, 5), seconds{512});
  EXPECT_EQ(t.DelayAfter(15, 5), seconds{900});
  EXPECT_EQ(t.DelayAfter(4'000'000'000u, 0), seconds{900});
}

TEST(LoginThrottleCreateTest, RefusesBadOptions) {
  EXPECT_TRUE(LoginThrottle::Create({}).has_value());
  EXPECT_FALSE(LoginThrottle::Create({.first_delay = seconds{0}}).has_value());
  EXPECT_FALSE(
      LoginThrottle::Create({.first_delay = seconds{10}, .max_delay = seconds{5}}).has_value());
  EXPECT_FALSE(
      LoginThrottle::Create({.max_delay = seconds{600}, .forget_after = seconds{60}}).has_value());
  EXPECT_FALSE(LoginThrottle::Create({.known_for = seconds{0}}).has_value());
  EXPECT_FALSE(LoginThrottle::Create({.max_entries = 0}).has_value());
}

}  // namespace
}  // namespace turnkey::auth
