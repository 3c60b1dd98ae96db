#include "signal/api_error.h"

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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
  return Of(400, api_code::kInvalidJson,
            "The request body must be a JSON object naming each member once");
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

ApiError FromStoreError(const base::Error& error) {
  switch (error.code) {
    case base::ErrorCode::kUnavailable:
    case base::ErrorCode::kResourceExhausted:
    case base::ErrorCode::kPermissionDenied:  // the server refused our account
      TK_LOG_WARN_EVERY(std::chrono::seconds(10), "signal: database unavailable: {}",
                        error.message);
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
// One envelope member as `"key":value`; keys are our own ASCII names.
struct Member {
  std::string_view key;
  const nlohmann::json& value;
};

// The envelope with its members in the order given, which is the order
// docs/api.md shows ({success, message, ..., data}, as an Express server
// writes it); a nlohmann::json object would sort them.
net::HttpResponse EnvelopeResponse(int status, std::span<const Member> members) {
  std::string text = "{";
  for (const Member& member : members) {
    if (text.size() > 1) {
      text += ',';
    }
    text += '"';
    text += member.key;
    text += "\":";
    text += member.value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  text += '}';
  net::HttpResponse response =
      net::HttpResponse::Text(status, std::move(text), "application/json; charset=utf-8");
  response.headers.Set("Cache-Control", "no-store");
  response.headers.Set("X-Content-Type-Options", "nosniff");
  return response;
}

}  // namespace

net::HttpResponse SuccessResponse(int status, std::string_view message, nlohmann::json data) {
  const nlohmann::json success = true;
  const nlohmann::json text = message;
  const Member members[] = {{"success", success}, {"message", text}, {"data", data}};
  return EnvelopeResponse(status, members);
}

net::HttpResponse ErrorResponse(const ApiError& error) {
  const nlohmann::json failure = false;
  const nlohmann::json message = error.message;
  const nlohmann::json code = error.code;
  const nlohmann::json field = error.field;
  const nlohmann::json data = nullptr;
  std::vector<Member> members = {{"success", failure}, {"message", message}, {"code", code}};
  if (!error.field.empty()) {
    members.push_back({"field", field});
  }
  members.push_back({"data", data});
  net::HttpResponse response = EnvelopeResponse(error.status, members);
  if (error.retry_after_seconds > 0) {
    response.headers.Set("Retry-After", std::to_string(error.retry_after_seconds));
  }
  if (error.status == 401) {
    response.headers.Set("WWW-Authenticate", "Bearer realm=\"turnkey\"");
  }
  return response;
}

}  // namespace turnkey::signal
