// Field lookups in the small, flat JSON objects signaling servers send
// ({"callId":"...","ok":true,...}), without a full parse: the load generator
// reads a handful of fields from every packet and must stay cheaper than the
// server it measures. A miss is reported as a miss, never guessed.
#pragma once

#include <optional>
#include <string_view>

namespace turnkey::bench {

// The raw text of the first string value of `"key"` in `json` (escapes not
// decoded), or nullopt if there is none or its value is not a string. The
// view points into `json`. Keys are matched anywhere, also in nested
// objects: use keys that occur once in the packets asked about.
std::optional<std::string_view> JsonStringField(std::string_view json, std::string_view key);

// True if `"key"` is followed by the literal true.
bool JsonTrueField(std::string_view json, std::string_view key);

}  // namespace turnkey::bench
