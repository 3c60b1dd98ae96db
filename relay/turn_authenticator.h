// TurnAuthenticator: the long-term credential mechanism (RFC 8489 section
// 9.2) for TURN requests, with TURN REST ephemeral credentials and static
// users.
//
// Who may authenticate:
//  - a static user (config turn.auth.static_users) whose USERNAME matches
//    exactly; its key is MD5(name:realm:password) from the config;
//  - with TURN REST secrets configured, any USERNAME "<expiry>:<user>" whose
//    expiry lies in the future: the password is base64(HMAC-SHA1(secret,
//    USERNAME)) for one of the secrets (several at once, for rotation).
//
// Nonces are stateless (auth/nonce.h), bound to the client's IP address and
// port: RFC 8489 section 9.2.4 allows the same NONCE only for requests from
// the same source address and port. Nothing is stored for a request that has
// not authenticated.
//
// Immutable after construction; thread-safe to call. The NonceIssuer must
// outlive it.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "auth/nonce.h"
#include "base/address.h"
#include "base/crypto.h"
#include "stun/attributes.h"
#include "stun/message.h"

namespace turnkey::relay {

struct StaticUserKey {
  std::string name;
  base::Md5Digest key{};  // MD5(name:realm:password); password-equivalent
  // SHA-256(name:realm:password), when configured; password-equivalent.
  std::optional<base::Sha256Digest> key_sha256;
};

struct TurnAuthOptions {
  std::string realm = "turnkey.local";
  std::vector<std::string> secrets;  // TURN REST secrets; never logged
  std::vector<StaticUserKey> static_users;
  // How long a nonce stays fresh before 438. Reloadable.
  std::chrono::seconds nonce_lifetime{600};
};

// Why a request did not authenticate; labels turnkey_turn_auth_failures_total.
enum class AuthFailure : uint8_t {
  kNone,
  kNoCredentials,  // no MESSAGE-INTEGRITY: the first leg of the handshake (401)
  kMalformed,      // integrity without USERNAME/REALM/NONCE, bad algorithm lists (400)
  kStaleNonce,     // ours, but older than the nonce lifetime (438)
  kInvalidNonce,   // not one of ours for this client (438 with a fresh one)
  kWrongRealm,     // REALM differs from ours (401)
  kUnknownUser,    // neither a static user nor a TURN REST name (401)
  kExpired,        // a TURN REST name whose expiry has passed (401)
  kBadIntegrity,   // MESSAGE-INTEGRITY(-SHA256) does not match (401)
  kCount,
};
const char* AuthFailureName(AuthFailure failure);

enum class IntegrityKind : uint8_t {
  kSha1,    // MESSAGE-INTEGRITY
  kSha256,  // MESSAGE-INTEGRITY-SHA256
};

struct AuthResult {
  AuthFailure failure = AuthFailure::kNone;
  // The STUN error code to answer with when failure != kNone: 400, 401 or 438.
  uint16_t error_code = 0;
  // On success: the USERNAME (a view into the request), the integrity the
  // response must carry and the key for it.
  std::string_view username;
  IntegrityKind integrity = IntegrityKind::kSha1;
  std::array<uint8_t, 32> key{};
  size_t key_size = 0;

  // kExpired only: the request's integrity and nonce were good, under a
  // TURN REST name whose time has passed (`username` and the key are
  // filled). Enough for requests that only keep an allocation of that name
  // working until its own lifetime ends (TurnServer decides).
  bool expired_but_verified = false;

  bool ok() const { return failure == AuthFailure::kNone; }
  base::ByteView key_view() const { return base::ByteView(key.data(), key_size); }
};

class TurnAuthenticator {
 public:
  TurnAuthenticator(TurnAuthOptions options, const auth::NonceIssuer& nonces);

  AuthResult Authenticate(const stun::Message& request, const base::SocketAddress& client,
                          int64_t now_unix) const;

  // A fresh nonce for `client` (401 and 438 answers carry one).
  std::string IssueNonce(const base::SocketAddress& client, int64_t now_unix) const;

  // The PASSWORD-ALGORITHMS this server offers, most preferred first:
  // SHA-256 then MD5, except that MD5 comes first while a static user has no
  // SHA-256 key (a client takes the first it supports, and SHA-256 could not
  // be checked for that user).
  std::span<const stun::PasswordAlgorithm> algorithms() const {
    return std::span<const stun::PasswordAlgorithm>(algorithms_.data(), algorithms_.size());
  }
  const std::string& realm() const { return options_.realm; }

  // The account a username counts against for quotas: the user id of a TURN
  // REST name (auth::TurnRestUser), else the whole name.
  static std::string_view QuotaUser(std::string_view username);

 private:
  // Tries every way `username` can authenticate, checking the request's
  // `checked` integrity attribute; fills `result`'s key on success.
  AuthFailure CheckUser(const stun::Message& request, std::string_view username,
                        stun::PasswordAlgorithmId algorithm, IntegrityKind checked,
                        int64_t now_unix, AuthResult& result) const;

  TurnAuthOptions options_;
  const auth::NonceIssuer& nonces_;
  std::array<stun::PasswordAlgorithm, 2> algorithms_;
};

}  // namespace turnkey::relay
