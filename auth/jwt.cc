#include "auth/jwt.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <tuple>

#include "base/bytes.h"
#include "base/crypto.h"
#include "base/json_parse.h"

namespace turnkey::auth {

namespace {

using nlohmann::json;

// The only header we write. Verify() accepts any JSON spelling of the same
// object (key order, whitespace) and the same object without "typ".
constexpr std::string_view kHeader = R"({"alg":"HS256","typ":"JWT"})";

std::unexpected<JwtError> Invalid(const char* reason) {
  return std::unexpected(JwtError{JwtErrorKind::kInvalid, reason});
}

// Parses `text` as one JSON object and refuses duplicate member names (RFC
// 7515 section 4 and RFC 7519 section 4 let a recipient reject them): taking
// one of two "alg" or "sub" values would let two parsers disagree about what
// a token says.
std::optional<json> ParseObject(base::ByteView text) {
  std::optional<json> value = base::ParseJsonUniqueNames(base::AsString(text));
  if (!value || !value->is_object()) {
    return std::nullopt;
  }
  return value;
}

const std::string* StringMember(const json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || !it->is_string()) {
    return nullptr;
  }
  return &it->get_ref<const std::string&>();
}

// NumericDate (RFC 7519 section 2), restricted to the integers we issue.
std::optional<int64_t> TimeMember(const json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end()) {
    return std::nullopt;
  }
  if (it->is_number_unsigned()) {
    const uint64_t v = it->get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return std::nullopt;
    }
    return static_cast<int64_t>(v);
  }
  if (it->is_number_integer()) {
    return it->get<int64_t>();
  }
  return std::nullopt;
}

bool HeaderIsHs256(const json& header) {
  // Exactly {"alg":"HS256"} or {"alg":"HS256","typ":"JWT"}: no "kid", "jku",
  // "crit" or anything else we would have to act on (RFC 7515 section 4.1.11
  // says a "crit" we do not understand must fail; so must the rest here).
  const std::string* alg = StringMember(header, "alg");
  if (alg == nullptr || *alg != "HS256") {
    return false;
  }
  if (header.size() == 1) {
    return true;
  }
  const std::string* typ = StringMember(header, "typ");
  return header.size() == 2 && typ != nullptr && *typ == "JWT";
}

// Overflow-safe a + b for the exp/iat comparisons (exp comes from the token).
int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) {
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  }
  return sum;
}

constexpr int64_t kMicrosPerSecond = 1'000'000;

// seconds * 10^6, clamped to int64 (iat comes from the token).
int64_t SecondsToMicros(int64_t seconds) {
  int64_t us = 0;
  if (__builtin_mul_overflow(seconds, kMicrosPerSecond, &us)) {
    return seconds > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  }
  return us;
}

}  // namespace

base::Result<Jwt> Jwt::Create(std::string_view key, JwtOptions options) {
  if (key.size() < kMinKeyBytes) {
    return base::InvalidArgument("JWT key must be at least " + std::to_string(kMinKeyBytes) +
                                 " bytes");
  }
  if (options.issuer.empty() || options.audience.empty()) {
    return base::InvalidArgument("JWT issuer and audience must not be empty");
  }
  if (options.leeway_seconds < 0 || options.leeway_seconds > kMaxLeewaySeconds ||
      options.issued_leeway_seconds < 0 || options.issued_leeway_seconds > kMaxLeewaySeconds) {
    return base::InvalidArgument("JWT leeway must be between 0 and " +
                                 std::to_string(kMaxLeewaySeconds) + " seconds");
  }
  return Jwt(std::string(key), std::move(options));
}

JwtClaims Jwt::NewClaims(std::string_view subject, std::string_view kind, int64_t now,
                         int64_t ttl_seconds) const {
  std::array<uint8_t, 16> id{};
  if (!base::RandomBytes(id)) {
    std::abort();  // As base::RandomHex: no randomness, no safe tokens.
  }
  JwtClaims claims;
  claims.subject = std::string(subject);
  claims.issuer = options_.issuer;
  claims.audience = options_.audience;
  claims.id = base::Base64UrlEncode(id);
  claims.kind = std::string(kind);
  claims.issued_at = now;
  claims.expires_at = SaturatingAdd(now, ttl_seconds);
  claims.issued_at_us = SecondsToMicros(now);
  return claims;
}

std::string Jwt::Sign(const JwtClaims& claims) const {
  json payload = {
      {"sub", claims.subject},    {"iss", claims.issuer}, {"aud", claims.audience},
      {"jti", claims.id},         {"typ", claims.kind},   {"iat", claims.issued_at},
      {"exp", claims.expires_at},
  };
  // iat's start is what a reader assumes without the claim.
  if (claims.issued_at_us != SecondsToMicros(claims.issued_at)) {
    payload["iat_us"] = claims.issued_at_us;
  }
  if (!claims.session.empty()) {
    payload["sid"] = claims.session;
  }
  std::string token = base::Base64UrlEncode(base::AsBytes(kHeader));
  token += '.';
  token += base::Base64UrlEncode(
      base::AsBytes(payload.dump(-1, ' ', false, json::error_handler_t::replace)));
  const base::Sha256Digest mac = base::HmacSha256(base::AsBytes(key_), base::AsBytes(token));
  token += '.';
  token += base::Base64UrlEncode(mac);
  return token;
}

