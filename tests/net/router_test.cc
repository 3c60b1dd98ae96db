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
  // An empty segment or a broken escape does not match a parameter.
  EXPECT_EQ(router.Find("GET", "/api/contacts/").result, MatchResult::kNotFound);
  EXPECT_EQ(router.Find("GET", "/api/contacts/%zz").result, MatchResult::kNotFound);
  EXPECT_EQ(router.Find("GET", "/api/contacts/a/b").result, MatchResult::kNotFound);
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
