#include "net/router.h"

#include <algorithm>
#include <optional>

#include "base/bytes.h"

namespace turnkey::net {

namespace {

// Rank values per segment kind; kEnd closes a pattern without "*" so that an
// exact pattern outranks a "*" that matched nothing.
constexpr int kRankStatic = 3;
constexpr int kRankParam = 2;
constexpr int kRankEnd = 1;
constexpr int kRankRest = 0;

// The path's segments as views into `path`, after the leading '/' and
// without one trailing '/'. "/" has no segments.
std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> segments;
  if (path.empty() || path.front() != '/') {
    return segments;
  }
  path.remove_prefix(1);
  if (!path.empty() && path.back() == '/') {
    path.remove_suffix(1);
  }
  if (path.empty()) {
    return segments;
  }
  while (true) {
    size_t slash = path.find('/');
    segments.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) {
      break;
    }
    path.remove_prefix(slash + 1);
  }
  return segments;
}

void AppendAllow(std::string& allow, std::string_view method) {
  // A comma-separated list without duplicates.
  std::string_view rest = allow;
  while (!rest.empty()) {
    size_t comma = rest.find(", ");
    if (rest.substr(0, comma) == method) {
      return;
    }
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 2);
  }
  if (!allow.empty()) {
    allow.append(", ");
  }
  allow.append(method);
}

}  // namespace

base::Status Router::Add(std::string_view method, std::string_view pattern, HttpHandler handler) {
  if (method.empty()) {
    return base::InvalidArgument("route method is empty");
  }
  if (pattern.empty() || pattern.front() != '/') {
    return base::InvalidArgument("route pattern must start with '/': " + std::string(pattern));
  }
  if (!handler) {
    return base::InvalidArgument("route has no handler: " + std::string(pattern));
  }
  Route route;
  route.method = std::string(method);
  route.pattern = std::string(pattern);
  route.handler = std::move(handler);
  std::vector<std::string_view> parts = SplitPath(pattern);
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string_view part = parts[i];
    if (part == "*") {
      if (i + 1 != parts.size()) {
        return base::InvalidArgument("'*' must be the last segment: " + std::string(pattern));
      }
      route.segments.push_back({SegmentKind::kRest, "*"});
      route.rank.push_back(kRankRest);
    } else if (!part.empty() && part.front() == ':') {
      if (part.size() == 1) {
        return base::InvalidArgument("empty parameter name: " + std::string(pattern));
      }
      route.segments.push_back({SegmentKind::kParam, std::string(part.substr(1))});
      route.rank.push_back(kRankParam);
    } else {
      std::optional<std::string> normalized = base::PercentNormalize(part);
      if (!normalized) {
        return base::InvalidArgument("malformed percent-encoding: " + std::string(pattern));
      }
      route.segments.push_back({SegmentKind::kStatic, std::move(*normalized)});
      route.rank.push_back(kRankStatic);
    }
  }
  if (route.segments.empty() || route.segments.back().kind != SegmentKind::kRest) {
    route.rank.push_back(kRankEnd);
  }
  routes_.push_back(std::move(route));
  return base::Ok();
}

bool Router::MatchPath(const Route& route, std::string_view path,
                       const std::vector<std::string_view>& parts,
                       const std::vector<std::string_view>& normalized_parts,
                       std::vector<std::pair<std::string, std::string>>& params) {
  params.clear();
  size_t i = 0;
  for (const Segment& segment : route.segments) {
    if (segment.kind == SegmentKind::kRest) {
      std::string_view rest;
      if (i < parts.size()) {
        // From the start of this segment to the end of the path, raw.
        rest = path.substr(static_cast<size_t>(parts[i].data() - path.data()));
      }
      params.emplace_back("*", std::string(rest));
      return true;
    }
    if (i >= parts.size()) {
      return false;
    }
    if (segment.kind == SegmentKind::kStatic) {
      if (normalized_parts[i] != segment.text) {
        return false;
      }
    } else {
      if (parts[i].empty()) {
        return false;
      }
      // Decoded only now, after the split: an escaped '/' stays inside its
      // segment. Find() has checked every escape.
      params.emplace_back(segment.text, base::PercentDecode(parts[i]).value_or(""));
    }
    ++i;
  }
  return i == parts.size();
}

