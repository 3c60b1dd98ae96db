// Router: maps method + path to an HttpHandler, with path parameters and
// prefix routes, and answers 404 / 405 (with Allow) itself.
//
// Patterns start with '/' and are split at '/':
//   "/api/contacts"          a static path
//   "/api/contacts/:userId"  ":name" matches one non-empty segment; the
//                            handler reads request.Param("userId"), decoded
//   "/socket.io/*"           a final "*" matches the rest of the path, zero
//                            or more segments; Param("*") is that rest, raw
// The path is split at '/' before anything is decoded, so an escaped '/'
// ("%2F") never makes a segment. A static segment matches in the form RFC
// 3986 section 6.2.2 compares URIs in: an escaped unreserved character is
// that character ("/api/%75sers" is "/api/users"), other escapes stay
// escaped (their hex digits in any case). Matching is case-sensitive
// otherwise; a '%' not followed by two hex digits anywhere in the path is
// 400; one trailing '/' on the request path is ignored ("/a/" matches "/a"). When
// several patterns match, the most specific wins, segment by segment:
// static beats ":param" beats "*", and an exact pattern beats a "*" that
// matches nothing ("/a" beats "/a/*" for "/a").
//
// Methods: an exact method ("GET") or "*" for any. HEAD falls back to the
// GET route (the server drops the body). A path that matches some route but
// not for this method gets 405 with Allow (RFC 9110 section 15.5.6), or for
// OPTIONS a 204 with Allow. Nothing matching is 404.
//
// Build the table first, then use it from the loop thread; Find and
// Dispatch are const and may be called concurrently once no routes are added.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "net/http_request.h"
#include "net/http_response.h"
#include "net/http_server.h"

namespace turnkey::net {

class Router {
 public:
  enum class MatchResult {
    kFound,             // `handler` and `params` are set
    kNotFound,          // no pattern matches the path
    kMethodNotAllowed,  // patterns match, none for this method; `allow` is set
    kBadRequest,        // a malformed percent-escape in the path (400)
  };
  struct Match {
    MatchResult result = MatchResult::kNotFound;
    // Points into the router; valid until the next Add().
    const HttpHandler* handler = nullptr;
    // The matched route's pattern as added ("/api/contacts/:userId"); empty
    // unless found. Points into the router; valid until the next Add().
    std::string_view pattern;
    std::vector<std::pair<std::string, std::string>> params;
    // "GET, HEAD, POST, OPTIONS": the methods the path supports.
    std::string allow;
  };
  // Builds the body of the router's own 404 and 405 answers; the router adds
  // the Allow header to 405s.
  using ErrorResponse = std::function<HttpResponse(const HttpRequest& request, int status)>;

  // Adds a route. Fails on a pattern that does not start with '/', has an
  // empty ":" name, or a "*" that is not the last segment; or an empty method.
  [[nodiscard]] base::Status Add(std::string_view method, std::string_view pattern,
                                 HttpHandler handler);

  // Finds the route for `method` and the raw `path` (HttpRequest::path).
  Match Find(std::string_view method, std::string_view path) const;

  // Finds the route and calls its handler with request.params set, or
  // answers 400 / 404 / 405 / OPTIONS itself.
  void Dispatch(HttpRequest request, Responder responder) const;

  // Replaces the default plain-text 404/405 bodies (e.g. with JSON).
  void set_error_response(ErrorResponse error_response) {
    error_response_ = std::move(error_response);
  }
  // Runs in Dispatch before the handler (or the router's own answer) with
  // the matched pattern, empty when none matched: one place to label the
  // request, e.g. for Responder::OnAnswer.
  using OnRoute = std::function<void(std::string_view pattern, Responder& responder)>;
  void set_on_route(OnRoute on_route) { on_route_ = std::move(on_route); }

  // An HttpHandler that dispatches through this router; the router must
  // outlive the server using it.
  HttpHandler AsHandler() const;

 private:
  enum class SegmentKind { kStatic, kParam, kRest };
  struct Segment {
    SegmentKind kind;
    std::string text;  // the static text or the parameter name
  };
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<Segment> segments;
    // Specificity, compared lexicographically (larger wins).
    std::vector<int> rank;
    HttpHandler handler;
  };

  // Matches the request path (`path`, split into `parts`, which are also
  // given normalized for static segments) against `route`; fills `params`
  // on success. Every escape in `parts` is well-formed.
  static bool MatchPath(const Route& route, std::string_view path,
                        const std::vector<std::string_view>& parts,
                        const std::vector<std::string_view>& normalized_parts,
                        std::vector<std::pair<std::string, std::string>>& params);

  std::vector<Route> routes_;
  ErrorResponse error_response_;
  OnRoute on_route_;
};

}  // namespace turnkey::net
