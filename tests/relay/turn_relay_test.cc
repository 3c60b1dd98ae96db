// TurnServer data path (RFC 8656 sections 11 and 12): Send and Data
// indications, ChannelData both ways, padding over streams, what is dropped
// and how it is counted, the bandwidth cap, and the gauges.
#include <gtest/gtest.h>

#include <array>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/cidr.h"
#include "relay/turn_server.h"
#include "stun/attributes.h"
#include "stun/channel_data.h"
#include "stun/message.h"
#include "stun/message_builder.h"
#include "tests/relay/turn_test_client.h"

namespace turnkey::relay {
namespace {

using stun::AddressFamily;
using stun::AttributeType;
using stun::MessageBuilder;

base::SocketAddress Ip(std::string_view text, uint16_t port) {
  return *base::SocketAddress::ParseIp(text, port);
}

base::Bytes Payload(size_t size, uint8_t seed = 1) {
  base::Bytes b(size);
  for (size_t i = 0; i < size; ++i) {
    b[i] = static_cast<uint8_t>(seed + i);
  }
  return b;
}

// The XOR-PEER-ADDRESS of a Data indication the client received; nullopt
// if it is not a STUN message with one.
std::optional<base::SocketAddress> DataFrom(const base::Bytes& received) {
  auto m = stun::Message::Decode(received);
  auto peer = m ? m->FindValue(AttributeType::kXorPeerAddress) : std::nullopt;
  return peer ? stun::DecodeXorAddress(*peer, m->transaction_id()) : std::nullopt;
}

class TurnRelayTest : public ::testing::Test, public TurnTestEnv {
 protected:
  void SetUp() override { Start(Options(true)); }

  // A client with an allocation (dual when `dual`) and a permission for
  // `peer_`'s IP.
  TurnTestClient Ready(unsigned n, ClientTransport transport = ClientTransport::kUdp,
                       bool dual = false) {
    TurnTestClient client(*this, Tuple(n, transport), Rest("user" + std::to_string(n)));
    StunReply reply = client.Allocate([&](MessageBuilder& b) {
      if (dual) {
        b.AddAdditionalAddressFamily(AddressFamily::kIpv6);
      }
    });
    EXPECT_TRUE(reply.success()) << reply.error_code();
    relayed_ = reply.XorAddresses(AttributeType::kXorRelayedAddress);
    EXPECT_TRUE(client.CreatePermission({peer_}).success());
    return client;
  }

