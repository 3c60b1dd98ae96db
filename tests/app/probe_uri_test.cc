#include "app/probe_uri.h"

#include <gtest/gtest.h>

namespace turnkey::app {
namespace {

TEST(ProbeUriTest, StunForms) {
  auto u = ParseProbeUri("stun:example.org");
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->scheme, ProbeUri::Scheme::kStun);
  EXPECT_EQ(u->host, "example.org");
  EXPECT_EQ(u->port, 3478);
  EXPECT_EQ(u->transport, net::Transport::kUdp);
  EXPECT_FALSE(u->is_turn());

  u = ParseProbeUri("stuns://[2001:db8::1]");
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->host, "2001:db8::1");
  EXPECT_EQ(u->port, 5349);
  EXPECT_EQ(u->transport, net::Transport::kTls);
}

TEST(ProbeUriTest, TurnWithUserAndPassword) {
  auto u = ParseProbeUri("turn://alice:s3cret@127.0.0.1:3479?transport=tcp");
  ASSERT_TRUE(u.has_value());
  EXPECT_TRUE(u->is_turn());
  EXPECT_EQ(u->username, "alice");
  EXPECT_EQ(u->password, "s3cret");
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 3479);
  EXPECT_EQ(u->transport, net::Transport::kTcp);
  // Never shows the credentials.
  EXPECT_EQ(u->Display(), "turn://127.0.0.1:3479?transport=tcp");
}

TEST(ProbeUriTest, TurnRestUsernameKeepsItsColon) {
  auto u = ParseProbeUri("turn:1700000000:bob:ab%2Fc+d=@[::1]:3478");
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->username, "1700000000:bob");
  EXPECT_EQ(u->password, "ab/c+d=");
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->Display(), "turn://[::1]:3478");
}

TEST(ProbeUriTest, PasswordMayHoldAtAndEscapedColon) {
  auto u = ParseProbeUri("turns://carol:p@ss%3Aword@turn.example.org");
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->username, "carol");
  EXPECT_EQ(u->password, "p@ss:word");
  EXPECT_EQ(u->host, "turn.example.org");
  EXPECT_EQ(u->port, 5349);
  EXPECT_EQ(u->transport, net::Transport::kTls);
}

TEST(ProbeUriTest, ALinkLocalAddressMayNameItsInterface) {
  for (const char* uri : {"stun://[fe80::1%25eth0]:3478", "stun://[fe80::1%eth0]:3478"}) {
    auto u = ParseProbeUri(uri);
    ASSERT_TRUE(u.has_value()) << uri;
    EXPECT_EQ(u->host, "fe80::1%eth0") << uri;  // as getaddrinfo takes it
  }
  EXPECT_FALSE(ParseProbeUri("stun://[fe80::1%25]:3478").has_value());
  EXPECT_FALSE(ParseProbeUri("stun://[localhost%25eth0]:3478").has_value());
}

TEST(ProbeUriTest, SecureOverUdpIsDtls) {
  // RFC 7350: turns: and stuns: with transport=udp run over DTLS.
  auto u = ParseProbeUri("turns://alice:pw@turn.example.org?transport=udp");
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->transport, net::Transport::kDtls);
  EXPECT_EQ(u->port, 5349);
  EXPECT_EQ(u->Display(), "turns://turn.example.org:5349?transport=udp");
  u = ParseProbeUri("stuns:turn.example.org:443?transport=udp");
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->transport, net::Transport::kDtls);
  EXPECT_EQ(u->port, 443);
}

TEST(ProbeUriTest, UserWithoutPasswordIsForSecret) {
  auto u = ParseProbeUri("turn://dave@127.0.0.1:3478");
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->username, "dave");
  EXPECT_FALSE(u->password.has_value());
}

TEST(ProbeUriTest, Rejects) {
  for (const char* bad : {
           "example.org",                     // no scheme
           "http://example.org",              // not STUN/TURN
           "stun://u:p@example.org",          // credentials on stun
           "turn://@example.org",             // empty user
           "turn://u:p%zz@example.org",       // bad escape
           "turn://u:p%4@example.org",        // truncated escape
           "turn://u:p@",                     // no host
           "turn://u:p@host:0",               // port 0
           "turn://u:p@host:65536",           // port too big
           "turn://u:p@host:12a",             // not a number
           "turn://u:p@[::1",                 // unterminated bracket
           "turn://u:p@::1:3478",             // IPv6 without brackets
           "stun://[localhost]:3478",         // a name in brackets
           "stun://[127.0.0.1]:3478",         // IPv4 in brackets
           "stun://[::g]:3478",               // not an address
           "turn://u:p@host?transport=sctp",  // unknown transport
       }) {
    EXPECT_FALSE(ParseProbeUri(bad).has_value()) << bad;
  }
}

TEST(ProbeUriTest, ErrorsDoNotEchoThePassword) {
  auto u = ParseProbeUri("turn://u:hunter2@host:99999");
  ASSERT_FALSE(u.has_value());
  EXPECT_EQ(u.error().message.find("hunter2"), std::string::npos);
}

}  // namespace
}  // namespace turnkey::app
