#include "net/http_json.h"

#include <algorithm>
#include <string_view>

namespace turnkey::net {

namespace {

// Nesting depth of `text`, ignoring brackets inside strings.
int MaxNesting(std::string_view text) {
  int depth = 0;
  int max_depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      max_depth = std::max(max_depth, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max_depth;
}

}  // namespace

HttpResponse JsonResponse(int status, const nlohmann::json& body) {
  return HttpResponse::Text(status,
                            body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                            "application/json; charset=utf-8");
}

std::optional<nlohmann::json> ParseJsonBody(const HttpRequest& request) {
  if (MaxNesting(request.body) > kMaxJsonDepth) {
    return std::nullopt;
  }
  nlohmann::json parsed = nlohmann::json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return std::nullopt;
  }
  return parsed;
}

}  // namespace turnkey::net