  const base::SocketAddress peer_ = Ip("8.8.8.8", 5000);
  std::vector<base::SocketAddress> relayed_;
};

TEST_F(TurnRelayTest, SendIndicationRelaysToAPermittedPeer) {
  TurnTestClient client = Ready(1);
  const size_t answers = io.to_client.size();
  const base::Bytes data = Payload(100);
  client.Send(peer_, data);
  ASSERT_EQ(io.to_peer.size(), 1u);
  EXPECT_EQ(io.to_peer[0].handle, io.HandleFor(relayed_[0]));
  EXPECT_EQ(io.to_peer[0].peer, peer_);
  EXPECT_EQ(io.to_peer[0].bytes, data);
  // Indications are never answered.
  EXPECT_EQ(io.to_client.size(), answers);
  EXPECT_EQ(Relayed(Direction::kClientToPeer), 1u);
  EXPECT_EQ(RelayedBytes(Direction::kClientToPeer), 100u);
  // Any port of the permitted IP.
  client.Send(Ip("8.8.8.8", 6000), data);
  EXPECT_EQ(io.to_peer.size(), 2u);
}

TEST_F(TurnRelayTest, SendWithAnUnknownComprehensionRequiredAttributeIsDiscarded) {
  // RFC 8489 section 6.3.3; a comprehension-optional one is ignored.
  TurnTestClient client = Ready(1);
  const base::Bytes data = Payload(10);
  const uint8_t value[4] = {'z', 'z', 'z', 'z'};
  client.Send(peer_, data, [&](MessageBuilder& b) { b.AddAttribute(0x0031, value); });
  EXPECT_TRUE(io.to_peer.empty());
  EXPECT_EQ(Dropped(DropReason::kUnexpected), 1u);
  client.Send(peer_, data, [&](MessageBuilder& b) { b.AddAttribute(0x8031, value); });
  EXPECT_EQ(io.to_peer.size(), 1u);
}

TEST_F(TurnRelayTest, SendIsDroppedWithoutPermissionOrAllocation) {
  TurnTestClient client = Ready(1);
  const base::Bytes data = Payload(10);
  client.Send(Ip("1.1.1.1", 53), data);
  EXPECT_EQ(Dropped(DropReason::kNoPermission), 1u);
  TurnTestClient stranger(*this, Tuple(2), Rest("bob"));
  stranger.Send(peer_, data);
  EXPECT_EQ(Dropped(DropReason::kNoAllocation), 1u);
  EXPECT_TRUE(io.to_peer.empty());
  EXPECT_EQ(Relayed(Direction::kClientToPeer), 0u);
}

TEST_F(TurnRelayTest, SendToADeniedPeerIsDroppedAndCounted) {
  TurnTestClient client = Ready(1, ClientTransport::kUdp, true);
  const base::Bytes data = Payload(10);
  for (const char* denied : {"127.0.0.1", "10.0.0.1", "169.254.169.254", "::ffff:127.0.0.1"}) {
    client.Send(Ip(denied, 80), data);
  }
  EXPECT_TRUE(io.to_peer.empty());
  EXPECT_EQ(Dropped(DropReason::kPeerDenied), 4u);
  EXPECT_EQ(server->counters().peer_denied.Get(), 4u);
}

TEST_F(TurnRelayTest, SendIsCheckedAgainstThePolicyOfNow) {
  TurnTestClient client = Ready(1);
  TurnServerOptions options = Options(true);
  options.peers.deny = {*base::ParseCidr("8.8.8.0/24")};
  server->SetOptions(options);  // SIGHUP after the permission was granted
  client.Send(peer_, Payload(10));
  EXPECT_TRUE(io.to_peer.empty());
  EXPECT_EQ(Dropped(DropReason::kPeerDenied), 1u);
}

// relay/peer_policy.h: "This is the one function every path calls:
// CreatePermission, ChannelBind, Send, and right before sending." Send is
// checked against the rules of now (above); ChannelData must be too, or a
// reload that denies a peer leaves its channel relaying for up to 10 minutes.
TEST_F(TurnRelayTest, ChannelDataIsCheckedAgainstThePolicyOfNow) {
  TurnTestClient client = Ready(1);
  ASSERT_TRUE(client.ChannelBind(0x4000, peer_).success());
  TurnServerOptions options = Options(true);
  options.peers.deny = {*base::ParseCidr("8.8.8.0/24")};
  server->SetOptions(options);
  // The reload removed the channel (and permission) to the now-denied peer,
  // so ChannelData finds no channel; the per-packet path asks no policy.
  client.SendChannelData(0x4000, Payload(10));
  EXPECT_TRUE(io.to_peer.empty());
  EXPECT_EQ(Dropped(DropReason::kNoChannel), 1u);
  EXPECT_EQ(server->counters().channels_active.Get(), 0u);
  EXPECT_EQ(server->counters().permissions_active.Get(), 0u);
}

TEST_F(TurnRelayTest, MalformedSendIsDropped) {
  TurnTestClient client = Ready(1);
  // No DATA.
  base::Bytes out;
  stun::TransactionId txid{1};
  MessageBuilder b(out, stun::Method::kSend, stun::MessageClass::kIndication, txid);
  b.AddXorPeerAddress(peer_);
  Feed(client.tuple(), out);
  // A peer of a family the allocation does not have.
  client.Send(Ip("2606:4700::1111", 53), Payload(4));
  // Port 0: nothing can be sent there.
  base::SocketAddress port0 = peer_;
  port0.set_port(0);
  client.Send(port0, Payload(4));
  EXPECT_TRUE(io.to_peer.empty());
  EXPECT_EQ(Dropped(DropReason::kMalformed), 3u);
}

TEST_F(TurnRelayTest, ChannelDataRelaysToTheBoundPeer) {
  TurnTestClient client = Ready(1);
  ASSERT_TRUE(client.ChannelBind(0x4001, peer_).success());
  const base::Bytes data = Payload(37);
  client.SendChannelData(0x4001, data);
  ASSERT_EQ(io.to_peer.size(), 1u);
  EXPECT_EQ(io.to_peer[0].peer, peer_);
  EXPECT_EQ(io.to_peer[0].bytes, data);
  EXPECT_EQ(io.to_peer[0].handle, io.HandleFor(relayed_[0]));
  EXPECT_EQ(Relayed(Direction::kClientToPeer), 1u);
  EXPECT_EQ(RelayedBytes(Direction::kClientToPeer), 37u);
  // UDP may carry the padding or not.
  base::Bytes padded;
  stun::AppendChannelData(padded, 0x4001, data, stun::ChannelDataPadding::kRequired);
  Feed(client.tuple(), padded);
  ASSERT_EQ(io.to_peer.size(), 2u);
  EXPECT_EQ(io.to_peer[1].bytes, data);
}

TEST_F(TurnRelayTest, ChannelDataOverTcpCarriesPadding) {
  TurnTestClient client = Ready(1, ClientTransport::kTcp);
  ASSERT_TRUE(client.ChannelBind(0x4001, peer_).success());
  client.SendChannelData(0x4001, Payload(5));  // 4 + 5 + 3 bytes of padding
  ASSERT_EQ(io.to_peer.size(), 1u);
  EXPECT_EQ(io.to_peer[0].bytes, Payload(5));
}

TEST_F(TurnRelayTest, BadChannelDataIsDropped) {
  TurnTestClient client = Ready(1);
  ASSERT_TRUE(client.ChannelBind(0x4001, peer_).success());
  client.SendChannelData(0x4002, Payload(8));  // not bound
  EXPECT_EQ(Dropped(DropReason::kNoChannel), 1u);
  base::Bytes truncated;
  stun::AppendChannelData(truncated, 0x4001, Payload(8), stun::ChannelDataPadding::kOptional);
  truncated.pop_back();
  Feed(client.tuple(), truncated);
  base::Bytes trailing;
  stun::AppendChannelData(trailing, 0x4001, Payload(8), stun::ChannelDataPadding::kOptional);
  trailing.insert(trailing.end(), 4, 0);
  Feed(client.tuple(), trailing);
  EXPECT_EQ(Dropped(DropReason::kMalformed), 2u);
  TurnTestClient stranger(*this, Tuple(2), Rest("bob"));
  stranger.SendChannelData(0x4001, Payload(8));
  EXPECT_EQ(Dropped(DropReason::kNoAllocation), 1u);
  EXPECT_TRUE(io.to_peer.empty());
}

TEST_F(TurnRelayTest, PeerDataWithoutAChannelComesAsDataIndication) {
  TurnTestClient client = Ready(1);
  client.TakeReceived();
  const base::Bytes data = Payload(50);
  PeerSends(relayed_[0], peer_, data);
  PeerSends(relayed_[0], Ip("8.8.8.8", 7777), data);
  auto received = client.TakeReceived();
  ASSERT_EQ(received.size(), 2u);
  std::set<stun::TransactionId> ids;
  for (size_t i = 0; i < received.size(); ++i) {
    auto m = stun::Message::Decode(received[i]);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->method(), stun::Method::kData);
    EXPECT_EQ(m->message_class(), stun::MessageClass::kIndication);
    auto peer = m->FindValue(AttributeType::kXorPeerAddress);
    ASSERT_TRUE(peer);
    EXPECT_EQ(stun::DecodeXorAddress(*peer, m->transaction_id()),
              i == 0 ? peer_ : Ip("8.8.8.8", 7777));
    auto value = m->FindValue(AttributeType::kData);
    ASSERT_TRUE(value);
    EXPECT_EQ(base::Bytes(value->begin(), value->end()), data);
    EXPECT_FALSE(m->Has(AttributeType::kMessageIntegrity));
    ids.insert(m->transaction_id());
  }
  EXPECT_EQ(ids.size(), 2u);  // unique transaction ids
  EXPECT_EQ(Relayed(Direction::kPeerToClient), 2u);
  EXPECT_EQ(RelayedBytes(Direction::kPeerToClient), 100u);
}

TEST_F(TurnRelayTest, DataIndicationTransactionIdsAreRandom) {
  // RFC 8489 section 5: uniformly and randomly chosen, cryptographically
  // random; a counter (with fixed bytes) is neither. Over 200 ids, more than
  // one RNG batch: every byte position takes many values.
  TurnTestClient client = Ready(1);
  client.TakeReceived();
  constexpr size_t kCount = 200;
  for (size_t i = 0; i < kCount; ++i) {
    PeerSends(relayed_[0], peer_, Payload(4));
  }
  auto received = client.TakeReceived();
  ASSERT_EQ(received.size(), kCount);
  std::set<stun::TransactionId> ids;
  std::array<std::set<uint8_t>, stun::kTransactionIdSize> values;
  for (const auto& packet : received) {
    auto m = stun::Message::Decode(packet);
    ASSERT_TRUE(m);
    ids.insert(m->transaction_id());
    for (size_t b = 0; b < stun::kTransactionIdSize; ++b) {
      values[b].insert(m->transaction_id()[b]);
    }
  }
  EXPECT_EQ(ids.size(), kCount);
  for (size_t b = 0; b < stun::kTransactionIdSize; ++b) {
    EXPECT_GT(values[b].size(), 64u) << "byte " << b;
  }
}

TEST_F(TurnRelayTest, PeerDataOnABoundChannelComesAsChannelData) {
  TurnTestClient client = Ready(1);
  ASSERT_TRUE(client.ChannelBind(0x4abc, peer_).success());
  client.TakeReceived();
  PeerSends(relayed_[0], peer_, Payload(5));
  // Same IP, another port: not the channel's peer, so a Data indication.
  PeerSends(relayed_[0], Ip("8.8.8.8", 5001), Payload(5));
  auto received = client.TakeReceived();
  ASSERT_EQ(received.size(), 2u);
  // Over UDP without padding.
  ASSERT_EQ(received[0].size(), 9u);
  auto channel_data = stun::DecodeChannelData(received[0]);
  ASSERT_TRUE(channel_data);
  EXPECT_EQ(channel_data->channel, 0x4abc);
  EXPECT_EQ(base::Bytes(channel_data->data.begin(), channel_data->data.end()), Payload(5));
  auto indication = stun::Message::Decode(received[1]);
  ASSERT_TRUE(indication);
  EXPECT_EQ(indication->method(), stun::Method::kData);
}

TEST_F(TurnRelayTest, ChannelDataToATcpClientIsPadded) {
  TurnTestClient client = Ready(1, ClientTransport::kTls);
  ASSERT_TRUE(client.ChannelBind(0x4000, peer_).success());
  client.TakeReceived();
  PeerSends(relayed_[0], peer_, Payload(5));
  auto received = client.TakeReceived();
  ASSERT_EQ(received.size(), 1u);
  ASSERT_EQ(received[0].size(), 12u);  // RFC 8656 section 12.5: padded to 4 over streams
  EXPECT_EQ(base::LoadBe16(received[0].data() + 2), 5u);
  auto decoded = stun::DecodeChannelData(received[0], stun::ChannelDataPadding::kRequired);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->size, 12u);
  EXPECT_EQ(base::Bytes(decoded->data.begin(), decoded->data.end()), Payload(5));
}

