#include "relay/port_pool.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <set>
#include <utility>
#include <vector>

namespace turnkey::relay {
namespace {

using std::chrono::seconds;

PortPool MakePool(uint16_t first, uint16_t last) {
  auto pool = PortPool::Create(PortRange{first, last});
  EXPECT_TRUE(pool.has_value());
  return std::move(*pool);
}

// ---- Partition ----

void ExpectPartitionCovers(uint16_t min, uint16_t max, unsigned workers) {
  SCOPED_TRACE(testing::Message() << min << "-" << max << " / " << workers);
  const std::vector<PortRange> slices = PortPool::Partition(min, max, workers);
  ASSERT_EQ(slices.size(), workers);
  uint32_t expected_first = min;
  size_t total = 0;
  for (const PortRange& slice : slices) {
    EXPECT_EQ(slice.first, expected_first);  // contiguous, no gap or overlap
    EXPECT_LE(slice.first, slice.last);      // non-empty
    total += slice.size();
    expected_first = uint32_t{slice.last} + 1;
  }
  EXPECT_EQ(slices.back().last, max);
  EXPECT_EQ(total, size_t{max} - min + 1);
}

TEST(PortPoolPartitionTest, CoversRangeWithoutOverlap) {
  for (unsigned workers = 1; workers <= 16; ++workers) {
    ExpectPartitionCovers(49152, 65535, workers);
    ExpectPartitionCovers(49153, 65535, workers);
    ExpectPartitionCovers(10000, 10099, workers);
    ExpectPartitionCovers(1, 65535, workers);
    ExpectPartitionCovers(30001, 30016, workers);  // as few ports as workers at 16
  }
}

TEST(PortPoolPartitionTest, SlicesStartOnEvenPorts) {
  for (unsigned workers = 1; workers <= 16; ++workers) {
    for (uint16_t min : {uint16_t{49152}, uint16_t{49153}}) {
      const std::vector<PortRange> slices = PortPool::Partition(min, 65535, workers);
      ASSERT_EQ(slices.size(), workers);
      for (size_t i = 1; i < slices.size(); ++i) {
        EXPECT_EQ(slices[i].first % 2, 0) << "worker " << i << " of " << workers;
      }
      // Roughly equal shares: no slice more than 2 ports off the average.
      const double average = double(65535 - min + 1) / workers;
      for (const PortRange& slice : slices) {
        EXPECT_NEAR(double(slice.size()), average, 2.0);
      }
    }
  }
}

TEST(PortPoolPartitionTest, RejectsImpossibleInput) {
  EXPECT_TRUE(PortPool::Partition(100, 200, 0).empty());
  EXPECT_TRUE(PortPool::Partition(200, 100, 1).empty());
  EXPECT_TRUE(PortPool::Partition(100, 102, 4).empty());
  const std::vector<PortRange> one = PortPool::Partition(100, 100, 1);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0], (PortRange{100, 100}));
  const std::vector<PortRange> top = PortPool::Partition(65535, 65535, 1);
  ASSERT_EQ(top.size(), 1u);
  EXPECT_EQ(top[0], (PortRange{65535, 65535}));
}

// ---- Pool ----

TEST(PortPoolTest, CreateRejectsBadRanges) {
  EXPECT_FALSE(PortPool::Create(PortRange{0, 10}).has_value());
  EXPECT_FALSE(PortPool::Create(PortRange{20, 10}).has_value());
  EXPECT_TRUE(PortPool::Create(PortRange{65535, 65535}).has_value());
}

TEST(PortPoolTest, AcquireUntilExhausted) {
  PortPool pool = MakePool(40000, 40099);
  EXPECT_EQ(pool.capacity(), 100u);
  EXPECT_EQ(pool.free_count(), 100u);
  std::set<uint16_t> seen;
  for (int i = 0; i < 100; ++i) {
    const std::optional<uint16_t> port = pool.Acquire();
    ASSERT_TRUE(port.has_value());
    EXPECT_TRUE(pool.range().Contains(*port));
    EXPECT_TRUE(seen.insert(*port).second) << "port handed out twice: " << *port;
  }
  EXPECT_EQ(pool.free_count(), 0u);
  EXPECT_FALSE(pool.Acquire().has_value());
  EXPECT_FALSE(pool.AcquireEven(false, base::MonoTime{}).has_value());
  pool.Release(40042);
  EXPECT_EQ(pool.Acquire(), std::optional<uint16_t>(40042));
}

