// UTF-8 validation (RFC 3629 section 4): what a WebSocket text message
// (RFC 6455 s8.1) must be.
#pragma once

#include <string_view>

namespace turnkey::base {

// True if `text` is well-formed UTF-8: no overlong forms, no surrogates
// (U+D800-U+DFFF), nothing above U+10FFFF, no truncated sequence.
bool IsValidUtf8(std::string_view text);

}  // namespace turnkey::base
