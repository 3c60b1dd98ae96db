// TurnServer Allocate (RFC 8656 section 7.2, RFC 6156): what a success
// carries, lifetimes, every error code, 5-tuple rules, quotas, port capacity,
// address families, EVEN-PORT and RESERVATION-TOKEN, DONT-FRAGMENT.
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

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

class TurnAllocateTest : public ::testing::Test, public TurnTestEnv {
 protected:
  void SetUp() override { Start(Options()); }

  TurnTestClient Client(unsigned n, std::string_view user = "alice",
                        ClientTransport transport = ClientTransport::kUdp) {
    return TurnTestClient(*this, Tuple(n, transport), Rest(user));
  }

  uint64_t AllocationsTotal(ClientTransport transport, AllocationResult result) const {
    return server->counters()
        .allocations[static_cast<size_t>(transport)][static_cast<size_t>(result)]
        .Get();
  }

  // Every port of every configured pool is free.
  bool PoolsWhole() const {
    for (const auto& pools : shared.ports) {
      if (pools && pools->free_count() != pools->capacity()) {
        return false;
      }
    }
    return true;
  }

  static base::SocketAddress Ip(std::string_view text, uint16_t port = 0) {
    return *base::SocketAddress::ParseIp(text, port);
  }
};

TEST_F(TurnAllocateTest, SuccessCarriesRelayedMappedAddressAndLifetime) {
  TurnTestClient client = Client(1);
  StunReply reply = client.Allocate();
  ASSERT_TRUE(reply.success()) << reply.error_code();
  EXPECT_TRUE(reply.authenticated());
  auto relayed = reply.XorAddresses(AttributeType::kXorRelayedAddress);
  ASSERT_EQ(relayed.size(), 1u);
  EXPECT_EQ(relayed[0].IpString(), "192.0.2.1");
  EXPECT_GE(relayed[0].port(), kPortMin);
  EXPECT_LE(relayed[0].port(), kPortMax);
  EXPECT_EQ(reply.XorAddress(AttributeType::kXorMappedAddress), client.tuple().client);
  EXPECT_EQ(reply.lifetime(), 600u);
  EXPECT_FALSE(reply.Has(AttributeType::kReservationToken));
  EXPECT_FALSE(reply.Has(AttributeType::kAddressErrorCode));

  // One socket, bound where the client was told.
  ASSERT_EQ(io.sockets.size(), 1u);
  const RelayHandle handle = io.HandleFor(relayed[0]);
  ASSERT_NE(handle, 0u);
  EXPECT_EQ(io.sockets[handle].bound, relayed[0]);
  EXPECT_EQ(shared.ports[0]->free_count(), shared.ports[0]->capacity() - 1);
  EXPECT_EQ(shared.quota.total(), 1u);
  EXPECT_EQ(ActiveAllocations(), 1u);
  EXPECT_EQ(AllocationsTotal(ClientTransport::kUdp, AllocationResult::kSuccess), 1u);
  EXPECT_EQ(Requests(MethodLabel::kAllocate, 200), 1u);
  EXPECT_EQ(Requests(MethodLabel::kAllocate, 401), 1u);
}

struct LifetimeCase {
  std::optional<uint32_t> requested;
  uint32_t granted;
};

class TurnAllocateLifetimeTest : public TurnAllocateTest,
                                 public ::testing::WithParamInterface<LifetimeCase> {};

TEST_P(TurnAllocateLifetimeTest, GrantsAndExpiresOnTime) {
  const LifetimeCase& c = GetParam();
  TurnTestClient client = Client(1);
  StunReply reply = client.Allocate([&](MessageBuilder& b) {
    if (c.requested) {
      b.AddLifetime(*c.requested);
    }
  });
  ASSERT_TRUE(reply.success());
  EXPECT_EQ(reply.lifetime(), c.granted);
  Advance(std::chrono::seconds(c.granted - 1));
  EXPECT_EQ(server->allocation_count(), 1u);
  Advance(std::chrono::seconds(1));
  EXPECT_EQ(server->allocation_count(), 0u);
}

// RFC 8656 section 7.2: min(requested, max), but never below the default.
INSTANTIATE_TEST_SUITE_P(Rfc8656, TurnAllocateLifetimeTest,
                         ::testing::Values(LifetimeCase{std::nullopt, 600}, LifetimeCase{0, 600},
                                           LifetimeCase{30, 600}, LifetimeCase{599, 600},
                                           LifetimeCase{601, 601}, LifetimeCase{3600, 3600},
                                           LifetimeCase{3601, 3600},
                                           LifetimeCase{0xFFFFFFFF, 3600}));

TEST_F(TurnAllocateTest, LifetimesFollowTheOptions) {
  TurnServerOptions options = Options();
  options.allocation_default = std::chrono::seconds(120);
  options.allocation_max = std::chrono::seconds(300);
  Start(options);
  TurnTestClient a = Client(1);
  EXPECT_EQ(a.Allocate().lifetime(), 120u);
  TurnTestClient b = Client(2);
  EXPECT_EQ(b.Allocate([](MessageBuilder& m) { m.AddLifetime(200); }).lifetime(), 200u);
  TurnTestClient c = Client(3);
  EXPECT_EQ(c.Allocate([](MessageBuilder& m) { m.AddLifetime(1000); }).lifetime(), 300u);
}

TEST_F(TurnAllocateTest, MalformedLifetimeIs400) {
  for (size_t size : {2u, 8u}) {
    TurnTestClient client = Client(static_cast<unsigned>(size));
    const uint8_t value[8] = {0, 0, 2, 0x58, 0, 0, 0, 0};
    StunReply reply = client.Allocate([&](MessageBuilder& b) {
      b.AddAttribute(AttributeType::kLifetime, base::ByteView(value, size));
    });
    EXPECT_EQ(reply.error_code(), 400) << size;
  }
  EXPECT_EQ(server->allocation_count(), 0u);
}

