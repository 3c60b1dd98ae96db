// Cors: allow list, "*" mode, same-origin detection, preflight answers.
#include "net/cors.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace turnkey::net {
namespace {

HttpRequest Request(const std::string& method, const std::string& host,
                    const std::string& origin = "") {
  HttpRequest request;
  request.method = method;
  request.path = "/api/contacts";
  request.headers.Add("Host", host);
  if (!origin.empty()) {
    request.headers.Add("Origin", origin);
  }
  return request;
}

HttpRequest Preflight(const std::string& origin) {
  HttpRequest request = Request("OPTIONS", "api.example.org", origin);
  request.headers.Add("Access-Control-Request-Method", "POST");
  request.headers.Add("Access-Control-Request-Headers", "authorization, content-type");
  return request;
}

CorsOptions ListOptions() {
  CorsOptions options;
  options.allowed_origins = {"https://app.example.org", "http://localhost:3000"};
  return options;
}

TEST(CorsTest, CheckAgainstTheAllowList) {
  Cors cors(ListOptions());
  struct Case {
    std::string host;
    std::string origin;
    CorsVerdict verdict;
  };
  const Case cases[] = {
      {"api.example.org", "", CorsVerdict::kNotCors},
      {"api.example.org", "https://app.example.org", CorsVerdict::kAllowed},
      {"api.example.org", "http://localhost:3000", CorsVerdict::kAllowed},
      {"api.example.org", "https://app.example.org:443", CorsVerdict::kDenied},
      {"api.example.org", "https://app.example.org/", CorsVerdict::kDenied},
      {"api.example.org", "https://APP.example.org", CorsVerdict::kDenied},
      {"api.example.org", "http://app.example.org", CorsVerdict::kDenied},
      {"api.example.org", "https://evil.example", CorsVerdict::kDenied},
      {"api.example.org", "null", CorsVerdict::kDenied},
      // Same origin: the page was served by this host.
      {"api.example.org", "https://api.example.org", CorsVerdict::kSameOrigin},
      {"api.example.org", "http://API.example.org", CorsVerdict::kSameOrigin},
      {"api.example.org:8443", "https://api.example.org:8443", CorsVerdict::kSameOrigin},
      {"api.example.org:8443", "https://api.example.org", CorsVerdict::kDenied},
      {"api.example.org", "https://api.example.org:8443", CorsVerdict::kDenied},
      {"[::1]:8080", "http://[::1]:8080", CorsVerdict::kSameOrigin},
      {"127.0.0.1:8080", "http://127.0.0.1:8081", CorsVerdict::kDenied},
      {"api.example.org", "https://user@api.example.org", CorsVerdict::kDenied},
      // Starscream (the Swift client's WebSocket) sends its ws/wss URL as the
      // Origin and a port in Host.
      {"api.example.org:443", "wss://api.example.org", CorsVerdict::kSameOrigin},
      {"api.example.org", "wss://api.example.org", CorsVerdict::kSameOrigin},
      {"api.example.org:80", "ws://api.example.org", CorsVerdict::kSameOrigin},
      {"api.example.org:8080", "ws://api.example.org:8080", CorsVerdict::kSameOrigin},
      {"api.example.org:443", "ws://api.example.org", CorsVerdict::kDenied},
      {"api.example.org", "wss://evil.example", CorsVerdict::kDenied},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(cors.Check(Request("POST", c.host, c.origin)), c.verdict)
        << c.host << " / " << c.origin;
  }
}

TEST(CorsTest, EmptyListIsSameOriginOnly) {
  Cors cors(CorsOptions{});
  EXPECT_EQ(cors.Check(Request("POST", "h:1", "http://h:1")), CorsVerdict::kSameOrigin);
  EXPECT_EQ(cors.Check(Request("POST", "h:1", "http://other:1")), CorsVerdict::kDenied);
}

TEST(CorsTest, OverTlsOnlyASecureOriginIsTheSame) {
  // RFC 6454 section 4: the scheme is part of the origin. A request that
  // came over TLS was not sent by a page served over plain http; a plain one
  // may have passed a proxy that terminated TLS.
  Cors cors(CorsOptions{});
  struct Case {
    bool tls;
    std::string origin;
    CorsVerdict verdict;
  };
  const Case cases[] = {
      {true, "https://h:8443", CorsVerdict::kSameOrigin},
      {true, "wss://h:8443", CorsVerdict::kSameOrigin},
      {true, "HTTPS://h:8443", CorsVerdict::kSameOrigin},
      {true, "http://h:8443", CorsVerdict::kDenied},
      {true, "ws://h:8443", CorsVerdict::kDenied},
      {false, "http://h:8443", CorsVerdict::kSameOrigin},
      {false, "https://h:8443", CorsVerdict::kSameOrigin},
  };
  for (const Case& c : cases) {
    HttpRequest request = Request("GET", "h:8443", c.origin);
    request.tls = c.tls;
    EXPECT_EQ(cors.Check(request), c.verdict) << c.tls << " / " << c.origin;
  }
}

TEST(CorsTest, AllowedPreflightEchoesTheOrigin) {
  Cors cors(ListOptions());
  HttpRequest request = Preflight("https://app.example.org");
  ASSERT_TRUE(Cors::IsPreflight(request));
  HttpResponse response = cors.Preflight(request);
  EXPECT_EQ(response.status, 204);
  EXPECT_EQ(response.headers.Get("Access-Control-Allow-Origin"), "https://app.example.org");
  EXPECT_EQ(response.headers.Get("Vary"), "Origin, Access-Control-Request-Headers");
  EXPECT_EQ(response.headers.Get("Access-Control-Allow-Credentials"), "true");
  EXPECT_TRUE(response.headers.HasToken("Access-Control-Allow-Methods", "POST"));
  EXPECT_TRUE(response.headers.HasToken("Access-Control-Allow-Methods", "DELETE"));
  EXPECT_EQ(response.headers.Get("Access-Control-Allow-Headers"), "authorization, content-type");
  EXPECT_EQ(response.headers.Get("Access-Control-Max-Age"), "600");
}

TEST(CorsTest, PreflightAllowsTheHeadersItAsksFor) {
  // socketio.md section 1.11: Allow-Headers reflects Access-Control-Request-
  // Headers (a client's extraHeaders), as the reference's cors middleware.
  struct Case {
    std::vector<std::string> asked;  // one field per element; empty = none sent
    std::optional<std::string> allowed;
  };
  const Case cases[] = {
      {{"x-auth-token"}, "x-auth-token"},
      {{"authorization,my-custom-header"}, "authorization, my-custom-header"},
      {{" Authorization , , X-Trace-Id "}, "Authorization, X-Trace-Id"},
      {{"a", "b,c"}, "a, b, c"},  // several fields are one list
      {{"x_weird!#$%&'*+-.^_`|~9"}, "x_weird!#$%&'*+-.^_`|~9"},
      {{}, std::nullopt},
      {{""}, std::nullopt},
      {{" , "}, std::nullopt},
      // Not a list of header names: nothing is allowed (the browser then
      // fails the preflight), and nothing of it is echoed.
      {{"x auth"}, std::nullopt},
      {{"x-a,(x)"}, std::nullopt},
      {{"x-a", "x:b"}, std::nullopt},
      {{"\"x\""}, std::nullopt},
      {{"x-a;q=1"}, std::nullopt},
  };
  for (const std::vector<std::string>& origins :
       {std::vector<std::string>{"https://app.example.org"}, std::vector<std::string>{"*"}}) {
    CorsOptions options;
    options.allowed_origins = origins;
    Cors cors(options);
    for (const Case& c : cases) {
      HttpRequest request = Request("OPTIONS", "api.example.org", "https://app.example.org");
      request.headers.Add("Access-Control-Request-Method", "GET");
      for (const std::string& field : c.asked) {
        request.headers.Add("Access-Control-Request-Headers", field);
      }
      HttpResponse response = cors.Preflight(request);
      const std::string label = origins[0] + " / " + (c.asked.empty() ? "-" : c.asked[0]);
      EXPECT_EQ(response.status, 204) << label;
      std::optional<std::string> allowed;
      if (auto value = response.headers.Get("Access-Control-Allow-Headers")) {
        allowed = std::string(*value);
      }
      EXPECT_EQ(allowed, c.allowed) << label;
      EXPECT_EQ(response.headers.Get("Vary"), "Origin, Access-Control-Request-Headers") << label;
    }
  }
  // A refused origin learns nothing, whatever it asks for.
  Cors cors(ListOptions());
  HttpRequest evil = Preflight("https://evil.example");
  evil.headers.Set("Access-Control-Request-Headers", "x-auth-token");
  HttpResponse denied = cors.Preflight(evil);
  EXPECT_EQ(denied.status, 403);
  EXPECT_FALSE(denied.headers.Has("Access-Control-Allow-Headers"));
  EXPECT_EQ(denied.headers.Get("Vary"), "Origin");
}

TEST(CorsTest, DeniedPreflightHasNoCorsHeaders) {
  Cors cors(ListOptions());
  HttpResponse response = cors.Preflight(Preflight("https://evil.example"));
  EXPECT_EQ(response.status, 403);
  for (const auto& [name, value] : response.headers) {
    EXPECT_NE(name.rfind("Access-Control-", 0), 0u) << name;
  }
  EXPECT_EQ(response.headers.Get("Vary"), "Origin");
}

TEST(CorsTest, IsPreflightNeedsOriginAndRequestMethod) {
  HttpRequest plain_options = Request("OPTIONS", "h", "https://app.example.org");
  EXPECT_FALSE(Cors::IsPreflight(plain_options));
  HttpRequest no_origin = Request("OPTIONS", "h");
  no_origin.headers.Add("Access-Control-Request-Method", "GET");
  EXPECT_FALSE(Cors::IsPreflight(no_origin));
  HttpRequest post = Preflight("https://app.example.org");
  post.method = "POST";
  EXPECT_FALSE(Cors::IsPreflight(post));
}

TEST(CorsTest, AddHeadersOnlyForAllowedOrigins) {
  Cors cors(ListOptions());
  HttpResponse allowed = HttpResponse::Text(200, "{}");
  allowed.headers.Add("Vary", "Accept-Encoding");
  cors.AddHeaders(Request("GET", "api.example.org", "http://localhost:3000"), allowed);
  EXPECT_EQ(allowed.headers.Get("Access-Control-Allow-Origin"), "http://localhost:3000");
  EXPECT_EQ(allowed.headers.Get("Access-Control-Allow-Credentials"), "true");
  EXPECT_EQ(allowed.headers.Get("Vary"), "Accept-Encoding, Origin");

  HttpResponse denied = HttpResponse::Text(200, "{}");
  cors.AddHeaders(Request("GET", "api.example.org", "https://evil.example"), denied);
  EXPECT_FALSE(denied.headers.Has("Access-Control-Allow-Origin"));
  EXPECT_EQ(denied.headers.Get("Vary"), "Origin");

  HttpResponse same = HttpResponse::Text(200, "{}");
  cors.AddHeaders(Request("GET", "api.example.org", "https://api.example.org"), same);
  EXPECT_FALSE(same.headers.Has("Access-Control-Allow-Origin"));
}

TEST(CorsTest, RetryAfterAndWwwAuthenticateAreExposedToAllowedOrigins) {
  // Neither is CORS-safelisted: without Access-Control-Expose-Headers a
  // page on another origin cannot read how long to wait after a 429 or 503.
  for (const std::vector<std::string>& origins :
       {std::vector<std::string>{"http://localhost:3000"}, std::vector<std::string>{"*"}}) {
    CorsOptions options;
    options.allowed_origins = origins;
    Cors cors(options);
    HttpResponse limited = HttpResponse::Text(429, "{}");
    limited.headers.Set("Retry-After", "3");
    limited.headers.Set("WWW-Authenticate", "Bearer");
    cors.AddHeaders(Request("GET", "api.example.org", "http://localhost:3000"), limited);
    EXPECT_EQ(limited.headers.Get("Access-Control-Expose-Headers"), "Retry-After, WWW-Authenticate")
        << origins[0];

    HttpResponse plain = HttpResponse::Text(200, "{}");
    cors.AddHeaders(Request("GET", "api.example.org", "http://localhost:3000"), plain);
    EXPECT_FALSE(plain.headers.Has("Access-Control-Expose-Headers")) << origins[0];
  }
  Cors cors(ListOptions());
  HttpResponse denied = HttpResponse::Text(429, "{}");
  denied.headers.Set("Retry-After", "3");
  cors.AddHeaders(Request("GET", "api.example.org", "https://evil.example"), denied);
  EXPECT_FALSE(denied.headers.Has("Access-Control-Expose-Headers"));
}

TEST(CorsTest, WildcardModeAllowsAnyOriginWithoutCredentials) {
  CorsOptions options;
  options.allowed_origins = {"*"};
  Cors cors(options);
  EXPECT_TRUE(cors.allows_any_origin());
  EXPECT_EQ(cors.Check(Request("GET", "h", "https://anything.example")), CorsVerdict::kAllowed);
  HttpResponse response = HttpResponse::Text(200, "x");
  cors.AddHeaders(Request("GET", "h", "https://anything.example"), response);
  EXPECT_EQ(response.headers.Get("Access-Control-Allow-Origin"), "*");
  EXPECT_FALSE(response.headers.Has("Access-Control-Allow-Credentials"));
  HttpResponse preflight = cors.Preflight(Preflight("https://anything.example"));
  EXPECT_EQ(preflight.status, 204);
  EXPECT_EQ(preflight.headers.Get("Access-Control-Allow-Origin"), "*");
  EXPECT_FALSE(preflight.headers.Has("Access-Control-Allow-Credentials"));
  EXPECT_TRUE(preflight.headers.Has("Access-Control-Allow-Methods"));
  // Every answer says "*", also to a request without Origin or from the same origin.
  for (const char* origin : {"", "https://h"}) {
    HttpResponse plain = HttpResponse::Text(200, "x");
    cors.AddHeaders(Request("GET", "h", origin), plain);
    EXPECT_EQ(plain.headers.Get("Access-Control-Allow-Origin"), "*") << origin;
  }
}

TEST(CorsTest, CredentialsCanBeTurnedOff) {
  CorsOptions options = ListOptions();
  options.allow_credentials = false;
  options.max_age = std::chrono::seconds(60);
  Cors cors(options);
  HttpResponse response = cors.Preflight(Preflight("https://app.example.org"));
  EXPECT_FALSE(response.headers.Has("Access-Control-Allow-Credentials"));
  EXPECT_EQ(response.headers.Get("Access-Control-Max-Age"), "60");
}

}  // namespace
}  // namespace turnkey::net
