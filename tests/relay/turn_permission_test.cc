// TurnServer CreatePermission (RFC 8656 section 10) and ChannelBind (section
// 12.2): the peer policy on both (403), family mismatch (443), quotas (508),
// channel number rules (400), and expiry of permissions and channels.
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "base/cidr.h"
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

base::SocketAddress Ip(std::string_view text, uint16_t port = 5000) {
  auto a = base::SocketAddress::ParseIp(text, port);
  EXPECT_TRUE(a) << text;
  return a.value_or(base::SocketAddress());
}

class TurnPermissionTest : public ::testing::Test, public TurnTestEnv {
 protected:
  void SetUp() override { Start(Options(true)); }

  // A client with an allocation; `dual` adds the IPv6 half.
  TurnTestClient Allocated(unsigned n, bool dual = false) {
    TurnTestClient client(*this, Tuple(n), Rest("user" + std::to_string(n)));
    StunReply reply = client.Allocate([&](MessageBuilder& b) {
      if (dual) {
        b.AddAdditionalAddressFamily(AddressFamily::kIpv6);
      }
    });
    EXPECT_TRUE(reply.success()) << reply.error_code();
    relayed_ = reply.XorAddresses(AttributeType::kXorRelayedAddress);
    return client;
  }

  // Whether data `peer` sends to the first relayed address reaches the
  // client (`client` drains what it received).
  bool PeerGetsThrough(TurnTestClient& client, const base::SocketAddress& peer) {
    client.TakeReceived();
    const uint8_t payload[] = {0xAB};
    const base::SocketAddress& relayed = peer.is_v6() ? relayed_.back() : relayed_.front();
    PeerSends(relayed, peer, payload);
    return !client.TakeReceived().empty();
  }

  std::vector<base::SocketAddress> relayed_;
};

TEST_F(TurnPermissionTest, CreatePermissionLetsThePeerIn) {
  TurnTestClient client = Allocated(1);
  const base::SocketAddress peer = Ip("8.8.8.8", 53);
  EXPECT_FALSE(PeerGetsThrough(client, peer));
  EXPECT_EQ(Dropped(DropReason::kNoPermission), 1u);
  StunReply reply = client.CreatePermission({peer});
  ASSERT_TRUE(reply.success()) << reply.error_code();
  EXPECT_TRUE(reply.authenticated());
  EXPECT_EQ(ActivePermissions(), 1u);
  EXPECT_TRUE(PeerGetsThrough(client, peer));
  // Permissions are per IP address: any port of the peer gets through.
  EXPECT_TRUE(PeerGetsThrough(client, Ip("8.8.8.8", 9999)));
  EXPECT_FALSE(PeerGetsThrough(client, Ip("8.8.4.4", 53)));
  EXPECT_EQ(Requests(MethodLabel::kCreatePermission, 200), 1u);
}

TEST_F(TurnPermissionTest, SeveralPeersInOneRequest) {
  TurnTestClient client = Allocated(1, true);
  ASSERT_TRUE(
      client.CreatePermission({Ip("8.8.8.8"), Ip("1.1.1.1"), Ip("2606:4700::1111")}).success());
  EXPECT_EQ(ActivePermissions(), 3u);
  EXPECT_TRUE(PeerGetsThrough(client, Ip("1.1.1.1", 1)));
  EXPECT_TRUE(PeerGetsThrough(client, Ip("2606:4700::1111", 1)));
  // Refreshing existing ones adds nothing.
  ASSERT_TRUE(client.CreatePermission({Ip("8.8.8.8"), Ip("1.1.1.1")}).success());
  EXPECT_EQ(ActivePermissions(), 3u);
}

// RFC 8656 section 9.1 puts no bound on the peers of one request: as many
// as an allocation may hold go in one (a message of 64 XOR-PEER-ADDRESS
// plus the authentication attributes).
TEST_F(TurnPermissionTest, AsManyPeersInOneRequestAsTheQuotaHolds) {
  TurnTestClient client = Allocated(1);
  std::vector<base::SocketAddress> peers;
  for (int i = 1; i <= 64; ++i) {
    peers.push_back(Ip(("8.8.0." + std::to_string(i)).c_str()));
  }
  StunReply reply = client.CreatePermission(peers);
  ASSERT_TRUE(reply.success()) << reply.error_code();
  EXPECT_EQ(ActivePermissions(), 64u);
  EXPECT_TRUE(PeerGetsThrough(client, Ip("8.8.0.64", 1)));
}

