#include "signal/api_error.h"

#include <utility>

#include "base/log.h"
#include "net/http_json.h"
#include "sql/store.h"

namespace turnkey::signal {

ApiError ApiError::Of(int status, std::string_view code, std::string message) {
  ApiError error;
  error.status = status;
  error.code = std::string(code);
  error.message = std::move(message);
  return error;
}

ApiError ApiError::Validation(std::string field, std::string message) {
  ApiError error = Of(400, api_code::kValidation, std::move(message));
  error.field = std::move(field);
  return error;
}

ApiError ApiError::InvalidJson() {
  return Of(400, api_code::kInvalidJson, "The request body must be a JSON object");
}

ApiError ApiError::Unauthorized(std::string_view code, std::string message) {
  return Of(401, code, std::move(message));
}

ApiError ApiError::NotFound(std::string message) {
  return Of(404, api_code::kNotFound, std::move(message));
}

ApiError ApiError::OriginNotAllowed() {
  return Of(403, api_code::kOriginNotAllowed, "This origin is not allowed");
}

ApiError ApiError::PayloadTooLarge() {
  return Of(413, api_code::kPayloadTooLarge, "The request body is too large");
}

ApiError ApiError::RateLimited(int retry_after_seconds) {
  ApiError error = Of(429, api_code::kRateLimited, "Too many attempts; try again later");
  error.retry_after_seconds = retry_after_seconds < 1 ? 1 : retry_after_seconds;
  return error;
}

ApiError ApiError::Unavailable(std::string message) {
  ApiError error = Of(503, api_code::kServiceUnavailable, std::move(message));
  error.retry_after_seconds = 1;
  return error;
}

ApiError ApiError::Internal() { return Of(500, api_code::kInternal, "Internal server error"); }

namespace {

base::LogLimiter& UnavailableLog() {
  static base::LogLimiter limiter(std::chrono::seconds(10));
  return limiter;
}

}  // namespace

ApiError FromStoreError(const base::Error& error) {
  switch (error.code) {
    case base::ErrorCode::kUnavailable:
    case base::ErrorCode::kResourceExhausted:
    case base::ErrorCode::kPermissionDenied:  // the server refused our account
      if (uint64_t held = 0; UnavailableLog().Allow(&held)) {
        TK_LOG_WARN("signal: database unavailable: {}{}", error.message, base::HeldBack(held));
      }
      return ApiError::Unavailable("The database is unavailable; try again shortly");
    case base::ErrorCode::kNotFound:
      return ApiError::NotFound("Not found");
    case base::ErrorCode::kAlreadyExists:
      if (error.message == sql::kEmailTaken) {
        return ApiError::Of(409, api_code::kEmailTaken, "This email is already registered");
      }
      if (error.message == sql::kHandleTaken) {
        return ApiError::Of(409, api_code::kHandleTaken, "This handle is already taken");
      }
      break;
    case base::ErrorCode::kInvalidArgument: {
      // The store names the field first: "handle: too long".
      const size_t colon = error.message.find(':');
      std::string field = colon == std::string::npos ? "" : error.message.substr(0, colon);
      return ApiError::Validation(std::move(field), error.message);
    }
    default:
      break;
  }
  TK_LOG_ERROR("signal: store error ({}): {}", base::ErrorCodeName(error.code), error.message);
  return ApiError::Internal();
}

namespace {

// Every API answer: JSON, never cached, never sniffed as something else.
net::HttpResponse EnvelopeResponse(int status, const nlohmann::json& body) {
  net::HttpResponse response = net::JsonResponse(status, body);
  response.headers.Set("Cache-Control", "no-store");
  response.headers.Set("X-Content-Type-Options", "nosniff");
  return response;
}

}  // namespace

net::HttpResponse SuccessResponse(int status, std::string_view message, nlohmann::json data) {
  nlohmann::json body = nlohmann::json::object();
  body["success"] = true;
  body["message"] = message;
  body["data"] = std::move(data);
  return EnvelopeResponse(status, body);
}

net::HttpResponse ErrorResponse(const ApiError& error) {
  nlohmann::json body = nlohmann::json::object();
  body["success"] = false;
  body["message"] = error.message;
  body["code"] = error.code;
  if (!error.field.empty()) {
    body["field"] = error.field;
  }
  body["data"] = nullptr;
  net::HttpResponse response = EnvelopeResponse(error.status, body);
  if (error.retry_after_seconds > 0) {
    response.headers.Set("Retry-After", std::to_string(error.retry_after_seconds));
  }
  if (error.status == 401) {
    response.headers.Set("WWW-Authenticate", "Bearer realm=\"turnkey\"");
  }
  return response;
}

}  // namespace turnkey::signal
