#include "relay/turn_authenticator.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "auth/turn_rest.h"
#include "stun/integrity.h"

namespace turnkey::relay {

const char* AuthFailureName(AuthFailure failure) {
  switch (failure) {
    case AuthFailure::kNone:
      return "none";
    case AuthFailure::kNoCredentials:
      return "no_credentials";
    case AuthFailure::kMalformed:
      return "malformed";
    case AuthFailure::kStaleNonce:
      return "stale_nonce";
    case AuthFailure::kInvalidNonce:
      return "invalid_nonce";
    case AuthFailure::kWrongRealm:
      return "wrong_realm";
    case AuthFailure::kUnknownUser:
      return "unknown_user";
    case AuthFailure::kExpired:
      return "expired";
    case AuthFailure::kBadIntegrity:
      return "bad_integrity";
    case AuthFailure::kCount:
      break;
  }
  return "other";
}

namespace {

AuthResult Fail(AuthFailure failure) {
  AuthResult result;
  result.failure = failure;
  switch (failure) {
    case AuthFailure::kMalformed:
      result.error_code = 400;
      break;
    case AuthFailure::kStaleNonce:
    case AuthFailure::kInvalidNonce:
      result.error_code = 438;
      break;
    default:
      result.error_code = 401;
      break;
  }
  return result;
}

}  // namespace

TurnAuthenticator::TurnAuthenticator(TurnAuthOptions options, const auth::NonceIssuer& nonces)
    : options_(std::move(options)), nonces_(nonces) {
  stun::PasswordAlgorithm md5{stun::PasswordAlgorithmId::kMd5, {}};
  stun::PasswordAlgorithm sha256{stun::PasswordAlgorithmId::kSha256, {}};
  const bool every_key_sha256 =
      std::all_of(options_.static_users.begin(), options_.static_users.end(),
                  [](const StaticUserKey& user) { return user.key_sha256.has_value(); });
  if (every_key_sha256) {
    algorithms_ = {sha256, md5};
  } else {
    algorithms_ = {md5, sha256};
  }
}

std::string TurnAuthenticator::IssueNonce(const base::SocketAddress& client,
                                          int64_t now_unix) const {
  return nonces_.Issue(now_unix, client);
}

std::string_view TurnAuthenticator::QuotaUser(std::string_view username) {
  return auth::TurnRestUser(username);
}

AuthResult TurnAuthenticator::Authenticate(const stun::Message& request,
                                           const base::SocketAddress& client,
                                           int64_t now_unix) const {
  const bool has_sha1 = request.Has(stun::AttributeType::kMessageIntegrity);
  const bool has_sha256 = request.Has(stun::AttributeType::kMessageIntegritySha256);
  // RFC 8489 section 9.2.4, first bullet.
  if (!has_sha1 && !has_sha256) {
    return Fail(AuthFailure::kNoCredentials);
  }
  auto username_value = request.FindValue(stun::AttributeType::kUsername);
  auto realm_value = request.FindValue(stun::AttributeType::kRealm);
  auto nonce_value = request.FindValue(stun::AttributeType::kNonce);
  if (!username_value && realm_value && nonce_value &&
      request.Has(stun::AttributeType::kUserhash)) {
    // Our nonces do not offer USERNAME-ANONYMITY, so no USERHASH names a
    // user here: "not valid" (401), not missing (400).
    return Fail(AuthFailure::kUnknownUser);
  }
  if (!username_value || !realm_value || !nonce_value) {
    return Fail(AuthFailure::kMalformed);
  }
  auto username = stun::DecodeUsername(*username_value);
  auto realm = stun::DecodeRealm(*realm_value);
  auto nonce = stun::DecodeNonce(*nonce_value);
  if (!username || !realm || !nonce || username->empty()) {
    return Fail(AuthFailure::kMalformed);
  }

  // RFC 8489 section 9.2.4: with our nonce cookie, PASSWORD-ALGORITHMS and
  // PASSWORD-ALGORITHM come together (the list exactly as we sent it) or not
  // at all (MD5).
  stun::PasswordAlgorithmId algorithm = stun::PasswordAlgorithmId::kMd5;
  auto list_value = request.FindValue(stun::AttributeType::kPasswordAlgorithms);
  auto chosen_value = request.FindValue(stun::AttributeType::kPasswordAlgorithm);
  if (list_value.has_value() != chosen_value.has_value()) {
    return Fail(AuthFailure::kMalformed);
  }
  if (list_value) {
    auto list = stun::DecodePasswordAlgorithms(*list_value);
    auto chosen = stun::DecodePasswordAlgorithm(*chosen_value);
    if (!list || !chosen || list->count != algorithms_.size()) {
      return Fail(AuthFailure::kMalformed);
    }
    for (size_t i = 0; i < algorithms_.size(); ++i) {
      if (list->items[i].id != algorithms_[i].id || !list->items[i].params.empty()) {
        return Fail(AuthFailure::kMalformed);
      }
    }
    // One of the offered entries, parameters included: both have none.
    if ((chosen->id != stun::PasswordAlgorithmId::kMd5 &&
         chosen->id != stun::PasswordAlgorithmId::kSha256) ||
        !chosen->params.empty()) {
      return Fail(AuthFailure::kMalformed);
    }
    algorithm = chosen->id;
  }

  // A key made with another realm cannot verify: 401, as a bad integrity.
  if (*realm != options_.realm) {
    return Fail(AuthFailure::kWrongRealm);
  }

  AuthResult result;
  result.username = *username;
  // RFC 8489 section 9.2.4, last paragraph: the answer carries
  // MESSAGE-INTEGRITY-SHA256 unless the request named no algorithm (and was
  // processed as MD5), whichever integrity attribute the request itself had.
  result.integrity = list_value ? IntegrityKind::kSha256 : IntegrityKind::kSha1;
  // With both present, MESSAGE-INTEGRITY-SHA256 is the one that counts.
  const IntegrityKind checked = has_sha256 ? IntegrityKind::kSha256 : IntegrityKind::kSha1;
  AuthFailure failure = CheckUser(request, *username, algorithm, checked, now_unix, result);
  const bool expired_but_verified = failure == AuthFailure::kExpired && result.key_size > 0;
  if (failure != AuthFailure::kNone && !expired_but_verified) {
    return Fail(failure);
  }
  // RFC 8489 section 9.2.4 checks the nonce last, once user and integrity
  // are good: a stale nonce with a wrong password is 401, not 438.
  switch (nonces_.Check(*nonce, now_unix, client, options_.nonce_lifetime)) {
    case auth::NonceCheck::kValid:
      break;
    case auth::NonceCheck::kStale:
      return Fail(AuthFailure::kStaleNonce);
    case auth::NonceCheck::kInvalid:
      // A nonce that is not valid is answered 438 as well; the client
      // retries with the fresh one we send.
      return Fail(AuthFailure::kInvalidNonce);
  }
  if (expired_but_verified) {
    result.failure = AuthFailure::kExpired;
    result.error_code = 401;
    result.expired_but_verified = true;
  }
  return result;
}

AuthFailure TurnAuthenticator::CheckUser(const stun::Message& request, std::string_view username,
                                         stun::PasswordAlgorithmId algorithm, IntegrityKind checked,
                                         int64_t now_unix, AuthResult& result) const {
  auto verify = [&](base::ByteView key) {
    stun::IntegrityResult r = checked == IntegrityKind::kSha256
                                  ? stun::VerifyMessageIntegritySha256(request, key)
                                  : stun::VerifyMessageIntegrity(request, key);
    if (r != stun::IntegrityResult::kValid) {
      return false;
    }
    std::memcpy(result.key.data(), key.data(), key.size());
    result.key_size = key.size();
    return true;
  };

  for (const StaticUserKey& user : options_.static_users) {
    if (user.name == username) {
      if (algorithm == stun::PasswordAlgorithmId::kMd5) {
        return verify(user.key) ? AuthFailure::kNone : AuthFailure::kBadIntegrity;
      }
      // SHA-256 only for a user configured with that key.
      return user.key_sha256 && verify(*user.key_sha256) ? AuthFailure::kNone
                                                         : AuthFailure::kBadIntegrity;
    }
  }

  if (options_.secrets.empty()) {
    return AuthFailure::kUnknownUser;
  }
  std::optional<int64_t> expiry = auth::TurnRestExpiry(username);
  if (!expiry) {
    return AuthFailure::kUnknownUser;
  }
  // RFC-less but universal TURN REST rule: the timestamp is when the
  // credential stops being accepted for new requests. The integrity is still
  // checked (a verified key is left in `result`): the allocation made with
  // the name may keep working until its own lifetime ends.
  const bool expired = *expiry <= now_unix;
  for (const std::string& secret : options_.secrets) {
    const std::string password = auth::TurnRestPassword(secret, username);
    if (algorithm == stun::PasswordAlgorithmId::kSha256) {
      base::Sha256Digest key = stun::LongTermKeySha256(username, options_.realm, password);
      if (verify(key)) {
        return expired ? AuthFailure::kExpired : AuthFailure::kNone;
      }
    } else {
      base::Md5Digest key = stun::LongTermKeyMd5(username, options_.realm, password);
      if (verify(key)) {
        return expired ? AuthFailure::kExpired : AuthFailure::kNone;
      }
    }
  }
  return expired ? AuthFailure::kExpired : AuthFailure::kBadIntegrity;
}

}  // namespace turnkey::relay
