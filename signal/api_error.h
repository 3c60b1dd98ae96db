// ApiError: one failed REST answer, and the JSON envelope every REST answer
// of the account service uses (DESIGN.md section 5):
//
//   {"success": true,  "message": "...", "data": {...}}
//   {"success": false, "message": "...", "code": "EMAIL_TAKEN", "data": null}
//   {"success": false, "message": "...", "code": "VALIDATION_ERROR",
//    "field": "email", "data": null}
//
// `code` is a stable machine-readable string clients branch on (the table
// below); `message` is for people and may change.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/status.h"
#include "net/http_response.h"

namespace turnkey::signal {

// The stable error codes, with their HTTP status.
namespace api_code {
inline constexpr std::string_view kValidation = "VALIDATION_ERROR";  // 400, names `field`
inline constexpr std::string_view kInvalidJson = "INVALID_JSON";  // 400, body is not a JSON object
inline constexpr std::string_view kEmailTaken = "EMAIL_TAKEN";    // 409
inline constexpr std::string_view kHandleTaken = "HANDLE_TAKEN";  // 409
inline constexpr std::string_view kInvalidCredentials = "INVALID_CREDENTIALS";  // 401
inline constexpr std::string_view kUnauthorized = "UNAUTHORIZED";   // 401, no bearer token
inline constexpr std::string_view kTokenExpired = "TOKEN_EXPIRED";  // 401, refresh it
inline constexpr std::string_view kTokenInvalid = "TOKEN_INVALID";  // 401, log in again
inline constexpr std::string_view kTokenRevoked = "TOKEN_REVOKED";  // 401, signed out
inline constexpr std::string_view kRefreshTokenInvalid = "REFRESH_TOKEN_INVALID";  // 401
inline constexpr std::string_view kRefreshTokenExpired = "REFRESH_TOKEN_EXPIRED";  // 401
// 401: a refresh token was presented twice; its whole login was revoked.
inline constexpr std::string_view kRefreshTokenReused = "REFRESH_TOKEN_REUSED";
inline constexpr std::string_view kRefreshTokenRevoked = "REFRESH_TOKEN_REVOKED";  // 401
inline constexpr std::string_view kOriginNotAllowed = "ORIGIN_NOT_ALLOWED";        // 403
// 403: signal.registration is closed; accounts come from `turnkey user add`.
inline constexpr std::string_view kRegistrationClosed = "REGISTRATION_CLOSED";
inline constexpr std::string_view kNotFound = "NOT_FOUND";                   // 404
inline constexpr std::string_view kMethodNotAllowed = "METHOD_NOT_ALLOWED";  // 405
inline constexpr std::string_view kPayloadTooLarge = "PAYLOAD_TOO_LARGE";    // 413
inline constexpr std::string_view kRateLimited = "RATE_LIMITED";             // 429 + Retry-After
inline constexpr std::string_view kInternal = "INTERNAL_ERROR";              // 500
// 503 (+ Retry-After): database unreachable, work queue full, shutting down.
inline constexpr std::string_view kServiceUnavailable = "SERVICE_UNAVAILABLE";
// 503: no TURN secret or TURN URL is configured, so there is nothing to mint.
inline constexpr std::string_view kTurnNotConfigured = "TURN_NOT_CONFIGURED";
}  // namespace api_code

struct ApiError {
  int status = 500;
  std::string code;             // one of api_code
  std::string message;          // for people; never holds a secret
  std::string field;            // VALIDATION_ERROR: the offending request field
  int retry_after_seconds = 0;  // > 0: sent as Retry-After

  // 400 VALIDATION_ERROR naming `field` ("email", "password", "q", ...).
  // Any status and code, for answers the named factories do not cover.
  static ApiError Of(int status, std::string_view code, std::string message);
  static ApiError Validation(std::string field, std::string message);
  static ApiError InvalidJson();
  static ApiError Unauthorized(std::string_view code, std::string message);
  static ApiError NotFound(std::string message);
  // 403 ORIGIN_NOT_ALLOWED (CORS) and 413 PAYLOAD_TOO_LARGE, wherever the
  // request is refused.
  static ApiError OriginNotAllowed();
  static ApiError PayloadTooLarge();
  static ApiError RateLimited(int retry_after_seconds);
  // 503 SERVICE_UNAVAILABLE with Retry-After: 1.
  static ApiError Unavailable(std::string message);
  static ApiError Internal();
};

// Maps a sql::Store error to the answer (sql/store.h lists the codes):
// kUnavailable / kResourceExhausted -> 503, kNotFound -> 404, kAlreadyExists
// -> 409 EMAIL_TAKEN or HANDLE_TAKEN, kInvalidArgument ("field: why") ->
// 400 naming the field, anything else -> 500 (logged here, never sent).
ApiError FromStoreError(const base::Error& error);

// The envelopes. JSON with "Cache-Control: no-store" (answers carry tokens
// and personal data); 401 answers add "WWW-Authenticate: Bearer" (RFC 6750
// section 3).
net::HttpResponse SuccessResponse(int status, std::string_view message, nlohmann::json data);
net::HttpResponse ErrorResponse(const ApiError& error);

}  // namespace turnkey::signal