TEST_F(TurnPermissionTest, MissingOrMalformedPeerIs400) {
  TurnTestClient client = Allocated(1);
  EXPECT_EQ(client.Request(Method::kCreatePermission).error_code(), 400);
  const uint8_t short_address[] = {0, 1, 0};
  EXPECT_EQ(client
                .Request(Method::kCreatePermission,
                         [&](MessageBuilder& b) {
                           b.AddAttribute(AttributeType::kXorPeerAddress, short_address);
                         })
                .error_code(),
            400);
  EXPECT_EQ(ActivePermissions(), 0u);
}

// reference/security.md: the built-in deny list, including the IPv6 forms
// that embed a denied IPv4 address, and the server's own relay addresses.
class TurnDeniedPeerTest : public TurnPermissionTest,
                           public ::testing::WithParamInterface<const char*> {};

TEST_P(TurnDeniedPeerTest, CreatePermissionAndChannelBindGet403) {
  TurnTestClient client = Allocated(1, true);
  const base::SocketAddress peer = Ip(GetParam(), 5000);
  StunReply permission = client.CreatePermission({peer});
  EXPECT_EQ(permission.error_code(), 403);
  EXPECT_TRUE(permission.authenticated());
  StunReply channel = client.ChannelBind(0x4000, peer);
  EXPECT_EQ(channel.error_code(), 403);
  EXPECT_EQ(server->counters().peer_denied.Get(), 2u);
  EXPECT_EQ(Requests(MethodLabel::kCreatePermission, 403), 1u);
  EXPECT_EQ(Requests(MethodLabel::kChannelBind, 403), 1u);
  // Nothing was installed.
  EXPECT_EQ(ActivePermissions(), 0u);
  EXPECT_EQ(ActiveChannels(), 0u);
  EXPECT_FALSE(PeerGetsThrough(client, peer));
  const uint8_t payload[] = {1};
  client.SendChannelData(0x4000, payload);
  EXPECT_TRUE(io.to_peer.empty());
}

INSTANTIATE_TEST_SUITE_P(BuiltIn, TurnDeniedPeerTest,
                         ::testing::Values("127.0.0.1", "10.0.0.1", "169.254.169.254",
                                           "192.168.1.1", "172.16.0.1", "100.64.0.1", "0.0.0.0",
                                           "224.0.0.1", "255.255.255.255", "192.0.2.1", "::1",
                                           "::", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
                                           "::127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a9fe:a9fe",
                                           "2002:7f00:1::", "fe80::1", "fc00::1", "ff02::1",
                                           "2001:db8::1"));

TEST_F(TurnPermissionTest, OneDeniedPeerFailsTheWholeRequest) {
  TurnTestClient client = Allocated(1);
  StunReply reply = client.CreatePermission({Ip("8.8.8.8"), Ip("10.0.0.1")});
  EXPECT_EQ(reply.error_code(), 403);
  EXPECT_EQ(ActivePermissions(), 0u);
  EXPECT_FALSE(PeerGetsThrough(client, Ip("8.8.8.8")));
}

// RFC 8489 section 14.5: attributes after MESSAGE-INTEGRITY are not covered
// by it and must be ignored; an on-path attacker cannot add peers.
TEST_F(TurnPermissionTest, PeersAfterMessageIntegrityAreIgnored) {
  TurnTestClient client = Allocated(1);
  const stun::TransactionId txid{4, 2, 4, 2};
  base::Bytes out;
  MessageBuilder b(out, Method::kCreatePermission, stun::MessageClass::kRequest, txid);
  b.AddXorPeerAddress(Ip("8.8.8.8"));
  b.AddUsername(client.credentials().username);
  b.AddRealm(client.realm());
  b.AddNonce(client.nonce());
  b.AddMessageIntegrity(client.Key());
  ASSERT_TRUE(b.ok());
  for (const char* extra : {"1.1.1.1", "10.0.0.1"}) {
    base::Bytes tail;
    MessageBuilder t(tail, Method::kCreatePermission, stun::MessageClass::kRequest, txid);
    t.AddXorPeerAddress(Ip(extra));
    out.insert(out.end(), tail.begin() + stun::kHeaderSize, tail.end());
  }
  base::StoreBe16(out.data() + 2, static_cast<uint16_t>(out.size() - stun::kHeaderSize));
  StunReply reply = client.Exchange(out);
  ASSERT_TRUE(reply.success()) << reply.error_code();  // not 403 for 10.0.0.1
  EXPECT_TRUE(reply.authenticated());
  EXPECT_EQ(ActivePermissions(), 1u);
  EXPECT_TRUE(PeerGetsThrough(client, Ip("8.8.8.8")));
  EXPECT_FALSE(PeerGetsThrough(client, Ip("1.1.1.1")));
}

