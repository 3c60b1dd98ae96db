// The rules for what users type into the account API: email, password,
// handle, display name, search prefix. Pure functions; each returns nullopt
// when the value is acceptable, else a message for a 400 naming the field.
//
// These are stricter than sql::Store's own field checks (which only keep
// the database consistent), so a value that passes here is always stored.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace turnkey::signal {

inline constexpr size_t kMinPasswordChars = 8;
// Longer passwords are refused before hashing (auth::PasswordHasher's limit).
inline constexpr size_t kMaxPasswordBytes = 1024;
inline constexpr size_t kMaxEmailBytes = 254;  // RFC 5321 section 4.5.3.1.3 path limit
inline constexpr size_t kMinHandleChars = 3;
inline constexpr size_t kMaxHandleChars = 32;
inline constexpr size_t kMaxDisplayNameChars = 64;
inline constexpr size_t kMaxSearchPrefixChars = kMaxHandleChars;

// An address with one '@' separating a non-empty local part (at most 64
// bytes) from a non-empty domain, at most kMaxEmailBytes, valid UTF-8 with no
// whitespace (any of Unicode's), invisible, bidirectional-override or control
// characters. Deliberately permissive otherwise
// (quotes, apostrophes, '+' are all real addresses).
std::optional<std::string> CheckEmail(std::string_view email);

// The form emails are compared and throttled by: ASCII lower case (the
// store compares the same way).
std::string NormalizeEmail(std::string_view email);

// At least kMinPasswordChars characters, at most kMaxPasswordBytes bytes,
// valid UTF-8. Anything else is allowed: spaces, symbols, emoji. The
// message names `field` (the JSON key the password came in).
std::optional<std::string> CheckPassword(std::string_view password,
                                         std::string_view field = "password");

// 3-32 characters of ASCII letters, digits, '_', '.', '-'. Unique ignoring
// ASCII case (the store enforces that).
std::optional<std::string> CheckHandle(std::string_view handle);

// 1-64 characters of valid UTF-8 without control characters (nor line
// separators or bidirectional overrides), and not only spaces or other
// characters that show nothing.
std::optional<std::string> CheckDisplayName(std::string_view name);

// A handle prefix for search: 1-32 characters of valid UTF-8 without
// control characters (anything else simply matches nobody).
std::optional<std::string> CheckSearchPrefix(std::string_view prefix);

// A handle made from the email's local part: its handle characters (others
// dropped), cut to 24, padded to 3 with "user", then `digits` appended,
// cut to kMaxHandleChars. `digits` should be random ("4821").
std::string HandleFromEmail(std::string_view email, std::string_view digits);

}  // namespace turnkey::signal
