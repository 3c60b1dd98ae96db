#include "net/cors.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "base/log.h"

namespace turnkey::net {

namespace {

struct HostPort {
  std::string_view host;
  std::optional<uint16_t> port;
};

std::optional<uint16_t> ParsePort(std::string_view text) {
  if (text.empty() || text.size() > 5) {
    return std::nullopt;
  }
  uint32_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value > 65535) {
    return std::nullopt;
  }
  return static_cast<uint16_t>(value);
}

// "host", "host:port", "[v6]", "[v6]:port".
std::optional<HostPort> ParseHostPort(std::string_view text) {
  HostPort out;
  std::string_view port_text;
  bool has_port = false;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) {
      return std::nullopt;
    }
    out.host = text.substr(0, close + 1);
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        return std::nullopt;
      }
      has_port = true;
      port_text = rest.substr(1);
    }
  } else {
    size_t colon = text.rfind(':');
    out.host = text.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = text.substr(colon + 1);
    }
  }
  if (out.host.empty()) {
    return std::nullopt;
  }
  if (has_port) {
    out.port = ParsePort(port_text);
    if (!out.port) {
      return std::nullopt;
    }
  }
  return out;
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) {
      out.append(", ");
    }
    out.append(item);
  }
  return out;
}

// RFC 6454 section 4 reduced to what browsers send: "scheme://host[:port]".
// The scheme counts only for a request that came over TLS, which a page
// served over plain http (or an http origin at all) cannot share. A plain
// request may come from a proxy that terminated TLS, so there both count.
bool IsSameOrigin(std::string_view origin, std::string_view host_header, bool tls) {
  size_t separator = origin.find("://");
  if (separator == std::string_view::npos) {
    return false;
  }
  std::string_view scheme = origin.substr(0, separator);
  if (tls && !EqualsIgnoreCase(scheme, "https") && !EqualsIgnoreCase(scheme, "wss")) {
    return false;
  }
  std::string_view authority = origin.substr(separator + 3);
  if (authority.find_first_of("/?#@") != std::string_view::npos) {
    return false;
  }
  auto origin_host = ParseHostPort(authority);
  auto request_host = ParseHostPort(host_header);
  if (!origin_host || !request_host || !EqualsIgnoreCase(origin_host->host, request_host->host)) {
    return false;
  }
  // WebSocket clients outside browsers (Starscream, under the Swift
  // Socket.IO client) send an Origin made from the ws:// or wss:// URL they
  // connect to, with the ports of http and https (RFC 6455 section 3).
  std::optional<uint16_t> default_port;
  if (EqualsIgnoreCase(scheme, "http") || EqualsIgnoreCase(scheme, "ws")) {
    default_port = 80;
  } else if (EqualsIgnoreCase(scheme, "https") || EqualsIgnoreCase(scheme, "wss")) {
    default_port = 443;
  }
  std::optional<uint16_t> origin_port = origin_host->port ? origin_host->port : default_port;
  if (!origin_port) {
    return false;
  }
  // Without a port in Host the browser used its scheme's default port; the
  // origin's port must then be a default one too.
  return request_host->port ? *origin_port == *request_host->port : origin_port == default_port;
}

// Adds `name` to Vary, keeping what is there (RFC 9110 section 12.5.5).
void AddVary(HttpResponse& response, std::string_view name) {
  if (response.headers.HasToken("Vary", name)) {
    return;
  }
  auto vary = response.headers.Get("Vary");
  response.headers.Set("Vary",
                       vary ? std::string(*vary) + ", " + std::string(name) : std::string(name));
}

void AddVaryOrigin(HttpResponse& response) { AddVary(response, "Origin"); }

// The header names of Access-Control-Request-Headers joined with ", ", or
// nullopt when it is absent, names nothing, or holds an element that is not
// a header name (RFC 9110 section 5.6.1 list of tokens; the Fetch standard
// sends lower-case names joined by ","). Echoing them back is safe: each is
// a token, so no CR, LF or separator goes into the answer.
std::optional<std::string> RequestedHeaders(const HttpRequest& request) {
  std::string names;
  const bool malformed = request.headers.AnyListElement(
      "Access-Control-Request-Headers", [&names](std::string_view element) {
        if (!IsHttpToken(element)) {
          return true;
        }
        names.append(names.empty() ? "" : ", ").append(element);
        return false;
      });
  if (malformed || names.empty()) {
    return std::nullopt;
  }
  return names;
}

}  // namespace

std::shared_ptr<Cors::Refused> Cors::RefusedFor(const std::vector<std::string>& allowed) {
  // One set per allow list in use: the REST API's Cors and Socket.IO's, made
  // apart from the same list, log a refused origin once between them; a
  // reload with another list starts afresh.
  static std::mutex mutex;
  static std::map<std::vector<std::string>, std::weak_ptr<Refused>> sets;
  std::lock_guard lock(mutex);
  std::erase_if(sets, [](const auto& entry) { return entry.second.expired(); });
  std::weak_ptr<Refused>& slot = sets[allowed];
  std::shared_ptr<Refused> set = slot.lock();
  if (!set) {
    set = std::make_shared<Refused>();
    slot = set;
  }
  return set;
}

