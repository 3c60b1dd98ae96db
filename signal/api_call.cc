#include "signal/api_call.h"

#include <fmt/format.h>

#include <utility>

#include "net/http_json.h"

namespace turnkey::signal {

ApiCall::ApiCall(net::HttpRequest request, net::Responder responder,
                 std::shared_ptr<const net::Cors> cors)
    : request_(std::move(request)), responder_(std::move(responder)), cors_(std::move(cors)) {}

std::expected<nlohmann::json, ApiError> ApiCall::JsonBody() const {
  if (request_.body.empty()) {
    return nlohmann::json::object();
  }
  std::optional<nlohmann::json> body = net::ParseJsonBody(request_);
  if (!body || !body->is_object()) {
    return std::unexpected(ApiError::InvalidJson());
  }
  return std::move(*body);
}

void ApiCall::Ok(nlohmann::json data, std::string_view message, int status) {
  Respond(SuccessResponse(status, message, std::move(data)));
}

void ApiCall::Fail(const ApiError& error) { Respond(ErrorResponse(error)); }

void ApiCall::Respond(net::HttpResponse response) {
  if (answered_) {
    return;
  }
  answered_ = true;
  if (cors_) {
    cors_->AddHeaders(request_, response);
  }
  responder_.Respond(std::move(response));
}

std::expected<std::optional<std::string>, ApiError> OptionalString(const nlohmann::json& object,
                                                                   std::string_view name) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) {
    return std::optional<std::string>();
  }
  if (!it->is_string()) {
    return std::unexpected(
        ApiError::Validation(std::string(name), std::string(name) + " must be a string"));
  }
  return std::optional<std::string>(it->get<std::string>());
}

std::expected<std::optional<std::string>, ApiError> OptionalChecked(const nlohmann::json& object,
                                                                    std::string_view name,
                                                                    FieldCheck check) {
  auto value = OptionalString(object, name);
  if (value && *value) {
    if (auto problem = check(**value)) {
      return std::unexpected(ApiError::Validation(std::string(name), *problem));
    }
  }
  return value;
}

std::expected<int, ApiError> IntQueryParam(const net::HttpRequest& request, std::string_view name,
                                           int fallback, int min, int max) {
  std::optional<std::string> text = request.QueryParam(name);
  if (!text || text->empty()) {
    return fallback;
  }
  auto invalid = [&] {
    return std::unexpected(ApiError::Validation(
        std::string(name), fmt::format("{} must be an integer from {} to {}", name, min, max)));
  };
  if (text->size() > 9) {
    return invalid();
  }
  int value = 0;
  for (char c : *text) {
    if (c < '0' || c > '9') {
      return invalid();
    }
    value = value * 10 + (c - '0');
  }
  if (value < min || value > max) {
    return invalid();
  }
  return value;
}

std::expected<std::string, ApiError> RequiredString(const nlohmann::json& object,
                                                    std::string_view name) {
  auto value = OptionalString(object, name);
  if (!value) {
    return std::unexpected(value.error());
  }
  if (!value->has_value() || (*value)->empty()) {
    return std::unexpected(
        ApiError::Validation(std::string(name), std::string(name) + " is required"));
  }
  return std::move(**value);
}

}  // namespace turnkey::signal