// A TCP/TLS client far behind on its output loses peer data (as over UDP)
// rather than queueing it; its requests are still answered.
TEST_F(TurnRelayTest, PeerDataForABackloggedClientIsDroppedAndCounted) {
  TurnTestClient client = Ready(1, ClientTransport::kTcp);
  ASSERT_TRUE(client.ChannelBind(0x4000, peer_).success());
  client.TakeReceived();
  io.client_backlogged = true;
  PeerSends(relayed_[0], peer_, Payload(5));
  EXPECT_TRUE(client.TakeReceived().empty());
  EXPECT_EQ(Dropped(DropReason::kClientBacklog), 1u);
  EXPECT_EQ(Relayed(Direction::kPeerToClient), 0u);
  EXPECT_TRUE(client.Refresh(600).success());
  io.client_backlogged = false;
  PeerSends(relayed_[0], peer_, Payload(5));
  EXPECT_EQ(client.TakeReceived().size(), 1u);
  EXPECT_EQ(Relayed(Direction::kPeerToClient), 1u);
}

TEST_F(TurnRelayTest, PeerDataWithoutPermissionIsDropped) {
  TurnTestClient client = Ready(1);
  client.TakeReceived();
  PeerSends(relayed_[0], Ip("1.1.1.1", 53), Payload(5));
  EXPECT_TRUE(client.TakeReceived().empty());
  EXPECT_EQ(Dropped(DropReason::kNoPermission), 1u);
  EXPECT_EQ(Relayed(Direction::kPeerToClient), 0u);
}

