#include "auth/refresh_token.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace turnkey::auth {
namespace {

constexpr std::string_view kBase64UrlAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

TEST(RefreshTokenTest, Shape) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string token = NewRefreshToken();
    EXPECT_EQ(token.size(), kRefreshTokenLength);
    EXPECT_EQ(token.find_first_not_of(kBase64UrlAlphabet), std::string::npos) << token;
    EXPECT_TRUE(IsWellFormedRefreshToken(token)) << token;
    seen.insert(token);
  }
  EXPECT_EQ(seen.size(), 100u);
}

TEST(RefreshTokenTest, HashIsSha256Hex) {
  // FIPS 180-2 appendix B.1: SHA-256("abc").
  EXPECT_EQ(RefreshTokenHash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string token = NewRefreshToken();
  const std::string hash = RefreshTokenHash(token);
  EXPECT_EQ(hash.size(), kRefreshTokenHashLength);
  EXPECT_EQ(hash.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(hash, RefreshTokenHash(token));
  EXPECT_NE(hash, RefreshTokenHash(NewRefreshToken()));
}

TEST(RefreshTokenTest, RejectsOtherShapes) {
  const std::string token = NewRefreshToken();
  EXPECT_FALSE(IsWellFormedRefreshToken(""));
  EXPECT_FALSE(IsWellFormedRefreshToken(token.substr(1)));
  EXPECT_FALSE(IsWellFormedRefreshToken(token + "A"));
  EXPECT_FALSE(IsWellFormedRefreshToken(token + "="));
  EXPECT_FALSE(IsWellFormedRefreshToken(token.substr(0, 42) + "="));
  EXPECT_FALSE(IsWellFormedRefreshToken(token.substr(0, 10) + "+" + token.substr(11)));
  EXPECT_FALSE(IsWellFormedRefreshToken(token.substr(0, 10) + " " + token.substr(11)));
  EXPECT_FALSE(IsWellFormedRefreshToken(std::string(43, '.')));
  // 43 characters carry 258 bits; the 2 spare bits must be zero.
  std::string spare_bits = token;
  spare_bits.back() = kBase64UrlAlphabet[kBase64UrlAlphabet.find(spare_bits.back()) | 1];
  EXPECT_FALSE(IsWellFormedRefreshToken(spare_bits));
}

TEST(UserIdTest, Shape) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string id = NewUserId();
    EXPECT_EQ(id.size(), kUserIdLength);
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
    EXPECT_TRUE(IsWellFormedUserId(id));
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 100u);
}

TEST(UserIdTest, RejectsOtherShapes) {
  EXPECT_TRUE(IsWellFormedUserId("0123456789abcdef0123456789abcdef"));
  EXPECT_FALSE(IsWellFormedUserId("0123456789ABCDEF0123456789abcdef"));
  EXPECT_FALSE(IsWellFormedUserId("0123456789abcdef0123456789abcde"));
  EXPECT_FALSE(IsWellFormedUserId("0123456789abcdef0123456789abcdef0"));
  EXPECT_FALSE(IsWellFormedUserId("0123456789abcdef0123456789abcdeg"));
  EXPECT_FALSE(IsWellFormedUserId("0123456789abcdef:123456789abcdef"));
  EXPECT_FALSE(IsWellFormedUserId("' OR '1'='1' -- 0123456789abcdef"));
  EXPECT_FALSE(IsWellFormedUserId(""));
}

}  // namespace
}  // namespace turnkey::auth
