// Thousands of allocate/free cycles through TurnServer, with every way a
// port is taken (plain, IPv6, dual, EVEN-PORT, reservations claimed and left
// to expire, failed opens, failed holds of a reserved port, exhaustion) and
// every way it comes back (Refresh 0, expiry, a closed TCP connection, the
// destructor), must leave the port pools whole and every socket closed. At
// every step, each port that is not free has a socket on it: a relay socket,
// or the held socket of a reservation (RFC 8656 section 7.2).
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <vector>

#include "relay/turn_server.h"
#include "stun/attributes.h"
#include "stun/message_builder.h"
#include "tests/relay/turn_test_client.h"

namespace turnkey::relay {
namespace {

using stun::AddressFamily;
using stun::MessageBuilder;

class TurnPortLeakTest : public ::testing::Test, public TurnTestEnv {
 protected:
  static constexpr PortRange kV4{50000, 50063};
  static constexpr PortRange kV6{50000, 50031};

  void SetUp() override { Start(Options(true), kV4, kV6); }

  size_t SocketsOf(base::Family family) const {
    size_t n = 0;
    for (const auto& [handle, socket] : io.sockets) {
      if (socket.bound.family() == family) {
        ++n;
      }
    }
    return n;
  }

  size_t HeldOf(base::Family family) const {
    size_t n = 0;
    for (const auto& [handle, bound] : io.held) {
      if (bound.family() == family) {
        ++n;
      }
    }
    return n;
  }

  // Every port is free or has a socket: reserved ones their held socket.
  void ExpectPoolsMatchSockets() {
    ASSERT_EQ(shared.ports[0]->free_count() + SocketsOf(base::Family::kIpv4) +
                  HeldOf(base::Family::kIpv4),
              shared.ports[0]->capacity());
    ASSERT_EQ(shared.ports[1]->free_count() + SocketsOf(base::Family::kIpv6) +
                  HeldOf(base::Family::kIpv6),
              shared.ports[1]->capacity());
  }

  std::mt19937 rng_{12345};
  unsigned next_client_ = 0;

  std::unique_ptr<TurnTestClient> NewClient(ClientTransport transport) {
    const unsigned n = next_client_++;
    return std::make_unique<TurnTestClient>(*this, Tuple(n, transport),
                                            Rest("user" + std::to_string(n % 7), 1'000'000));
  }
  unsigned Pick(unsigned n) { return std::uniform_int_distribution<unsigned>(0, n - 1)(rng_); }
};

TEST_F(TurnPortLeakTest, ThousandsOfCyclesLeaveThePoolsWhole) {
  TurnServerOptions options = Options(true);
  options.allocations_per_user = 0;
  server->SetOptions(options);

  std::vector<std::unique_ptr<TurnTestClient>> live;
  std::vector<uint64_t> tokens;
  int allocated = 0, exhausted = 0, claimed = 0, stale_tokens = 0, deleted = 0, closed = 0,
      failed_opens = 0, failed_holds = 0, failed_adopts = 0;

  for (int i = 0; i < 10000; ++i) {
    const unsigned action = Pick(12);
    if (action <= 4) {
      // A new allocation of some kind.
      const ClientTransport transport =
          Pick(3) == 0 ? ClientTransport::kTcp : ClientTransport::kUdp;
      auto client = NewClient(transport);
      const unsigned kind = Pick(6);
      const bool fail_open = Pick(20) == 0;
      const bool fail_hold = !fail_open && (kind == 2 || kind == 3) && Pick(10) == 0;
      io.fail_open = fail_open;
      io.fail_hold = fail_hold;
      StunReply reply = client->Allocate([&](MessageBuilder& b) {
        switch (kind) {
          case 1:
            b.AddEvenPort(false);
            break;
          case 2:
          case 3:
            b.AddEvenPort(true);
            break;
          case 4:
            b.AddRequestedAddressFamily(AddressFamily::kIpv6);
            break;
          case 5:
            b.AddAdditionalAddressFamily(AddressFamily::kIpv6);
            break;
          default:
            break;
        }
      });
      io.fail_open = false;
      io.fail_hold = false;
      if (reply.success()) {
        ASSERT_FALSE(fail_open);
        ASSERT_FALSE(fail_hold);
        ++allocated;
        if (auto token = reply.reservation_token()) {
          tokens.push_back(*token);
        }
        live.push_back(std::move(client));
      } else {
        ASSERT_EQ(reply.error_code(), 508) << "kind " << kind;
        if (fail_open) {
          ++failed_opens;
        } else if (fail_hold) {
          ++failed_holds;
        } else {
          ++exhausted;
        }
      }
    } else if (action == 5 && !tokens.empty()) {
      // Claim a reservation, which may have expired meanwhile.
      const size_t k = Pick(static_cast<unsigned>(tokens.size()));
      const uint64_t token = tokens[k];
      tokens.erase(tokens.begin() + static_cast<std::ptrdiff_t>(k));
      auto client = NewClient(ClientTransport::kUdp);
      const bool fail_adopt = Pick(10) == 0;
      const size_t adopted_before = io.adopted;
      io.fail_open = fail_adopt;
      StunReply reply = client->Allocate([&](MessageBuilder& b) { b.AddReservationToken(token); });
      io.fail_open = false;
      if (reply.success()) {
        ASSERT_FALSE(fail_adopt);
        ++claimed;
        live.push_back(std::move(client));
      } else {
        ASSERT_EQ(reply.error_code(), 508);
        if (io.adopted != adopted_before) {
          ++failed_adopts;
        } else {
          ++stale_tokens;
        }
      }
    } else if ((action == 6 || action == 7 || action == 8) && !live.empty()) {
      // Delete one: Refresh 0, or the TCP connection closes.
      const size_t k = Pick(static_cast<unsigned>(live.size()));
      TurnTestClient& client = *live[k];
      if (client.tuple().transport == ClientTransport::kTcp && Pick(2) == 0) {
        server->OnClientClosed(client.tuple());
        ++closed;
      } else {
        const uint16_t code = client.Refresh(0).error_code();
        ASSERT_TRUE(code == 0 || code == 437) << code;  // 437: it had expired
        ++deleted;
      }
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(k));
    } else if (action == 9) {
      // Time passes: reservations (30 s) and allocations (600 s) expire.
      Advance(std::chrono::seconds(1 + Pick(40)));
    } else if (action == 10 && !live.empty()) {
      // Some stay alive longer.
      StunReply reply = live[Pick(static_cast<unsigned>(live.size()))]->Refresh(1200);
      ASSERT_TRUE(reply.success() || reply.error_code() == 437);
    }
    ASSERT_NO_FATAL_FAILURE(ExpectPoolsMatchSockets());
    if (i % 500 == 499) {
      Advance(PortPool::kReservationLifetime);
      tokens.clear();
      EXPECT_TRUE(io.held.empty());
      ASSERT_EQ(shared.quota.total(), server->allocation_count());
      ASSERT_EQ(ActiveAllocations(), server->allocation_count());
    }
  }

