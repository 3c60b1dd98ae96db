#include "net/http_json.h"

#include <string_view>

#include "base/json_depth.h"

namespace turnkey::net {

HttpResponse JsonResponse(int status, const nlohmann::json& body) {
  return HttpResponse::Text(status,
                            body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                            "application/json; charset=utf-8");
}

std::optional<nlohmann::json> ParseJsonBody(const HttpRequest& request) {
  if (base::JsonDepth(request.body, kMaxJsonDepth) > kMaxJsonDepth) {
    return std::nullopt;
  }
  nlohmann::json parsed = nlohmann::json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return std::nullopt;
  }
  return parsed;
}

}  // namespace turnkey::net