std::expected<JwtClaims, JwtError> Jwt::Verify(std::string_view token,
                                               std::string_view expected_kind, int64_t now,
                                               int64_t issued_by) const {
  issued_by = std::max(issued_by, now);
  if (token.size() > kMaxTokenBytes) {
    return Invalid("token too long");
  }
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return Invalid("not three segments");
  }
  const std::string_view header_part = token.substr(0, dot1);
  const std::string_view payload_part = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view signature_part = token.substr(dot2 + 1);
  if (header_part.empty() || payload_part.empty()) {
    return Invalid("empty segment");
  }
  if (signature_part.empty()) {
    return Invalid("unsigned token");
  }

  // The MAC covers the encoded header and payload exactly as sent (RFC 7515
  // section 5.2 step 8); it is checked before any JSON is parsed, so nothing
  // unauthenticated reaches the parser.
  const std::optional<base::Bytes> signature = base::Base64UrlDecode(signature_part);
  if (!signature || signature->size() != std::tuple_size_v<base::Sha256Digest>) {
    return Invalid("malformed signature");
  }
  const base::Sha256Digest mac =
      base::HmacSha256(base::AsBytes(key_), base::AsBytes(token.substr(0, dot2)));
  if (!base::ConstantTimeEqual(mac, *signature)) {
    return Invalid("bad signature");
  }

  const std::optional<base::Bytes> header_bytes = base::Base64UrlDecode(header_part);
  const std::optional<base::Bytes> payload_bytes = base::Base64UrlDecode(payload_part);
  if (!header_bytes || !payload_bytes) {
    return Invalid("malformed base64url");
  }
  const std::optional<json> header = ParseObject(*header_bytes);
  if (!header || !HeaderIsHs256(*header)) {
    return Invalid("header is not {alg: HS256}");
  }
  const std::optional<json> payload = ParseObject(*payload_bytes);
  if (!payload) {
    return Invalid("payload is not a JSON object");
  }

  const std::string* sub = StringMember(*payload, "sub");
  const std::string* iss = StringMember(*payload, "iss");
  const std::string* aud = StringMember(*payload, "aud");
  const std::string* jti = StringMember(*payload, "jti");
  const std::string* typ = StringMember(*payload, "typ");
  const std::optional<int64_t> iat = TimeMember(*payload, "iat");
  const std::optional<int64_t> exp = TimeMember(*payload, "exp");
  if (sub == nullptr || sub->empty() || iss == nullptr || aud == nullptr || jti == nullptr ||
      typ == nullptr || !iat || !exp) {
    return Invalid("missing or mistyped claim");
  }
  if (*iss != options_.issuer) {
    return Invalid("wrong issuer");
  }
  if (*aud != options_.audience) {
    return Invalid("wrong audience");
  }
  if (*typ != expected_kind) {
    return Invalid("wrong token kind");
  }
  if (*iat > SaturatingAdd(issued_by, options_.issued_leeway_seconds)) {
    return Invalid("issued in the future");
  }
  if (*exp <= *iat) {
    return Invalid("expires before it was issued");
  }
  int64_t iat_us = SecondsToMicros(*iat);
  if (payload->contains("iat_us")) {
    const std::optional<int64_t> member = TimeMember(*payload, "iat_us");
    if (!member || *member < iat_us || *member >= SaturatingAdd(iat_us, kMicrosPerSecond)) {
      return Invalid("iat_us is not within iat's second");
    }
    iat_us = *member;
  }
  const std::string* sid = StringMember(*payload, "sid");
  if (payload->contains("sid") && (sid == nullptr || sid->empty())) {
    return Invalid("missing or mistyped claim");
  }
  // RFC 7519 section 4.1.5: not accepted before nbf. We never write one, so
  // a token that has it was not minted here as it stands.
  if (payload->contains("nbf")) {
    const std::optional<int64_t> nbf = TimeMember(*payload, "nbf");
    if (!nbf) {
      return Invalid("missing or mistyped claim");
    }
    if (*nbf > SaturatingAdd(issued_by, options_.issued_leeway_seconds)) {
      return Invalid("not valid yet");
    }
  }
  // RFC 7519 section 4.1.4: valid only while now is before exp.
  if (now >= SaturatingAdd(*exp, options_.leeway_seconds)) {
    return std::unexpected(JwtError{JwtErrorKind::kExpired, "expired"});
  }

  JwtClaims claims;
  claims.subject = *sub;
  claims.issuer = *iss;
  claims.audience = *aud;
  claims.id = *jti;
  claims.kind = *typ;
  claims.issued_at = *iat;
  claims.expires_at = *exp;
  claims.issued_at_us = iat_us;
  if (sid != nullptr) {
    claims.session = *sid;
  }
  return claims;
}

}  // namespace turnkey::auth