// RFC 8656 section 11.5: an ICMP error about a datagram sent to a permitted
// peer comes to the client as a Data indication with XOR-PEER-ADDRESS (the
// datagram's destination, port included) and ICMP, and no DATA.
TEST_F(TurnRelayTest, IcmpErrorsAboutPermittedPeersComeAsDataIndications) {
  TurnTestClient client = Ready(1, ClientTransport::kUdp, true);
  ASSERT_EQ(relayed_.size(), 2u);
  const base::SocketAddress v6_peer = Ip("2606:4700::1111", 443);
  ASSERT_TRUE(client.CreatePermission({v6_peer}).success());
  client.TakeReceived();
  struct Case {
    net::IcmpError icmp;
    uint32_t error_data;
    metrics::IcmpKind kind;
  };
  const Case cases[] = {
      {{Ip("8.8.8.8", 5001), false, 3, 3, 0}, 0, metrics::IcmpKind::kPortUnreachable},
      {{Ip("8.8.8.8", 5001), false, 3, 1, 0}, 0, metrics::IcmpKind::kUnreachable},
      // The MTU rides only with "fragmentation needed" / "packet too big".
      {{Ip("8.8.8.8", 5001), false, 3, 4, 1400}, 1400, metrics::IcmpKind::kPacketTooBig},
      {{Ip("8.8.8.8", 5001), false, 11, 0, 1400}, 0, metrics::IcmpKind::kTimeExceeded},
      {{v6_peer, true, 1, 4, 0}, 0, metrics::IcmpKind::kPortUnreachable},
      {{v6_peer, true, 1, 3, 0}, 0, metrics::IcmpKind::kUnreachable},
      {{v6_peer, true, 2, 0, 1280}, 1280, metrics::IcmpKind::kPacketTooBig},
      {{v6_peer, true, 3, 0, 0}, 0, metrics::IcmpKind::kTimeExceeded},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.icmp.destination.ToString() + " type " + std::to_string(c.icmp.type));
    const CounterCell& counted = server->counters().icmp[static_cast<size_t>(c.kind)];
    const uint64_t before = counted.Get();
    IcmpArrives(relayed_[c.icmp.v6 ? 1 : 0], c.icmp);
    EXPECT_EQ(counted.Get(), before + 1);  // under its own kind
    auto received = client.TakeReceived();
    ASSERT_EQ(received.size(), 1u);
    auto m = stun::Message::Decode(received[0]);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->method(), stun::Method::kData);
    EXPECT_EQ(m->message_class(), stun::MessageClass::kIndication);
    EXPECT_EQ(
        stun::DecodeXorAddress(*m->FindValue(AttributeType::kXorPeerAddress), m->transaction_id()),
        c.icmp.destination);
    auto icmp = stun::DecodeIcmp(*m->FindValue(AttributeType::kIcmp));
    ASSERT_TRUE(icmp);
    EXPECT_EQ(icmp->type, c.icmp.type);
    EXPECT_EQ(icmp->code, c.icmp.code);
    EXPECT_EQ(icmp->error_data, c.error_data);
    EXPECT_FALSE(m->Has(AttributeType::kData));
  }
  // Not relayed data.
  EXPECT_EQ(Relayed(Direction::kPeerToClient), 0u);
}

