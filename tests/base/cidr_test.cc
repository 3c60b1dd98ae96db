#include "base/cidr.h"

#include <gtest/gtest.h>

namespace turnkey::base {
namespace {

base::SocketAddress Ip(const char* text) { return *base::SocketAddress::ParseIp(text); }

TEST(CidrTest, ParsesIpv4AndIpv6) {
  struct Case {
    const char* text;
    const char* network;
    int prefix;
    bool v4;
  };
  const Case cases[] = {
      {"192.0.2.0/24", "192.0.2.0", 24, true},
      {"10.0.0.0/8", "10.0.0.0", 8, true},
      {"0.0.0.0/0", "0.0.0.0", 0, true},
      {"127.0.0.1/32", "127.0.0.1", 32, true},
      {"127.0.0.1", "127.0.0.1", 32, true},
      {"100.64.0.0/10", "100.64.0.0", 10, true},
      {"2001:db8::/32", "2001:db8::", 32, false},
      {"::/0", "::", 0, false},
      {"::1", "::1", 128, false},
      {"::1/128", "::1", 128, false},
      {"fe80::/10", "fe80::", 10, false},
      {"64:ff9b::/96", "64:ff9b::", 96, false},
      {"::ffff:127.0.0.0/104", "::ffff:127.0.0.0", 104, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    auto cidr = ParseCidr(c.text);
    ASSERT_TRUE(cidr.has_value()) << cidr.error().message;
    EXPECT_EQ(cidr->network, Ip(c.network));
    EXPECT_EQ(cidr->network.port(), 0);
    EXPECT_EQ(cidr->prefix_length, c.prefix);
    EXPECT_EQ(cidr->network.is_v4(), c.v4);
    // The canonical text parses back to the same value.
    auto again = ParseCidr(CidrToString(*cidr));
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(*again, *cidr);
  }
}

TEST(CidrTest, RejectsMalformed) {
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {"10.0.0.0/33", "bad CIDR \"10.0.0.0/33\" (prefix length must be 0-32)"},
      {"2001:db8::/129", "bad CIDR \"2001:db8::/129\" (prefix length must be 0-128)"},
      {"10.0.0.0/", "bad CIDR \"10.0.0.0/\" (prefix length must be a number)"},
      {"10.0.0.0/-1", "bad CIDR \"10.0.0.0/-1\" (prefix length must be a number)"},
      {"10.0.0.0/ 8", "bad CIDR \"10.0.0.0/ 8\" (prefix length must be a number)"},
      {"10.0.0.0/8/8", "bad CIDR \"10.0.0.0/8/8\" (prefix length must be a number)"},
      {"10.0.0.0/0008", "bad CIDR \"10.0.0.0/0008\" (prefix length must be a number)"},
      {"10.0.0/8", "bad CIDR \"10.0.0/8\" (not an IPv4 or IPv6 address)"},
      {"example.org/24", "bad CIDR \"example.org/24\" (not an IPv4 or IPv6 address)"},
      {"", "bad CIDR \"\" (not an IPv4 or IPv6 address)"},
      {"/24", "bad CIDR \"/24\" (not an IPv4 or IPv6 address)"},
      {"10.0.0.1/8", "bad CIDR \"10.0.0.1/8\" (host bits set; did you mean 10.0.0.0/8?)"},
      {"192.168.1.129/25",
       "bad CIDR \"192.168.1.129/25\" (host bits set; did you mean 192.168.1.128/25?)"},
      {"2001:db8::1/32",
       "bad CIDR \"2001:db8::1/32\" (host bits set; did you mean 2001:db8::/32?)"},
      {"fe80::1%eth0/64", "bad CIDR \"fe80::1%eth0/64\" (not an IPv4 or IPv6 address)"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    auto cidr = ParseCidr(c.text);
    ASSERT_FALSE(cidr.has_value());
    EXPECT_EQ(cidr.error().message, c.message);
  }
  EXPECT_FALSE(ParseCidr(std::string_view("10.0.0.0\0/8", 11)).has_value());
}

TEST(CidrTest, Contains) {
  const Cidr net10 = *ParseCidr("10.0.0.0/8");
  EXPECT_TRUE(CidrContains(net10, Ip("10.0.0.0")));
  EXPECT_TRUE(CidrContains(net10, Ip("10.255.255.255")));
  EXPECT_FALSE(CidrContains(net10, Ip("11.0.0.0")));
  EXPECT_FALSE(CidrContains(net10, Ip("9.255.255.255")));

  const Cidr cgnat = *ParseCidr("100.64.0.0/10");
  EXPECT_TRUE(CidrContains(cgnat, Ip("100.127.255.255")));
  EXPECT_FALSE(CidrContains(cgnat, Ip("100.128.0.0")));

  const Cidr any4 = *ParseCidr("0.0.0.0/0");
  EXPECT_TRUE(CidrContains(any4, Ip("203.0.113.9")));
  EXPECT_FALSE(CidrContains(any4, Ip("::1")));

  const Cidr ula = *ParseCidr("fc00::/7");
  EXPECT_TRUE(CidrContains(ula, Ip("fd12:3456::1")));
  EXPECT_FALSE(CidrContains(ula, Ip("fe00::1")));

  // Families never mix, even for IPv4-mapped addresses: the peer policy
  // reduces those before asking.
  EXPECT_FALSE(CidrContains(*ParseCidr("127.0.0.0/8"), Ip("::ffff:127.0.0.1")));
  EXPECT_TRUE(CidrContains(*ParseCidr("::1"), *base::SocketAddress::ParseIpPort("[::1]:9")));
  EXPECT_FALSE(CidrContains(net10, base::SocketAddress()));
}

TEST(CidrTest, Overlap) {
  const Cidr loopback = *ParseCidr("127.0.0.0/8");
  EXPECT_TRUE(CidrsOverlap(loopback, *ParseCidr("127.0.0.2/32")));
  EXPECT_TRUE(CidrsOverlap(*ParseCidr("127.0.0.2/31"), loopback));
  EXPECT_TRUE(CidrsOverlap(loopback, *ParseCidr("0.0.0.0/0")));
  EXPECT_TRUE(CidrsOverlap(loopback, loopback));
  EXPECT_FALSE(CidrsOverlap(loopback, *ParseCidr("128.0.0.0/8")));
  EXPECT_FALSE(CidrsOverlap(loopback, *ParseCidr("10.0.0.0/8")));
  EXPECT_TRUE(CidrsOverlap(*ParseCidr("::ffff:127.0.0.0/104"), *ParseCidr("::ffff:127.0.0.2")));
  EXPECT_FALSE(CidrsOverlap(loopback, *ParseCidr("::ffff:127.0.0.2")));  // families never mix
}

}  // namespace
}  // namespace turnkey::base
