#include "net/http_json.h"

#include <string_view>

#include "base/json_depth.h"
#include "base/json_parse.h"

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
  return base::ParseJsonUniqueNames(request.body);
}

}  // namespace turnkey::net