TEST_F(TurnRelayTest, OtherIcmpErrorsAndUnpermittedPeersAreIgnored) {
  TurnTestClient client = Ready(1);
  client.TakeReceived();
  // Types section 11.5 does not pass on: parameter problem, source quench,
  // an echo reply; ICMPv6 parameter problem.
  IcmpArrives(relayed_[0], {Ip("8.8.8.8", 5000), false, 12, 0, 0});
  IcmpArrives(relayed_[0], {Ip("8.8.8.8", 5000), false, 4, 0, 0});
  IcmpArrives(relayed_[0], {Ip("8.8.8.8", 5000), false, 0, 0, 0});
  IcmpArrives(relayed_[0], {Ip("8.8.8.8", 5000), true, 4, 0, 0});
  EXPECT_EQ(Dropped(DropReason::kNoPermission), 0u);
  // No permission for the destination's address: dropped and counted.
  IcmpArrives(relayed_[0], {Ip("1.1.1.1", 53), false, 3, 3, 0});
  EXPECT_TRUE(client.TakeReceived().empty());
  EXPECT_EQ(Dropped(DropReason::kNoPermission), 1u);
  // A TCP/TLS client too far behind loses it, as it would peer data.
  TurnTestClient tcp = Ready(2, ClientTransport::kTcp);
  tcp.TakeReceived();
  io.client_backlogged = true;
  IcmpArrives(relayed_[0], {peer_, false, 3, 3, 0});
  EXPECT_TRUE(tcp.TakeReceived().empty());
  EXPECT_EQ(Dropped(DropReason::kClientBacklog), 1u);
  for (size_t k = 0; k < static_cast<size_t>(metrics::IcmpKind::kCount); ++k) {
    EXPECT_EQ(server->counters().icmp[k].Get(), 0u) << metrics::kIcmpKindValues[k];
  }
}

// Behind a 1:1 NAT (RelayAddress::hairpin): two clients of this server relay
// to each other's public relayed address; the datagrams go to the host's own
// address and come back counted as from the public one, so nothing depends
// on the NAT sending the server's traffic back to it.
class TurnHairpinTest : public ::testing::Test, public TurnTestEnv {
 protected:
  void SetUp() override { Start(NatOptions()); }

  // A relay bound to 10.0.0.5, told to clients as kPublic.
  TurnServerOptions NatOptions() const {
    TurnServerOptions options = Options();
    options.relay[0] = RelayAddress{Ip("10.0.0.5", 0), kPublic, Ip("10.0.0.5", 0)};
    options.peers.own_addresses = {Ip("10.0.0.5", 0), kPublic};
    options.peers.relay_addresses = {kPublic};  // as MakeTurnServerOptions sets it
    options.peers.relay_port_min = kPortMin;
    options.peers.relay_port_max = kPortMax;
    return options;
  }

  const base::SocketAddress kPublic = Ip("203.0.113.7", 0);
};

