// TURN REST API ephemeral credentials (draft-uberti-behave-turn-rest, as every
// WebRTC stack and coturn's `use-auth-secret` use them).
//
// username = "<expiry-unix-seconds>:<user id>"
// password = base64(HMAC-SHA1(secret, username))
//
// The signaling side mints them; the relay recomputes the password from the
// same shared secret. No state is shared between the two.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace turnkey::auth {

struct TurnRestCredential {
  std::string username;    // "<expiry>:<user id>"
  std::string password;    // base64(HMAC-SHA1(secret, username))
  int64_t expires_at = 0;  // unix seconds
};

// Mints a credential for `user_id` valid until now_unix + ttl_seconds.
TurnRestCredential MintTurnRestCredential(std::string_view secret, std::string_view user_id,
                                          int64_t now_unix, int64_t ttl_seconds);

// base64(HMAC-SHA1(secret, username)).
std::string TurnRestPassword(std::string_view secret, std::string_view username);

// The expiry of a TURN REST username: the decimal number before the first
// ':' (or the whole name when there is no ':'); failing that, the one after
// the last ':' ("<user id>:<expiry>", the order some app servers mint, which
// coturn takes too). nullopt if neither is a plain non-negative decimal that
// fits in 63 bits. The order does not weaken anything: the password is the
// HMAC of the whole name.
std::optional<int64_t> TurnRestExpiry(std::string_view username);

// The user id part of a TURN REST username (the name without its expiry and
// the ':' next to it); the whole name when it is not a TURN REST one.
std::string_view TurnRestUser(std::string_view username);

}  // namespace turnkey::auth