TEST(PortPoolTest, AcquireIsNotSequential) {
  PortPool pool = MakePool(40000, 49999);
  std::vector<uint16_t> ports;
  for (int i = 0; i < 20; ++i) {
    ports.push_back(*pool.Acquire());
  }
  int sequential = 0;
  for (size_t i = 1; i < ports.size(); ++i) {
    if (ports[i] == ports[i - 1] + 1) {
      ++sequential;
    }
  }
  // 19 neighbours by chance has probability ~ (1/10000)^19.
  EXPECT_LT(sequential, 5);
  EXPECT_FALSE(ports[0] == 40000 && ports[1] == 40001);
}

TEST(PortPoolTest, ReleaseIsIdempotentAndIgnoresForeignPorts) {
  PortPool pool = MakePool(40000, 40009);
  const uint16_t port = *pool.Acquire();
  pool.Release(port);
  pool.Release(port);
  pool.Release(39999);
  pool.Release(40010);
  pool.MarkUnusable(1, base::MonoTime{});
  EXPECT_EQ(pool.free_count(), 10u);
}

TEST(PortPoolTest, UnusablePortsComeBackAfterTheRetryTime) {
  PortPool pool = MakePool(40000, 40003);
  const base::MonoTime start{};
  pool.MarkUnusable(40001, start);
  pool.MarkUnusable(40002, start + std::chrono::seconds(10));
  EXPECT_EQ(pool.free_count(), 2u);
  pool.ExpireReservations(start + PortPool::kUnusableRetryAfter - std::chrono::milliseconds(1));
  EXPECT_EQ(pool.free_count(), 2u);
  pool.ExpireReservations(start + PortPool::kUnusableRetryAfter);
  EXPECT_EQ(pool.free_count(), 3u);  // 40001 is back, 40002 not yet
  // Marked again (refused again): a new retry time, counted from then.
  pool.MarkUnusable(40002, start + std::chrono::seconds(50));
  pool.ExpireReservations(start + std::chrono::seconds(70));
  EXPECT_EQ(pool.free_count(), 3u);
  // Released by hand meanwhile: free at once, and the old retry time is moot.
  pool.Release(40002);
  EXPECT_EQ(pool.free_count(), 4u);
  pool.ExpireReservations(start + std::chrono::seconds(200));
  EXPECT_EQ(pool.free_count(), 4u);
  std::set<uint16_t> all;
  while (auto port = pool.Acquire()) {
    all.insert(*port);
  }
  EXPECT_EQ(all, (std::set<uint16_t>{40000, 40001, 40002, 40003}));
}

TEST(PortPoolTest, EvenPorts) {
  PortPool pool = MakePool(40001, 40010);  // odd start: 40002..40010 even
  const base::MonoTime now{};
  std::set<uint16_t> evens;
  while (auto grant = pool.AcquireEven(false, now)) {
    EXPECT_EQ(grant->port % 2, 0);
    EXPECT_EQ(grant->token, 0u);
    evens.insert(grant->port);
  }
  EXPECT_EQ(evens, (std::set<uint16_t>{40002, 40004, 40006, 40008, 40010}));
  EXPECT_EQ(pool.free_count(), 5u);
  // Only odd ports are left for plain Acquire.
  while (auto port = pool.Acquire()) {
    EXPECT_EQ(*port % 2, 1);
  }
  EXPECT_EQ(pool.free_count(), 0u);
}