TEST_F(TurnAllocateTest, RequestedTransportMissingOrMalformedIs400) {
  TurnTestClient client = Client(1);
  StunReply missing = client.Request(Method::kAllocate);
  EXPECT_EQ(missing.error_code(), 400);
  EXPECT_TRUE(missing.authenticated());  // errors after authentication are signed
  const uint8_t short_value[] = {17, 0};
  StunReply malformed = client.Request(Method::kAllocate, [&](MessageBuilder& b) {
    b.AddAttribute(AttributeType::kRequestedTransport, short_value);
  });
  EXPECT_EQ(malformed.error_code(), 400);
  EXPECT_EQ(server->allocation_count(), 0u);
  EXPECT_EQ(io.opened, 0u);
  EXPECT_EQ(Requests(MethodLabel::kAllocate, 400), 2u);
  EXPECT_EQ(AllocationsTotal(ClientTransport::kUdp, AllocationResult::kFailure), 2u);
}

TEST_F(TurnAllocateTest, TcpRelayIs442) {
  TurnTestClient client = Client(1);
  StunReply reply = client.Request(
      Method::kAllocate, [](MessageBuilder& b) { b.AddRequestedTransport(stun::kTransportTcp); });
  EXPECT_EQ(reply.error_code(), 442);
  EXPECT_TRUE(reply.authenticated());
  EXPECT_EQ(server->allocation_count(), 0u);
  EXPECT_EQ(Requests(MethodLabel::kAllocate, 442), 1u);
}

TEST_F(TurnAllocateTest, SecondAllocateOnTheTupleIs437) {
  TurnTestClient client = Client(1);
  StunReply first = client.Allocate();
  ASSERT_TRUE(first.success());
  StunReply second = client.Allocate();
  EXPECT_EQ(second.error_code(), 437);
  EXPECT_TRUE(second.authenticated());
  EXPECT_EQ(io.opened, 1u);
  EXPECT_EQ(server->allocation_count(), 1u);
  EXPECT_EQ(Requests(MethodLabel::kAllocate, 437), 1u);
  // The first allocation is untouched.
  EXPECT_TRUE(client.Refresh(std::nullopt).success());
}

TEST_F(TurnAllocateTest, RetransmittedAllocateGetsTheSameSuccessAndNoSecondSocket) {
  TurnTestClient client = Client(1);
  StunReply first = client.Allocate([](MessageBuilder& b) { b.AddLifetime(1200); });
  ASSERT_TRUE(first.success());
  const base::Bytes request = client.last_request();
  clock.Advance(std::chrono::seconds(2));
  StunReply again = client.Exchange(request);
  ASSERT_TRUE(again.success()) << again.error_code();
  EXPECT_TRUE(again.authenticated());
  EXPECT_EQ(again.XorAddresses(AttributeType::kXorRelayedAddress),
            first.XorAddresses(AttributeType::kXorRelayedAddress));
  EXPECT_EQ(again.lifetime(), 1200u);
  EXPECT_EQ(again.XorAddress(AttributeType::kXorMappedAddress), client.tuple().client);
  EXPECT_EQ(io.opened, 1u);
  EXPECT_EQ(shared.quota.total(), 1u);
  EXPECT_EQ(ActiveAllocations(), 1u);
  EXPECT_EQ(AllocationsTotal(ClientTransport::kUdp, AllocationResult::kSuccess), 1u);
}

TEST_F(TurnAllocateTest, AnotherUserOnTheAllocationGets437OnAllocateAnd441OnTheRest) {
  TurnTestClient alice = Client(1, "alice");
  ASSERT_TRUE(alice.Allocate().success());
  // Same 5-tuple, valid credentials of someone else.
  TurnTestClient bob(*this, alice.tuple(), Rest("bob"));
  // RFC 8656 section 7.2 step 2: an Allocate on a 5-tuple in use is 437.
  StunReply allocate = bob.Allocate();
  EXPECT_EQ(allocate.error_code(), 437);
  EXPECT_TRUE(allocate.authenticated());  // signed with bob's key
  // Even replaying alice's transaction id.
  StunReply replay = bob.RequestOnce(
      Method::kAllocate, [](MessageBuilder& b) { b.AddRequestedTransport(stun::kTransportUdp); },
      alice.last_transaction());
  EXPECT_EQ(replay.error_code(), 437);
  // Section 5: the other methods with other credentials are 441.
  EXPECT_EQ(bob.Refresh(600).error_code(), 441);
  EXPECT_EQ(bob.CreatePermission({Ip("8.8.8.8", 53)}).error_code(), 441);
  EXPECT_EQ(bob.ChannelBind(0x4000, Ip("8.8.8.8", 53)).error_code(), 441);
  EXPECT_EQ(Requests(MethodLabel::kAllocate, 437), 2u);
  EXPECT_EQ(Requests(MethodLabel::kRefresh, 441), 1u);
  EXPECT_EQ(Requests(MethodLabel::kCreatePermission, 441), 1u);
  EXPECT_EQ(Requests(MethodLabel::kChannelBind, 441), 1u);
  // Alice's allocation stays hers.
  EXPECT_EQ(server->allocation_count(), 1u);
  EXPECT_TRUE(alice.Refresh(600).success());
}

TEST_F(TurnAllocateTest, PerUserQuotaIs486AcrossCredentialExpiries) {
  TurnServerOptions options = Options();
  options.allocations_per_user = 2;
  Start(options);
  TurnTestClient a(*this, Tuple(1), Rest("alice", 3600));
  TurnTestClient b(*this, Tuple(2), Rest("alice", 7200));
  TurnTestClient c(*this, Tuple(3), Rest("alice", 100));
  ASSERT_TRUE(a.Allocate().success());
  ASSERT_TRUE(b.Allocate().success());
  StunReply over = c.Allocate();
  EXPECT_EQ(over.error_code(), 486);
  EXPECT_TRUE(over.authenticated());
  EXPECT_EQ(io.opened, 2u);
  EXPECT_EQ(shared.quota.total(), 2u);
  // Another user is not affected.
  TurnTestClient bob = Client(4, "bob");
  EXPECT_TRUE(bob.Allocate().success());
  // Deleting one of alice's frees her a slot.
  ASSERT_TRUE(a.Refresh(0).success());
  EXPECT_TRUE(c.Allocate().success());
  EXPECT_EQ(Requests(MethodLabel::kAllocate, 486), 1u);
}

