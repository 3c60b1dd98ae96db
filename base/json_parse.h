// ParseJsonUniqueNames: nlohmann/json parsing that refuses an object naming a
// member twice. RFC 8259 section 4 leaves the meaning of such an object to
// each receiver (most keep the last value, some the first, some fail), so
// two parsers of one request or token -- a proxy's and ours -- could read it
// differently. No exceptions escape.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

namespace turnkey::base {

// `text` parsed as one JSON value, or nullopt when it is not valid JSON or an
// object in it names a member more than once (at any depth).
std::optional<nlohmann::json> ParseJsonUniqueNames(std::string_view text);

}  // namespace turnkey::base
