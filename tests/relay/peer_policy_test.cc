#include "relay/peer_policy.h"

#include <gtest/gtest.h>

#include <string>

namespace turnkey::relay {
namespace {

base::SocketAddress Addr(const std::string& ip, uint16_t port = 5000) {
  auto a = base::SocketAddress::ParseIp(ip, port);
  EXPECT_TRUE(a.has_value()) << ip;
  return a.value_or(base::SocketAddress{});
}

base::Cidr Net(const std::string& text) {
  auto c = base::ParseCidr(text);
  EXPECT_TRUE(c.has_value()) << text;
  return c.value_or(base::Cidr{});
}

struct Case {
  const char* ip;
  bool allowed;
};

// The default policy: no operator rules, no own addresses.
TEST(PeerPolicyTest, DefaultTable) {
  PeerPolicy policy(PeerPolicyOptions{});
  const Case cases[] = {
      // Every IPv4 range of reference/security.md, and their edges.
      {"0.0.0.0", false},
      {"0.255.255.255", false},
      {"10.0.0.1", false},
      {"10.255.255.255", false},
      {"100.64.0.1", false},
      {"100.127.255.254", false},
      {"100.128.0.1", true},
      {"127.0.0.1", false},
      {"127.255.255.254", false},
      {"169.254.169.254", false},
      {"168.63.129.16", false},  // Azure's platform address (DNS, WireServer)
      {"168.63.129.17", true},
      {"172.16.0.1", false},
      {"172.31.255.255", false},
      {"172.32.0.1", true},
      {"192.0.0.8", false},
      {"192.0.2.1", false},
      {"192.31.196.1", false},
      {"192.52.193.1", false},
      {"192.88.99.1", false},
      {"192.168.1.1", false},
      {"192.175.48.1", false},
      {"198.18.0.1", false},
      {"198.19.255.255", false},
      {"198.20.0.1", true},
      {"198.51.100.7", false},
      {"203.0.113.9", false},
      {"224.0.0.1", false},
      {"239.255.255.250", false},
      {"240.0.0.1", false},
      {"255.255.255.255", false},
      // Public IPv4 peers.
      {"8.8.8.8", true},
      {"1.1.1.1", true},
      {"93.184.216.34", true},
      {"11.0.0.1", true},
      // Every IPv6 range.
      {"::", false},
      {"::1", false},
      // 64:ff9b::/96 is on the built-in list as a whole: a NAT64 gateway is
      // somebody else's network, so even a public embedded address is denied.
      {"64:ff9b::808:808", false},
      {"64:ff9b:1::1", false},
      {"100::1", false},
      {"2001::1", false},  // Teredo
      {"2001:0:4136:e378::1", false},
      {"2001:1ff::1", false},  // end of 2001::/23
      {"2001:db8::1", false},
      {"2002:0808:0808::1", false},  // 6to4 is denied as a whole
      {"fc00::1", false},
      {"fd12:3456::1", false},
      {"fe80::1", false},
      {"febf::1", false},
      {"fec0::1", false},
      {"ff02::1", false},
      // Not global unicast, or not allocated: not a peer either.
      {"::100:0:0:1", false},
      {"::fffe:7f00:1", false},
      {"::ffff:1:7f00:1", false},
      {"5f00::1", false},
      {"4000::1", false},
      {"e000::1", false},
      {"3fff::1", false},  // documentation (RFC 9637)
      {"3fff:fff::1", false},
      {"3fff:1000::1", true},  // just past 3fff::/20
      // Public IPv6 peers.
      {"2606:4700:4700::1111", true},
      {"2a00:1450:4001::1", true},
      {"2001:200::1", true},  // just past 2001::/23
      // IPv4 embedded in IPv6: reduced before matching.
      {"::ffff:127.0.0.1", false},
      {"::ffff:169.254.169.254", false},
      {"::ffff:10.0.0.1", false},
      {"::ffff:0.0.0.0", false},
      {"::ffff:8.8.8.8", true},
      {"::ffff:0:127.0.0.1", false},  // IPv4-translated (SIIT)
      {"::ffff:0:10.0.0.1", false},
      {"::ffff:0:8.8.8.8", true},
      {"::127.0.0.1", false},
      {"::10.0.0.1", false},
      {"::8.8.8.8", true},
      {"2002:7f00:1::", false},
      {"2002:a9fe:a9fe::1", false},
      {"64:ff9b::a9fe:a9fe", false},
      {"64:ff9b::7f00:1", false},
      {"64:ff9b::a00:1", false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(policy.IsAllowed(Addr(c.ip)), c.allowed) << c.ip;
  }
}

TEST(PeerPolicyTest, BuiltinListCoversEveryRange) {
  EXPECT_EQ(PeerPolicy::BuiltinDenyList().size(), 32u);
}

TEST(PeerPolicyTest, AllowRulesWinInsideDeniedRanges) {
  PeerPolicyOptions options;
  options.allow = {Net("127.0.0.1/32"), Net("10.1.0.0/16"), Net("fd00:1::/32")};
  PeerPolicy policy(options);
  EXPECT_TRUE(policy.IsAllowed(Addr("127.0.0.1")));
  EXPECT_TRUE(policy.IsAllowed(Addr("::ffff:127.0.0.1")));  // the same host, another form
  EXPECT_TRUE(policy.IsAllowed(Addr("64:ff9b::7f00:1")));   // NAT64 names it too
  // 6to4 names a /48 behind that address, not the host: an IPv4 rule does
  // not open it.
  EXPECT_FALSE(policy.IsAllowed(Addr("2002:7f00:1:ffff:ffff:ffff:ffff:ffff")));
  EXPECT_FALSE(policy.IsAllowed(Addr("2002:a01:203::1")));
  EXPECT_TRUE(policy.IsAllowed(Addr("10.1.2.3")));
  EXPECT_TRUE(policy.IsAllowed(Addr("fd00:1::5")));
  EXPECT_FALSE(policy.IsAllowed(Addr("127.0.0.2")));
  EXPECT_FALSE(policy.IsAllowed(Addr("10.2.0.1")));
  EXPECT_FALSE(policy.IsAllowed(Addr("fd00:2::5")));
  EXPECT_FALSE(policy.IsAllowed(Addr("169.254.169.254")));
}

TEST(PeerPolicyTest, OperatorDenyRules) {
  PeerPolicyOptions options;
  options.deny = {Net("8.8.8.0/24"), Net("2606:4700::/32")};
  options.allow = {Net("8.8.8.8/32")};
  PeerPolicy policy(options);
  EXPECT_FALSE(policy.IsAllowed(Addr("8.8.8.4")));
  EXPECT_FALSE(policy.IsAllowed(Addr("::ffff:8.8.8.4")));
  EXPECT_TRUE(policy.IsAllowed(Addr("8.8.8.8")));
  EXPECT_FALSE(policy.IsAllowed(Addr("2606:4700:4700::1111")));
  EXPECT_TRUE(policy.IsAllowed(Addr("1.1.1.1")));
}

TEST(PeerPolicyTest, OwnAddressesOnlyExposeTheRelayRange) {
  PeerPolicyOptions options;
  options.own_addresses = {Addr("198.20.1.1", 0), Addr("2a01:4f8::1", 0)};
  options.relay_port_min = 50000;
  options.relay_port_max = 50999;
  PeerPolicy policy(options);
  EXPECT_FALSE(policy.IsAllowed(Addr("198.20.1.1", 3478)));  // our listener
  EXPECT_FALSE(policy.IsAllowed(Addr("198.20.1.1", 22)));
  EXPECT_FALSE(policy.IsAllowed(Addr("198.20.1.1", 9641)));
  EXPECT_FALSE(policy.IsAllowed(Addr("::ffff:198.20.1.1", 8080)));
  EXPECT_TRUE(policy.IsAllowed(Addr("198.20.1.1", 50000)));  // another allocation
  EXPECT_TRUE(policy.IsAllowed(Addr("198.20.1.1", 50999)));
  EXPECT_FALSE(policy.IsAllowed(Addr("198.20.1.1", 51000)));
  EXPECT_FALSE(policy.IsAllowed(Addr("2a01:4f8::1", 443)));
  EXPECT_TRUE(policy.IsAllowed(Addr("2a01:4f8::1", 50500)));
  EXPECT_TRUE(policy.IsAllowed(Addr("198.20.1.2", 22)));
}

TEST(PeerPolicyTest, APrivateRelayAddressExposesItsRelayRangeToOtherClients) {
  // A relay on a LAN or VPN (10.0.0.0/8, a ULA): two of its clients still
  // reach each other's relayed address, and nothing else of the range.
  PeerPolicyOptions options;
  options.own_addresses = {Addr("10.55.0.1", 0), Addr("fd00:a5::1", 0), Addr("127.0.0.1", 0)};
  options.relay_addresses = {Addr("10.55.0.1", 0), Addr("fd00:a5::1", 0)};
  options.relay_port_min = 50000;
  options.relay_port_max = 50999;
  PeerPolicy policy(options);
  EXPECT_TRUE(policy.IsAllowed(Addr("10.55.0.1", 50000)));
  EXPECT_TRUE(policy.IsAllowed(Addr("fd00:a5::1", 50999)));
  EXPECT_FALSE(policy.IsAllowed(Addr("10.55.0.1", 3478)));  // its listener
  EXPECT_FALSE(policy.IsAllowed(Addr("10.55.0.1", 51000)));
  EXPECT_FALSE(policy.IsAllowed(Addr("10.55.0.2", 50000)));  // a neighbour
  EXPECT_FALSE(policy.IsAllowed(Addr("::ffff:10.55.0.1", 50000)));
  // A loopback relay address (a local setup) opens nothing.
  options.relay_addresses = {Addr("127.0.0.1", 0)};
  EXPECT_FALSE(PeerPolicy(options).IsAllowed(Addr("127.0.0.1", 50000)));
  // An operator's deny rule still wins.
  options.relay_addresses = {Addr("10.55.0.1", 0)};
  options.deny = {Net("10.55.0.0/24")};
  EXPECT_FALSE(PeerPolicy(options).IsAllowed(Addr("10.55.0.1", 50000)));
}

TEST(PeerPolicyTest, EmbeddedIpv4Forms) {
  EXPECT_EQ(EmbeddedIpv4(Addr("::ffff:1.2.3.4", 7)), Addr("1.2.3.4", 7));
  EXPECT_EQ(EmbeddedIpv4(Addr("::ffff:0:1.2.3.4", 7)), Addr("1.2.3.4", 7));
  EXPECT_EQ(EmbeddedIpv4(Addr("::1.2.3.4", 7)), Addr("1.2.3.4", 7));
  EXPECT_EQ(EmbeddedIpv4(Addr("2002:102:304::1", 7)), Addr("1.2.3.4", 7));
  EXPECT_EQ(EmbeddedIpv4(Addr("64:ff9b::102:304", 7)), Addr("1.2.3.4", 7));
  EXPECT_EQ(EmbeddedIpv4(Addr("::1")).family(), base::Family::kNone);
  EXPECT_EQ(EmbeddedIpv4(Addr("::")).family(), base::Family::kNone);
  EXPECT_EQ(EmbeddedIpv4(Addr("2001:db8::1")).family(), base::Family::kNone);
  EXPECT_EQ(EmbeddedIpv4(Addr("1.2.3.4")).family(), base::Family::kNone);
}

TEST(PeerPolicyTest, NoneAddressIsRefused) {
  PeerPolicy policy(PeerPolicyOptions{});
  EXPECT_FALSE(policy.IsAllowed(base::SocketAddress{}));
}

}  // namespace
}  // namespace turnkey::relay