TEST_F(TurnPermissionTest, AllowRulesAreExceptions) {
  TurnServerOptions options = Options(true);
  options.peers.allow = {*base::ParseCidr("127.0.0.1/32"), *base::ParseCidr("10.1.0.0/16")};
  Start(options);
  TurnTestClient client = Allocated(1, true);
  EXPECT_TRUE(client.CreatePermission({Ip("127.0.0.1")}).success());
  EXPECT_TRUE(client.CreatePermission({Ip("10.1.2.3")}).success());
  EXPECT_TRUE(client.ChannelBind(0x4000, Ip("10.1.200.200")).success());
  // The embedded form of an allowed address is allowed too.
  EXPECT_TRUE(client.CreatePermission({Ip("::ffff:127.0.0.1")}).success());
  // Only what the rules name.
  EXPECT_EQ(client.CreatePermission({Ip("127.0.0.2")}).error_code(), 403);
  EXPECT_EQ(client.CreatePermission({Ip("10.2.0.1")}).error_code(), 403);
  EXPECT_EQ(client.CreatePermission({Ip("169.254.169.254")}).error_code(), 403);
  EXPECT_TRUE(PeerGetsThrough(client, Ip("127.0.0.1", 7)));
}

TEST_F(TurnPermissionTest, OperatorDenyRules) {
  TurnServerOptions options = Options(true);
  options.peers.deny = {*base::ParseCidr("8.8.0.0/16")};
  Start(options);
  TurnTestClient client = Allocated(1);
  EXPECT_EQ(client.CreatePermission({Ip("8.8.8.8")}).error_code(), 403);
  EXPECT_TRUE(client.CreatePermission({Ip("1.1.1.1")}).success());
}

TEST_F(TurnPermissionTest, PeerFamilyMismatchIs443) {
  TurnTestClient v4 = Allocated(1);
  StunReply reply = v4.CreatePermission({Ip("2606:4700::1111")});
  EXPECT_EQ(reply.error_code(), 443);
  EXPECT_TRUE(reply.authenticated());
  EXPECT_EQ(v4.ChannelBind(0x4000, Ip("2606:4700::1111")).error_code(), 443);
  // A mismatching peer anywhere in the request fails it.
  EXPECT_EQ(v4.CreatePermission({Ip("8.8.8.8"), Ip("2606:4700::1111")}).error_code(), 443);
  EXPECT_EQ(ActivePermissions(), 0u);

  TurnTestClient v6(*this, Tuple(2), Rest("bob"));
  ASSERT_TRUE(v6.Allocate([](MessageBuilder& b) {
                  b.AddRequestedAddressFamily(AddressFamily::kIpv6);
                }).success());
  EXPECT_EQ(v6.CreatePermission({Ip("8.8.8.8")}).error_code(), 443);
  EXPECT_TRUE(v6.CreatePermission({Ip("2606:4700::1111")}).success());
  EXPECT_EQ(Requests(MethodLabel::kCreatePermission, 443), 3u);
  EXPECT_EQ(Requests(MethodLabel::kChannelBind, 443), 1u);
}

