// JSON bodies for HTTP handlers (nlohmann/json). No exceptions escape.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>

#include "net/http_request.h"
#include "net/http_response.h"

namespace turnkey::net {

// Deepest array/object nesting ParseJsonBody accepts (deeper input is
// rejected before parsing; it only serves stack-exhaustion attacks).
inline constexpr size_t kMaxJsonDepth = 64;

// `status` with `body` serialized compactly and
// "Content-Type: application/json; charset=utf-8". Invalid UTF-8 in strings
// is replaced by U+FFFD instead of throwing.
HttpResponse JsonResponse(int status, const nlohmann::json& body);

// The request body parsed as JSON, or nullopt when it is not valid JSON,
// nests deeper than kMaxJsonDepth or names an object's member twice
// (base::ParseJsonUniqueNames). The Content-Type is not checked.
std::optional<nlohmann::json> ParseJsonBody(const HttpRequest& request);

}  // namespace turnkey::net
