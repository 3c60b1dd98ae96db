// Cors: the CORS policy of an HTTP API (Fetch standard, "CORS protocol").
//
// Origins are matched exactly ("https://app.example.org", i.e.
// scheme://host[:port] as browsers send it), or any origin when the list
// holds "*". A request whose Origin names this server itself (same host as
// the Host header, and the Host's port, or the scheme's default port when
// Host has none) is same-origin and needs no CORS headers; the scheme is
// not compared, so a TLS-terminating proxy in front does not break it.
//
// Callers: answer preflights with Preflight(); for other requests call
// Check() first and answer 403 for kDenied before doing anything with side
// effects, then AddHeaders() to the response. A denied origin never gets
// CORS headers, so the browser also hides the response from the page. The
// first requests from each refused origin are logged (at most
// kRefusedOriginsLogged origins per allow list), so an operator sees which origin
// to allow.
//
// The policy is immutable after construction; safe to share between threads.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "net/http_request.h"
#include "net/http_response.h"

namespace turnkey::net {

struct CorsOptions {
  // Exact Origin values allowed cross-origin; "*" allows every origin (then
  // the answer is "Access-Control-Allow-Origin: *" without credentials, as
  // the Fetch standard requires). Empty = same-origin only. Default empty.
  std::vector<std::string> allowed_origins;
  // Access-Control-Allow-Methods of preflight answers.
  std::vector<std::string> allowed_methods = {"GET",   "HEAD",   "POST",   "PUT",
                                              "PATCH", "DELETE", "OPTIONS"};
  // Access-Control-Allow-Credentials: true for listed origins. Default on.
  bool allow_credentials = true;
  // Access-Control-Max-Age of preflight answers. Default 600 s.
  std::chrono::seconds max_age{600};
};

enum class CorsVerdict {
  kNotCors,     // no Origin header: not a browser cross-origin request
  kSameOrigin,  // Origin is this server; no CORS headers needed
  kAllowed,     // an allowed cross-origin request
  kDenied,      // cross-origin from an origin not allowed: answer 403
};

class Cors {
 public:
  explicit Cors(CorsOptions options);

  CorsVerdict Check(const HttpRequest& request) const;

  // OPTIONS with Origin and Access-Control-Request-Method.
  static bool IsPreflight(const HttpRequest& request);

  // For a response to an actual (non-preflight) request: adds
  // Access-Control-Allow-Origin (and -Credentials) when allowed, with
  // Access-Control-Expose-Headers naming the response's Retry-After and
  // WWW-Authenticate if it has them, and "Vary: Origin" whenever the answer
  // depends on the origin.
  void AddHeaders(const HttpRequest& request, HttpResponse& response) const;

  // The answer to a preflight: 204 with Allow-Origin (the origin echoed),
  // Allow-Methods, Allow-Credentials, Max-Age, Allow-Headers naming the
  // headers the request asked for (Access-Control-Request-Headers, when it
  // is a list of header names; omitted otherwise), and "Vary: Origin,
  // Access-Control-Request-Headers" when allowed (or same-origin); 403
  // without CORS headers when not. Every header may be asked for, as the
  // reference's cors middleware allows by default: what protects the API is
  // the origin check and the bearer token, not the header names.
  HttpResponse Preflight(const HttpRequest& request) const;

  bool allows_any_origin() const { return any_origin_; }

  static constexpr size_t kRefusedOriginsLogged = 16;

 private:
  // Logs `origin` the first time it is refused.
  void NoteRefused(std::string_view origin) const;

  // The refused origins logged so far; shared by copies and by every Cors
  // made from the same allow list while one of them lives (RefusedFor).
  struct Refused {
    std::mutex mutex;
    std::unordered_set<std::string> logged;
  };
  static std::shared_ptr<Refused> RefusedFor(const std::vector<std::string>& allowed);
  std::shared_ptr<Refused> refused_;
  CorsOptions options_;
  bool any_origin_ = false;
  std::string methods_;  // joined for the header
};

}  // namespace turnkey::net