TEST(PortPoolTest, EvenWithReservationNeedsAFreePair) {
  // 40000/40001 and 40002/40003 form pairs; 40004 has no partner in range.
  PortPool pool = MakePool(40000, 40004);
  const base::MonoTime now{};
  pool.MarkUnusable(40001, now);
  pool.MarkUnusable(40003, now);
  EXPECT_FALSE(pool.AcquireEven(true, now).has_value());
  pool.Release(40003);
  const std::optional<EvenPortGrant> grant = pool.AcquireEven(true, now);
  ASSERT_TRUE(grant.has_value());
  EXPECT_EQ(grant->port, 40002);
  EXPECT_NE(grant->token, 0u);
  EXPECT_EQ(PortPool::TokenPort(grant->token), 40003);
  EXPECT_EQ(pool.reserved_count(), 1u);
  EXPECT_EQ(pool.free_count(), 2u);  // 40000 and 40004
  EXPECT_FALSE(pool.AcquireEven(true, now).has_value());
}

TEST(PortPoolTest, ReservationClaimedByToken) {
  base::FakeClock clock;
  PortPool pool = MakePool(40000, 40099);
  const std::optional<EvenPortGrant> grant = pool.AcquireEven(true, clock.Now());
  ASSERT_TRUE(grant.has_value());
  EXPECT_EQ(grant->port % 2, 0);
  EXPECT_EQ(pool.free_count(), 98u);

  // A wrong token for the right port, and tokens for other ports, are refused.
  EXPECT_FALSE(pool.AcquireReserved(grant->token ^ (uint64_t{1} << 40), clock.Now()));
  EXPECT_FALSE(pool.AcquireReserved(grant->token + 1, clock.Now()));
  EXPECT_FALSE(pool.AcquireReserved(0, clock.Now()));
  EXPECT_FALSE(pool.AcquireReserved(grant->token & ~uint64_t{0xFFFF}, clock.Now()));
  // A plain Acquire never hands out the reserved port.
  std::vector<uint16_t> taken;
  while (auto port = pool.Acquire()) {
    EXPECT_NE(*port, grant->port + 1);
    taken.push_back(*port);
  }
  EXPECT_EQ(taken.size(), 98u);

  clock.Advance(seconds(29));
  pool.ExpireReservations(clock.Now());
  EXPECT_EQ(pool.AcquireReserved(grant->token, clock.Now()),
            std::optional<uint16_t>(grant->port + 1));
  EXPECT_EQ(pool.reserved_count(), 0u);
  // Claimed once only.
  EXPECT_FALSE(pool.AcquireReserved(grant->token, clock.Now()));
}

TEST(PortPoolTest, ReservationTokensDiffer) {
  PortPool pool = MakePool(40000, 40999);
  std::set<uint64_t> tokens;
  std::set<uint64_t> random_parts;
  for (int i = 0; i < 200; ++i) {
    const auto grant = pool.AcquireEven(true, base::MonoTime{});
    ASSERT_TRUE(grant.has_value());
    tokens.insert(grant->token);
    random_parts.insert(grant->token >> 16);
  }
  EXPECT_EQ(tokens.size(), 200u);
  EXPECT_EQ(random_parts.size(), 200u);
}

TEST(PortPoolTest, ReservationExpiresAfter30Seconds) {
  base::FakeClock clock;
  PortPool pool = MakePool(40000, 40001);
  const std::optional<EvenPortGrant> grant = pool.AcquireEven(true, clock.Now());
  ASSERT_TRUE(grant.has_value());
  EXPECT_EQ(pool.free_count(), 0u);

  clock.Advance(seconds(29));
  pool.ExpireReservations(clock.Now());
  EXPECT_EQ(pool.reserved_count(), 1u);
  EXPECT_EQ(pool.free_count(), 0u);

  clock.Advance(seconds(1));
  pool.ExpireReservations(clock.Now());
  EXPECT_EQ(pool.reserved_count(), 0u);
  EXPECT_EQ(pool.free_count(), 1u);
  EXPECT_FALSE(pool.AcquireReserved(grant->token, clock.Now()));
  EXPECT_EQ(pool.Acquire(), std::optional<uint16_t>(40001));
}