TEST_F(TurnHairpinTest, ClientsOfThisServerReachEachOthersPublicRelayedAddress) {
  TurnTestClient a(*this, Tuple(1), Rest("a"));
  TurnTestClient b(*this, Tuple(2), Rest("b"));
  const auto relayed_a = a.Allocate().XorAddress(AttributeType::kXorRelayedAddress);
  const auto relayed_b = b.Allocate().XorAddress(AttributeType::kXorRelayedAddress);
  ASSERT_TRUE(relayed_a && relayed_b);
  ASSERT_EQ(relayed_a->IpString(), "203.0.113.7");
  ASSERT_TRUE(a.CreatePermission({*relayed_b}).success());
  ASSERT_TRUE(b.CreatePermission({*relayed_a}).success());

  // a -> b's public relayed address: sent to the host's own address instead.
  const base::Bytes data = Payload(40);
  a.Send(*relayed_b, data);
  ASSERT_EQ(io.to_peer.size(), 1u);
  EXPECT_EQ(io.to_peer[0].peer, Ip("10.0.0.5", relayed_b->port()));
  EXPECT_EQ(io.to_peer[0].handle, io.HandleFor(*relayed_a));

  // It arrives on b's socket from a's socket (the host's address): b is told
  // it came from a's public relayed address, which b has a permission for.
  b.TakeReceived();
  PeerSends(*relayed_b, Ip("10.0.0.5", relayed_a->port()), data);
  auto received = b.TakeReceived();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(DataFrom(received[0]), *relayed_a);

  // Over a channel too, both ways.
  ASSERT_TRUE(b.ChannelBind(0x4001, *relayed_a).success());
  b.SendChannelData(0x4001, data);
  ASSERT_EQ(io.to_peer.size(), 2u);
  EXPECT_EQ(io.to_peer[1].peer, Ip("10.0.0.5", relayed_a->port()));
  PeerSends(*relayed_b, Ip("10.0.0.5", relayed_a->port()), data);
  received = b.TakeReceived();
  ASSERT_EQ(received.size(), 1u);
  auto channel = stun::DecodeChannelData(received[0], stun::ChannelDataPadding::kOptional);
  ASSERT_TRUE(channel);
  EXPECT_EQ(channel->channel, 0x4001);

  // An ICMP error about the hairpin path names the public address.
  IcmpArrives(*relayed_a, {Ip("10.0.0.5", relayed_b->port()), false, 3, 3, 0});
  received = a.TakeReceived();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(DataFrom(received[0]), *relayed_b);
}

TEST_F(TurnHairpinTest, OnlyRelayPortsOfThePublicAddressStayOnTheHost) {
  TurnTestClient a(*this, Tuple(1), Rest("a"));
  const auto relayed_a = a.Allocate().XorAddress(AttributeType::kXorRelayedAddress);
  ASSERT_TRUE(relayed_a);
  const base::SocketAddress outside = Ip("8.8.8.8", kPortMin);
  ASSERT_TRUE(a.CreatePermission({outside, Ip("203.0.113.7", kPortMin)}).success());
  a.Send(outside, Payload(10));
  ASSERT_EQ(io.to_peer.size(), 1u);
  EXPECT_EQ(io.to_peer[0].peer, outside);
  // From the host's address on a port outside the relay range comes no
  // relay socket of ours (a listener, another service): it is not taken for
  // the public address the client has a permission for.
  a.TakeReceived();
  PeerSends(*relayed_a, Ip("10.0.0.5", 3478), Payload(10));
  EXPECT_TRUE(a.TakeReceived().empty());
  PeerSends(*relayed_a, Ip("10.0.0.5", kPortMin + 1), Payload(10));
  EXPECT_EQ(a.TakeReceived().size(), 1u);
  // CreatePermission ignores the port (RFC 8656 section 10.1): port 0 of
  // the public address is fine; what the relay sends there is still judged
  // per port.
  EXPECT_TRUE(a.CreatePermission({kPublic}).success());
  EXPECT_EQ(a.ChannelBind(0x4002, Ip("203.0.113.7", 3478)).error_code(), 403);
  const size_t sent = io.to_peer.size();
  a.Send(Ip("203.0.113.7", 3478), Payload(10));
  EXPECT_EQ(io.to_peer.size(), sent);
}