TEST_F(TurnPermissionTest, PermissionQuotaIs508) {
  TurnServerOptions options = Options(true);
  options.permissions_per_allocation = 2;
  Start(options);
  TurnTestClient client = Allocated(1);
  ASSERT_TRUE(client.CreatePermission({Ip("8.8.8.8"), Ip("1.1.1.1")}).success());
  StunReply over = client.CreatePermission({Ip("9.9.9.9")});
  EXPECT_EQ(over.error_code(), 508);
  EXPECT_TRUE(over.authenticated());
  EXPECT_EQ(client.CreatePermission({Ip("8.8.8.8"), Ip("9.9.9.9")}).error_code(), 508);
  EXPECT_FALSE(PeerGetsThrough(client, Ip("9.9.9.9")));
  // Refreshing is not a new permission.
  EXPECT_TRUE(client.CreatePermission({Ip("8.8.8.8", 1), Ip("1.1.1.1", 2)}).success());
  // A channel to a new IP needs a permission too; to a permitted one it fits.
  EXPECT_EQ(client.ChannelBind(0x4000, Ip("9.9.9.9")).error_code(), 508);
  EXPECT_TRUE(client.ChannelBind(0x4000, Ip("8.8.8.8", 3478)).success());
  EXPECT_EQ(ActivePermissions(), 2u);
  EXPECT_EQ(Requests(MethodLabel::kCreatePermission, 508), 2u);
  EXPECT_EQ(Requests(MethodLabel::kChannelBind, 508), 1u);
  // Expired permissions make room.
  Advance(std::chrono::seconds(300));
  EXPECT_TRUE(client.CreatePermission({Ip("9.9.9.9")}).success());
}

TEST_F(TurnPermissionTest, ALimitLoweredByAReloadKeepsRefreshingWhatExists) {
  TurnServerOptions options = Options(true);
  options.permissions_per_allocation = 3;
  Start(options);
  TurnTestClient client = Allocated(1);
  ASSERT_TRUE(client.CreatePermission({Ip("8.8.8.8"), Ip("1.1.1.1"), Ip("9.9.9.9")}).success());
  options.permissions_per_allocation = 1;
  server->SetOptions(options);
  // "Lowering a limit keeps what exists and refuses new objects."
  EXPECT_TRUE(client.CreatePermission({Ip("8.8.8.8"), Ip("1.1.1.1")}).success());
  EXPECT_TRUE(client.ChannelBind(0x4000, Ip("9.9.9.9", 3478)).success());
  EXPECT_EQ(client.CreatePermission({Ip("8.8.4.4")}).error_code(), 508);
  EXPECT_EQ(client.CreatePermission({Ip("8.8.8.8"), Ip("8.8.4.4")}).error_code(), 508);
  Advance(std::chrono::seconds(299));
  EXPECT_TRUE(PeerGetsThrough(client, Ip("1.1.1.1")));
}

// RFC 8656 section 9: permissions are per IP address, so two
// XOR-PEER-ADDRESS with the same IP and different ports in one request
// install one permission and must fit a quota with room for one.
TEST_F(TurnPermissionTest, SameIpTwiceInOneRequestCountsOnceAgainstTheQuota) {
  TurnServerOptions options = Options(true);
  options.permissions_per_allocation = 1;
  Start(options);
  TurnTestClient client = Allocated(1);
  StunReply reply = client.CreatePermission({Ip("8.8.8.8", 1000), Ip("8.8.8.8", 2000)});
  EXPECT_TRUE(reply.success()) << reply.error_code();
  EXPECT_EQ(ActivePermissions(), 1u);
}

TEST_F(TurnPermissionTest, PermissionExpiresAfter300Seconds) {
  TurnTestClient client = Allocated(1);
  const base::SocketAddress peer = Ip("8.8.8.8", 53);
  ASSERT_TRUE(client.CreatePermission({peer}).success());
  Advance(std::chrono::seconds(299));
  EXPECT_TRUE(PeerGetsThrough(client, peer));
  Advance(std::chrono::seconds(1));
  EXPECT_FALSE(PeerGetsThrough(client, peer));
  EXPECT_EQ(ActivePermissions(), 0u);
  const uint8_t payload[] = {1};
  client.Send(peer, payload);
  EXPECT_TRUE(io.to_peer.empty());
  EXPECT_GE(Dropped(DropReason::kNoPermission), 2u);
}

TEST_F(TurnPermissionTest, PermissionRefreshExtendsIt) {
  TurnTestClient client = Allocated(1);
  const base::SocketAddress peer = Ip("8.8.8.8", 53);
  ASSERT_TRUE(client.CreatePermission({peer}).success());
  Advance(std::chrono::seconds(200));
  ASSERT_TRUE(client.CreatePermission({peer}).success());
  Advance(std::chrono::seconds(299));  // 499 s: 299 s after the refresh
  EXPECT_TRUE(PeerGetsThrough(client, peer));
  EXPECT_EQ(ActivePermissions(), 1u);
  Advance(std::chrono::seconds(1));
  EXPECT_FALSE(PeerGetsThrough(client, peer));
}

