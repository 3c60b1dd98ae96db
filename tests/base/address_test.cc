#include "base/address.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <unordered_set>

namespace turnkey::base {
namespace {

TEST(ParsePortTest, TakesOnlyADecimalPortOf1To65535) {
  EXPECT_EQ(ParsePort("3478"), 3478);
  EXPECT_EQ(ParsePort("1"), 1);
  EXPECT_EQ(ParsePort("65535"), 65535);
  for (const char* bad :
       {"", "0", "65536", "99999999999", "-1", "+80", " 80", "80 ", "8o", "0x50"}) {
    EXPECT_FALSE(ParsePort(bad).has_value()) << bad;
  }
}

TEST(SocketAddressTest, DefaultIsNone) {
  SocketAddress a;
  EXPECT_EQ(a.family(), Family::kNone);
  EXPECT_FALSE(a.is_v4());
  EXPECT_FALSE(a.is_v6());
  EXPECT_FALSE(a.IsUnspecified());
  EXPECT_EQ(a.IpString(), "none");
  sockaddr_storage ss;
  EXPECT_EQ(a.ToSockaddr(&ss), 0u);
}

TEST(SocketAddressTest, V4Construction) {
  SocketAddress a = SocketAddress::V4({192, 0, 2, 1}, 3478);
  EXPECT_TRUE(a.is_v4());
  EXPECT_EQ(a.size(), 4u);
  EXPECT_EQ(a.port(), 3478);
  EXPECT_EQ(a.bytes()[0], 192);
  EXPECT_EQ(a.bytes()[3], 1);
  EXPECT_EQ(a.ToString(), "192.0.2.1:3478");
  a.set_port(1);
  EXPECT_EQ(a.ToString(), "192.0.2.1:1");
}

TEST(SocketAddressTest, ParseFormatRoundTripV4) {
  for (const char* text :
       {"0.0.0.0:0", "192.0.2.1:3478", "255.255.255.255:65535", "127.0.0.1:5349", "10.1.2.3:1"}) {
    auto a = SocketAddress::ParseIpPort(text);
    ASSERT_TRUE(a.has_value()) << text;
    EXPECT_TRUE(a->is_v4());
    EXPECT_EQ(a->ToString(), text);
    auto b = SocketAddress::ParseIpPort(a->ToString());
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(*a, *b);
  }
}

TEST(SocketAddressTest, ParseFormatRoundTripV6) {
  for (const char* text : {"[::]:0", "[::1]:3478", "[2001:db8::1]:5349",
                           "[2001:db8:1234:5678:11:2233:4455:6677]:32853", "[fe80::1:2]:65535",
                           "[::ffff:192.0.2.1]:80"}) {
    auto a = SocketAddress::ParseIpPort(text);
    ASSERT_TRUE(a.has_value()) << text;
    EXPECT_TRUE(a->is_v6());
    EXPECT_EQ(a->size(), 16u);
    EXPECT_EQ(a->ToString(), text);
    EXPECT_EQ(SocketAddress::ParseIpPort(a->ToString()), a);
  }
}

TEST(SocketAddressTest, FormatsCanonicalV6) {
  auto a = SocketAddress::ParseIp("2001:0DB8:0000:0000:0000:0000:0000:0001", 7);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->IpString(), "2001:db8::1");
  EXPECT_EQ(a->ToString(), "[2001:db8::1]:7");
}

TEST(SocketAddressTest, ParseIp) {
  auto v4 = SocketAddress::ParseIp("198.51.100.7");
  ASSERT_TRUE(v4.has_value());
  EXPECT_TRUE(v4->is_v4());
  EXPECT_EQ(v4->port(), 0);
  auto v6 = SocketAddress::ParseIp("2001:db8::2", 99);
  ASSERT_TRUE(v6.has_value());
  EXPECT_EQ(v6->port(), 99);
  // IPv4-mapped stays IPv6 (policy code reduces it).
  auto mapped = SocketAddress::ParseIp("::ffff:127.0.0.1");
  ASSERT_TRUE(mapped.has_value());
  EXPECT_TRUE(mapped->is_v6());
}

TEST(SocketAddressTest, RejectsBadText) {
  for (const char* text :
       {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4 ", " 1.2.3.4", "example.org",
        "2001:db8::1::2", "fe80::1%eth0", "1.2.3.4:80", "[::1]", "::g"}) {
    EXPECT_FALSE(SocketAddress::ParseIp(text).has_value()) << text;
  }
  // Longer than any address.
  EXPECT_FALSE(SocketAddress::ParseIp(std::string(100, '1')).has_value());
  // An embedded NUL must not end the address early.
  EXPECT_FALSE(SocketAddress::ParseIp(std::string_view("1.2.3.4\0junk", 12)).has_value());
}

TEST(SocketAddressTest, RejectsBadHostPort) {
  for (const char* text : {"", "1.2.3.4", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:-1", "1.2.3.4:80x",
                           "1.2.3.4:+80", ":80", "::1:80", "[::1]", "[::1]:", "[::1]80", "[::1:80",
                           "[1.2.3.4]:80x", "[]:80", "1.2.3.4:99999999999", "host:80"}) {
    EXPECT_FALSE(SocketAddress::ParseIpPort(text).has_value()) << text;
  }
}

TEST(SocketAddressTest, SockaddrRoundTripV4) {
  auto a = SocketAddress::ParseIpPort("203.0.113.9:40000");
  ASSERT_TRUE(a.has_value());
  sockaddr_storage ss;
  socklen_t len = a->ToSockaddr(&ss);
  ASSERT_EQ(len, sizeof(sockaddr_in));
  sockaddr_in in;
  std::memcpy(&in, &ss, sizeof(in));
  EXPECT_EQ(in.sin_family, AF_INET);
  EXPECT_EQ(ntohs(in.sin_port), 40000);
  char buf[INET_ADDRSTRLEN];
  ASSERT_NE(inet_ntop(AF_INET, &in.sin_addr, buf, sizeof(buf)), nullptr);
  EXPECT_STREQ(buf, "203.0.113.9");
  auto back = SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&ss), len);
  EXPECT_EQ(back, a);
}