TEST_F(TurnAllocateTest, TotalQuotaIs508) {
  TurnServerOptions options = Options();
  options.allocations_total = 2;
  Start(options);
  TurnTestClient a = Client(1, "a");
  TurnTestClient b = Client(2, "b");
  TurnTestClient c = Client(3, "c");
  ASSERT_TRUE(a.Allocate().success());
  ASSERT_TRUE(b.Allocate().success());
  EXPECT_EQ(c.Allocate().error_code(), 508);
  EXPECT_EQ(shared.quota.total(), 2u);
  ASSERT_TRUE(b.Refresh(0).success());
  EXPECT_TRUE(c.Allocate().success());
}

TEST_F(TurnAllocateTest, PortExhaustionIs508AndReleasesTheQuota) {
  Start(Options(), PortRange{50000, 50001});
  TurnTestClient a = Client(1, "a");
  TurnTestClient b = Client(2, "b");
  TurnTestClient c = Client(3, "c");
  ASSERT_TRUE(a.Allocate().success());
  ASSERT_TRUE(b.Allocate().success());
  EXPECT_EQ(shared.ports[0]->free_count(), 0u);
  StunReply full = c.Allocate();
  EXPECT_EQ(full.error_code(), 508);
  EXPECT_EQ(shared.quota.total(), 2u);
  EXPECT_EQ(server->allocation_count(), 2u);
  ASSERT_TRUE(a.Refresh(0).success());
  EXPECT_TRUE(c.Allocate().success());
}

TEST_F(TurnAllocateTest, PortInUseElsewhereIsSkipped) {
  Start(Options(), PortRange{50000, 50003});
  io.busy_ports = {50000, 50001, 50002};
  TurnTestClient client = Client(1);
  StunReply reply = client.Allocate();
  ASSERT_TRUE(reply.success()) << reply.error_code();
  EXPECT_EQ(reply.XorAddress(AttributeType::kXorRelayedAddress)->port(), 50003);
  EXPECT_EQ(io.opened, 1u);
  ASSERT_TRUE(client.Refresh(0).success());
  EXPECT_EQ(shared.quota.total(), 0u);
  // The port came back; refused ports that were tried stay out of
  // circulation (PortPool::MarkUnusable), so the next one gets 50003 too.
  EXPECT_GE(shared.ports[0]->free_count(), 1u);
  TurnTestClient next = Client(2, "bob");
  StunReply again = next.Allocate();
  ASSERT_TRUE(again.success()) << again.error_code();
  EXPECT_EQ(again.XorAddress(AttributeType::kXorRelayedAddress)->port(), 50003);
  EXPECT_EQ(io.opened, 2u);
}

TEST_F(TurnAllocateTest, EveryPortInUseElsewhereIs508) {
  Start(Options(), PortRange{50000, 50003});
  io.busy_ports = {50000, 50001, 50002, 50003};
  TurnTestClient client = Client(1);
  EXPECT_EQ(client.Allocate().error_code(), 508);
  EXPECT_EQ(server->allocation_count(), 0u);
  EXPECT_EQ(shared.quota.total(), 0u);
  EXPECT_EQ(io.opened, 0u);
}

TEST_F(TurnAllocateTest, SocketFailureIs508AndReturnsThePort) {
  io.fail_open = true;
  TurnTestClient client = Client(1);
  EXPECT_EQ(client.Allocate().error_code(), 508);
  EXPECT_TRUE(PoolsWhole());
  EXPECT_EQ(shared.quota.total(), 0u);
  EXPECT_EQ(ActiveAllocations(), 0u);
  EXPECT_EQ(AllocationsTotal(ClientTransport::kUdp, AllocationResult::kFailure), 1u);
}

TEST_F(TurnAllocateTest, RequestedIpv6WithoutAnIpv6RelayIs440) {
  TurnTestClient client = Client(1);
  StunReply reply =
      client.Allocate([](MessageBuilder& b) { b.AddRequestedAddressFamily(AddressFamily::kIpv6); });
  EXPECT_EQ(reply.error_code(), 440);
  EXPECT_TRUE(reply.authenticated());
  EXPECT_EQ(Requests(MethodLabel::kAllocate, 440), 1u);
  const uint8_t unknown_family[] = {3, 0, 0, 0};
  EXPECT_EQ(client
                .Allocate([&](MessageBuilder& b) {
                  b.AddAttribute(AttributeType::kRequestedAddressFamily, unknown_family);
                })
                .error_code(),
            440);
  const uint8_t short_family[] = {1, 0};
  EXPECT_EQ(client
                .Allocate([&](MessageBuilder& b) {
                  b.AddAttribute(AttributeType::kRequestedAddressFamily, short_family);
                })
                .error_code(),
            400);
  EXPECT_EQ(server->allocation_count(), 0u);
  EXPECT_TRUE(PoolsWhole());
}

TEST_F(TurnAllocateTest, WithoutAnIpv4RelayPlainAllocateIs440) {
  TurnServerOptions options = Options(true);
  options.relay[0].reset();
  Start(options);
  TurnTestClient client = Client(1);
  EXPECT_EQ(client.Allocate().error_code(), 440);
  StunReply v6 =
      client.Allocate([](MessageBuilder& b) { b.AddRequestedAddressFamily(AddressFamily::kIpv6); });
  ASSERT_TRUE(v6.success());
  EXPECT_EQ(v6.XorAddress(AttributeType::kXorRelayedAddress)->IpString(), "2001:db8::1");
}

TEST_F(TurnAllocateTest, AnIpv6DefaultFamilyServesAllocatesThatNameNone) {
  // An IPv6-only host (turn.relay.default_family: ipv6): browsers name no
  // family and get an IPv6 relay instead of 440.
  TurnServerOptions options = Options(true);
  options.relay[0].reset();
  options.default_family = 1;
  Start(options);
  TurnTestClient client = Client(1);
  StunReply reply = client.Allocate();
  ASSERT_TRUE(reply.success()) << reply.error_code();
  EXPECT_EQ(reply.XorAddress(AttributeType::kXorRelayedAddress)->IpString(), "2001:db8::1");
  // A family asked for is still the one given, and IPv4 is still missing.
  TurnTestClient v4 = Client(2);
  EXPECT_EQ(v4.Allocate([](MessageBuilder& b) {
                b.AddRequestedAddressFamily(AddressFamily::kIpv4);
              }).error_code(),
            440);
}

