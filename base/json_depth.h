// JsonDepth: how deeply a JSON text nests arrays and objects, found by a
// flat scan before any parser sees it, so hostile input made of nested
// brackets never reaches recursive parsing (HTTP bodies, Socket.IO packets).
#pragma once

#include <cstddef>
#include <string_view>

namespace turnkey::base {

// The deepest array/object nesting in `text`, counting brackets outside
// strings only. Stops scanning once the depth passes `limit` (the result is
// then limit + 1), so the cost of refusing a hostile text is bounded. Malformed
// JSON is not detected: the parser that runs afterwards does that.
size_t JsonDepth(std::string_view text, size_t limit);

}  // namespace turnkey::base
