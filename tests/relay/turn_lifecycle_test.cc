// TurnServer allocation lifecycle: Refresh (RFC 8656 section 8.2), expiry of
// allocations, deletion and what it frees (socket, port, quota, gauges), the
// destructor, and the request counters.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>

#include "relay/turn_server.h"
#include "stun/attributes.h"
#include "stun/message_builder.h"
#include "tests/relay/turn_test_client.h"

namespace turnkey::relay {
namespace {

using stun::AddressFamily;
using stun::AttributeType;
using stun::MessageBuilder;
using stun::Method;

class TurnLifecycleTest : public ::testing::Test, public TurnTestEnv {
 protected:
  void SetUp() override { Start(Options(true)); }

  TurnTestClient Client(unsigned n, std::string_view user = "alice",
                        ClientTransport transport = ClientTransport::kUdp) {
    return TurnTestClient(*this, Tuple(n, transport), Rest(user, 100000));
  }

  bool PoolsWhole() const {
    for (const auto& pools : shared.ports) {
      if (pools && pools->free_count() != pools->capacity()) {
        return false;
      }
    }
    return true;
  }

  static base::SocketAddress Peer(unsigned n) {
    return base::SocketAddress::V4({8, 8, 4, static_cast<uint8_t>(n)},
                                   static_cast<uint16_t>(5000 + n));
  }
};

TEST_F(TurnLifecycleTest, RefreshWithoutAllocationIs437) {
  TurnTestClient client = Client(1);
  StunReply reply = client.Refresh(600);
  EXPECT_EQ(reply.error_code(), 437);
  EXPECT_TRUE(reply.authenticated());
  EXPECT_EQ(client.CreatePermission({Peer(1)}).error_code(), 437);
  EXPECT_EQ(client.ChannelBind(0x4000, Peer(1)).error_code(), 437);
  EXPECT_EQ(Requests(MethodLabel::kRefresh, 437), 1u);
  EXPECT_EQ(Requests(MethodLabel::kCreatePermission, 437), 1u);
  EXPECT_EQ(Requests(MethodLabel::kChannelBind, 437), 1u);
  // Another 5-tuple's allocation does not count (RFC 8656 section 2.2).
  TurnTestClient other = Client(2);
  ASSERT_TRUE(other.Allocate().success());
  EXPECT_EQ(client.Refresh(600).error_code(), 437);
}

struct RefreshCase {
  std::optional<uint32_t> requested;
  uint32_t granted;
};

class TurnRefreshLifetimeTest : public TurnLifecycleTest,
                                public ::testing::WithParamInterface<RefreshCase> {};

TEST_P(TurnRefreshLifetimeTest, GrantsAndMovesTheExpiry) {
  const RefreshCase& c = GetParam();
  TurnTestClient client = Client(1);
  ASSERT_TRUE(client.Allocate().success());
  Advance(std::chrono::seconds(500));
  StunReply reply = client.Refresh(c.requested);
  ASSERT_TRUE(reply.success()) << reply.error_code();
  EXPECT_TRUE(reply.authenticated());
  EXPECT_EQ(reply.lifetime(), c.granted);
  Advance(std::chrono::seconds(c.granted - 1));
  EXPECT_EQ(server->allocation_count(), 1u);
  Advance(std::chrono::seconds(1));
  EXPECT_EQ(server->allocation_count(), 0u);
}

// RFC 8656 section 8.2: the same rule as Allocate for a non-zero lifetime.
INSTANTIATE_TEST_SUITE_P(Rfc8656, TurnRefreshLifetimeTest,
                         ::testing::Values(RefreshCase{std::nullopt, 600}, RefreshCase{1, 600},
                                           RefreshCase{300, 600}, RefreshCase{1800, 1800},
                                           RefreshCase{3600, 3600}, RefreshCase{7200, 3600}));

TEST_F(TurnLifecycleTest, RefreshZeroDeletesAndFreesEverything) {
  TurnTestClient client = Client(1);
  StunReply allocate = client.Allocate(
      [](MessageBuilder& b) { b.AddAdditionalAddressFamily(AddressFamily::kIpv6); });
  ASSERT_TRUE(allocate.success());
  ASSERT_TRUE(client.CreatePermission({Peer(1), Peer(2)}).success());
  ASSERT_TRUE(client.ChannelBind(0x4001, Peer(3)).success());
  EXPECT_EQ(ActivePermissions(), 3u);
  EXPECT_EQ(ActiveChannels(), 1u);
  EXPECT_EQ(io.sockets.size(), 2u);

  StunReply reply = client.Refresh(0);
  ASSERT_TRUE(reply.success()) << reply.error_code();
  EXPECT_TRUE(reply.authenticated());
  EXPECT_EQ(reply.lifetime(), 0u);
  EXPECT_EQ(server->allocation_count(), 0u);
  EXPECT_TRUE(io.sockets.empty());
  EXPECT_EQ(io.closed, 2u);
  EXPECT_TRUE(PoolsWhole());
  EXPECT_EQ(shared.quota.total(), 0u);
  EXPECT_EQ(ActiveAllocations(), 0u);
  EXPECT_EQ(ActivePermissions(), 0u);
  EXPECT_EQ(ActiveChannels(), 0u);
  EXPECT_EQ(server->counters().allocations_expired.Get(), 0u);

  // Gone: a repeated delete is 437 (the client treats that as done), and
  // the 5-tuple is free for a new allocation.
  EXPECT_EQ(client.Refresh(0).error_code(), 437);
  EXPECT_TRUE(client.Allocate().success());
}

TEST_F(TurnLifecycleTest, RefreshWithMalformedLifetimeIs400) {
  TurnTestClient client = Client(1);
  ASSERT_TRUE(client.Allocate().success());
  const uint8_t short_lifetime[] = {0, 0};
  StunReply reply = client.Request(Method::kRefresh, [&](MessageBuilder& b) {
    b.AddAttribute(AttributeType::kLifetime, short_lifetime);
  });
  EXPECT_EQ(reply.error_code(), 400);
  EXPECT_EQ(server->allocation_count(), 1u);
}

TEST_F(TurnLifecycleTest, RefreshFamilyMustMatchTheAllocation) {
  TurnTestClient client = Client(1);
  ASSERT_TRUE(client.Allocate().success());  // IPv4 only
  StunReply v6 = client.Refresh(
      600, [](MessageBuilder& b) { b.AddRequestedAddressFamily(AddressFamily::kIpv6); });
  EXPECT_EQ(v6.error_code(), 443);
  EXPECT_TRUE(v6.authenticated());
  EXPECT_EQ(Requests(MethodLabel::kRefresh, 443), 1u);
  const uint8_t unknown_family[] = {3, 0, 0, 0};
  EXPECT_EQ(client
                .Refresh(600,
                         [&](MessageBuilder& b) {
                           b.AddAttribute(AttributeType::kRequestedAddressFamily, unknown_family);
                         })
                .error_code(),
            443);
  const uint8_t short_family[] = {1};
  EXPECT_EQ(client
                .Refresh(600,
                         [&](MessageBuilder& b) {
                           b.AddAttribute(AttributeType::kRequestedAddressFamily, short_family);
                         })
                .error_code(),
            400);
  EXPECT_TRUE(
      client
          .Refresh(600,
                   [](MessageBuilder& b) { b.AddRequestedAddressFamily(AddressFamily::kIpv4); })
          .success());

  TurnTestClient dual = Client(2);
  ASSERT_TRUE(
      dual.Allocate([](MessageBuilder& b) { b.AddAdditionalAddressFamily(AddressFamily::kIpv6); })
          .success());
  EXPECT_TRUE(
      dual.Refresh(600,
                   [](MessageBuilder& b) { b.AddRequestedAddressFamily(AddressFamily::kIpv6); })
          .success());
}

TEST_F(TurnLifecycleTest, RefreshWithAFamilyDeletesOnlyThatHalfOfADualAllocation) {
  // RFC 8656 section 8.1: REQUESTED-ADDRESS-FAMILY names the half of a dual
  // allocation to refresh or delete; without it, the request is for both.
  const base::SocketAddress peer6 = *base::SocketAddress::ParseIp("2606:4700::1111", 5000);
  TurnTestClient client = Client(1);
  ASSERT_TRUE(
      client.Allocate([](MessageBuilder& b) { b.AddAdditionalAddressFamily(AddressFamily::kIpv6); })
          .success());
  ASSERT_TRUE(client.CreatePermission({Peer(1), peer6}).success());
  ASSERT_TRUE(client.ChannelBind(0x4001, peer6).success());
  ASSERT_EQ(ActivePermissions(), 2u);
  StunReply deleted = client.Refresh(
      0, [](MessageBuilder& b) { b.AddRequestedAddressFamily(AddressFamily::kIpv6); });
  ASSERT_TRUE(deleted.success());
  EXPECT_EQ(deleted.lifetime(), 0u);
  EXPECT_EQ(server->allocation_count(), 1u);
  EXPECT_EQ(io.closed, 1u);
  EXPECT_EQ(ActivePermissions(), 1u);  // the IPv6 peer's went with its relay
  EXPECT_EQ(ActiveChannels(), 0u);
  EXPECT_EQ(ActiveAllocations(), 1u);
  // The IPv4 half still works; the IPv6 one is gone.
  EXPECT_TRUE(client.CreatePermission({Peer(2)}).success());
  EXPECT_EQ(client.CreatePermission({peer6}).error_code(), 443);
  EXPECT_EQ(
      client
          .Refresh(600,
                   [](MessageBuilder& b) { b.AddRequestedAddressFamily(AddressFamily::kIpv6); })
          .error_code(),
      443);
  EXPECT_TRUE(client.Refresh(600).success());
  // Deleting the last half deletes the allocation.
  ASSERT_TRUE(
      client
          .Refresh(0, [](MessageBuilder& b) { b.AddRequestedAddressFamily(AddressFamily::kIpv4); })
          .success());
  EXPECT_EQ(server->allocation_count(), 0u);
  EXPECT_EQ(io.closed, 2u);
  EXPECT_TRUE(PoolsWhole());
  EXPECT_EQ(shared.quota.total(), 0u);
  EXPECT_EQ(ActivePermissions(), 0u);
}

TEST_F(TurnLifecycleTest, TheHalfOfADualAllocationNotRefreshedExpiresAlone) {
  TurnTestClient client = Client(1);
  ASSERT_TRUE(
      client.Allocate([](MessageBuilder& b) { b.AddAdditionalAddressFamily(AddressFamily::kIpv6); })
          .success());
  Advance(std::chrono::seconds(500));
  ASSERT_TRUE(
      client
          .Refresh(600,
                   [](MessageBuilder& b) { b.AddRequestedAddressFamily(AddressFamily::kIpv4); })
          .success());
  Advance(std::chrono::seconds(101));  // 601 s: the IPv6 half's lifetime is over
  EXPECT_EQ(server->allocation_count(), 1u);
  EXPECT_EQ(io.closed, 1u);
  EXPECT_EQ(
      client.CreatePermission({*base::SocketAddress::ParseIp("2606:4700::1111", 1)}).error_code(),
      443);
  EXPECT_TRUE(client.CreatePermission({Peer(1)}).success());
  Advance(std::chrono::seconds(500));  // 1101 s: the IPv4 half's too
  EXPECT_EQ(server->allocation_count(), 0u);
  EXPECT_EQ(io.closed, 2u);
  EXPECT_TRUE(PoolsWhole());
  EXPECT_EQ(server->counters().allocations_expired.Get(), 1u);
}

TEST_F(TurnLifecycleTest, ExpiryFreesTheAllocationAndEverythingInIt) {
  TurnTestClient client = Client(1);
  ASSERT_TRUE(
      client.Allocate([](MessageBuilder& b) { b.AddAdditionalAddressFamily(AddressFamily::kIpv6); })
          .success());
  ASSERT_TRUE(client.CreatePermission({Peer(1)}).success());
  ASSERT_TRUE(client.ChannelBind(0x4000, Peer(1)).success());
  Advance(std::chrono::seconds(290));
  ASSERT_TRUE(client.CreatePermission({Peer(1)}).success());  // permissions live 300 s
  Advance(std::chrono::seconds(309));
  EXPECT_EQ(server->allocation_count(), 1u);
  EXPECT_EQ(io.closed, 0u);
  Advance(std::chrono::seconds(1));  // 600 s
  EXPECT_EQ(server->allocation_count(), 0u);
  EXPECT_EQ(io.closed, 2u);
  EXPECT_TRUE(io.sockets.empty());
  EXPECT_TRUE(PoolsWhole());
  EXPECT_EQ(shared.quota.total(), 0u);
  EXPECT_EQ(server->counters().allocations_expired.Get(), 1u);
  EXPECT_EQ(ActiveAllocations(), 0u);
  EXPECT_EQ(ActivePermissions(), 0u);
  EXPECT_EQ(ActiveChannels(), 0u);

  // Whatever the client still sends is dropped, requests get 437.
  const uint8_t payload[] = {1, 2, 3, 4};
  client.Send(Peer(1), payload);
  client.SendChannelData(0x4000, payload);
  EXPECT_EQ(Dropped(DropReason::kNoAllocation), 2u);
  EXPECT_TRUE(io.to_peer.empty());
  EXPECT_EQ(client.Refresh(600).error_code(), 437);
}

// RFC 8656 section 7: at its lifetime's end the allocation is gone, though
// the 1 s timer has not swept it yet: a Refresh must not bring it back and a
// peer's datagram must not reach the client.
TEST_F(TurnLifecycleTest, AnExpiredAllocationIsGoneBeforeTheTimerRuns) {
  TurnTestClient client = Client(1);
  StunReply reply = client.Allocate();
  ASSERT_TRUE(reply.success());
  const auto relayed = reply.XorAddresses(AttributeType::kXorRelayedAddress);
  ASSERT_EQ(relayed.size(), 1u);
  Advance(std::chrono::seconds(590));
  ASSERT_TRUE(client.CreatePermission({Peer(1)}).success());  // lives to 890 s
  clock.Advance(std::chrono::seconds(10));                    // 600 s: no timer run since 590
  const size_t answers = io.to_client.size();
  const uint8_t payload[] = {1, 2, 3, 4};
  PeerSends(relayed[0], Peer(1), payload);
  EXPECT_EQ(io.to_client.size(), answers);
  EXPECT_EQ(Dropped(DropReason::kNoAllocation), 1u);
  EXPECT_EQ(client.Refresh(600).error_code(), 437);
  EXPECT_EQ(server->allocation_count(), 0u);
  EXPECT_EQ(server->counters().allocations_expired.Get(), 1u);
  EXPECT_EQ(io.closed, 1u);
  EXPECT_TRUE(PoolsWhole());
}

TEST_F(TurnLifecycleTest, RefreshKeepsTheAllocationAlive) {
  TurnTestClient client = Client(1);
  ASSERT_TRUE(client.Allocate().success());
  for (int i = 0; i < 10; ++i) {
    Advance(std::chrono::seconds(590));
    ASSERT_TRUE(client.Refresh(std::nullopt).success()) << i;  // nonces renew via 438
  }
  EXPECT_EQ(server->allocation_count(), 1u);
  EXPECT_EQ(server->counters().allocations_expired.Get(), 0u);
  EXPECT_GE(AuthFailures(AuthFailure::kStaleNonce), 1u);
}

TEST_F(TurnLifecycleTest, DestructorFreesEverything) {
  TurnTestClient a = Client(1, "a");
  TurnTestClient b = Client(2, "b");
  TurnTestClient c = Client(3, "c", ClientTransport::kTcp);
  TurnTestClient d = Client(4, "d");
  ASSERT_TRUE(a.Allocate().success());
  ASSERT_TRUE(b.Allocate([](MessageBuilder& m) {
                 m.AddAdditionalAddressFamily(AddressFamily::kIpv6);
               }).success());
  StunReply even = c.Allocate([](MessageBuilder& m) { m.AddEvenPort(true); });
  ASSERT_TRUE(even.success());
  ASSERT_TRUE(d.Allocate([&](MessageBuilder& m) {
                 m.AddReservationToken(*even.reservation_token());
               }).success());
  ASSERT_TRUE(a.CreatePermission({Peer(1), Peer(2)}).success());
  ASSERT_TRUE(b.ChannelBind(0x4000, Peer(3)).success());
  EXPECT_EQ(io.sockets.size(), 5u);

  server.reset();
  EXPECT_TRUE(io.sockets.empty());
  EXPECT_EQ(io.closed, 5u);
  EXPECT_TRUE(PoolsWhole());
  EXPECT_EQ(shared.quota.total(), 0u);
}

TEST_F(TurnLifecycleTest, RequestCountersByMethodAndCode) {
  TurnTestClient client = Client(1);
  ASSERT_TRUE(client.Allocate().success());                    // 401, 200
  EXPECT_EQ(client.Allocate().error_code(), 437);              // 437
  ASSERT_TRUE(client.Refresh(600).success());                  // 200
  ASSERT_TRUE(client.CreatePermission({Peer(1)}).success());   // 200
  ASSERT_TRUE(client.ChannelBind(0x4000, Peer(1)).success());  // 200
  EXPECT_EQ(client.ChannelBind(0x3000, Peer(1)).error_code(), 400);
  EXPECT_TRUE(client.Unauthenticated(Method::kBinding).success());  // 200

  EXPECT_EQ(Requests(MethodLabel::kAllocate, 401), 1u);
  EXPECT_EQ(Requests(MethodLabel::kAllocate, 200), 1u);
  EXPECT_EQ(Requests(MethodLabel::kAllocate, 437), 1u);
  EXPECT_EQ(Requests(MethodLabel::kRefresh, 200), 1u);
  EXPECT_EQ(Requests(MethodLabel::kCreatePermission, 200), 1u);
  EXPECT_EQ(Requests(MethodLabel::kChannelBind, 200), 1u);
  EXPECT_EQ(Requests(MethodLabel::kChannelBind, 400), 1u);
  EXPECT_EQ(Requests(MethodLabel::kBinding, 200), 1u);
  EXPECT_EQ(TotalOf(server->counters().requests), 8u);
  EXPECT_EQ(AuthFailures(AuthFailure::kNoCredentials), 1u);
}

TEST_F(TurnLifecycleTest, CounterLabels) {
  EXPECT_STREQ(MethodLabelName(MethodLabel::kCreatePermission), "create_permission");
  EXPECT_STREQ(CodeLabelName(CodeLabelIndex(508)), "508");
  EXPECT_STREQ(CodeLabelName(CodeLabelIndex(599)), "other");
  EXPECT_STREQ(DropReasonName(DropReason::kPeerDenied), "peer_denied");
  EXPECT_STREQ(AuthFailureName(AuthFailure::kStaleNonce), "stale_nonce");
  EXPECT_STREQ(DirectionName(Direction::kPeerToClient), "to_client");
  EXPECT_STREQ(ClientTransportName(ClientTransport::kTls), "tls");
}

}  // namespace
}  // namespace turnkey::relay