TEST_F(TurnAllocateTest, RequestedFamilies) {
  Start(Options(true));
  TurnTestClient v6 = Client(1);
  StunReply reply =
      v6.Allocate([](MessageBuilder& b) { b.AddRequestedAddressFamily(AddressFamily::kIpv6); });
  ASSERT_TRUE(reply.success());
  auto relayed = reply.XorAddresses(AttributeType::kXorRelayedAddress);
  ASSERT_EQ(relayed.size(), 1u);
  EXPECT_EQ(relayed[0].IpString(), "2001:db8::1");
  EXPECT_EQ(shared.ports[1]->free_count(), shared.ports[1]->capacity() - 1);
  EXPECT_EQ(shared.ports[0]->free_count(), shared.ports[0]->capacity());

  TurnTestClient v4 = Client(2);
  reply = v4.Allocate([](MessageBuilder& b) { b.AddRequestedAddressFamily(AddressFamily::kIpv4); });
  ASSERT_TRUE(reply.success());
  EXPECT_EQ(reply.XorAddress(AttributeType::kXorRelayedAddress)->IpString(), "192.0.2.1");
}

TEST_F(TurnAllocateTest, DualAllocationGivesTwoRelayedAddresses) {
  Start(Options(true));
  TurnTestClient client = Client(1);
  StunReply reply = client.Allocate(
      [](MessageBuilder& b) { b.AddAdditionalAddressFamily(AddressFamily::kIpv6); });
  ASSERT_TRUE(reply.success()) << reply.error_code();
  auto relayed = reply.XorAddresses(AttributeType::kXorRelayedAddress);
  ASSERT_EQ(relayed.size(), 2u);
  EXPECT_TRUE(relayed[0].is_v4());
  EXPECT_TRUE(relayed[1].is_v6());
  EXPECT_FALSE(reply.Has(AttributeType::kAddressErrorCode));
  EXPECT_EQ(io.sockets.size(), 2u);
  EXPECT_NE(io.HandleFor(relayed[0]), 0u);
  EXPECT_NE(io.HandleFor(relayed[1]), 0u);
  EXPECT_EQ(shared.quota.total(), 1u);  // one allocation, two addresses
  ASSERT_TRUE(client.Refresh(0).success());
  EXPECT_TRUE(io.sockets.empty());
  EXPECT_EQ(io.closed, 2u);
  EXPECT_TRUE(PoolsWhole());
}

TEST_F(TurnAllocateTest, DualAllocationWithoutIpv6SaysWhyInAddressErrorCode) {
  TurnTestClient client = Client(1);
  StunReply reply = client.Allocate(
      [](MessageBuilder& b) { b.AddAdditionalAddressFamily(AddressFamily::kIpv6); });
  ASSERT_TRUE(reply.success()) << reply.error_code();
  auto relayed = reply.XorAddresses(AttributeType::kXorRelayedAddress);
  ASSERT_EQ(relayed.size(), 1u);
  EXPECT_TRUE(relayed[0].is_v4());
  auto error = reply.address_error();
  ASSERT_TRUE(error);
  EXPECT_EQ(error->first, AddressFamily::kIpv6);
  EXPECT_EQ(error->second, 440);
  EXPECT_EQ(io.sockets.size(), 1u);
}

// RFC 8656 section 7.2: when only one family of a dual allocation can be
// allocated, ADDRESS-ERROR-CODE gives the reason, 440 (Address Family not
// Supported) or 508 (Insufficient Capacity). IPv6 is supported here; its
// ports are just all taken.
TEST_F(TurnAllocateTest, DualAllocationWithIpv6PortsExhaustedSays508) {
  Start(Options(true), PortRange{kPortMin, kPortMax}, PortRange{50000, 50000});
  TurnTestClient first = Client(1, "a");
  ASSERT_TRUE(
      first.Allocate([](MessageBuilder& b) { b.AddAdditionalAddressFamily(AddressFamily::kIpv6); })
          .success());
  TurnTestClient second = Client(2, "b");
  StunReply reply = second.Allocate(
      [](MessageBuilder& b) { b.AddAdditionalAddressFamily(AddressFamily::kIpv6); });
  ASSERT_TRUE(reply.success()) << reply.error_code();
  EXPECT_EQ(reply.XorAddresses(AttributeType::kXorRelayedAddress).size(), 1u);
  auto error = reply.address_error();
  ASSERT_TRUE(error);
  EXPECT_EQ(error->first, AddressFamily::kIpv6);
  EXPECT_EQ(error->second, 508);
}

struct BadCombination {
  const char* name;
  std::function<void(MessageBuilder&, uint64_t token)> attrs;
};

void PrintTo(const BadCombination& c, std::ostream* os) { *os << c.name; }

class TurnAllocateBadCombinationTest : public TurnAllocateTest,
                                       public ::testing::WithParamInterface<BadCombination> {};

TEST_P(TurnAllocateBadCombinationTest, Is400AndLeavesTheTokenUsable) {
  Start(Options(true));
  TurnTestClient holder = Client(1, "a");
  StunReply reserved = holder.Allocate([](MessageBuilder& b) { b.AddEvenPort(true); });
  ASSERT_TRUE(reserved.success());
  const uint64_t token = reserved.reservation_token().value_or(0);
  ASSERT_NE(token, 0u);

  TurnTestClient client = Client(2, "b");
  StunReply reply = client.Allocate([&](MessageBuilder& b) { GetParam().attrs(b, token); });
  EXPECT_EQ(reply.error_code(), 400);
  EXPECT_TRUE(reply.authenticated());
  EXPECT_EQ(server->allocation_count(), 1u);
  EXPECT_EQ(io.sockets.size(), 1u);
  // The token was not consumed by the refused request.
  TurnTestClient claimer = Client(3, "c");
  EXPECT_TRUE(claimer.Allocate([&](MessageBuilder& b) { b.AddReservationToken(token); }).success());
}

