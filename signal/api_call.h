// ApiCall: one REST request of the account service in flight, from the
// router to its answer.
//
// It holds the request, the net::Responder and the CORS policy that was
// current when the request came in. Answering through it always adds the
// CORS headers (net/cors.h); the responder's observer counts the answer in
// turnkey_http_requests_total{route, code}. Move it into a work-queue done
// callback to answer later; an ApiCall dropped unanswered answers 500 (the
// Responder's rule).
//
// Threads: answer on the loop thread only; it may be moved (and destroyed)
// on any thread.
#pragma once

#include <cstdint>
#include <expected>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "net/cors.h"
#include "net/http_request.h"
#include "net/responder.h"
#include "signal/api_error.h"

namespace turnkey::signal {

// A verified access token.
struct AccessToken {
  std::string user_id;
  std::string token_id;    // jti
  int64_t expires_at = 0;  // unix seconds
  std::string session;     // sid: the login (refresh-token family); "" if none
};

class ApiCall {
 public:
  // `cors` may be null (no CORS headers). The answer is counted by the
  // responder's observer (SignalService::CountAnswer), not here.
  ApiCall(net::HttpRequest request, net::Responder responder,
          std::shared_ptr<const net::Cors> cors);
  ApiCall(ApiCall&&) noexcept = default;
  ApiCall& operator=(ApiCall&&) noexcept = default;
  ApiCall(const ApiCall&) = delete;
  ApiCall& operator=(const ApiCall&) = delete;

  const net::HttpRequest& request() const { return request_; }

  // The authenticated user's token (set by the router for routes that need
  // a bearer token; empty otherwise).
  const AccessToken& token() const { return token_; }
  const std::string& user_id() const { return token_.user_id; }
  void SetToken(AccessToken token) { token_ = std::move(token); }

  // The body as a JSON object; INVALID_JSON for anything else (a member
  // named twice too). An empty body is an empty object.
  std::expected<nlohmann::json, ApiError> JsonBody() const;

  // {success: true, message, data} with `status`.
  void Ok(nlohmann::json data, std::string_view message = "OK", int status = 200);
  void Fail(const ApiError& error);
  // Any response; CORS headers are added.
  void Respond(net::HttpResponse response);

  bool answered() const { return answered_; }

 private:
  net::HttpRequest request_;
  net::Responder responder_;
  std::shared_ptr<const net::Cors> cors_;
  AccessToken token_;
  bool answered_ = false;
};

// Reads an optional string member of a JSON object: nullopt when absent or
// null, VALIDATION_ERROR naming `name` when it is not a string.
std::expected<std::optional<std::string>, ApiError> OptionalString(const nlohmann::json& object,
                                                                   std::string_view name);
// OptionalString whose value, when present, must pass `check` (a rule of
// account_rules.h: nullopt when fine, else the problem): VALIDATION_ERROR
// naming `name` with that problem otherwise.
using FieldCheck = std::optional<std::string> (*)(std::string_view value);
std::expected<std::optional<std::string>, ApiError> OptionalChecked(const nlohmann::json& object,
                                                                    std::string_view name,
                                                                    FieldCheck check);
// An integer query parameter: `fallback` when absent, VALIDATION_ERROR
// naming it when it is not a decimal integer in [min, max].
std::expected<int, ApiError> IntQueryParam(const net::HttpRequest& request, std::string_view name,
                                           int fallback, int min, int max);
// Like OptionalString, but absent, null or "" is VALIDATION_ERROR
// ("<name> is required").
std::expected<std::string, ApiError> RequiredString(const nlohmann::json& object,
                                                    std::string_view name);

}  // namespace turnkey::signal
