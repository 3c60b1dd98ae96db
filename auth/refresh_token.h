// Opaque identifiers and secrets of the account service: refresh tokens and
// user ids.
//
// Refresh token: 32 bytes from the OpenSSL CSPRNG, base64url without padding
// (43 characters, RFC 4648 section 5). The client keeps the token; the
// database keeps only RefreshTokenHash(token), so a leaked table cannot be
// replayed. A plain SHA-256 is the right hash here (unlike passwords): the
// token has 256 bits of entropy, so there is nothing to guess and no need
// for a salt or a slow hash, and a lookup by hash stays an indexed equality.
//
// User id: 16 bytes from the CSPRNG as 32 lower-case hex characters. Opaque
// (no order, count or time leaks), safe unescaped in URLs, JSON, SQL
// CHAR(32) columns, log lines and TURN REST usernames ("<expiry>:<id>" needs
// an id without ':'), and compared byte for byte.
//
// All functions are thread-safe. The generators abort the process if the
// CSPRNG fails, as base::RandomHex does: no randomness, no safe secrets.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace turnkey::auth {

inline constexpr size_t kRefreshTokenBytes = 32;
inline constexpr size_t kRefreshTokenLength = 43;  // base64url of 32 bytes, no padding
inline constexpr size_t kRefreshTokenHashLength = 64;
inline constexpr size_t kUserIdBytes = 16;
inline constexpr size_t kUserIdLength = 32;

// A new refresh token (kRefreshTokenLength characters of [A-Za-z0-9_-]).
std::string NewRefreshToken();

// Lower-case hex SHA-256 of the token's characters: what the database stores
// and looks up. Any input is accepted; check the shape first to answer a
// garbled token without a database round trip.
std::string RefreshTokenHash(std::string_view token);

// True if `token` has exactly the shape NewRefreshToken() produces
// (canonical base64url of 32 bytes, no padding).
bool IsWellFormedRefreshToken(std::string_view token);

// A new user id (kUserIdLength lower-case hex characters).
std::string NewUserId();

// True if `id` has exactly the shape NewUserId() produces. Use it on ids from
// URLs and request bodies before they reach the database.
bool IsWellFormedUserId(std::string_view id);

}  // namespace turnkey::auth