// RFC 8656 section 7.2, the checks before any port is taken.
INSTANTIATE_TEST_SUITE_P(
    Rfc8656, TurnAllocateBadCombinationTest,
    ::testing::Values(BadCombination{"TokenWithEvenPort",
                                     [](MessageBuilder& b, uint64_t t) {
                                       b.AddReservationToken(t);
                                       b.AddEvenPort(false);
                                     }},
                      BadCombination{"TokenWithRequestedFamily",
                                     [](MessageBuilder& b, uint64_t t) {
                                       b.AddReservationToken(t);
                                       b.AddRequestedAddressFamily(AddressFamily::kIpv4);
                                     }},
                      BadCombination{"TokenWithAdditionalFamily",
                                     [](MessageBuilder& b, uint64_t t) {
                                       b.AddReservationToken(t);
                                       b.AddAdditionalAddressFamily(AddressFamily::kIpv6);
                                     }},
                      BadCombination{"RequestedWithAdditionalFamily",
                                     [](MessageBuilder& b, uint64_t) {
                                       b.AddRequestedAddressFamily(AddressFamily::kIpv4);
                                       b.AddAdditionalAddressFamily(AddressFamily::kIpv6);
                                     }},
                      BadCombination{"AdditionalFamilyIpv4",
                                     [](MessageBuilder& b, uint64_t) {
                                       b.AddAdditionalAddressFamily(AddressFamily::kIpv4);
                                     }},
                      // EVEN-PORT with the R bit together with ADDITIONAL-ADDRESS-FAMILY
                      // is a 400 as well (a reservation is for one family's port).
                      BadCombination{"EvenPortReserveWithAdditionalFamily",
                                     [](MessageBuilder& b, uint64_t) {
                                       b.AddEvenPort(true);
                                       b.AddAdditionalAddressFamily(AddressFamily::kIpv6);
                                     }},
                      BadCombination{"MalformedEvenPort",
                                     [](MessageBuilder& b, uint64_t) {
                                       const uint8_t v[] = {0x80, 0, 0, 0};
                                       b.AddAttribute(AttributeType::kEvenPort, v);
                                     }},
                      BadCombination{"MalformedToken",
                                     [](MessageBuilder& b, uint64_t) {
                                       const uint8_t v[] = {1, 2, 3, 4};
                                       b.AddAttribute(AttributeType::kReservationToken, v);
                                     }}),
    [](const ::testing::TestParamInfo<BadCombination>& info) { return info.param.name; });

TEST_F(TurnAllocateTest, EvenPortGivesAnEvenPort) {
  for (unsigned i = 0; i < 20; ++i) {
    TurnTestClient client = Client(i, "user" + std::to_string(i));
    StunReply reply = client.Allocate([](MessageBuilder& b) { b.AddEvenPort(false); });
    ASSERT_TRUE(reply.success());
    EXPECT_EQ(reply.XorAddress(AttributeType::kXorRelayedAddress)->port() % 2, 0);
    EXPECT_FALSE(reply.Has(AttributeType::kReservationToken));
  }
}

TEST_F(TurnAllocateTest, ReservationTokenGivesTheNextPortOnce) {
  TurnTestClient holder = Client(1, "a");
  StunReply reply = holder.Allocate([](MessageBuilder& b) { b.AddEvenPort(true); });
  ASSERT_TRUE(reply.success());
  const uint16_t even = reply.XorAddress(AttributeType::kXorRelayedAddress)->port();
  EXPECT_EQ(even % 2, 0);
  auto token = reply.reservation_token();
  ASSERT_TRUE(token);
  EXPECT_EQ(shared.ports[0]->free_count(), shared.ports[0]->capacity() - 2);

  TurnTestClient claimer = Client(2, "b");
  StunReply claimed = claimer.Allocate([&](MessageBuilder& b) { b.AddReservationToken(*token); });
  ASSERT_TRUE(claimed.success()) << claimed.error_code();
  EXPECT_EQ(claimed.XorAddress(AttributeType::kXorRelayedAddress)->port(), even + 1);
  EXPECT_FALSE(claimed.Has(AttributeType::kReservationToken));

  TurnTestClient again = Client(3, "c");
  EXPECT_EQ(again.Allocate([&](MessageBuilder& b) { b.AddReservationToken(*token); }).error_code(),
            508);
  TurnTestClient unknown = Client(4, "d");
  EXPECT_EQ(unknown.Allocate([](MessageBuilder& b) { b.AddReservationToken(0x1234567890ULL); })
                .error_code(),
            508);
  ASSERT_TRUE(holder.Refresh(0).success());
  ASSERT_TRUE(claimer.Refresh(0).success());
  EXPECT_TRUE(PoolsWhole());
}

TEST_F(TurnAllocateTest, UnclaimedReservationExpires) {
  TurnTestClient holder = Client(1, "a");
  StunReply reply = holder.Allocate([](MessageBuilder& b) { b.AddEvenPort(true); });
  ASSERT_TRUE(reply.success());
  const uint64_t token = *reply.reservation_token();
  // About 30 seconds (RFC 8656 section 7.2).
  Advance(PortPool::kReservationLifetime);
  EXPECT_EQ(shared.ports[0]->free_count(), shared.ports[0]->capacity() - 1);
  TurnTestClient late = Client(2, "b");
  EXPECT_EQ(late.Allocate([&](MessageBuilder& b) { b.AddReservationToken(token); }).error_code(),
            508);
  ASSERT_TRUE(holder.Refresh(0).success());
  EXPECT_TRUE(PoolsWhole());
}