TEST(PortPoolTest, ExpiredTokenIsRefusedEvenBeforeSweep) {
  base::FakeClock clock;
  PortPool pool = MakePool(40000, 40001);
  const std::optional<EvenPortGrant> grant = pool.AcquireEven(true, clock.Now());
  ASSERT_TRUE(grant.has_value());
  clock.Advance(PortPool::kReservationLifetime);
  EXPECT_FALSE(pool.AcquireReserved(grant->token, clock.Now()));
  EXPECT_EQ(pool.free_count(), 1u);  // and the port went back to the pool
  EXPECT_EQ(pool.reserved_count(), 0u);
}

// The socket holding a reserved port (RFC 8656 section 7.2) goes to whoever
// claims the token, and back to the owner by every other way the reservation
// ends, so the owner can close it.
TEST(PortPoolTest, ReservationSocketGoesToTheClaimOrBackToTheOwner) {
  base::FakeClock clock;
  PortPool pool = MakePool(40000, 40019);
  std::vector<uintptr_t> released;

  const EvenPortGrant claimed = *pool.AcquireEven(true, clock.Now());
  EXPECT_FALSE(pool.AttachSocket(claimed.token ^ 1, 101));  // not a live token
  EXPECT_FALSE(pool.AttachSocket(claimed.token, 0));
  ASSERT_TRUE(pool.AttachSocket(claimed.token, 101));
  EXPECT_FALSE(pool.AttachSocket(claimed.token, 102));  // one socket per reservation
  uintptr_t socket = 7;
  EXPECT_EQ(pool.AcquireReserved(claimed.token, clock.Now(), &socket),
            std::optional<uint16_t>(claimed.port + 1));
  EXPECT_EQ(socket, 101u);
  // A refused claim hands out nothing.
  EXPECT_FALSE(pool.AcquireReserved(claimed.token, clock.Now(), &socket));
  EXPECT_EQ(socket, 0u);

  const EvenPortGrant expiring = *pool.AcquireEven(true, clock.Now());
  ASSERT_TRUE(pool.AttachSocket(expiring.token, 201));
  const EvenPortGrant released_port = *pool.AcquireEven(true, clock.Now());
  ASSERT_TRUE(pool.AttachSocket(released_port.token, 202));
  const EvenPortGrant unusable = *pool.AcquireEven(true, clock.Now());
  ASSERT_TRUE(pool.AttachSocket(unusable.token, 203));
  pool.Release(static_cast<uint16_t>(released_port.port + 1));
  pool.MarkUnusable(static_cast<uint16_t>(unusable.port + 1), clock.Now());
  pool.TakeReleasedSockets(&released);
  EXPECT_EQ(released, (std::vector<uintptr_t>{202, 203}));

  clock.Advance(PortPool::kReservationLifetime);
  pool.ExpireReservations(clock.Now());
  pool.TakeReleasedSockets(&released);
  EXPECT_EQ(released, (std::vector<uintptr_t>{202, 203, 201}));
  released.clear();
  pool.TakeReleasedSockets(&released);
  EXPECT_TRUE(released.empty());  // each socket is handed back once

  // A claim too late, and a claim that does not ask for the socket.
  const EvenPortGrant late = *pool.AcquireEven(true, clock.Now());
  ASSERT_TRUE(pool.AttachSocket(late.token, 301));
  const EvenPortGrant blind = *pool.AcquireEven(true, clock.Now());
  ASSERT_TRUE(pool.AttachSocket(blind.token, 302));
  EXPECT_TRUE(pool.AcquireReserved(blind.token, clock.Now()));
  clock.Advance(PortPool::kReservationLifetime);
  EXPECT_FALSE(pool.AcquireReserved(late.token, clock.Now(), &socket));
  EXPECT_EQ(socket, 0u);
  pool.TakeReleasedSockets(&released);
  EXPECT_EQ(released, (std::vector<uintptr_t>{302, 301}));
}

