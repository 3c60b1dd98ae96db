#include "auth/ice_servers.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "auth/turn_rest.h"

namespace turnkey::auth {
namespace {

constexpr int64_t kNow = 1'700'000'000;
constexpr std::string_view kUser = "0123456789abcdef0123456789abcdef";

TEST(IceServerUrlTest, AcceptsRfc7064And7065Uris) {
  for (std::string_view url : {
           "stun:turn.example.org",
           "stun:turn.example.org:3478",
           "stuns:turn.example.org:5349",
           "turn:turn.example.org",
           "turn:turn.example.org:3478?transport=udp",
           "turn:turn.example.org:3478?transport=tcp",
           "turns:turn.example.org:5349?transport=tcp",
           "turns:turn.example.org:443",
           "turn:192.0.2.1:3478",
           "stun:192.0.2.1",
           "turn:[2001:db8::1]:3478?transport=udp",
           "stun:[2001:db8::1]",
           "turn:[::ffff:192.0.2.1]:3478",
           "turn:Turn-1.Example_ORG.~x:1",
           "turn:localhost:65535",
       }) {
    EXPECT_TRUE(CheckIceServerUrl(url).has_value()) << url;
  }
}

TEST(IceServerUrlTest, RefusesEverythingElse) {
  for (std::string_view url : {
           "",
           "stun:",
           "turn:",
           "turn::3478",
           "turn:host:",
           "turn:host:0",
           "turn:host:65536",
           "turn:host:123456",
           "turn:host:-1",
           "turn:host:34a",
           "turn:host:3478:1",
           "STUN:host",
           "Turn:host",
           "http://host",
           "stun://host:3478",
           "turn://host:3478",
           "turn:user@host",
           "turn:host/path",
           "turn:host#frag",
           "turn:host name",
           "turn:ho%41st",
           "turn:host\n",
           "stun:host?transport=udp",
           "stuns:host:5349?transport=tcp",
           "turn:host?transport=sctp",
           "turn:host?transport=",
           "turn:host?transport=udp&x=1",
           "turn:host?Transport=udp",
           "turn:host?",
           "turn:[2001:db8::1",
           "turn:[2001:db8::1]3478",
           "turn:[2001:db8::1]:",
           "turn:[192.0.2.1]:3478",
           "turn:[not-an-ip]",
           "turn:[fe80::1%eth0]",
           "turn:2001:db8::1",
       }) {
    auto status = CheckIceServerUrl(url);
    ASSERT_FALSE(status.has_value()) << url;
    EXPECT_EQ(status.error().code, base::ErrorCode::kInvalidArgument);
    EXPECT_NE(status.error().message.find("ICE server URL"), std::string::npos);
  }
  // Long names are refused by length, not by crashing.
  EXPECT_TRUE(CheckIceServerUrl("turn:" + std::string(253, 'a')).has_value());
  EXPECT_FALSE(CheckIceServerUrl("turn:" + std::string(254, 'a')).has_value());
}

TEST(IceServersTest, StunWithoutAndTurnWithCredentials) {
  const std::vector<std::string> urls = {
      "stun:turn.example.org:3478",
      "turn:turn.example.org:3478?transport=udp",
      "stuns:turn.example.org:5349",
      "turns:turn.example.org:5349?transport=tcp",
  };
  auto list = BuildIceServers(urls, "s3cret", kUser, 86400, kNow);
  ASSERT_TRUE(list.has_value()) << list.error().message;
  ASSERT_EQ(list->servers.size(), 2u);
  EXPECT_EQ(list->ttl_seconds, 86400);
  EXPECT_EQ(list->expires_at, kNow + 86400);

  const IceServer& stun = list->servers[0];
  EXPECT_EQ(stun.urls, (std::vector<std::string>{"stun:turn.example.org:3478",
                                                 "stuns:turn.example.org:5349"}));
  EXPECT_EQ(stun.username, "");
  EXPECT_EQ(stun.credential, "");

  const IceServer& turn = list->servers[1];
  EXPECT_EQ(turn.urls, (std::vector<std::string>{"turn:turn.example.org:3478?transport=udp",
                                                 "turns:turn.example.org:5349?transport=tcp"}));
  // What the relay's verifier recomputes from the same secret.
  EXPECT_EQ(turn.username, "1700086400:0123456789abcdef0123456789abcdef");
  EXPECT_EQ(turn.credential, TurnRestPassword("s3cret", turn.username));
  EXPECT_EQ(turn.credential, MintTurnRestCredential("s3cret", kUser, kNow, 86400).password);

  const nlohmann::json expected = nlohmann::json::parse(R"([
    {"urls": ["stun:turn.example.org:3478", "stuns:turn.example.org:5349"]},
    {"urls": ["turn:turn.example.org:3478?transport=udp",
              "turns:turn.example.org:5349?transport=tcp"],
     "username": "1700086400:0123456789abcdef0123456789abcdef",
     "credential": ")" + turn.credential + R"("}
  ])");
  EXPECT_EQ(IceServersJson(*list), expected);