// RFC 8656 sections 7.1 and 7.2: the reserved port + 1 is bound while the
// reservation lives, so nobody else on the host takes it, and the Allocate
// with the token gets that very socket.
TEST_F(TurnAllocateTest, ReservationHoldsTheNextPortWithASocket) {
  TurnTestClient holder = Client(1, "a");
  StunReply reply = holder.Allocate([](MessageBuilder& b) { b.AddEvenPort(true); });
  ASSERT_TRUE(reply.success()) << reply.error_code();
  const base::SocketAddress relayed = *reply.XorAddress(AttributeType::kXorRelayedAddress);
  const auto next = static_cast<uint16_t>(relayed.port() + 1);
  const HeldSocket held = io.HeldForPort(next);
  ASSERT_NE(held, 0u) << "port " << next << " is reserved but nothing holds it";
  EXPECT_EQ(io.held[held], Ip("192.0.2.1", next));  // the relay address of port N
  EXPECT_EQ(io.held.size(), 1u);

  TurnTestClient claimer = Client(2, "b");
  StunReply claimed = claimer.Allocate([&](MessageBuilder& b) {
    b.AddReservationToken(*reply.reservation_token());
    b.AddDontFragment();
  });
  ASSERT_TRUE(claimed.success()) << claimed.error_code();
  EXPECT_EQ(claimed.XorAddress(AttributeType::kXorRelayedAddress)->port(), next);
  // The held socket became the relay socket; the port was never unbound.
  EXPECT_EQ(io.HandleForPort(next), held);
  EXPECT_TRUE(io.held.empty());
  EXPECT_EQ(io.holds, 1u);
  EXPECT_EQ(io.adopted, 1u);
  EXPECT_EQ(io.opened, 2u);  // N bound, N + 1 adopted

  // Peer data reaches the claimer through it.
  ASSERT_TRUE(claimer.CreatePermission({Ip("8.8.8.8", 53)}).success());
  const uint8_t data[] = {1, 2, 3};
  server->OnPeerData(clock.Now(), io.sockets[held].context, Ip("8.8.8.8", 53), data);
  EXPECT_EQ(server->counters().relayed_packets[static_cast<size_t>(Direction::kPeerToClient)].Get(),
            1u);
  ASSERT_TRUE(holder.Refresh(0).success());
  ASSERT_TRUE(claimer.Refresh(0).success());
  EXPECT_TRUE(io.sockets.empty());
  EXPECT_TRUE(PoolsWhole());
}

TEST_F(TurnAllocateTest, ReservationSocketClosesWhenItExpiresUnclaimed) {
  TurnTestClient holder = Client(1, "a");
  StunReply reply = holder.Allocate([](MessageBuilder& b) { b.AddEvenPort(true); });
  ASSERT_TRUE(reply.success());
  ASSERT_EQ(io.held.size(), 1u);
  Advance(PortPool::kReservationLifetime - std::chrono::seconds(1));
  EXPECT_EQ(io.held.size(), 1u);
  Advance(std::chrono::seconds(1));
  EXPECT_TRUE(io.held.empty());
  EXPECT_EQ(io.held_closed, 1u);
  ASSERT_TRUE(holder.Refresh(0).success());
  EXPECT_TRUE(PoolsWhole());
}

TEST_F(TurnAllocateTest, ReservationSocketClosesWhenTheServerStops) {
  TurnTestClient holder = Client(1, "a");
  ASSERT_TRUE(holder.Allocate([](MessageBuilder& b) { b.AddEvenPort(true); }).success());
  ASSERT_EQ(io.held.size(), 1u);
  server.reset();
  EXPECT_TRUE(io.held.empty());
  EXPECT_EQ(io.held_closed, 1u);
  EXPECT_TRUE(io.sockets.empty());
  EXPECT_TRUE(PoolsWhole());
}

// A claim refused after the token was taken (here the per-user quota) gives
// back the port and closes the socket that held it.
TEST_F(TurnAllocateTest, RefusedClaimClosesTheHeldSocket) {
  TurnServerOptions options = Options();
  options.allocations_per_user = 1;
  server->SetOptions(options);
  TurnTestClient holder = Client(1, "a");
  StunReply reply = holder.Allocate([](MessageBuilder& b) { b.AddEvenPort(true); });
  ASSERT_TRUE(reply.success());
  TurnTestClient same_user = Client(2, "a");
  EXPECT_EQ(
      same_user
          .Allocate([&](MessageBuilder& b) { b.AddReservationToken(*reply.reservation_token()); })
          .error_code(),
      486);
  EXPECT_TRUE(io.held.empty());
  EXPECT_EQ(io.held_closed, 1u);
  ASSERT_TRUE(holder.Refresh(0).success());
  EXPECT_TRUE(PoolsWhole());
}

// RFC 8656 section 7.2: if port + 1 cannot be held, the even port is no use
// for a reservation; another pair is drawn, and 508 when none is left.
TEST_F(TurnAllocateTest, NextPortInUseElsewhereTakesAnotherPair) {
  Start(Options(), PortRange{50000, 50003});
  io.busy_ports = {50001};
  TurnTestClient client = Client(1);
  StunReply reply = client.Allocate([](MessageBuilder& b) { b.AddEvenPort(true); });
  ASSERT_TRUE(reply.success()) << reply.error_code();
  EXPECT_EQ(reply.XorAddress(AttributeType::kXorRelayedAddress)->port(), 50002);
  EXPECT_NE(io.HeldForPort(50003), 0u);
  EXPECT_EQ(io.sockets.size(), 1u);  // a socket opened on 50000 for the first try was closed
  EXPECT_EQ(io.opened, io.closed + 1);

  // 50000 still serves a plain allocation.
  TurnTestClient plain = Client(2, "bob");
  StunReply other = plain.Allocate();
  ASSERT_TRUE(other.success()) << other.error_code();
  EXPECT_EQ(other.XorAddress(AttributeType::kXorRelayedAddress)->port(), 50000);
}

TEST_F(TurnAllocateTest, EveryNextPortInUseElsewhereIs508) {
  Start(Options(), PortRange{50000, 50003});
  io.busy_ports = {50001, 50003};
  TurnTestClient client = Client(1);
  EXPECT_EQ(client.Allocate([](MessageBuilder& b) { b.AddEvenPort(true); }).error_code(), 508);
  EXPECT_EQ(server->allocation_count(), 0u);
  EXPECT_EQ(shared.quota.total(), 0u);
  EXPECT_TRUE(io.sockets.empty());
  EXPECT_TRUE(io.held.empty());
  // The even ports went back; only the busy odd ones are out of circulation.
  EXPECT_EQ(shared.ports[0]->free_count(), 2u);
}

TEST_F(TurnAllocateTest, NextPortSocketFailureIs508AndReturnsEverything) {
  io.fail_hold = true;
  TurnTestClient client = Client(1);
  EXPECT_EQ(client.Allocate([](MessageBuilder& b) { b.AddEvenPort(true); }).error_code(), 508);
  EXPECT_TRUE(PoolsWhole());
  EXPECT_TRUE(io.sockets.empty());
  EXPECT_EQ(io.opened, io.closed);
  EXPECT_EQ(shared.quota.total(), 0u);
  EXPECT_EQ(server->allocation_count(), 0u);
}