TEST_F(TurnHairpinTest, APeerOnTheHostsOwnAddressWithItsOwnPermissionIsItself) {
  // A process on the host (the probe's echo peer, a media server) whose port
  // lies in the relay range: permitted by its own address, it is not taken
  // for another client's public relayed address.
  TurnServerOptions options = NatOptions();
  options.peers.allow = {*base::ParseCidr("10.0.0.5/32")};
  Start(options);
  TurnTestClient a(*this, Tuple(1), Rest("a"));
  const auto relayed_a = a.Allocate().XorAddress(AttributeType::kXorRelayedAddress);
  ASSERT_TRUE(relayed_a);
  const base::SocketAddress local_peer = Ip("10.0.0.5", kPortMin + 7);
  ASSERT_TRUE(a.CreatePermission({local_peer}).success());
  a.TakeReceived();
  PeerSends(*relayed_a, local_peer, Payload(10));
  auto received = a.TakeReceived();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(DataFrom(received[0]), local_peer);
}

TEST_F(TurnRelayTest, Ipv6HalfOfADualAllocationRelays) {
  TurnTestClient client = Ready(1, ClientTransport::kUdp, true);
  ASSERT_EQ(relayed_.size(), 2u);
  const base::SocketAddress v6_peer = Ip("2606:4700::1111", 443);
  ASSERT_TRUE(client.ChannelBind(0x4000, v6_peer).success());
  client.SendChannelData(0x4000, Payload(3));
  ASSERT_EQ(io.to_peer.size(), 1u);
  EXPECT_EQ(io.to_peer[0].handle, io.HandleFor(relayed_[1]));
  client.Send(peer_, Payload(3));
  ASSERT_EQ(io.to_peer.size(), 2u);
  EXPECT_EQ(io.to_peer[1].handle, io.HandleFor(relayed_[0]));
  client.TakeReceived();
  PeerSends(relayed_[1], v6_peer, Payload(3));
  EXPECT_EQ(client.TakeReceived().size(), 1u);
}

TEST_F(TurnRelayTest, ChannelExpiresAfter600Seconds) {
  TurnTestClient client = Ready(1);
  ASSERT_TRUE(client.Refresh(3600).success());
  ASSERT_TRUE(client.ChannelBind(0x4000, peer_).success());
  Advance(std::chrono::seconds(290));
  ASSERT_TRUE(client.CreatePermission({peer_}).success());  // keep the permission
  Advance(std::chrono::seconds(290));
  ASSERT_TRUE(client.CreatePermission({peer_}).success());
  Advance(std::chrono::seconds(19));  // 599 s
  client.SendChannelData(0x4000, Payload(4));
  EXPECT_EQ(io.to_peer.size(), 1u);
  client.TakeReceived();
  PeerSends(relayed_[0], peer_, Payload(4));
  auto before = client.TakeReceived();
  ASSERT_EQ(before.size(), 1u);
  EXPECT_EQ(before[0][0] & 0xC0, 0x40);  // ChannelData
  Advance(std::chrono::seconds(1));      // 600 s
  EXPECT_EQ(ActiveChannels(), 0u);
  client.SendChannelData(0x4000, Payload(4));
  EXPECT_EQ(io.to_peer.size(), 1u);
  EXPECT_EQ(Dropped(DropReason::kNoChannel), 1u);
  // The permission is still there: peer data comes as a Data indication.
  PeerSends(relayed_[0], peer_, Payload(4));
  auto after = client.TakeReceived();
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0][0] & 0xC0, 0x00);
}

TEST_F(TurnRelayTest, BandwidthCapDropsTheExcessBothWays) {
  TurnServerOptions options = Options(true);
  options.bandwidth_per_allocation = 1000;  // bytes/s, one second of burst
  Start(options);
  TurnTestClient client = Ready(1);
  ASSERT_TRUE(client.ChannelBind(0x4000, peer_).success());
  client.Send(peer_, Payload(600));
  client.SendChannelData(0x4000, Payload(600));
  EXPECT_EQ(io.to_peer.size(), 1u);
  EXPECT_EQ(Dropped(DropReason::kBandwidth), 1u);
  clock.Advance(std::chrono::milliseconds(500));  // 400 + 500 tokens
  client.SendChannelData(0x4000, Payload(600));
  EXPECT_EQ(io.to_peer.size(), 2u);

  client.TakeReceived();
  PeerSends(relayed_[0], peer_, Payload(900));
  PeerSends(relayed_[0], peer_, Payload(200));
  EXPECT_EQ(client.TakeReceived().size(), 1u);
  EXPECT_EQ(Dropped(DropReason::kBandwidth), 2u);
  clock.Advance(std::chrono::seconds(10));  // the burst is capped at one second
  PeerSends(relayed_[0], peer_, Payload(1000));
  PeerSends(relayed_[0], peer_, Payload(1));
  EXPECT_EQ(client.TakeReceived().size(), 1u);
  EXPECT_EQ(Dropped(DropReason::kBandwidth), 3u);
  EXPECT_EQ(RelayedBytes(Direction::kClientToPeer), 1200u);
  EXPECT_EQ(RelayedBytes(Direction::kPeerToClient), 1900u);
}

