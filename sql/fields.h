// Field rules shared by both backends (see store.h), checked in C++ so that
// SQLite and MySQL accept and refuse exactly the same values.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "base/status.h"

namespace turnkey::sql {

// 1-kMaxIdBytes bytes of [A-Za-z0-9_-].
bool IsValidId(std::string_view id);
// kInvalidArgument "<field>: ..." unless IsValidId(value).
base::Status CheckId(std::string_view field, std::string_view value);

// Well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
// above U+10FFFF) without NUL.
bool IsValidUtf8(std::string_view text);
// kInvalidArgument "<field>: ..." unless `value` is valid UTF-8 of at most
// `max_bytes` bytes, and non-empty when `required`.
base::Status CheckText(std::string_view field, std::string_view value, size_t max_bytes,
                       bool required);

// `text` with ASCII A-Z mapped to a-z; every other byte unchanged.
std::string AsciiLower(std::string_view text);

// A LIKE pattern matching strings that start with `prefix` literally, for
// "LIKE ? ESCAPE '!'": '!', '%' and '_' in `prefix` are escaped with '!'.
std::string LikePrefixPattern(std::string_view prefix);

}  // namespace turnkey::sql
