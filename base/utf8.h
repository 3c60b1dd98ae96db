// UTF-8 validation (RFC 3629 section 4): what a WebSocket text message
// (RFC 6455 s8.1) must be.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace turnkey::base {

// True if `text` is well-formed UTF-8: no overlong forms, no surrogates
// (U+D800-U+DFFF), nothing above U+10FFFF, no truncated sequence.
bool IsValidUtf8(std::string_view text);

// The code points (Unicode scalar values) of `text` if it is well-formed
// UTF-8 (IsValidUtf8), else nullopt: what "N characters" means in a limit.
std::optional<size_t> Utf8Length(std::string_view text);

// `text` with each maximal ill-formed subpart replaced by U+FFFD (Unicode
// section 3.9, the practice of the WHATWG decoder and of Node's
// Buffer.toString): "a\xE2\x82" gives "a\uFFFD", "\xC0\xAF" two U+FFFD.
// Well-formed text comes back unchanged.
std::string ToValidUtf8(std::string_view text);

}  // namespace turnkey::base