Cors::Cors(CorsOptions options) : options_(std::move(options)) {
  refused_ = RefusedFor(options_.allowed_origins);
  any_origin_ = std::find(options_.allowed_origins.begin(), options_.allowed_origins.end(), "*") !=
                options_.allowed_origins.end();
  methods_ = Join(options_.allowed_methods);
}

CorsVerdict Cors::Check(const HttpRequest& request) const {
  auto origin = request.Header("Origin");
  if (!origin) {
    return CorsVerdict::kNotCors;
  }
  if (auto host = request.Header("Host"); host && IsSameOrigin(*origin, *host, request.tls)) {
    return CorsVerdict::kSameOrigin;
  }
  if (any_origin_) {
    return CorsVerdict::kAllowed;
  }
  for (const auto& allowed : options_.allowed_origins) {
    // Origins are compared as the browser serializes them (lower-case scheme
    // and host), so an exact comparison is the specified one.
    if (allowed == *origin) {
      return CorsVerdict::kAllowed;
    }
  }
  NoteRefused(*origin);
  return CorsVerdict::kDenied;
}

void Cors::NoteRefused(std::string_view origin) const {
  constexpr size_t kLongest = 200;  // of an origin logged
  {
    std::lock_guard lock(refused_->mutex);
    if (refused_->logged.size() >= kRefusedOriginsLogged ||
        !refused_->logged.emplace(origin.substr(0, kLongest)).second) {
      return;
    }
  }
  TK_LOG_INFO(
      "http: requests from Origin {:?} are refused (403): not in signal.allowed_origins (logged "
      "once per origin, for the first {})",
      origin.substr(0, kLongest), kRefusedOriginsLogged);
}

bool Cors::IsPreflight(const HttpRequest& request) {
  return request.method == "OPTIONS" && request.headers.Has("Origin") &&
         request.headers.Has("Access-Control-Request-Method");
}

void Cors::AddHeaders(const HttpRequest& request, HttpResponse& response) const {
  if (!any_origin_) {
    // The answer differs per origin, so shared caches must key on it.
    AddVaryOrigin(response);
  }
  if (Check(request) != CorsVerdict::kAllowed) {
    if (any_origin_) {
      // "*" answers every request alike (a request without Origin, or from
      // the same origin, too), as the reference's cors({origin: "*"}) does.
      response.headers.Set("Access-Control-Allow-Origin", "*");
    }
    return;
  }
  // Fetch standard, CORS-safelisted response-header names: a page on another
  // origin reads any other header only when it is exposed. Clients need
  // Retry-After (429, 503) and WWW-Authenticate (401).
  std::string exposed;
  for (std::string_view name : {"Retry-After", "WWW-Authenticate"}) {
    if (response.headers.Has(name)) {
      exposed.append(exposed.empty() ? "" : ", ").append(name);
    }
  }
  if (!exposed.empty()) {
    response.headers.Set("Access-Control-Expose-Headers", exposed);
  }
  if (any_origin_) {
    response.headers.Set("Access-Control-Allow-Origin", "*");
    return;
  }
  response.headers.Set("Access-Control-Allow-Origin", std::string(*request.Header("Origin")));
  if (options_.allow_credentials) {
    response.headers.Set("Access-Control-Allow-Credentials", "true");
  }
}

HttpResponse Cors::Preflight(const HttpRequest& request) const {
  CorsVerdict verdict = Check(request);
  if (verdict != CorsVerdict::kAllowed && verdict != CorsVerdict::kSameOrigin) {
    HttpResponse denied = HttpResponse::Error(403);
    if (!any_origin_) {
      AddVaryOrigin(denied);
    }
    return denied;
  }
  HttpResponse response = HttpResponse::Empty(204);
  // Even with "*" a same-origin preflight gets its origin echoed, so the
  // answer always depends on the origin; and on the header names asked for.
  AddVaryOrigin(response);
  AddVary(response, "Access-Control-Request-Headers");
  if (any_origin_ && verdict == CorsVerdict::kAllowed) {
    response.headers.Set("Access-Control-Allow-Origin", "*");
  } else {
    response.headers.Set("Access-Control-Allow-Origin", std::string(*request.Header("Origin")));
    if (options_.allow_credentials) {
      response.headers.Set("Access-Control-Allow-Credentials", "true");
    }
  }
  response.headers.Set("Access-Control-Allow-Methods", methods_);
  // Reflected, as the cors middleware does by default (socketio.md section
  // 1.11): a client's extraHeaders ("x-auth-token") pass the preflight.
  if (std::optional<std::string> requested = RequestedHeaders(request)) {
    response.headers.Set("Access-Control-Allow-Headers", std::move(*requested));
  }
  response.headers.Set("Access-Control-Max-Age", std::to_string(options_.max_age.count()));
  return response;
}

}  // namespace turnkey::net