TEST_F(TurnPermissionTest, ChannelBindInstallsAPermission) {
  TurnTestClient client = Allocated(1);
  const base::SocketAddress peer = Ip("8.8.8.8", 3478);
  StunReply reply = client.ChannelBind(0x4000, peer);
  ASSERT_TRUE(reply.success()) << reply.error_code();
  EXPECT_TRUE(reply.authenticated());
  EXPECT_EQ(ActiveChannels(), 1u);
  EXPECT_EQ(ActivePermissions(), 1u);
  // The permission is for the IP: another port of the peer gets in as well.
  EXPECT_TRUE(PeerGetsThrough(client, Ip("8.8.8.8", 1)));
  EXPECT_EQ(Requests(MethodLabel::kChannelBind, 200), 1u);
}

TEST_F(TurnPermissionTest, ChannelBindRefreshesThePermission) {
  TurnTestClient client = Allocated(1);
  const base::SocketAddress peer = Ip("8.8.8.8", 3478);
  ASSERT_TRUE(client.CreatePermission({peer}).success());
  Advance(std::chrono::seconds(250));
  ASSERT_TRUE(client.ChannelBind(0x4000, peer).success());
  Advance(std::chrono::seconds(150));  // 400 s: the permission alone would be gone
  EXPECT_TRUE(PeerGetsThrough(client, Ip("8.8.8.8", 1)));
  EXPECT_EQ(ActivePermissions(), 1u);
}

TEST_F(TurnPermissionTest, ChannelToPeerPortZeroIs400) {
  TurnTestClient client = Allocated(1);
  StunReply reply = client.ChannelBind(0x4000, Ip("8.8.8.8", 0));
  EXPECT_EQ(reply.error_code(), 400);
  EXPECT_EQ(ActiveChannels(), 0u);
  EXPECT_EQ(ActivePermissions(), 0u);
}

TEST_F(TurnPermissionTest, ChannelNumberOutOfRangeIs400) {
  TurnTestClient client = Allocated(1);
  for (uint16_t number : std::initializer_list<uint16_t>{0x0000, 0x3FFF, 0x8000, 0xFFFF}) {
    StunReply reply = client.ChannelBind(number, Ip("8.8.8.8"));
    EXPECT_EQ(reply.error_code(), 400) << number;
    EXPECT_TRUE(reply.authenticated());
  }
  // RFC 8656 narrowed the range to 0x4FFF; RFC 5766 clients use up to 0x7FFF.
  EXPECT_TRUE(client.ChannelBind(0x4000, Ip("8.8.8.8", 1)).success());
  EXPECT_TRUE(client.ChannelBind(0x4FFF, Ip("8.8.8.8", 2)).success());
  EXPECT_TRUE(client.ChannelBind(0x7FFF, Ip("8.8.8.8", 3)).success());
  EXPECT_EQ(ActiveChannels(), 3u);
  EXPECT_EQ(Requests(MethodLabel::kChannelBind, 400), 4u);
}

TEST_F(TurnPermissionTest, ChannelBindMissingAttributesIs400) {
  TurnTestClient client = Allocated(1);
  EXPECT_EQ(client
                .Request(Method::kChannelBind,
                         [](MessageBuilder& b) { b.AddXorPeerAddress(Ip("8.8.8.8")); })
                .error_code(),
            400);
  EXPECT_EQ(
      client.Request(Method::kChannelBind, [](MessageBuilder& b) { b.AddChannelNumber(0x4000); })
          .error_code(),
      400);
  const uint8_t short_number[] = {0x40};
  EXPECT_EQ(client
                .Request(Method::kChannelBind,
                         [&](MessageBuilder& b) {
                           b.AddAttribute(AttributeType::kChannelNumber, short_number);
                           b.AddXorPeerAddress(Ip("8.8.8.8"));
                         })
                .error_code(),
            400);
  EXPECT_EQ(ActiveChannels(), 0u);
}

TEST_F(TurnPermissionTest, ChannelBindConflictsAre400) {
  TurnTestClient client = Allocated(1);
  const base::SocketAddress a = Ip("8.8.8.8", 1000);
  const base::SocketAddress b = Ip("8.8.8.8", 2000);  // same IP, another transport address
  ASSERT_TRUE(client.ChannelBind(0x4000, a).success());
  // The number is bound to another peer.
  EXPECT_EQ(client.ChannelBind(0x4000, b).error_code(), 400);
  // The peer is bound to another number.
  EXPECT_EQ(client.ChannelBind(0x4001, a).error_code(), 400);
  // The same pair again is a refresh.
  EXPECT_TRUE(client.ChannelBind(0x4000, a).success());
  EXPECT_EQ(ActiveChannels(), 1u);
  // Another number for another peer is fine.
  EXPECT_TRUE(client.ChannelBind(0x4001, b).success());
  EXPECT_EQ(ActiveChannels(), 2u);
}