TEST(PortPoolTest, ExpiryOrderWithManyReservations) {
  base::FakeClock clock;
  PortPool pool = MakePool(40000, 40019);
  std::vector<EvenPortGrant> grants;
  for (int i = 0; i < 10; ++i) {
    grants.push_back(*pool.AcquireEven(true, clock.Now()));
    clock.Advance(seconds(1));
  }
  EXPECT_EQ(pool.reserved_count(), 10u);
  // Claim one in the middle, release another: both leave the expiry list.
  ASSERT_TRUE(pool.AcquireReserved(grants[4].token, clock.Now()));
  pool.Release(static_cast<uint16_t>(grants[7].port + 1));
  EXPECT_EQ(pool.reserved_count(), 8u);
  // At t=35 s the reservations made at t=0..5 are due (4 was claimed): 5 expire.
  clock.Advance(seconds(25));
  pool.ExpireReservations(clock.Now());
  EXPECT_EQ(pool.reserved_count(), 3u);
  EXPECT_TRUE(pool.AcquireReserved(grants[6].token, clock.Now()));
  EXPECT_FALSE(pool.AcquireReserved(grants[5].token, clock.Now()));
  EXPECT_FALSE(pool.AcquireReserved(grants[7].token, clock.Now()));
  clock.Advance(seconds(60));
  pool.ExpireReservations(clock.Now());
  EXPECT_EQ(pool.reserved_count(), 0u);
}

TEST(PortPoolTest, OutOfOrderTimesStillExpireCorrectly) {
  PortPool pool = MakePool(40000, 40005);
  const base::MonoTime t0{};
  const auto late = *pool.AcquireEven(true, t0 + seconds(20));
  const auto early = *pool.AcquireEven(true, t0);
  const auto middle = *pool.AcquireEven(true, t0 + seconds(10));
  pool.ExpireReservations(t0 + seconds(30));
  EXPECT_EQ(pool.reserved_count(), 2u);
  EXPECT_FALSE(pool.AcquireReserved(early.token, t0 + seconds(30)));
  EXPECT_TRUE(pool.AcquireReserved(middle.token, t0 + seconds(30)));
  EXPECT_TRUE(pool.AcquireReserved(late.token, t0 + seconds(30)));
}

TEST(PortPoolTest, MarkUnusableAndRelease) {
  PortPool pool = MakePool(40000, 40003);
  const uint16_t port = *pool.Acquire();
  pool.MarkUnusable(port, base::MonoTime{});  // bind failed
  EXPECT_EQ(pool.free_count(), 3u);
  std::set<uint16_t> rest;
  while (auto p = pool.Acquire()) {
    rest.insert(*p);
  }
  EXPECT_EQ(rest.size(), 3u);
  EXPECT_EQ(rest.count(port), 0u);
  pool.Release(port);
  EXPECT_EQ(pool.Acquire(), std::optional<uint16_t>(port));
}

TEST(PortPoolTest, MarkUnusableDropsReservation) {
  PortPool pool = MakePool(40000, 40001);
  const auto grant = *pool.AcquireEven(true, base::MonoTime{});
  pool.MarkUnusable(40001, base::MonoTime{});
  EXPECT_EQ(pool.reserved_count(), 0u);
  EXPECT_FALSE(pool.AcquireReserved(grant.token, base::MonoTime{}));
  pool.Release(40001);
  pool.Release(40000);
  EXPECT_EQ(pool.free_count(), 2u);
  EXPECT_TRUE(pool.AcquireEven(true, base::MonoTime{}).has_value());
}