  const nlohmann::json rest = TurnCredentialsJson(*list);
  EXPECT_EQ(rest["username"], turn.username);
  EXPECT_EQ(rest["password"], turn.credential);
  EXPECT_EQ(rest["ttl"], 86400);
  EXPECT_EQ(rest["uris"], nlohmann::json(turn.urls));
  EXPECT_EQ(rest.size(), 4u);
}

TEST(IceServersTest, KnownCredential) {
  // HMAC-SHA1("secret", "1700000000:bob") in base64, from
  // tests/auth/turn_rest_test.cc (computed there with openssl).
  const std::vector<std::string> urls = {"turn:192.0.2.1:3478"};
  auto list = BuildIceServers(urls, "secret", "bob", 1000, 1'699'999'000);
  ASSERT_TRUE(list.has_value());
  EXPECT_EQ(IceServersJson(*list).dump(),
            R"([{"credential":"YeMuUjjOaxvglmPbYS9o30UEIYg=","urls":["turn:192.0.2.1:3478"],)"
            R"("username":"1700000000:bob"}])");
}

TEST(IceServersTest, OnlyOneKind) {
  const std::vector<std::string> stun_only = {"stun:a.example:3478"};
  auto stun = BuildIceServers(stun_only, "", kUser, 60, kNow);
  ASSERT_TRUE(stun.has_value()) << stun.error().message;
  EXPECT_EQ(IceServersJson(*stun), nlohmann::json::parse(R"([{"urls":["stun:a.example:3478"]}])"));
  EXPECT_EQ(stun->expires_at, 0);
  EXPECT_EQ(TurnCredentialsJson(*stun), nlohmann::json::object());

  const std::vector<std::string> turn_only = {"turn:a.example"};
  auto turn = BuildIceServers(turn_only, "k", kUser, 60, kNow);
  ASSERT_TRUE(turn.has_value());
  ASSERT_EQ(turn->servers.size(), 1u);
  EXPECT_FALSE(turn->servers[0].username.empty());

  auto none = BuildIceServers({}, "", kUser, 60, kNow);
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(IceServersJson(*none), nlohmann::json::array());
}

TEST(IceServersTest, Errors) {
  const std::vector<std::string> turn = {"stun:a.example", "turn:a.example"};
  EXPECT_FALSE(BuildIceServers(turn, "", kUser, 60, kNow).has_value());
  EXPECT_FALSE(BuildIceServers(turn, "k", "", 60, kNow).has_value());
  EXPECT_FALSE(BuildIceServers(turn, "k", "a:b", 60, kNow).has_value());
  EXPECT_FALSE(BuildIceServers(turn, "k", kUser, 0, kNow).has_value());
  EXPECT_FALSE(BuildIceServers(turn, "k", kUser, -5, kNow).has_value());
  const std::vector<std::string> bad = {"stun:a.example", "turn:bad host"};
  auto error = BuildIceServers(bad, "k", kUser, 60, kNow);
  ASSERT_FALSE(error.has_value());
  EXPECT_NE(error.error().message.find("turn:bad host"), std::string::npos);
}

}  // namespace
}  // namespace turnkey::auth