TEST_F(TurnPermissionTest, ChannelQuotaIs508) {
  TurnServerOptions options = Options(true);
  options.channels_per_allocation = 1;
  Start(options);
  TurnTestClient client = Allocated(1);
  ASSERT_TRUE(client.ChannelBind(0x4000, Ip("8.8.8.8")).success());
  EXPECT_EQ(client.ChannelBind(0x4001, Ip("1.1.1.1")).error_code(), 508);
  EXPECT_EQ(ActiveChannels(), 1u);
  EXPECT_EQ(Requests(MethodLabel::kChannelBind, 508), 1u);
}

TEST_F(TurnPermissionTest, ChannelExpiresAfter600SecondsAndItsNumberIsFreed) {
  TurnTestClient client = Allocated(1);
  ASSERT_TRUE(client.Refresh(3600).success());
  const base::SocketAddress a = Ip("8.8.8.8", 1000);
  ASSERT_TRUE(client.ChannelBind(0x4000, a).success());
  Advance(std::chrono::seconds(599));
  EXPECT_EQ(ActiveChannels(), 1u);
  EXPECT_EQ(client.ChannelBind(0x4000, Ip("1.1.1.1")).error_code(), 400);
  Advance(std::chrono::seconds(1));
  EXPECT_EQ(ActiveChannels(), 0u);
  EXPECT_EQ(ActivePermissions(), 0u);
  // The server frees the number and the peer at once.
  EXPECT_TRUE(client.ChannelBind(0x4000, Ip("1.1.1.1")).success());
  EXPECT_TRUE(client.ChannelBind(0x4001, a).success());
  EXPECT_EQ(ActiveChannels(), 2u);
}

TEST_F(TurnPermissionTest, ExpiredChannelIsTakenOverBeforeTheTimerRuns) {
  TurnTestClient client = Allocated(1);
  ASSERT_TRUE(client.Refresh(3600).success());
  ASSERT_TRUE(client.ChannelBind(0x4000, Ip("8.8.8.8", 1000)).success());
  ASSERT_TRUE(client.ChannelBind(0x4001, Ip("1.1.1.1", 1000)).success());
  clock.Advance(std::chrono::seconds(600));  // both expired, no OnTimer yet
  // 0x4000 to the peer 0x4001 had: both old bindings give way to one.
  ASSERT_TRUE(client.ChannelBind(0x4000, Ip("1.1.1.1", 1000)).success());
  EXPECT_EQ(ActiveChannels(), 1u);
  server->OnTimer(clock.Now());
  EXPECT_EQ(ActiveChannels(), 1u);
  const uint8_t payload[] = {5};
  client.SendChannelData(0x4000, payload);
  ASSERT_EQ(io.to_peer.size(), 1u);
  EXPECT_EQ(io.to_peer[0].peer, Ip("1.1.1.1", 1000));
}

// RFC 8656 section 11.2: a Send indication's DONT-FRAGMENT asks for DF on
// that datagram; ChannelData and plain Sends leave the socket's setting.
TEST_F(TurnPermissionTest, SendWithDontFragmentAsksForItOnThatDatagram) {
  TurnTestClient client = Allocated(1);
  ASSERT_TRUE(client.ChannelBind(0x4000, Ip("8.8.8.8", 1000)).success());
  const uint8_t payload[] = {1, 2, 3};
  client.Send(Ip("8.8.8.8", 1000), payload, [](stun::MessageBuilder& b) { b.AddDontFragment(); });
  client.Send(Ip("8.8.8.8", 1000), payload);
  client.SendChannelData(0x4000, payload);
  ASSERT_EQ(io.to_peer.size(), 3u);
  EXPECT_TRUE(io.to_peer[0].dont_fragment);
  EXPECT_FALSE(io.to_peer[1].dont_fragment);
  EXPECT_FALSE(io.to_peer[2].dont_fragment);
}

}  // namespace
}  // namespace turnkey::relay