// Thousands of random operations, then everything back: the pool must be
// whole (../shared/reference/security.md: "Every port goes back to the pool").
TEST(PortPoolTest, NoLeakUnderRandomOperations) {
  base::FakeClock clock;
  const PortRange range{50001, 50200};  // odd start and even end: unpaired edges
  PortPool pool = MakePool(range.first, range.last);
  std::mt19937 rng(12345);
  std::set<uint16_t> in_use;
  std::map<uint16_t, base::MonoTime> unusable;        // port -> when it comes back
  std::vector<std::pair<uint64_t, uint16_t>> tokens;  // token, reserved port
  // How often each path ran, so the test shows it exercised them.
  size_t reservations = 0;
  size_t claims = 0;
  size_t refused_claims = 0;
  size_t marked_unusable = 0;

  auto check_counts = [&] {
    ASSERT_EQ(pool.free_count() + in_use.size() + unusable.size() + pool.reserved_count(),
              pool.capacity());
    ASSERT_LE(pool.reserved_count(), tokens.size());
  };

  for (int step = 0; step < 20'000; ++step) {
    switch (rng() % 10) {
      case 0:
      case 1: {
        if (auto port = pool.Acquire()) {
          ASSERT_TRUE(in_use.insert(*port).second);
          ASSERT_FALSE(unusable.count(*port));
        }
        break;
      }
      case 2:
      case 3: {
        if (auto grant = pool.AcquireEven(rng() % 2 == 0, clock.Now())) {
          ASSERT_EQ(grant->port % 2, 0);
          ASSERT_TRUE(in_use.insert(grant->port).second);
          if (grant->token != 0) {
            ASSERT_FALSE(in_use.count(grant->port + 1));
            tokens.emplace_back(grant->token, static_cast<uint16_t>(grant->port + 1));
            ++reservations;
          }
        }
        break;
      }
      case 4: {
        if (!tokens.empty()) {
          const size_t k = rng() % tokens.size();
          const auto [token, port] = tokens[k];
          tokens.erase(tokens.begin() + static_cast<std::ptrdiff_t>(k));
          // May already have expired or been dropped; then it must not come back.
          if (auto claimed = pool.AcquireReserved(token, clock.Now())) {
            ASSERT_EQ(*claimed, port);
            ASSERT_TRUE(in_use.insert(port).second);
            ++claims;
          } else {
            ++refused_claims;
          }
        }
        break;
      }
      case 5:
      case 6:
      case 7: {
        if (!in_use.empty()) {
          auto it = in_use.begin();
          std::advance(it, static_cast<std::ptrdiff_t>(rng() % in_use.size()));
          pool.Release(*it);
          in_use.erase(it);
        }
        break;
      }
      case 8: {
        if (!in_use.empty() && rng() % 2 == 0) {
          const uint16_t port = *in_use.begin();
          pool.MarkUnusable(port, clock.Now());
          in_use.erase(port);
          unusable[port] = clock.Now() + PortPool::kUnusableRetryAfter;
          ++marked_unusable;
        } else if (!unusable.empty()) {
          pool.Release(unusable.begin()->first);
          unusable.erase(unusable.begin());
        }
        break;
      }
      case 9: {
        clock.Advance(seconds(rng() % 20));
        pool.ExpireReservations(clock.Now());
        std::erase_if(unusable, [&](const auto& entry) { return entry.second <= clock.Now(); });
        break;
      }
    }
    // Every ~1000 steps also release a foreign or already-free port.
    if (step % 1000 == 999) {
      pool.Release(static_cast<uint16_t>(range.first - 1));
      pool.Release(static_cast<uint16_t>(range.last + 1));
    }
    check_counts();
  }

  EXPECT_GT(reservations, 500u);
  EXPECT_GT(claims, 100u);
  EXPECT_GT(refused_claims, 100u);
  EXPECT_GT(marked_unusable, 50u);

  for (uint16_t port : in_use) {
    pool.Release(port);
  }
  for (const auto& [port, back_at] : unusable) {
    pool.Release(port);
  }
  clock.Advance(PortPool::kReservationLifetime);
  pool.ExpireReservations(clock.Now());
  EXPECT_EQ(pool.reserved_count(), 0u);
  EXPECT_EQ(pool.free_count(), pool.capacity());

  // Every port comes back exactly once, and every pair is whole again.
  std::set<uint16_t> all;
  while (auto port = pool.Acquire()) {
    ASSERT_TRUE(all.insert(*port).second) << "port handed out twice: " << *port;
  }
  EXPECT_EQ(all.size(), pool.capacity());
  EXPECT_EQ(*all.begin(), range.first);
  EXPECT_EQ(*all.rbegin(), range.last);
  for (uint16_t port : all) {
    pool.Release(port);
  }
  size_t pairs = 0;
  while (pool.AcquireEven(true, clock.Now())) {
    ++pairs;
  }
  EXPECT_EQ(pairs, 99u);  // 50002/50003 ... 50198/50199; 50001 and 50200 are unpaired
}

}  // namespace
}  // namespace turnkey::relay
