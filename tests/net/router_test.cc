// Router: patterns, parameters, precedence, prefix routes, 404 vs 405.
#include "net/router.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace turnkey::net {
namespace {

using MatchResult = Router::MatchResult;

TEST(RouterAddTest, RejectsBadPatterns) {
  Router router;
  auto handler = [](HttpRequest, Responder) {};
  EXPECT_FALSE(router.Add("GET", "no-slash", handler).has_value());
  EXPECT_FALSE(router.Add("GET", "/a/:", handler).has_value());
  EXPECT_FALSE(router.Add("GET", "/a/*/b", handler).has_value());
  EXPECT_FALSE(router.Add("", "/a", handler).has_value());
  EXPECT_FALSE(router.Add("GET", "/a", nullptr).has_value());
  EXPECT_TRUE(router.Add("GET", "/", handler).has_value());
  EXPECT_TRUE(router.Add("*", "/socket.io/*", handler).has_value());
}

TEST(RouterMatchTest, ParamsArePercentDecoded) {
  Router router;
  ASSERT_TRUE(router.Add("GET", "/api/contacts/:userId", [](HttpRequest, Responder) {}));
  ASSERT_TRUE(
      router.Add("DELETE", "/api/calls/history/:callId/x/:n", [](HttpRequest, Responder) {}));
  auto match = router.Find("GET", "/api/contacts/u%2F1%20x");
  ASSERT_EQ(match.result, MatchResult::kFound);
  ASSERT_EQ(match.params.size(), 1u);
  EXPECT_EQ(match.params[0], (std::pair<std::string, std::string>{"userId", "u/1 x"}));
  auto two = router.Find("DELETE", "/api/calls/history/c1/x/7");
  ASSERT_EQ(two.result, MatchResult::kFound);
  ASSERT_EQ(two.params.size(), 2u);
  EXPECT_EQ(two.params[0].second, "c1");
  EXPECT_EQ(two.params[1].second, "7");
  // Decoded after the split: an escaped '/' stays in the one segment.
  auto slash = router.Find("GET", "/api/contacts/a%2fb");
  ASSERT_EQ(slash.result, MatchResult::kFound);
  EXPECT_EQ(slash.params[0].second, "a/b");
  EXPECT_EQ(router.Find("GET", "/api/contacts/%6de").params[0].second, "me");
  // An empty segment does not match a parameter.
  EXPECT_EQ(router.Find("GET", "/api/contacts/").result, MatchResult::kNotFound);
  EXPECT_EQ(router.Find("GET", "/api/contacts/a/b").result, MatchResult::kNotFound);
}

TEST(RouterMatchTest, BrokenEscapesAreBadRequests) {
  // RFC 3986 section 2.1: '%' starts a pct-encoded triplet; a path with
  // anything else after it is not a valid request-target (400), whichever
  // segment it is in.
  Router router;
  ASSERT_TRUE(router.Add("GET", "/api/contacts/:userId", [](HttpRequest, Responder) {}));
  ASSERT_TRUE(router.Add("GET", "/api/users/me", [](HttpRequest, Responder) {}));
  ASSERT_TRUE(router.Add("*", "/socket.io/*", [](HttpRequest, Responder) {}));
  for (const char* path :
       {"/api/contacts/%zz", "/api/contacts/%2", "/api/contacts/%", "/api/contacts/a%g0",
        "/api/%zz/me", "/api/users/me%", "/%/users/me", "/nothing/%1", "/socket.io/%x"}) {
    EXPECT_EQ(router.Find("GET", path).result, MatchResult::kBadRequest) << path;
  }
  int status = 0;
  router.set_error_response([&status](const HttpRequest&, int code) {
    status = code;
    return HttpResponse::Error(code);
  });
  HttpRequest request;
  request.method = "GET";
  request.path = "/api/contacts/%2";
  router.Dispatch(std::move(request), Responder{});
  EXPECT_EQ(status, 400);
  // A pattern with a broken escape is refused when added.
  EXPECT_FALSE(router.Add("GET", "/a/%2", [](HttpRequest, Responder) {}).has_value());
}

TEST(RouterMatchTest, StaticSegmentsCompareAsRfc3986Normalizes) {
  // RFC 3986 section 6.2.2.2: an escaped unreserved character is the same
  // URI as the character itself. Other escapes are not their characters
  // (section 2.2): "%2F" is not a '/', "%3A" not a ':'.
  Router router;
  int chosen = 0;
  auto tag = [&chosen](int n) { return [&chosen, n](HttpRequest, Responder) { chosen = n; }; };
  ASSERT_TRUE(router.Add("GET", "/api/users/me", tag(1)));
  ASSERT_TRUE(router.Add("GET", "/api/users/:id", tag(2)));
  ASSERT_TRUE(router.Add("GET", "/v%7e1/a%3ab", tag(3)));
  auto run = [&](const std::string& path) {
    chosen = 0;
    auto match = router.Find("GET", path);
    if (match.result == MatchResult::kFound) {
      (*match.handler)(HttpRequest{}, Responder{});
    }
    return chosen;
  };
  EXPECT_EQ(run("/api/users/%6de"), 1);
  EXPECT_EQ(run("/api/users/%6D%65"), 1);
  EXPECT_EQ(run("/api/%75sers/me"), 1);
  EXPECT_EQ(run("/%61%70%69/users/me/"), 1);
  EXPECT_EQ(run("/api/users/%4De"), 2);  // "Me": case still matters
  EXPECT_EQ(run("/api%2Fusers/me"), 0);
  EXPECT_EQ(run("/api/users%2fme"), 0);
  // The pattern is normalized the same way: "%7e" is '~'; "%3a" stays an
  // escape, with its hex digits in either case.
  EXPECT_EQ(run("/v~1/a%3Ab"), 3);
  EXPECT_EQ(run("/v%7E1/a%3ab"), 3);
  EXPECT_EQ(run("/v~1/a:b"), 0);
}

TEST(RouterMatchTest, MostSpecificRouteWins) {
  Router router;
  int chosen = 0;
  auto tag = [&chosen](int n) { return [&chosen, n](HttpRequest, Responder) { chosen = n; }; };
  ASSERT_TRUE(router.Add("GET", "/api/users/:id", tag(1)));
  ASSERT_TRUE(router.Add("GET", "/api/users/me", tag(2)));
  ASSERT_TRUE(router.Add("GET", "/api/*", tag(3)));
  ASSERT_TRUE(router.Add("GET", "/api", tag(4)));
  ASSERT_TRUE(router.Add("*", "/api/users/:id/avatar", tag(5)));
  auto run = [&](const std::string& method, const std::string& path) {
    chosen = 0;
    auto match = router.Find(method, path);
    if (match.result == MatchResult::kFound) {
      (*match.handler)(HttpRequest{}, Responder{});
    }
    return chosen;
  };
  EXPECT_EQ(run("GET", "/api/users/me"), 2);
  EXPECT_EQ(run("GET", "/api/users/me/"), 2);
  EXPECT_EQ(run("GET", "/api/users/42"), 1);
  EXPECT_EQ(run("GET", "/api/other/thing"), 3);
  EXPECT_EQ(run("GET", "/api"), 4);
  EXPECT_EQ(run("GET", "/api/"), 4);
  EXPECT_EQ(run("PUT", "/api/users/42/avatar"), 5);
  EXPECT_EQ(run("GET", "/API"), 0);
}

TEST(RouterMatchTest, PrefixRouteCapturesTheRawRest) {
  Router router;
  ASSERT_TRUE(router.Add("*", "/socket.io/*", [](HttpRequest, Responder) {}));
  auto root = router.Find("GET", "/socket.io/");
  ASSERT_EQ(root.result, MatchResult::kFound);
  EXPECT_EQ(root.params[0], (std::pair<std::string, std::string>{"*", ""}));
  auto bare = router.Find("POST", "/socket.io");
  ASSERT_EQ(bare.result, MatchResult::kFound);
  auto deep = router.Find("POST", "/socket.io/a%20b/c/");
  ASSERT_EQ(deep.result, MatchResult::kFound);
  EXPECT_EQ(deep.params[0].second, "a%20b/c/");
  EXPECT_EQ(router.Find("GET", "/socket.iox/").result, MatchResult::kNotFound);
}

TEST(RouterMatchTest, NotFoundVersusMethodNotAllowed) {
  Router router;
  auto h = [](HttpRequest, Responder) {};
  ASSERT_TRUE(router.Add("GET", "/api/contacts", h));
  ASSERT_TRUE(router.Add("POST", "/api/contacts", h));
  ASSERT_TRUE(router.Add("DELETE", "/api/contacts/:userId", h));
  ASSERT_TRUE(router.Add("POST", "/api/contacts/sync", h));
  EXPECT_EQ(router.Find("GET", "/nothing").result, MatchResult::kNotFound);
  auto put = router.Find("PUT", "/api/contacts");
  ASSERT_EQ(put.result, MatchResult::kMethodNotAllowed);
  EXPECT_EQ(put.allow, "GET, POST, HEAD, OPTIONS");
  auto get_sync = router.Find("GET", "/api/contacts/sync");
  ASSERT_EQ(get_sync.result, MatchResult::kMethodNotAllowed);
  EXPECT_EQ(get_sync.allow, "DELETE, POST, OPTIONS");
  // The parameter route still serves DELETE on the static path.
  EXPECT_EQ(router.Find("DELETE", "/api/contacts/sync").result, MatchResult::kFound);
}

TEST(RouterMatchTest, DispatchReportsTheMatchedPatternFirst) {
  Router router;
  std::vector<std::string> seen;
  ASSERT_TRUE(router.Add("GET", "/api/contacts/:userId",
                         [&seen](HttpRequest, Responder) { seen.push_back("handler"); }));
  ASSERT_TRUE(router.Add("*", "/socket.io/*", [](HttpRequest, Responder) {}));
  router.set_on_route([&seen](std::string_view pattern, Responder&) {
    seen.push_back("route " + std::string(pattern));
  });
  auto dispatch = [&router](std::string method, std::string path) {
    HttpRequest request;
    request.method = std::move(method);
    request.path = std::move(path);
    router.Dispatch(std::move(request), Responder{});
  };
  dispatch("GET", "/api/contacts/u1");
  dispatch("POST", "/socket.io/x");
  dispatch("GET", "/nothing");          // 404
  dispatch("PUT", "/api/contacts/u1");  // 405
  EXPECT_EQ(seen, (std::vector<std::string>{"route /api/contacts/:userId", "handler",
                                            "route /socket.io/*", "route ", "route "}));
  EXPECT_EQ(router.Find("GET", "/api/contacts/u2").pattern, "/api/contacts/:userId");
  EXPECT_EQ(router.Find("GET", "/nothing").pattern, "");
}

TEST(RouterMatchTest, HeadFallsBackToGetUnlessItHasItsOwnRoute) {
  Router router;
  int chosen = 0;
  ASSERT_TRUE(router.Add("GET", "/a", [&chosen](HttpRequest, Responder) { chosen = 1; }));
  ASSERT_TRUE(router.Add("GET", "/b", [&chosen](HttpRequest, Responder) { chosen = 2; }));
  ASSERT_TRUE(router.Add("HEAD", "/b", [&chosen](HttpRequest, Responder) { chosen = 3; }));
  auto a = router.Find("HEAD", "/a");
  ASSERT_EQ(a.result, MatchResult::kFound);
  (*a.handler)(HttpRequest{}, Responder{});
  EXPECT_EQ(chosen, 1);
  auto b = router.Find("HEAD", "/b");
  ASSERT_EQ(b.result, MatchResult::kFound);
  (*b.handler)(HttpRequest{}, Responder{});
  EXPECT_EQ(chosen, 3);
}

}  // namespace
}  // namespace turnkey::net
