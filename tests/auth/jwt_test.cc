#include "auth/jwt.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/crypto.h"

namespace turnkey::auth {
namespace {

constexpr std::string_view kKey = "turnkey-test-key-0123456789abcdef";  // 33 bytes
constexpr int64_t kNow = 1'700'000'000;

Jwt MakeJwt(JwtOptions options = {}) {
  auto jwt = Jwt::Create(kKey, std::move(options));
  EXPECT_TRUE(jwt.has_value());
  return std::move(*jwt);
}

std::string B64(std::string_view text) { return base::Base64UrlEncode(base::AsBytes(text)); }

// Signs arbitrary header and payload text with HS256 under `key`, the way an
// attacker holding the key (or a test) would: lets the tests build tokens Sign()
// never makes.
std::string SignRaw(std::string_view header, std::string_view payload,
                    std::string_view key = kKey) {
  std::string input = B64(header) + "." + B64(payload);
  return input + "." +
         base::Base64UrlEncode(base::HmacSha256(base::AsBytes(key), base::AsBytes(input)));
}

constexpr std::string_view kGoodPayload =
    R"({"sub":"u1","iss":"turnkey","aud":"turnkey","jti":"j","typ":"access",)"
    R"("iat":1700000000,"exp":1700000900})";

JwtError ErrorOf(const std::expected<JwtClaims, JwtError>& result) {
  EXPECT_FALSE(result.has_value());
  return result.has_value() ? JwtError{} : result.error();
}

void ExpectInvalid(const Jwt& jwt, std::string_view token, std::string_view reason = "") {
  auto result = jwt.Verify(token, "access", kNow);
  ASSERT_FALSE(result.has_value()) << token;
  EXPECT_EQ(result.error().kind, JwtErrorKind::kInvalid) << token;
  if (!reason.empty()) {
    EXPECT_EQ(std::string_view(result.error().reason), reason) << token;
  }
}

TEST(JwtTest, SignThenVerify) {
  const Jwt jwt = MakeJwt();
  const JwtClaims claims = jwt.NewClaims("user-1", "access", kNow, 900);
  EXPECT_EQ(claims.subject, "user-1");
  EXPECT_EQ(claims.issuer, "turnkey");
  EXPECT_EQ(claims.audience, "turnkey");
  EXPECT_EQ(claims.kind, "access");
  EXPECT_EQ(claims.issued_at, kNow);
  EXPECT_EQ(claims.expires_at, kNow + 900);
  EXPECT_EQ(claims.id.size(), 22u);  // 16 random bytes, base64url
  EXPECT_NE(claims.id, jwt.NewClaims("user-1", "access", kNow, 900).id);

  EXPECT_EQ(claims.issued_at_us, kNow * 1'000'000);

  const std::string token = jwt.Sign(claims);
  auto verified = jwt.Verify(token, "access", kNow);
  ASSERT_TRUE(verified.has_value()) << verified.error().reason;
  EXPECT_EQ(*verified, claims);
  EXPECT_TRUE(jwt.Verify(token, "access", kNow + 899).has_value());
}

TEST(JwtTest, IssueTimeInMicrosecondsTravelsWithinIatsSecond) {
  const Jwt jwt = MakeJwt();
  JwtClaims claims = jwt.NewClaims("user-1", "access", kNow, 900);
  claims.issued_at_us = kNow * 1'000'000 + 999'999;
  auto verified = jwt.Verify(jwt.Sign(claims), "access", kNow);
  ASSERT_TRUE(verified.has_value()) << verified.error().reason;
  EXPECT_EQ(verified->issued_at_us, kNow * 1'000'000 + 999'999);

  // A token without the claim (signed before it existed) reads as iat's start.
  auto old = jwt.Verify(SignRaw(R"({"alg":"HS256"})", kGoodPayload), "access", kNow);
  ASSERT_TRUE(old.has_value()) << old.error().reason;
  EXPECT_EQ(old->issued_at_us, kNow * 1'000'000);

  // Outside iat's second, or not an integer: refused.
  for (std::string_view iat_us : {"1699999999999999", "1700000001000000", "1.7e15", "\"x\""}) {
    std::string payload(kGoodPayload);
    payload.insert(payload.size() - 1, std::string(R"(,"iat_us":)") + std::string(iat_us));
    auto result = jwt.Verify(SignRaw(R"({"alg":"HS256"})", payload), "access", kNow);
    ASSERT_FALSE(result.has_value()) << iat_us;
    EXPECT_STREQ(result.error().reason, "iat_us is not within iat's second") << iat_us;
  }
}

TEST(JwtTest, SessionClaimTravelsWhenSet) {
  const Jwt jwt = MakeJwt();
  JwtClaims claims = jwt.NewClaims("user-1", "access", kNow, 900);
  EXPECT_EQ(claims.session, "");
  claims.session = "login-7";
  auto verified = jwt.Verify(jwt.Sign(claims), "access", kNow);
  ASSERT_TRUE(verified.has_value()) << verified.error().reason;
  EXPECT_EQ(verified->session, "login-7");

  // Without the claim: empty. Present but empty or not a string: refused.
  auto none = jwt.Verify(SignRaw(R"({"alg":"HS256"})", kGoodPayload), "access", kNow);
  ASSERT_TRUE(none.has_value()) << none.error().reason;
  EXPECT_EQ(none->session, "");
  for (std::string_view sid : {R"("")", "7", "null", R"(["a"])"}) {
    std::string payload(kGoodPayload);
    payload.insert(payload.size() - 1, std::string(R"(,"sid":)") + std::string(sid));
    ExpectInvalid(jwt, SignRaw(R"({"alg":"HS256"})", payload), "missing or mistyped claim");
  }
}

TEST(JwtTest, KnownAnswer) {
  // Computed independently with Python's hmac, hashlib and base64 modules:
  // header {"alg":"HS256","typ":"JWT"}, payload json.dumps(sort_keys=True,
  // separators=(',', ':')) of the claims below, key kKey.
  constexpr std::string_view kToken =
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
      "eyJhdWQiOiJ0dXJua2V5IiwiZXhwIjoxNzAwMDAwOTAwLCJpYXQiOjE3MDAwMDAwMDAsImlzcyI6InR1cm5rZXki"
      "LCJqdGkiOiJhYmMiLCJzdWIiOiJ1MSIsInR5cCI6ImFjY2VzcyJ9."
      "GGUvn1yCY4_82Qtuz_3Uo5cmli2tKp9ILmNtGD3Hk98";
  const JwtClaims claims{.subject = "u1",
                         .issuer = "turnkey",
                         .audience = "turnkey",
                         .id = "abc",
                         .kind = "access",
                         .issued_at = 1'700'000'000,
                         .expires_at = 1'700'000'900,
                         .issued_at_us = 1'700'000'000'000'000};  // iat's start: not written
  const Jwt jwt = MakeJwt();
  EXPECT_EQ(jwt.Sign(claims), kToken);
  auto verified = jwt.Verify(kToken, "access", kNow);
  ASSERT_TRUE(verified.has_value()) << verified.error().reason;
  EXPECT_EQ(*verified, claims);
}

TEST(JwtTest, KnownAnswerOtherSpelling) {
  // Also from Python: header {"alg":"HS256"} with spaces and no typ, claims in
  // another order, plus an unknown claim (ignored).
  constexpr std::string_view kToken =
      "eyAiYWxnIiA6ICJIUzI1NiIgfQ."
      "eyJzdWIiOiJ1MiIsImlzcyI6InR1cm5rZXkiLCJhdWQiOiJ0dXJua2V5IiwianRpIjoiajIiLCJ0eXAiOiJhY2Nl"
      "c3MiLCJpYXQiOjE3MDAwMDAwMDAsImV4cCI6MTcwMDAwMzYwMCwiZXh0cmEiOlsxLHsiYSI6Mn1dfQ."
      "ofpdzVxlF2FoPxD-i7vdADF3s9va6g6w5m6OAKbE9K4";
  auto verified = MakeJwt().Verify(kToken, "access", kNow);
  ASSERT_TRUE(verified.has_value()) << verified.error().reason;
  EXPECT_EQ(verified->subject, "u2");
  EXPECT_EQ(verified->id, "j2");
  EXPECT_EQ(verified->expires_at, 1'700'003'600);
}

TEST(JwtTest, Rfc7515AppendixA1SignatureChecks) {
  // RFC 7515 appendix A.1: an HS256 JWS with a 64-byte key. Its signature is
  // right, so it gets past the MAC; its payload lacks our claims.
  const std::vector<uint8_t> key = {
      0x03, 0x23, 0x35, 0x4b, 0x2b, 0x0f, 0xa5, 0xbc, 0x83, 0x7e, 0x06, 0x65, 0x77,
      0x7b, 0xa6, 0x8f, 0x5a, 0xb3, 0x28, 0xe6, 0xf0, 0x54, 0xc9, 0x28, 0xa9, 0x0f,
      0x84, 0xb2, 0xd2, 0x50, 0x2e, 0xbf, 0xd3, 0xfb, 0x5a, 0x92, 0xd2, 0x06, 0x47,
      0xef, 0x96, 0x8a, 0xb4, 0xc3, 0x77, 0x62, 0x3d, 0x22, 0x3d, 0x2e, 0x21, 0x72,
      0x05, 0x2e, 0x4f, 0x08, 0xc0, 0xcd, 0x9a, 0xf5, 0x67, 0xd0, 0x80, 0xa3};
  constexpr std::string_view kToken =
      "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
      "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0"
      "cnVlfQ."
      "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
  auto jwt = Jwt::Create(base::AsString(key), {.issuer = "joe"});
  ASSERT_TRUE(jwt.has_value());
  ExpectInvalid(*jwt, kToken, "missing or mistyped claim");
  // One bit off in the signature and it is refused earlier.
  std::string tampered(kToken);
  char& c = tampered[tampered.size() - 5];
  c = c == 'A' ? 'B' : 'A';
  ExpectInvalid(*jwt, tampered, "bad signature");
}

TEST(JwtTest, TamperedTokensAreRefused) {
  const Jwt jwt = MakeJwt();
  const std::string token = jwt.Sign(jwt.NewClaims("user-1", "access", kNow, 900));
  const size_t dot1 = token.find('.');
  const size_t dot2 = token.rfind('.');
  ASSERT_TRUE(jwt.Verify(token, "access", kNow).has_value());

  // Signature: one character changed.
  std::string bad_sig = token;
  bad_sig[dot2 + 5] = bad_sig[dot2 + 5] == 'A' ? 'B' : 'A';
  ExpectInvalid(jwt, bad_sig, "bad signature");

  // Payload: another subject under the old signature.
  const auto payload = base::Base64UrlDecode(token.substr(dot1 + 1, dot2 - dot1 - 1));
  ASSERT_TRUE(payload.has_value());
  std::string text(base::AsString(*payload));
  const size_t sub = text.find("user-1");
  ASSERT_NE(sub, std::string::npos);
  text.replace(sub, 6, "user-2");
  ExpectInvalid(jwt, token.substr(0, dot1 + 1) + B64(text) + token.substr(dot2), "bad signature");

  // Header: the same header re-encoded differently under the old signature.
  ExpectInvalid(jwt, B64(R"({"typ":"JWT","alg":"HS256"})") + token.substr(dot1), "bad signature");

  // Signed with another key.
  auto other = Jwt::Create("another-key-another-key-another-key");
  ASSERT_TRUE(other.has_value());
  ExpectInvalid(jwt, other->Sign(jwt.NewClaims("user-1", "access", kNow, 900)), "bad signature");

  // Signature cut short or extended.
  ExpectInvalid(jwt, token.substr(0, token.size() - 1));
  ExpectInvalid(jwt, token + "A");
  ExpectInvalid(jwt, token.substr(0, dot2 + 1), "unsigned token");
}

TEST(JwtTest, AlgorithmIsFixedByTheVerifier) {
  const Jwt jwt = MakeJwt();
  // alg none, unsigned as RFC 7519 section 6.1 shapes it.
  ExpectInvalid(jwt, B64(R"({"alg":"none"})") + "." + B64(kGoodPayload) + ".", "unsigned token");
  ExpectInvalid(jwt, B64(R"({"alg":"none","typ":"JWT"})") + "." + B64(kGoodPayload) + ".");
  // Even with a correct HS256 MAC, a header naming another algorithm is refused.
  for (std::string_view header : {
           R"({"alg":"none"})",
           R"({"alg":"HS512","typ":"JWT"})",
           R"({"alg":"RS256","typ":"JWT"})",
           R"({"alg":"hs256"})",
           R"({"alg":"HS256","typ":"JWS"})",
           R"({"alg":"HS256","typ":"JWT","kid":"1"})",
           R"({"alg":"HS256","crit":["exp"]})",
           R"({"alg":"HS256","alg":"HS256"})",
           R"({"alg":"none","alg":"HS256"})",
           R"({"typ":"JWT"})",
           R"({"alg":["HS256"]})",
           R"({})",
           R"([{"alg":"HS256"}])",
           R"("HS256")",
           R"({"alg":"HS256"} x)",
           R"({"alg":"HS256",})",
       }) {
    ExpectInvalid(jwt, SignRaw(header, kGoodPayload), "header is not {alg: HS256}");
  }
  // HS512 really signed with HS512-sized MAC: the signature length is wrong for HS256.
  const std::string hs512_input = B64(R"({"alg":"HS512"})") + "." + B64(kGoodPayload);
  ExpectInvalid(jwt, hs512_input + "." + base::Base64UrlEncode(base::Bytes(64, 7)),
                "malformed signature");
  // The good payload itself is fine under the accepted headers.
  EXPECT_TRUE(jwt.Verify(SignRaw(R"({"alg":"HS256"})", kGoodPayload), "access", kNow));
  EXPECT_TRUE(jwt.Verify(SignRaw(" {\"typ\" :\"JWT\",\n\"alg\":\"HS256\"}\t", kGoodPayload),
                         "access", kNow));
}

TEST(JwtTest, IssuerAudienceAndKindMustMatchExactly) {
  const Jwt jwt = MakeJwt({.issuer = "https://calls.example.org", .audience = "api"});
  const JwtClaims good = jwt.NewClaims("u", "access", kNow, 60);
  ASSERT_TRUE(jwt.Verify(jwt.Sign(good), "access", kNow).has_value());

  JwtClaims c = good;
  c.issuer = "https://calls.example.org/";
  ExpectInvalid(jwt, jwt.Sign(c), "wrong issuer");
  c = good;
  c.issuer = "HTTPS://calls.example.org";
  ExpectInvalid(jwt, jwt.Sign(c), "wrong issuer");
  c = good;
  c.audience = "API";
  ExpectInvalid(jwt, jwt.Sign(c), "wrong audience");
  c = good;
  c.audience = "";
  ExpectInvalid(jwt, jwt.Sign(c), "wrong audience");
  c = good;
  c.kind = "refresh";
  ExpectInvalid(jwt, jwt.Sign(c), "wrong token kind");
  EXPECT_EQ(ErrorOf(jwt.Verify(jwt.Sign(good), "socket", kNow)).kind, JwtErrorKind::kInvalid);
  // aud as an array (allowed by RFC 7519, never issued by us) is refused.
  ExpectInvalid(jwt,
                SignRaw(R"({"alg":"HS256"})",
                        R"({"sub":"u","iss":"https://calls.example.org","aud":["api"],"jti":"j",)"
                        R"("typ":"access","iat":1700000000,"exp":1700000900})"),
                "missing or mistyped claim");
}

TEST(JwtTest, NotBeforeIsHonoured) {
  const Jwt jwt = MakeJwt();
  auto with_nbf = [](std::string_view nbf) {
    return SignRaw(R"({"alg":"HS256"})",
                   std::string(R"({"sub":"u1","iss":"turnkey","aud":"turnkey","jti":"j",)") +
                       R"("typ":"access","iat":1700000000,"exp":1700000900,"nbf":)" +
                       std::string(nbf) + "}");
  };
  EXPECT_TRUE(jwt.Verify(with_nbf("1700000000"), "access", kNow).has_value());
  EXPECT_TRUE(jwt.Verify(with_nbf("1700000100"), "access", kNow + 100).has_value());
  ExpectInvalid(jwt, with_nbf("1700000100"), "not valid yet");
  ExpectInvalid(jwt, with_nbf("\"soon\""), "missing or mistyped claim");
}

TEST(JwtTest, ExpiryAndIssueTime) {
  const Jwt jwt = MakeJwt();
  const std::string token = jwt.Sign(jwt.NewClaims("u", "access", kNow, 900));
  EXPECT_TRUE(jwt.Verify(token, "access", kNow + 899).has_value());
  const JwtError expired = ErrorOf(jwt.Verify(token, "access", kNow + 900));
  EXPECT_EQ(expired.kind, JwtErrorKind::kExpired);
  EXPECT_EQ(ErrorOf(jwt.Verify(token, "access", kNow + 1'000'000)).kind, JwtErrorKind::kExpired);

  // Issued in the future (a token from a host whose clock runs ahead).
  EXPECT_TRUE(jwt.Verify(token, "access", kNow).has_value());
  const JwtError future = ErrorOf(jwt.Verify(token, "access", kNow - 1));
  EXPECT_EQ(future.kind, JwtErrorKind::kInvalid);
  EXPECT_EQ(std::string_view(future.reason), "issued in the future");

  // A bad signature on an expired token says invalid, not expired.
  std::string forged = token;
  forged.back() = forged.back() == 'A' ? 'B' : 'A';
  EXPECT_EQ(ErrorOf(jwt.Verify(forged, "access", kNow + 1000)).kind, JwtErrorKind::kInvalid);

  // exp not after iat.
  ExpectInvalid(jwt, jwt.Sign(jwt.NewClaims("u", "access", kNow, 0)),
                "expires before it was issued");
}

TEST(JwtTest, Leeway) {
  const Jwt jwt = MakeJwt({.leeway_seconds = 30});
  const std::string token = jwt.Sign(jwt.NewClaims("u", "access", kNow, 900));
  EXPECT_TRUE(jwt.Verify(token, "access", kNow + 929).has_value());
  EXPECT_EQ(ErrorOf(jwt.Verify(token, "access", kNow + 930)).kind, JwtErrorKind::kExpired);
  // The expiry's leeway says nothing about a token from the future.
  EXPECT_EQ(ErrorOf(jwt.Verify(token, "access", kNow - 1)).kind, JwtErrorKind::kInvalid);
}

TEST(JwtTest, IssuedLeewayAcceptsATokenFromAClockAhead) {
  const Jwt jwt = MakeJwt({.issued_leeway_seconds = 60});
  const std::string token = jwt.Sign(jwt.NewClaims("u", "access", kNow, 900));
  EXPECT_TRUE(jwt.Verify(token, "access", kNow - 60).has_value());
  EXPECT_EQ(ErrorOf(jwt.Verify(token, "access", kNow - 61)).kind, JwtErrorKind::kInvalid);
  // exp keeps no leeway.
  EXPECT_TRUE(jwt.Verify(token, "access", kNow + 899).has_value());
  EXPECT_EQ(ErrorOf(jwt.Verify(token, "access", kNow + 900)).kind, JwtErrorKind::kExpired);
}

TEST(JwtTest, ClaimTypes) {
  const Jwt jwt = MakeJwt();
  constexpr std::string_view kHeader = R"({"alg":"HS256","typ":"JWT"})";
  const std::vector<std::string_view> bad_payloads = {
      // missing each claim in turn
      R"({"iss":"turnkey","aud":"turnkey","jti":"j","typ":"access","iat":1700000000,"exp":1700000900})",
      R"({"sub":"u","aud":"turnkey","jti":"j","typ":"access","iat":1700000000,"exp":1700000900})",
      R"({"sub":"u","iss":"turnkey","jti":"j","typ":"access","iat":1700000000,"exp":1700000900})",
      R"({"sub":"u","iss":"turnkey","aud":"turnkey","typ":"access","iat":1700000000,"exp":1700000900})",
      R"({"sub":"u","iss":"turnkey","aud":"turnkey","jti":"j","iat":1700000000,"exp":1700000900})",
      R"({"sub":"u","iss":"turnkey","aud":"turnkey","jti":"j","typ":"access","exp":1700000900})",
      R"({"sub":"u","iss":"turnkey","aud":"turnkey","jti":"j","typ":"access","iat":1700000000})",
      // wrong types
      R"({"sub":"","iss":"turnkey","aud":"turnkey","jti":"j","typ":"access","iat":1700000000,"exp":1700000900})",
      R"({"sub":7,"iss":"turnkey","aud":"turnkey","jti":"j","typ":"access","iat":1700000000,"exp":1700000900})",
      R"({"sub":"u","iss":"turnkey","aud":"turnkey","jti":"j","typ":"access","iat":1700000000,"exp":1700000900.5})",
      R"({"sub":"u","iss":"turnkey","aud":"turnkey","jti":"j","typ":"access","iat":1700000000,"exp":"1700000900"})",
      R"({"sub":"u","iss":"turnkey","aud":"turnkey","jti":"j","typ":"access","iat":1700000000,"exp":99999999999999999999})",
      R"({"sub":"u","iss":"turnkey","aud":"turnkey","jti":"j","typ":"access","iat":null,"exp":1700000900})",
  };
  for (std::string_view payload : bad_payloads) {
    ExpectInvalid(jwt, SignRaw(kHeader, payload), "missing or mistyped claim");
  }
  for (
      std::string_view payload : {
          R"({"sub":"u","sub":"admin","iss":"turnkey","aud":"turnkey","jti":"j","typ":"access","iat":1700000000,"exp":1700000900})",
          R"([1,2])",
          R"("text")",
          R"({"sub":"u")",
          "{\"sub\":\"\xff\"}",
          "",
      }) {
    ExpectInvalid(jwt, SignRaw(kHeader, payload));
  }
  // exp at the top of the int64 range does not overflow the checks.
  auto far = jwt.Verify(
      SignRaw(
          kHeader,
          R"({"sub":"u","iss":"turnkey","aud":"turnkey","jti":"j","typ":"access","iat":1700000000,"exp":9223372036854775807})"),
      "access", kNow);
  EXPECT_TRUE(far.has_value());
}

TEST(JwtTest, MalformedShapes) {
  const Jwt jwt = MakeJwt();
  const std::string token = jwt.Sign(jwt.NewClaims("u", "access", kNow, 900));
  const size_t dot1 = token.find('.');
  const size_t dot2 = token.rfind('.');
  const std::string header = token.substr(0, dot1);
  const std::string payload = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string sig = token.substr(dot2 + 1);
  ASSERT_EQ(header + "." + payload + "." + sig, token);

  for (const std::string& bad : std::vector<std::string>{
           "",
           ".",
           "..",
           "a.b",
           header + "." + payload,
           header + "." + payload + "." + sig + ".",
           header + "." + payload + "." + sig + "." + sig,
           "." + payload + "." + sig,
           header + ".." + sig,
           // padding is not base64url-without-padding (RFC 7515 section 2)
           header + "." + payload + "." + sig + "=",
           header + "==." + payload + "." + sig,
           // standard-alphabet characters, whitespace, garbage
           header + "." + payload + "." + sig.substr(0, 10) + "+" + sig.substr(11),
           header + "." + payload + "." + sig.substr(0, 10) + "/" + sig.substr(11),
           " " + token,
           token + "\n",
           header + " ." + payload + "." + sig,
           header + "." + payload + "." + sig.substr(0, 20) + std::string(1, '\0') + sig.substr(21),
           std::string(Jwt::kMaxTokenBytes + 1, 'a'),
       }) {
    ExpectInvalid(jwt, bad);
  }
  // A signature whose spare low bits are set decodes to the same bytes in a
  // lax decoder; ours refuses it, so each token has one spelling.
  std::string non_canonical = token;
  char& last = non_canonical.back();
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  last = alphabet[alphabet.find(last) | 1];
  ExpectInvalid(jwt, non_canonical);
}

TEST(JwtTest, CreateChecksKeyAndOptions) {
  EXPECT_FALSE(Jwt::Create(std::string(31, 'k')).has_value());
  EXPECT_TRUE(Jwt::Create(std::string(32, 'k')).has_value());
  EXPECT_FALSE(Jwt::Create(kKey, {.issuer = ""}).has_value());
  EXPECT_FALSE(Jwt::Create(kKey, {.audience = ""}).has_value());
  EXPECT_FALSE(Jwt::Create(kKey, {.leeway_seconds = -1}).has_value());
  EXPECT_FALSE(Jwt::Create(kKey, {.leeway_seconds = 301}).has_value());
  EXPECT_FALSE(Jwt::Create(kKey, {.issued_leeway_seconds = -1}).has_value());
  EXPECT_FALSE(Jwt::Create(kKey, {.issued_leeway_seconds = 301}).has_value());
  auto error = Jwt::Create("short");
  ASSERT_FALSE(error.has_value());
  EXPECT_EQ(error.error().code, base::ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace turnkey::auth
