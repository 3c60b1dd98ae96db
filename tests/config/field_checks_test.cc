#include "config/field_checks.h"

#include <gtest/gtest.h>

namespace turnkey::config {
namespace {

TEST(FieldChecksTest, Origins) {
  for (const char* good :
       {"https://app.example.org", "http://localhost:3000", "https://[::1]:8443",
        "http://192.0.2.1",
        // What apps in a WebView send (Capacitor and Ionic on iOS,
        // Electron, Tauri, a browser extension).
        "capacitor://localhost", "ionic://localhost", "app://-", "tauri://localhost",
        "chrome-extension://abcdefghijklmnop", "x-app.v2+web://host:80"}) {
    EXPECT_TRUE(CheckOrigin(good).has_value()) << good;
  }
  for (const char* bad :
       {"", "app.example.org", "https://", "https://app.example.org/", "https://App.example.org",
        "https://a.org/path", "Capacitor://localhost", "1app://a.org", "://a.org",
        "ca pacitor://localhost", "capacitor:localhost", "https://:443", "null", "https://a.org?x",
        "https://user@a.org",
        // Forms no browser sends (RFC 6454 section 6.1), or no port at all.
        "http://[2001:db8:0::5]:8443", "http://[0:0::1]:8080", "http://[::ffff:127.0.0.1]",
        "http://[::1]:80", "https://a.org:443", "http://a.org:0", "http://a.org:65536",
        "http://a.org:", "http://[::1]:", "http://a.org:080", "http://[::1", "http://[nothex]",
        "http://a[b]"}) {
    EXPECT_FALSE(CheckOrigin(bad).has_value()) << bad;
  }
  EXPECT_EQ(CheckOrigin("http://[2001:db8:0::5]:8443").error().message,
            "bad origin \"http://[2001:db8:0::5]:8443\" (browsers write this host as "
            "[2001:db8::5])");
  EXPECT_EQ(CheckOrigin("https://a.org:443").error().message,
            "bad origin \"https://a.org:443\" (browsers leave out the scheme's default port; "
            "drop :443)");
  EXPECT_EQ(CheckOrigin("null").error().message,
            "bad origin \"null\" (file:// and sandboxed pages all send it, so allowing it would "
            "allow any of them)");
  EXPECT_TRUE(CheckOrigin("http://[2001:db8::5]:8443").has_value());
  EXPECT_TRUE(CheckOrigin("https://a.org:80").has_value());
}

TEST(FieldChecksTest, IceUrls) {
  for (const char* good :
       {"stun:turn.example.org", "stun:turn.example.org:3478", "stuns:turn.example.org:5349",
        "turn:turn.example.org:3478?transport=udp", "turns:turn.example.org?transport=tcp",
        "turn:[2001:db8::1]:3478", "turn:192.0.2.1"}) {
    EXPECT_TRUE(CheckIceUrl(good).has_value()) << good;
  }
  for (const char* bad :
       {"", "turn:", "stun:?transport=udp", "http://turn.example.org", "turn://x.org",
        "stun:x.org?transport=udp", "turn:x.org?transport=sctp", "turn:x.org?foo=bar",
        "turn:user@x.org", "turn:x .org", "turn::3478",
        // IPv6 needs brackets and no zone (RFC 7065 section 3.1).
        "turn:2001:db8::1", "turn:2001:db8::1:3478?transport=udp", "stun:[::1", "stun:[::1]x",
        "turns:[fe80::1%25eth0]:5349", "turn:x.org:0", "turn:x.org:65536"}) {
    EXPECT_FALSE(CheckIceUrl(bad).has_value()) << bad;
  }
  EXPECT_EQ(CheckIceUrl("http://x").error().message,
            "bad ICE server URL \"http://x\" (scheme must be stun:, stuns:, turn: or turns: "
            "(lower-case))");
  EXPECT_EQ(CheckIceUrl("turn:2001:db8::1").error().message,
            "bad ICE server URL \"turn:2001:db8::1\" (an IPv6 address goes in [ ], e.g. "
            "turn:[2001:db8::1]:3478 (RFC 7065))");
}

TEST(FieldChecksTest, RealmAndSoftware) {
  EXPECT_TRUE(CheckRealm("turnkey.local").has_value());
  EXPECT_TRUE(CheckRealm(std::string(127, 'r')).has_value());
  EXPECT_FALSE(CheckRealm(std::string(128, 'r')).has_value());
  // Characters, not bytes (RFC 8489 section 14.9), and UTF-8 only.
  std::string accents;
  for (int i = 0; i < 127; ++i) {
    accents += "\u00e9";
  }
  EXPECT_TRUE(CheckRealm(accents).has_value());
  EXPECT_FALSE(CheckRealm(accents + "\u00e9").has_value());
  EXPECT_FALSE(CheckRealm("turn\xff\xfekey").has_value());
  EXPECT_FALSE(CheckRealm("\xc3").has_value());
  EXPECT_FALSE(CheckRealm("").has_value());
  EXPECT_FALSE(CheckRealm("a\"b").has_value());
  EXPECT_FALSE(CheckRealm("a\nb").has_value());
  EXPECT_TRUE(CheckSoftware("").has_value());
  EXPECT_TRUE(CheckSoftware("turnkey 0.1").has_value());
  EXPECT_FALSE(CheckSoftware(std::string(128, 's')).has_value());
  EXPECT_FALSE(CheckSoftware("a\tb").has_value());
}

TEST(FieldChecksTest, UrlPaths) {
  EXPECT_TRUE(CheckUrlPath("/metrics").has_value());
  EXPECT_TRUE(CheckUrlPath("/").has_value());
  EXPECT_FALSE(CheckUrlPath("metrics").has_value());
  EXPECT_FALSE(CheckUrlPath("/m?x=1").has_value());
  EXPECT_FALSE(CheckUrlPath("/a b").has_value());
}

TEST(FieldChecksTest, HexMd5) {
  auto key = ParseHexMd5("000102030405060708090a0B0c0D0e0F");
  ASSERT_TRUE(key.has_value());
  for (size_t i = 0; i < key->size(); ++i) {
    EXPECT_EQ((*key)[i], i);
  }
  EXPECT_FALSE(ParseHexMd5("").has_value());
  EXPECT_FALSE(ParseHexMd5("000102030405060708090a0b0c0d0e0").has_value());
  EXPECT_FALSE(ParseHexMd5("000102030405060708090a0b0c0d0e0f0").has_value());
  EXPECT_FALSE(ParseHexMd5("g00102030405060708090a0b0c0d0e0f").has_value());
}

TEST(FieldChecksTest, HexSha256) {
  auto key = ParseHexSha256("000102030405060708090a0B0c0D0e0F101112131415161718191a1b1c1d1e1f");
  ASSERT_TRUE(key.has_value());
  for (size_t i = 0; i < key->size(); ++i) {
    EXPECT_EQ((*key)[i], i);
  }
  EXPECT_FALSE(ParseHexSha256("000102030405060708090a0b0c0d0e0f").has_value());
  EXPECT_FALSE(ParseHexSha256(std::string(63, '0')).has_value());
  EXPECT_FALSE(ParseHexSha256(std::string(65, '0')).has_value());
  EXPECT_FALSE(ParseHexSha256("x" + std::string(63, '0')).has_value());
}

TEST(FieldChecksTest, QuoteEscapesAndTruncates) {
  EXPECT_EQ(QuoteForMessage("abc"), "\"abc\"");
  EXPECT_EQ(QuoteForMessage("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(QuoteForMessage(std::string_view("a\0\n", 3)), "\"a\\x00\\x0a\"");
  EXPECT_EQ(QuoteForMessage(std::string(100, 'x')), "\"" + std::string(60, 'x') + "...\"");
}

TEST(FieldChecksTest, EditDistance) {
  EXPECT_EQ(EditDistance("", ""), 0u);
  EXPECT_EQ(EditDistance("listners", "listeners"), 1u);
  EXPECT_EQ(EditDistance("relam", "realm"), 2u);
  EXPECT_EQ(EditDistance("abc", ""), 3u);
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3u);
}

}  // namespace
}  // namespace turnkey::config
