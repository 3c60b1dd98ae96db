#include "auth/nonce.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "base/crypto.h"

namespace turnkey::auth {
namespace {

using base::SocketAddress;

constexpr int64_t kNow = 1'700'000'000;
constexpr std::chrono::seconds kLifetime{600};

NonceIssuer::Key KeyOf(uint8_t fill) {
  NonceIssuer::Key key{};
  key.fill(fill);
  return key;
}

SocketAddress Client() { return SocketAddress::V4({203, 0, 113, 7}, 50000); }

TEST(NonceIssuerTest, RoundTrip) {
  NonceIssuer issuer(KeyOf(1), kLifetime);
  const std::string nonce = issuer.Issue(kNow, Client());
  EXPECT_EQ(issuer.Check(nonce, kNow, Client()), NonceCheck::kValid);
  EXPECT_EQ(issuer.Check(nonce, kNow + 1, Client()), NonceCheck::kValid);
  EXPECT_EQ(issuer.Check(nonce, kNow + kLifetime.count(), Client()), NonceCheck::kValid);
}

TEST(NonceIssuerTest, RoundTripIpv6) {
  NonceIssuer issuer(KeyOf(1), kLifetime);
  const auto client = SocketAddress::ParseIpPort("[2001:db8::1]:3478");
  ASSERT_TRUE(client.has_value());
  const std::string nonce = issuer.Issue(kNow, *client);
  EXPECT_EQ(issuer.Check(nonce, kNow, *client), NonceCheck::kValid);
}

TEST(NonceIssuerTest, CookieFeatureBitsAndCharset) {
  NonceIssuer issuer(KeyOf(1), kLifetime);
  const std::string nonce = issuer.Issue(kNow, Client());
  ASSERT_EQ(nonce.size(), NonceIssuer::kNonceLength);
  EXPECT_LT(nonce.size(), 128u);
  EXPECT_EQ(nonce.substr(0, 9), "obMatJos2");
  // RFC 8489 section 9.2: 24-bit feature set, bit 0 (the most significant)
  // = PASSWORD-ALGORITHMS, bit 1 = USERNAME-ANONYMITY, as 4 base64 characters.
  const std::optional<base::Bytes> bits = base::Base64Decode(nonce.substr(9, 4));
  ASSERT_TRUE(bits.has_value());
  ASSERT_EQ(bits->size(), 3u);
  EXPECT_EQ((*bits)[0], 0x80);  // password algorithms set, username anonymity clear
  EXPECT_EQ((*bits)[1], 0x00);
  EXPECT_EQ((*bits)[2], 0x00);
  for (char c : nonce) {
    // qdtext without the characters that would need quoting.
    EXPECT_TRUE(c > 0x20 && c < 0x7f && c != '"' && c != '\\') << "char " << int{c};
  }
}

TEST(NonceIssuerTest, StaleAfterLifetime) {
  NonceIssuer issuer(KeyOf(1), kLifetime);
  const std::string nonce = issuer.Issue(kNow, Client());
  EXPECT_EQ(issuer.Check(nonce, kNow + kLifetime.count() + 1, Client()), NonceCheck::kStale);
  EXPECT_EQ(issuer.Check(nonce, kNow + 100 * kLifetime.count(), Client()), NonceCheck::kStale);
}

TEST(NonceIssuerTest, FutureTimestamp) {
  NonceIssuer issuer(KeyOf(1), kLifetime);
  const std::string nonce = issuer.Issue(kNow, Client());
  // A small step of the clock backwards is tolerated, a large one is not.
  EXPECT_EQ(issuer.Check(nonce, kNow - NonceIssuer::kMaxFutureSkewSeconds, Client()),
            NonceCheck::kValid);
  EXPECT_EQ(issuer.Check(nonce, kNow - NonceIssuer::kMaxFutureSkewSeconds - 1, Client()),
            NonceCheck::kInvalid);
}

TEST(NonceIssuerTest, ExtremeTimesDoNotOverflow) {
  NonceIssuer issuer(KeyOf(1), kLifetime);
  const int64_t max = std::numeric_limits<int64_t>::max();
  const int64_t min = std::numeric_limits<int64_t>::min();
  const std::string at_max = issuer.Issue(max, Client());
  const std::string at_min = issuer.Issue(min, Client());
  EXPECT_EQ(issuer.Check(at_max, max, Client()), NonceCheck::kValid);
  EXPECT_EQ(issuer.Check(at_max, min, Client()), NonceCheck::kInvalid);
  EXPECT_EQ(issuer.Check(at_min, min, Client()), NonceCheck::kValid);
  EXPECT_EQ(issuer.Check(at_min, max, Client()), NonceCheck::kStale);
}

TEST(NonceIssuerTest, OtherClientIsInvalid) {
  NonceIssuer issuer(KeyOf(1), kLifetime);
  const std::string nonce = issuer.Issue(kNow, Client());
  EXPECT_EQ(issuer.Check(nonce, kNow, SocketAddress::V4({203, 0, 113, 7}, 50001)),
            NonceCheck::kInvalid);
  EXPECT_EQ(issuer.Check(nonce, kNow, SocketAddress::V4({203, 0, 113, 8}, 50000)),
            NonceCheck::kInvalid);
  const auto v6 = SocketAddress::ParseIpPort("[::ffff:203.0.113.7]:50000");
  ASSERT_TRUE(v6.has_value());
  EXPECT_EQ(issuer.Check(nonce, kNow, *v6), NonceCheck::kInvalid);
  // Stale and wrong client at once: wrong client wins (no 438 for strangers).
  EXPECT_EQ(issuer.Check(nonce, kNow + 10 * kLifetime.count(),
                         SocketAddress::V4({198, 51, 100, 1}, 50000)),
            NonceCheck::kInvalid);
}

TEST(NonceIssuerTest, OtherKeyIsInvalid) {
  NonceIssuer issuer(KeyOf(1), kLifetime);
  NonceIssuer other(KeyOf(2), kLifetime);
  EXPECT_EQ(other.Check(issuer.Issue(kNow, Client()), kNow, Client()), NonceCheck::kInvalid);
}

TEST(NonceIssuerTest, EveryTamperedCharacterIsInvalid) {
  NonceIssuer issuer(KeyOf(1), kLifetime);
  const std::string nonce = issuer.Issue(kNow, Client());
  for (size_t i = 0; i < nonce.size(); ++i) {
    std::string bad = nonce;
    // Swap within the base64url alphabet so decoding succeeds where it can.
    bad[i] = (bad[i] == 'A') ? 'B' : 'A';
    EXPECT_EQ(issuer.Check(bad, kNow, Client()), NonceCheck::kInvalid) << "position " << i;
  }
}

TEST(NonceIssuerTest, ForgedTimeIsInvalid) {
  // Moving the issue time forward to dodge expiry must break the tag.
  NonceIssuer issuer(KeyOf(1), kLifetime);
  const std::string old_nonce = issuer.Issue(kNow, Client());
  std::optional<base::Bytes> body = base::Base64UrlDecode(old_nonce.substr(13));
  ASSERT_TRUE(body.has_value());
  base::StoreBe64(body->data(), static_cast<uint64_t>(kNow + 10'000));
  const std::string forged = old_nonce.substr(0, 13) + base::Base64UrlEncode(*body);
  ASSERT_EQ(forged.size(), old_nonce.size());
  EXPECT_EQ(issuer.Check(forged, kNow + 10'000, Client()), NonceCheck::kInvalid);
}

TEST(NonceIssuerTest, GarbageIsInvalid) {
  NonceIssuer issuer(KeyOf(1), kLifetime);
  const std::string good = issuer.Issue(kNow, Client());
  const std::string inputs[] = {
      "",
      "obMatJos2",
      "obMatJos2gAAA",
      std::string(NonceIssuer::kNonceLength, 'A'),
      std::string(NonceIssuer::kNonceLength, '\0'),
      std::string(NonceIssuer::kNonceLength, '\xff'),
      std::string(100'000, 'x'),
      "obMatJos2gAAA" + std::string(32, '!'),         // not base64url
      "obMatJos2gAAA" + std::string(30, 'A') + "==",  // padding
      "obMatJos2gAAA" + std::string(32, '+'),         // standard, not url alphabet
      "obMatJos2AAAA" + good.substr(13),              // feature bits cleared
      good.substr(0, good.size() - 1),                // truncated
      good + "A",                                     // extended
      good.substr(0, 13) + std::string(32, 'A'),      // zero time, zero tag
  };
  for (const std::string& input : inputs) {
    EXPECT_EQ(issuer.Check(input, kNow, Client()), NonceCheck::kInvalid) << input.substr(0, 60);
  }
  EXPECT_EQ(issuer.Check(good, kNow, SocketAddress()), NonceCheck::kInvalid);
}

TEST(NonceIssuerTest, RotationKeepsPreviousKey) {
  NonceIssuer issuer(KeyOf(1), kLifetime);
  const std::string first = issuer.Issue(kNow, Client());
  issuer.SetKey(KeyOf(2));
  const std::string second = issuer.Issue(kNow, Client());
  EXPECT_NE(first, second);
  EXPECT_EQ(issuer.Check(first, kNow, Client()), NonceCheck::kValid);
  EXPECT_EQ(issuer.Check(second, kNow, Client()), NonceCheck::kValid);
  EXPECT_EQ(issuer.Check(first, kNow + kLifetime.count() + 1, Client()), NonceCheck::kStale);
  // A second rotation drops the first key.
  issuer.SetKey(KeyOf(3));
  EXPECT_EQ(issuer.Check(first, kNow, Client()), NonceCheck::kInvalid);
  EXPECT_EQ(issuer.Check(second, kNow, Client()), NonceCheck::kValid);
}

TEST(NonceIssuerTest, CreateUsesRandomKeys) {
  auto a = NonceIssuer::Create(kLifetime);
  auto b = NonceIssuer::Create(kLifetime);
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(b.has_value());
  const std::string nonce = a->Issue(kNow, Client());
  EXPECT_EQ(a->Check(nonce, kNow, Client()), NonceCheck::kValid);
  EXPECT_EQ(b->Check(nonce, kNow, Client()), NonceCheck::kInvalid);
  EXPECT_FALSE(NonceIssuer::Create(std::chrono::seconds{0}).has_value());
  EXPECT_FALSE(NonceIssuer::Create(std::chrono::seconds{-1}).has_value());
}

}  // namespace
}  // namespace turnkey::auth
