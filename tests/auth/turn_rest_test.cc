#include "auth/turn_rest.h"

#include <gtest/gtest.h>

#include "base/bytes.h"
#include "base/crypto.h"

namespace turnkey::auth {
namespace {

TEST(TurnRestTest, MintsExpiryColonUser) {
  TurnRestCredential c = MintTurnRestCredential("s3cret", "alice", 1'700'000'000, 3600);
  EXPECT_EQ(c.username, "1700003600:alice");
  EXPECT_EQ(c.expires_at, 1'700'003'600);
  // The password is what any TURN REST verifier recomputes from the secret.
  EXPECT_EQ(c.password, base::Base64Encode(base::HmacSha1(base::AsBytes(std::string_view("s3cret")),
                                                          base::AsBytes(c.username))));
  EXPECT_EQ(c.password.size(), 28u);
}

TEST(TurnRestTest, KnownValue) {
  // HMAC-SHA1("secret", "1700000000:bob"), computed independently with
  // `printf %s 1700000000:bob | openssl dgst -sha1 -hmac secret -binary | base64`.
  EXPECT_EQ(TurnRestPassword("secret", "1700000000:bob"), "YeMuUjjOaxvglmPbYS9o30UEIYg=");
}

TEST(TurnRestTest, DifferentSecretsDiffer) {
  EXPECT_NE(TurnRestPassword("a", "1:u"), TurnRestPassword("b", "1:u"));
}

TEST(TurnRestTest, ParsesExpiry) {
  EXPECT_EQ(TurnRestExpiry("1700003600:alice"), 1'700'003'600);
  EXPECT_EQ(TurnRestExpiry("1700003600"), 1'700'003'600);
  EXPECT_EQ(TurnRestExpiry("12:a:b"), 12);
  // The user id first, as some app servers mint them (coturn takes both).
  EXPECT_EQ(TurnRestExpiry("alice:1700003600"), 1'700'003'600);
  EXPECT_EQ(TurnRestExpiry("@alice:matrix.org:1700003600"), 1'700'003'600);
  EXPECT_FALSE(TurnRestExpiry("alice:17x"));
  EXPECT_FALSE(TurnRestExpiry("alice:"));
  EXPECT_FALSE(TurnRestExpiry("alice"));
  EXPECT_FALSE(TurnRestExpiry(":alice"));
  EXPECT_FALSE(TurnRestExpiry("-5:alice"));
  EXPECT_FALSE(TurnRestExpiry("99999999999999999999:a"));
  EXPECT_FALSE(TurnRestExpiry("a:99999999999999999999"));
  EXPECT_FALSE(TurnRestExpiry(""));
}

TEST(TurnRestTest, TheUserIsTheNameWithoutItsExpiry) {
  EXPECT_EQ(TurnRestUser("1700003600:alice"), "alice");
  EXPECT_EQ(TurnRestUser("1700003600:@alice:matrix.org"), "@alice:matrix.org");
  EXPECT_EQ(TurnRestUser("@alice:matrix.org:1700003600"), "@alice:matrix.org");
  EXPECT_EQ(TurnRestUser("12:34"), "34");  // the draft's order first
  EXPECT_EQ(TurnRestUser("1700003600"), "1700003600");
  EXPECT_EQ(TurnRestUser("static-user"), "static-user");
  EXPECT_EQ(TurnRestUser("alice:bob"), "alice:bob");
}

}  // namespace
}  // namespace turnkey::auth