TEST(SocketAddressTest, SockaddrRoundTripV6) {
  auto a = SocketAddress::ParseIpPort("[2001:db8::42]:3478");
  ASSERT_TRUE(a.has_value());
  sockaddr_storage ss;
  socklen_t len = a->ToSockaddr(&ss);
  ASSERT_EQ(len, sizeof(sockaddr_in6));
  auto back = SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&ss), len);
  EXPECT_EQ(back, a);
}

TEST(SocketAddressTest, FromSockaddrRejects) {
  EXPECT_FALSE(SocketAddress::FromSockaddr(nullptr, 0).has_value());
  sockaddr_storage ss{};
  ss.ss_family = AF_UNIX;
  EXPECT_FALSE(
      SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&ss), sizeof(ss)).has_value());
  // Too short for the family it claims.
  ss.ss_family = AF_INET6;
  EXPECT_FALSE(
      SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&ss), sizeof(sockaddr_in))
          .has_value());
}

TEST(SocketAddressTest, Unspecified) {
  EXPECT_TRUE(SocketAddress::ParseIp("0.0.0.0")->IsUnspecified());
  EXPECT_TRUE(SocketAddress::ParseIp("::")->IsUnspecified());
  EXPECT_FALSE(SocketAddress::ParseIp("0.0.0.1")->IsUnspecified());
  EXPECT_FALSE(SocketAddress::ParseIp("::1")->IsUnspecified());
}

TEST(SocketAddressTest, Loopback) {
  for (const char* ip : {"127.0.0.1", "127.255.0.9", "::1"}) {
    EXPECT_TRUE(SocketAddress::ParseIp(ip)->IsLoopback()) << ip;
  }
  for (const char* ip : {"0.0.0.0", "::", "128.0.0.1", "126.0.0.1", "::2", "::ffff:127.0.0.1",
                         "1::1", "192.0.2.1"}) {
    EXPECT_FALSE(SocketAddress::ParseIp(ip)->IsLoopback()) << ip;
  }
  EXPECT_FALSE(SocketAddress().IsLoopback());
}

TEST(SocketAddressTest, UnmappedAndClientBlock) {
  auto ip = [](const char* text, uint16_t port = 7) { return *SocketAddress::ParseIp(text, port); };
  EXPECT_EQ(ip("::ffff:192.0.2.9").Unmapped(), ip("192.0.2.9"));
  EXPECT_EQ(ip("::ffff:192.0.2.9").Unmapped().port(), 7);
  EXPECT_EQ(ip("2001:db8::1").Unmapped(), ip("2001:db8::1"));
  EXPECT_EQ(ip("192.0.2.9").Unmapped(), ip("192.0.2.9"));
  // Not mapped: ::ffff:0:a.b.c.d (translated) and ::a.b.c.d stay IPv6.
  EXPECT_TRUE(ip("::ffff:0:192.0.2.9").Unmapped().is_v6());

  EXPECT_EQ(ip("192.0.2.9").ClientBlock(), std::string("\xc0\x00\x02\x09", 4));
  EXPECT_EQ(ip("::ffff:192.0.2.9", 1).ClientBlock(), ip("192.0.2.9", 2).ClientBlock());
  EXPECT_EQ(ip("2001:db8:1:2::1").ClientBlock(), ip("2001:db8:1:2:ffff::9").ClientBlock());
  EXPECT_NE(ip("2001:db8:1:2::1").ClientBlock(), ip("2001:db8:1:3::1").ClientBlock());
  EXPECT_EQ(ip("2001:db8:1:2::1").ClientBlock().size(), 8u);
  EXPECT_EQ(SocketAddress().ClientBlock(), "");
}

TEST(SocketAddressTest, EqualityAndHash) {
  auto a = *SocketAddress::ParseIpPort("192.0.2.1:1000");
  auto b = *SocketAddress::ParseIpPort("192.0.2.1:1000");
  auto c = *SocketAddress::ParseIpPort("192.0.2.1:1001");
  auto d = *SocketAddress::ParseIpPort("[::ffff:192.0.2.1]:1000");
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.Hash(), b.Hash());
  EXPECT_NE(a, c);
  EXPECT_NE(a, d);  // a mapped address is a different address value
  std::unordered_set<SocketAddress> set = {a, b, c, d};
  EXPECT_EQ(set.size(), 3u);
}

}  // namespace
}  // namespace turnkey::base