TEST_F(TurnAllocateTest, ReservationTokenOfTheIpv6Pool) {
  Start(Options(true));
  TurnTestClient holder = Client(1, "a");
  StunReply reply = holder.Allocate([](MessageBuilder& b) {
    b.AddEvenPort(true);
    b.AddRequestedAddressFamily(AddressFamily::kIpv6);
  });
  ASSERT_TRUE(reply.success());
  const auto relayed = *reply.XorAddress(AttributeType::kXorRelayedAddress);
  ASSERT_TRUE(relayed.is_v6());
  TurnTestClient claimer = Client(2, "b");
  StunReply claimed = claimer.Allocate(
      [&](MessageBuilder& b) { b.AddReservationToken(*reply.reservation_token()); });
  ASSERT_TRUE(claimed.success()) << claimed.error_code();
  const auto second = *claimed.XorAddress(AttributeType::kXorRelayedAddress);
  EXPECT_TRUE(second.is_v6());
  EXPECT_EQ(second.port(), relayed.port() + 1);
  EXPECT_EQ(shared.ports[0]->free_count(), shared.ports[0]->capacity());
}

// RFC 8656 section 7.1: DONT-FRAGMENT in an Allocate only tests that Send
// indications may carry it. The allocation's datagrams keep DF clear; a Send
// with DONT-FRAGMENT sets it on its own datagram.
TEST_F(TurnAllocateTest, DontFragmentInAllocateIsACapabilityTestOnly) {
  TurnTestClient client = Client(1);
  ASSERT_TRUE(client.Allocate([](MessageBuilder& b) { b.AddDontFragment(); }).success());
  ASSERT_TRUE(client.CreatePermission({Ip("8.8.8.8", 1000)}).success());
  const uint8_t payload[] = {1, 2, 3};
  client.Send(Ip("8.8.8.8", 1000), payload);
  client.Send(Ip("8.8.8.8", 1000), payload, [](MessageBuilder& b) { b.AddDontFragment(); });
  ASSERT_EQ(io.to_peer.size(), 2u);
  EXPECT_FALSE(io.to_peer[0].dont_fragment);
  EXPECT_TRUE(io.to_peer[1].dont_fragment);
}

TEST_F(TurnAllocateTest, UnknownComprehensionRequiredAttributeIs420) {
  TurnTestClient client = Client(1);
  // RFC 8489 section 6.3: after the authentication checks. Without
  // credentials the answer is the 401 challenge.
  EXPECT_EQ(client
                .Unauthenticated(Method::kAllocate,
                                 [](MessageBuilder& b) {
                                   b.AddRequestedTransport(stun::kTransportUdp);
                                   const uint8_t v[] = {0, 0, 0, 0};
                                   b.AddAttribute(0x7ff0, v);
                                 })
                .error_code(),
            401);
  StunReply reply = client.Allocate([](MessageBuilder& b) {
    const uint8_t v[] = {0, 0, 0, 0};
    b.AddAttribute(0x7ff0, v);
  });
  ASSERT_EQ(reply.error_code(), 420);
  auto m = reply.message();
  ASSERT_TRUE(m);
  // An answer to an authenticated request: with integrity (section 9.2.4).
  EXPECT_TRUE(m->Has(AttributeType::kMessageIntegrity) ||
              m->Has(AttributeType::kMessageIntegritySha256));
  auto unknown = m->FindValue(AttributeType::kUnknownAttributes);
  ASSERT_TRUE(unknown);
  ASSERT_EQ(unknown->size(), 2u);
  EXPECT_EQ(base::LoadBe16(unknown->data()), 0x7ff0);
  EXPECT_EQ(server->allocation_count(), 0u);
  EXPECT_EQ(io.opened, 0u);
  EXPECT_EQ(Requests(MethodLabel::kAllocate, 420), 1u);
  // An authenticated Allocate that failed (docs/metrics.md: rejected).
  EXPECT_EQ(AllocationsTotal(ClientTransport::kUdp, AllocationResult::kFailure), 1u);
  // The same for the other methods.
  EXPECT_EQ(client
                .Request(Method::kRefresh,
                         [](MessageBuilder& b) {
                           const uint8_t v[] = {1};
                           b.AddAttribute(0x0042, v);
                         })
                .error_code(),
            420);
  EXPECT_EQ(Requests(MethodLabel::kRefresh, 420), 1u);
}

TEST_F(TurnAllocateTest, DrainingRefusesNewAllocationsOnly) {
  TurnTestClient existing = Client(1, "a");
  ASSERT_TRUE(existing.Allocate().success());
  TurnServerOptions options = Options();
  options.draining = true;
  server->SetOptions(options);
  TurnTestClient client = Client(2, "b");
  EXPECT_EQ(client.Allocate().error_code(), 403);
  EXPECT_EQ(Requests(MethodLabel::kAllocate, 403), 1u);
  EXPECT_TRUE(existing.Refresh(600).success());
  EXPECT_EQ(server->allocation_count(), 1u);
}

// The alternate server a 300 answer names, or nullopt.
std::optional<base::SocketAddress> AlternateOf(const StunReply& reply) {
  auto m = reply.message();
  if (!m) {
    return std::nullopt;
  }
  auto value = m->FindValue(AttributeType::kAlternateServer);
  return value ? stun::DecodeAddress(*value) : std::nullopt;
}