Router::Match Router::Find(std::string_view method, std::string_view path) const {
  Match match;
  const Route* best = nullptr;
  const Route* best_get = nullptr;  // HEAD falls back to GET
  std::vector<std::pair<std::string, std::string>> params;
  std::vector<std::pair<std::string, std::string>> best_params;
  std::vector<std::pair<std::string, std::string>> best_get_params;
  bool any_path_match = false;
  bool has_get = false;
  const std::vector<std::string_view> parts = SplitPath(path);
  // Static segments compare normalized (base::PercentNormalize); a path
  // without escapes, nearly every one, is its own normal form.
  const bool escaped = path.find('%') != std::string_view::npos;
  std::vector<std::string> normalized_storage;
  std::vector<std::string_view> normalized_views;
  if (escaped) {
    normalized_storage.reserve(parts.size());  // the views below stay valid
    for (std::string_view part : parts) {
      std::optional<std::string> normalized = base::PercentNormalize(part);
      if (!normalized) {
        match.result = MatchResult::kBadRequest;
        return match;
      }
      normalized_views.push_back(normalized_storage.emplace_back(std::move(*normalized)));
    }
  }
  const std::vector<std::string_view>& normalized_parts = escaped ? normalized_views : parts;
  for (const Route& route : routes_) {
    if (!MatchPath(route, path, parts, normalized_parts, params)) {
      continue;
    }
    any_path_match = true;
    if (route.method != "*") {
      AppendAllow(match.allow, route.method);
      has_get = has_get || route.method == "GET";
    }
    if (route.method == method || route.method == "*") {
      if (best == nullptr || route.rank > best->rank) {
        best = &route;
        best_params = params;
      }
    } else if (method == "HEAD" && route.method == "GET") {
      if (best_get == nullptr || route.rank > best_get->rank) {
        best_get = &route;
        best_get_params = params;
      }
    }
  }
  if (best == nullptr && best_get != nullptr) {
    best = best_get;
    best_params = std::move(best_get_params);
  }
  if (best != nullptr) {
    match.result = MatchResult::kFound;
    match.handler = &best->handler;
    match.pattern = best->pattern;
    match.params = std::move(best_params);
    match.allow.clear();
    return match;
  }
  if (!any_path_match) {
    match.allow.clear();
    return match;
  }
  if (has_get) {
    AppendAllow(match.allow, "HEAD");
  }
  AppendAllow(match.allow, "OPTIONS");
  match.result = MatchResult::kMethodNotAllowed;
  return match;
}

void Router::Dispatch(HttpRequest request, Responder responder) const {
  Match match = Find(request.method, request.path);
  if (on_route_) {
    on_route_(match.pattern, responder);
  }
  const auto error_response = [this](const HttpRequest& request, int status) {
    return error_response_ ? error_response_(request, status) : HttpResponse::Error(status);
  };
  switch (match.result) {
    case MatchResult::kFound:
      request.params = std::move(match.params);
      (*match.handler)(std::move(request), std::move(responder));
      return;
    case MatchResult::kNotFound:
      responder.Respond(error_response(request, 404));
      return;
    case MatchResult::kBadRequest:
      responder.Respond(error_response(request, 400));
      return;
    case MatchResult::kMethodNotAllowed: {
      HttpResponse response =
          request.method == "OPTIONS" ? HttpResponse::Empty(204) : error_response(request, 405);
      response.headers.Set("Allow", match.allow);
      responder.Respond(std::move(response));
      return;
    }
  }
}

HttpHandler Router::AsHandler() const {
  return [this](HttpRequest request, Responder responder) {
    Dispatch(std::move(request), std::move(responder));
  };
}

}  // namespace turnkey::net