TEST_F(TurnRelayTest, AReloadedBandwidthCapAppliesToAllocationsThatExist) {
  TurnServerOptions options = Options(true);
  Start(options);
  TurnTestClient client = Ready(1);
  ASSERT_TRUE(client.ChannelBind(0x4000, peer_).success());
  client.SendChannelData(0x4000, Payload(5000));
  EXPECT_EQ(io.to_peer.size(), 1u);
  options.bandwidth_per_allocation = 1000;
  server->SetOptions(options);
  client.SendChannelData(0x4000, Payload(600));
  client.SendChannelData(0x4000, Payload(600));
  EXPECT_EQ(io.to_peer.size(), 2u);
  EXPECT_EQ(Dropped(DropReason::kBandwidth), 1u);
  options.bandwidth_per_allocation = 0;
  server->SetOptions(options);
  client.SendChannelData(0x4000, Payload(5000));
  EXPECT_EQ(io.to_peer.size(), 3u);
}

TEST_F(TurnRelayTest, KernelRefusalIsCounted) {
  TurnTestClient client = Ready(1);
  ASSERT_TRUE(client.ChannelBind(0x4000, peer_).success());
  io.fail_send = true;
  client.Send(peer_, Payload(4));
  client.SendChannelData(0x4000, Payload(4));
  EXPECT_EQ(Dropped(DropReason::kSendFailed), 2u);
  EXPECT_EQ(Relayed(Direction::kClientToPeer), 0u);
}

// Sends to peers are batched (sendmmsg): what the kernel refuses at flush
// time (EAGAIN, ENETUNREACH, ...) is dropped, not relayed, so the relayed
// counters move only by what the flush reports it took.
TEST_F(TurnRelayTest, BatchedSendsCountOnlyWhatTheKernelTook) {
  TurnTestClient client = Ready(1);
  ASSERT_TRUE(client.ChannelBind(0x4000, peer_).success());
  io.queue_sends = true;
  client.Send(peer_, Payload(10));
  client.SendChannelData(0x4000, Payload(20));
  client.SendChannelData(0x4000, Payload(30));
  ASSERT_EQ(io.to_peer.size(), 3u);
  EXPECT_EQ(Relayed(Direction::kClientToPeer), 0u);
  EXPECT_EQ(RelayedBytes(Direction::kClientToPeer), 0u);
  EXPECT_EQ(Dropped(DropReason::kSendFailed), 0u);

  // The flush: the kernel took the first and the third, refused the second.
  server->OnPeerSendsDone(2, 40, 1);
  EXPECT_EQ(Relayed(Direction::kClientToPeer), 2u);
  EXPECT_EQ(RelayedBytes(Direction::kClientToPeer), 40u);
  EXPECT_EQ(Dropped(DropReason::kSendFailed), 1u);
  // Nothing was counted for the other direction.
  EXPECT_EQ(Relayed(Direction::kPeerToClient), 0u);
}

TEST_F(TurnRelayTest, GaugesReturnToZeroAfterEverythingIsDeleted) {
  TurnTestClient a = Ready(1);
  ASSERT_TRUE(a.ChannelBind(0x4000, peer_).success());
  ASSERT_TRUE(a.CreatePermission({Ip("1.1.1.1", 1), Ip("9.9.9.9", 1)}).success());
  TurnTestClient b = Ready(2, ClientTransport::kTcp, true);
  ASSERT_TRUE(b.ChannelBind(0x4000, Ip("2606:4700::1111", 1)).success());
  ASSERT_TRUE(b.ChannelBind(0x4001, peer_).success());
  TurnTestClient c = Ready(3);
  ASSERT_TRUE(c.ChannelBind(0x4005, Ip("1.1.1.1", 2)).success());
  EXPECT_EQ(ActiveAllocations(), 3u);
  EXPECT_EQ(ActivePermissions(), 3u + 2u + 2u);
  EXPECT_EQ(ActiveChannels(), 4u);

  ASSERT_TRUE(a.Refresh(0).success());  // deleted by the client
  server->OnClientClosed(b.tuple());    // its connection closed
  Advance(std::chrono::seconds(600));   // c expires
  EXPECT_EQ(server->allocation_count(), 0u);
  EXPECT_EQ(ActiveAllocations(), 0u);
  EXPECT_EQ(ActivePermissions(), 0u);
  EXPECT_EQ(ActiveChannels(), 0u);
  EXPECT_TRUE(io.sockets.empty());
  EXPECT_EQ(shared.quota.total(), 0u);
}

}  // namespace
}  // namespace turnkey::relay
