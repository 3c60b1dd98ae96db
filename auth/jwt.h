// Jwt: access tokens as JSON Web Tokens (RFC 7519) signed with HMAC-SHA256
// (JWS, RFC 7515, alg "HS256", RFC 7518 section 3.2).
//
// The algorithm is fixed by the verifier, never read from the token: a token
// whose header says anything but {"alg":"HS256"} (optionally with
// "typ":"JWT") is rejected, so "none", RS256/HS256 key confusion and HS512
// downgrades cannot happen. The signature is checked (constant-time) before
// the header or payload JSON is even parsed.
//
// Token shape: base64url(header) "." base64url(payload) "." base64url(mac),
// base64url without padding (RFC 7515 section 2); padding, whitespace or any
// other character is refused.
//
// Claims we issue and require: sub (user id), iat, exp (integer unix
// seconds), iss and aud (strings, compared exactly), jti (random id) and typ
// (the token kind, e.g. "access", compared exactly so a token minted for one
// purpose is never accepted for another). Optional: sid (a string naming
// the login the token belongs to, so the issuer can end that login's tokens
// together). Other payload claims are ignored.
//
// `now` is always passed in; nothing here reads a clock.
//
// Thread-safety: immutable after Create(); Sign() and Verify() may run on any
// number of threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <utility>

#include "base/status.h"

namespace turnkey::auth {

struct JwtClaims {
  std::string subject;     // "sub": the user id
  std::string issuer;      // "iss"
  std::string audience;    // "aud": one string, never an array
  std::string id;          // "jti": random, lets a token be named in logs or revoked
  std::string kind;        // "typ" claim: what the token is for, e.g. "access"
  int64_t issued_at = 0;   // "iat", unix seconds
  int64_t expires_at = 0;  // "exp", unix seconds; the token is valid while now < exp
  // Private claim "iat_us": the issue time in unix microseconds, within iat's
  // second. The issuer may use it as a stamp that orders tokens against a
  // sign-out exactly (iat's whole seconds cannot order a sign-out and a login
  // in the same second). NewClaims sets iat * 10^6; a token without the
  // claim reads as that too.
  int64_t issued_at_us = 0;
  // Private claim "sid": the login (session) this token belongs to; written
  // only when not empty, and a token without it reads as empty.
  std::string session;

  friend bool operator==(const JwtClaims&, const JwtClaims&) = default;
};

struct JwtOptions {
  // Expected "iss" and "aud", also written into tokens by NewClaims().
  // Non-empty. Defaults "turnkey" / "turnkey".
  std::string issuer = "turnkey";
  std::string audience = "turnkey";
  // Clock skew tolerated on exp: a token is accepted until exp + this.
  // Seconds, 0-300. Default 0.
  int64_t leeway_seconds = 0;
  // How far in the future iat and nbf may lie: a token signed by another
  // process (a cluster node) whose clock runs ahead of ours. Seconds, 0-300.
  // Default 0 (one process signs and verifies with one clock).
  int64_t issued_leeway_seconds = 0;
};

// Why a token was refused. Clients see two outcomes: kExpired (get a new
// access token with the refresh token) and kInvalid (log in again).
enum class JwtErrorKind {
  kInvalid,  // malformed, wrong signature, wrong header, iss, aud or typ, iat in the future
             // (beyond issued_leeway_seconds)
  kExpired,  // well formed and correctly signed, but now >= exp + leeway
};

struct JwtError {
  JwtErrorKind kind = JwtErrorKind::kInvalid;
  // A static description for logs ("bad signature"); never contains token bytes.
  const char* reason = "";
};

class Jwt {
 public:
  // RFC 7518 section 3.2: an HS256 key must be at least as long as the hash.
  static constexpr size_t kMinKeyBytes = 32;
  // Longer tokens are refused unread (ours are about 300 bytes).
  static constexpr size_t kMaxTokenBytes = 4096;
  static constexpr int64_t kMaxLeewaySeconds = 300;

  // kInvalidArgument if `key` is shorter than kMinKeyBytes, issuer or audience
  // is empty, or a leeway is out of range. The key is copied.
  [[nodiscard]] static base::Result<Jwt> Create(std::string_view key, JwtOptions options = {});

  // Claims for a new token: iss and aud from the options, a fresh random jti
  // (16 bytes, base64url), iat = now, exp = now + ttl_seconds, iat_us =
  // now * 10^6 (a caller with a finer time sets issued_at_us, keeping
  // issued_at == issued_at_us / 10^6).
  JwtClaims NewClaims(std::string_view subject, std::string_view kind, int64_t now,
                      int64_t ttl_seconds) const;

  // The signed compact serialisation of `claims`. Never fails; strings that
  // are not valid UTF-8 get U+FFFD replacements (ours are ASCII). iat_us is
  // written only when it is not iat * 10^6.
  std::string Sign(const JwtClaims& claims) const;

  // Checks, in order: shape and size, base64url, signature, header, claim
  // types, iss, aud, typ == `expected_kind`, iat <= now + issued leeway,
  // exp, and
  // that iat_us (when present) falls within iat's second.
  // Any byte string is safe input.
  std::expected<JwtClaims, JwtError> Verify(std::string_view token, std::string_view expected_kind,
                                            int64_t now) const {
    return Verify(token, expected_kind, now, now);
  }
  // The same, with iat and nbf checked against `issued_by` (>= now) instead
  // of now: a signer that keeps its issue times ascending while the wall
  // clock stepped back passes the last time it issued. exp is checked
  // against now.
  std::expected<JwtClaims, JwtError> Verify(std::string_view token, std::string_view expected_kind,
                                            int64_t now, int64_t issued_by) const;

  const JwtOptions& options() const { return options_; }

 private:
  Jwt(std::string key, JwtOptions options) : key_(std::move(key)), options_(std::move(options)) {}

  std::string key_;
  JwtOptions options_;
};

}  // namespace turnkey::auth