  // The run went through every path it is meant to.
  EXPECT_GT(allocated, 2000);
  EXPECT_GT(exhausted, 0);
  EXPECT_GT(claimed, 0);
  EXPECT_GT(stale_tokens, 0);
  EXPECT_GT(deleted, 0);
  EXPECT_GT(closed, 0);
  EXPECT_GT(failed_opens, 0);
  EXPECT_GT(failed_holds, 0);
  EXPECT_GT(failed_adopts, 0);
  EXPECT_GT(server->counters().allocations_expired.Get(), 0u);

  // Free what is left half by deletion, half by expiry.
  for (size_t k = 0; k < live.size(); k += 2) {
    live[k]->Refresh(0);
  }
  Advance(std::chrono::seconds(3600));
  EXPECT_EQ(server->allocation_count(), 0u);
  EXPECT_TRUE(io.sockets.empty());
  EXPECT_EQ(io.opened, io.closed);
  EXPECT_TRUE(io.held.empty());
  EXPECT_GT(io.holds, 0u);
  EXPECT_EQ(io.holds, io.adopted + io.held_closed);
  EXPECT_EQ(shared.ports[0]->free_count(), shared.ports[0]->capacity());
  EXPECT_EQ(shared.ports[1]->free_count(), shared.ports[1]->capacity());
  EXPECT_EQ(shared.quota.total(), 0u);
  EXPECT_EQ(ActiveAllocations(), 0u);
  EXPECT_EQ(ActivePermissions(), 0u);
  EXPECT_EQ(ActiveChannels(), 0u);
}

TEST_F(TurnPortLeakTest, DestructorReturnsEveryPort) {
  TurnServerOptions options = Options(true);
  options.allocations_per_user = 0;
  server->SetOptions(options);
  std::vector<std::unique_ptr<TurnTestClient>> clients;
  for (int i = 0; i < 40; ++i) {
    auto client = NewClient(i % 2 == 0 ? ClientTransport::kUdp : ClientTransport::kTcp);
    StunReply reply = client->Allocate([&](MessageBuilder& b) {
      if (i % 3 == 0) {
        b.AddAdditionalAddressFamily(AddressFamily::kIpv6);
      } else if (i % 3 == 1) {
        b.AddEvenPort(i % 2 == 0);  // with R: a reservation and its held socket
      }
    });
    ASSERT_TRUE(reply.success() || reply.error_code() == 508);
    clients.push_back(std::move(client));
  }
  ASSERT_GT(server->allocation_count(), 20u);
  ASSERT_FALSE(io.held.empty());
  server.reset();
  EXPECT_TRUE(io.sockets.empty());
  EXPECT_TRUE(io.held.empty());
  EXPECT_EQ(shared.ports[0]->free_count(), shared.ports[0]->capacity());
  EXPECT_EQ(shared.ports[1]->free_count(), shared.ports[1]->capacity());
  EXPECT_EQ(shared.quota.total(), 0u);
}

}  // namespace
}  // namespace turnkey::relay