TEST_F(TurnAllocateTest, DrainingSendsNewAllocationsToAnAlternateOfTheClientsFamily) {
  TurnServerOptions options = Options();
  options.draining = true;
  const auto v6 = *base::SocketAddress::ParseIpPort("[2001:db8::7]:3478");
  const auto first = *base::SocketAddress::ParseIpPort("198.51.100.7:3478");
  const auto second = *base::SocketAddress::ParseIpPort("198.51.100.8:3479");
  const auto tls_alternate = *base::SocketAddress::ParseIpPort("198.51.100.7:5349");
  options.alternate_servers = {v6, first, second};
  options.alternate_tls_servers = {tls_alternate};
  options.alternate_domain = "turn2.example.net";
  // Clients that hold a nonce from before the drain ask authenticated.
  options.draining = false;
  server->SetOptions(options);
  TurnTestClient a = Client(1, "a");
  TurnTestClient b = Client(2, "b");
  TurnTestClient c = Client(3, "c", ClientTransport::kTls);
  for (TurnTestClient* client : {&a, &b, &c}) {
    ASSERT_EQ(client->Refresh(0).error_code(), 437);  // challenged first: the nonce
  }
  options.draining = true;
  server->SetOptions(options);

  StunReply redirect = a.Allocate();
  EXPECT_EQ(redirect.error_code(), 300);
  // An authenticated request's answer carries integrity (RFC 8489 section 10).
  EXPECT_TRUE(redirect.authenticated());
  EXPECT_EQ(AlternateOf(redirect), first);
  // Over UDP, no ALTERNATE-DOMAIN (it is for the TLS certificate check).
  EXPECT_FALSE(redirect.message()->Has(AttributeType::kAlternateDomain));
  // The IPv4 alternates in turn.
  EXPECT_EQ(AlternateOf(b.Allocate()), second);
  // A TLS client retries over TLS (RFC 8489 section 10): a TLS alternate.
  StunReply tls = c.Allocate();
  EXPECT_EQ(AlternateOf(tls), tls_alternate);
  auto domain = tls.message()->FindValue(AttributeType::kAlternateDomain);
  ASSERT_TRUE(domain);
  EXPECT_EQ(stun::DecodeAlternateDomain(*domain), "turn2.example.net");
  EXPECT_EQ(Requests(MethodLabel::kAllocate, 300), 3u);
  EXPECT_STREQ(CodeLabelName(CodeLabelIndex(300)), "300");  // its own label, not "other"
  EXPECT_EQ(server->allocation_count(), 0u);
  EXPECT_EQ(io.opened, 0u);

  // Without an alternate of the client's family and transport the refusal
  // stands.
  options.alternate_servers = {v6};
  options.alternate_tls_servers = {};
  server->SetOptions(options);
  StunReply refused = Client(4, "d").Allocate();
  EXPECT_EQ(refused.error_code(), 403);
  EXPECT_FALSE(AlternateOf(refused));
  options.alternate_servers = {first};
  server->SetOptions(options);
  EXPECT_EQ(Client(6, "f", ClientTransport::kTls).Allocate().error_code(), 403);
  // The first request of a client (no credentials) is sent away too, before
  // the challenge and without integrity (RFC 8489 section 10 allows it):
  // WebRTC's client, sent away after authenticating, takes this host's
  // realm and nonce to the alternate and gives up when it refuses them.
  options.alternate_servers = {first};
  server->SetOptions(options);
  StunReply first_leg = Client(5, "e").Unauthenticated(
      Method::kAllocate, [](MessageBuilder& b) { b.AddRequestedTransport(17); });
  EXPECT_EQ(first_leg.error_code(), 300);
  EXPECT_FALSE(first_leg.authenticated());
  EXPECT_EQ(AlternateOf(first_leg), first);
  EXPECT_FALSE(first_leg.message()->Has(AttributeType::kNonce));
  EXPECT_FALSE(first_leg.message()->Has(AttributeType::kRealm));
  // Other methods, and a host that takes new allocations, challenge as ever.
  EXPECT_EQ(Client(5, "e").Unauthenticated(Method::kRefresh, [](MessageBuilder&) {}).error_code(),
            401);
  options.draining = false;
  server->SetOptions(options);
  EXPECT_EQ(Client(5, "e")
                .Unauthenticated(Method::kAllocate,
                                 [](MessageBuilder& b) { b.AddRequestedTransport(17); })
                .error_code(),
            401);
}

TEST_F(TurnAllocateTest, FullServerSendsToTheAlternateButRequestErrorsStay) {
  TurnServerOptions options = Options();
  options.allocations_total = 1;
  const auto alternate = *base::SocketAddress::ParseIpPort("198.51.100.7:3478");
  options.alternate_servers = {alternate};
  Start(options);
  ASSERT_TRUE(Client(1, "a").Allocate().success());
  EXPECT_EQ(AlternateOf(Client(2, "b").Allocate()), alternate);
  // The user's own quota (486) and a bad request (442) are not the server's
  // state: another server would refuse them too.
  options.allocations_total = 0;
  options.allocations_per_user = 1;
  server->SetOptions(options);
  EXPECT_EQ(Client(3, "a").Allocate().error_code(), 486);
  EXPECT_EQ(Client(4, "c")
                .Request(Method::kAllocate, [](MessageBuilder& b) { b.AddRequestedTransport(6); })
                .error_code(),
            442);
}

TEST_F(TurnAllocateTest, NoRelayPortSendsToTheAlternate) {
  TurnServerOptions options = Options();
  const auto alternate = *base::SocketAddress::ParseIpPort("198.51.100.7:3478");
  options.alternate_servers = {alternate};
  Start(options, PortRange{50000, 50000});
  ASSERT_TRUE(Client(1, "a").Allocate().success());
  StunReply full = Client(2, "b").Allocate();
  EXPECT_EQ(full.error_code(), 300);
  EXPECT_EQ(AlternateOf(full), alternate);
  EXPECT_EQ(shared.quota.total(), 1u);
}

TEST_F(TurnAllocateTest, TcpClientAllocationGoesWithItsConnection) {
  TurnTestClient client = Client(1, "alice", ClientTransport::kTcp);
  ASSERT_TRUE(client.Allocate().success());
  EXPECT_EQ(AllocationsTotal(ClientTransport::kTcp, AllocationResult::kSuccess), 1u);
  // Another connection closing changes nothing.
  server->OnClientClosed(Tuple(2, ClientTransport::kTcp));
  EXPECT_EQ(server->allocation_count(), 1u);
  server->OnClientClosed(client.tuple());
  EXPECT_EQ(server->allocation_count(), 0u);
  EXPECT_EQ(io.closed, 1u);
  EXPECT_TRUE(io.sockets.empty());
  EXPECT_TRUE(PoolsWhole());
  EXPECT_EQ(shared.quota.total(), 0u);
  EXPECT_EQ(ActiveAllocations(), 0u);
}

}  // namespace
}  // namespace turnkey::relay
