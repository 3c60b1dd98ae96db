#include "net/forwarded.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace turnkey::net {
namespace {

base::Cidr Cidr(const char* text) { return *base::ParseCidr(text); }

HttpRequest From(const char* peer, std::vector<std::string> forwarded_for = {}) {
  HttpRequest request;
  request.peer = *base::SocketAddress::ParseIp(peer, 40000);
  for (std::string& value : forwarded_for) {
    request.headers.Add("X-Forwarded-For", std::move(value));
  }
  return request;
}

std::string ClientOf(const HttpRequest& request, const std::vector<base::Cidr>& trusted) {
  return ForwardedClient(request, trusted).IpString();
}

TEST(ForwardedClientTest, WithoutTrustedProxiesTheHeaderIsIgnored) {
  EXPECT_EQ(ClientOf(From("127.0.0.1", {"203.0.113.7"}), {}), "127.0.0.1");
  // Only a trusted peer may speak for someone else.
  EXPECT_EQ(ClientOf(From("198.51.100.1", {"203.0.113.7"}), {Cidr("127.0.0.1/32")}),
            "198.51.100.1");
  EXPECT_EQ(ForwardedClient(From("198.51.100.1"), {}).port(), 40000);
}

TEST(ForwardedClientTest, ALocalClientIsOnLoopbackAndNotForwarded) {
  EXPECT_TRUE(IsLocalClient(From("127.0.0.1")));
  EXPECT_TRUE(IsLocalClient(From("127.8.9.10")));
  EXPECT_TRUE(IsLocalClient(From("::1")));
  EXPECT_TRUE(IsLocalClient(From("::ffff:127.0.0.1")));
  EXPECT_FALSE(IsLocalClient(From("203.0.113.7")));
  // A proxy on this host, trusted or not, and a trusted one elsewhere whose
  // own loopback it names: forwarded clients.
  EXPECT_FALSE(IsLocalClient(From("127.0.0.1", {"203.0.113.7"})));
  EXPECT_FALSE(IsLocalClient(From("127.0.0.1", {"127.0.0.1"})));
  for (const char* header : {"Forwarded", "X-Real-IP"}) {
    HttpRequest request = From("127.0.0.1");
    request.headers.Add(header, "for=203.0.113.7");
    EXPECT_FALSE(IsLocalClient(request)) << header;
  }
}

TEST(ForwardedClientTest, TheRightmostUntrustedAddressIsTheClient) {
  const std::vector<base::Cidr> trusted = {Cidr("127.0.0.1/32"), Cidr("10.0.0.0/8")};
  EXPECT_EQ(ClientOf(From("127.0.0.1", {"203.0.113.7"}), trusted), "203.0.113.7");
  // What the client wrote itself is left of what the proxies appended.
  EXPECT_EQ(ClientOf(From("127.0.0.1", {"192.0.2.66, 203.0.113.7"}), trusted), "203.0.113.7");
  EXPECT_EQ(ClientOf(From("127.0.0.1", {"192.0.2.66, 203.0.113.7, 10.1.2.3"}), trusted),
            "203.0.113.7");
  // Several header fields are one list, in order.
  EXPECT_EQ(ClientOf(From("127.0.0.1", {"192.0.2.66", "203.0.113.7,10.1.2.3"}), trusted),
            "203.0.113.7");
  // All trusted: the leftmost.
  EXPECT_EQ(ClientOf(From("127.0.0.1", {"10.9.9.9, 10.1.2.3"}), trusted), "10.9.9.9");
  // No header: the proxy itself.
  EXPECT_EQ(ClientOf(From("127.0.0.1"), trusted), "127.0.0.1");
  EXPECT_EQ(ForwardedClient(From("127.0.0.1", {"203.0.113.7"}), trusted).port(), 0);
}

TEST(ForwardedClientTest, OtherSpellingsAndGarbage) {
  const std::vector<base::Cidr> trusted = {Cidr("127.0.0.1/32"), Cidr("::1/128")};
  EXPECT_EQ(ClientOf(From("::1", {"2001:db8::7"}), trusted), "2001:db8::7");
  EXPECT_EQ(ClientOf(From("::1", {"[2001:db8::7]:4711"}), trusted), "2001:db8::7");
  EXPECT_EQ(ClientOf(From("::1", {"203.0.113.7:4711"}), trusted), "203.0.113.7");
  // A dual-stack listener sees an IPv4 proxy as ::ffff:a.b.c.d.
  EXPECT_EQ(ClientOf(From("::ffff:127.0.0.1", {"203.0.113.7"}), trusted), "203.0.113.7");
  // Garbage stops the walk at the last good address: the proxy's view.
  EXPECT_EQ(ClientOf(From("127.0.0.1", {"unknown"}), trusted), "127.0.0.1");
  EXPECT_EQ(ClientOf(From("127.0.0.1", {"203.0.113.9, nonsense, 192.0.2.5"}), trusted),
            "192.0.2.5");
  EXPECT_EQ(ClientOf(From("127.0.0.1", {"203.0.113.9, 127.0.0.1, [broken"}), trusted), "127.0.0.1");
}

}  // namespace
}  // namespace turnkey::net
