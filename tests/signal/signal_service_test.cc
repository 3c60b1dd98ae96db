// SignalService over a real loopback HttpServer and an in-memory SQLite
// store: the REST contract (status, code, field), tokens, throttling, CORS,
// limits, mounting, hooks and reload. The same walk runs against the real
// binary, on SQLite and MariaDB, in tests/integration/test_accounts.py.
#include "signal/signal_service.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "auth/turn_rest.h"
#include "base/crypto.h"
#include "sql/sqlite_store.h"
#include "tests/signal/flaky_store.h"
#include "tests/signal/http_test_client.h"
#include "tests/signal/raw_client.h"

namespace turnkey::signal {
namespace {

using testing::FlakyStore;
using testing::HttpTestRequest;
using testing::HttpTestResponse;
using testing::SendHttp;
using testing::SendJson;
using Json = nlohmann::json;

constexpr const char* kTurnSecret = "unit-test-turn-secret";
constexpr const char* kAllowedOrigin = "https://app.example.org";

// A clock the test moves while the service's threads read it.
class SharedFakeClock final : public base::Clock {
 public:
  base::MonoTime Now() const override {
    return base::MonoTime{} + std::chrono::nanoseconds(elapsed_ns_.load());
  }
  int64_t UnixSeconds() const override { return UnixMillis() / 1000; }
  int64_t UnixMillis() const override {
    return 1'700'000'000'000 + (elapsed_ns_.load() + wall_step_ns_.load()) / 1'000'000;
  }
  void Advance(std::chrono::seconds d) {
    elapsed_ns_ += std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  }
  // The wall clock alone jumps (NTP stepping it, an admin setting it).
  void StepWall(std::chrono::seconds d) {
    wall_step_ns_ += std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  }

 private:
  std::atomic<int64_t> elapsed_ns_{0};
  std::atomic<int64_t> wall_step_ns_{0};
};

class SignalServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { StartService(DefaultOptions()); }
  void TearDown() override {
    if (service_) {
      service_->Stop();
    }
  }

  SignalServiceOptions DefaultOptions() {
    SignalServiceOptions options;
    options.jwt_key = std::string(32, 'k');
    options.work_queue.threads = 2;
    options.settings.allowed_origins = {kAllowedOrigin};
    options.settings.ice_urls = {"stun:stun.example.org:3478",
                                 "turn:turn.example.org:3478?transport=udp"};
    options.settings.turn_secret = kTurnSecret;
    options.settings.ice_ttl = std::chrono::hours(1);
    options.login_throttle.account_free_failures = 2;
    options.clock = &clock_;
    return options;
  }

  // Stops the running service and starts another one with `options`.
  void Restart(SignalServiceOptions options,
               const std::function<void(SignalService&)>& before_start = nullptr) {
    service_->Stop();
    service_.reset();
    // The metric families are registered once per registry.
    registry_ = std::make_unique<metrics::Registry>();
    StartService(std::move(options), before_start);
  }

  // Restart(DefaultOptions()) on a FlakyStore (flaky_) over a fresh store;
  // false if it did not start.
  bool RestartOnFlakyStore() {
    flaky_wanted_ = true;
    Restart(DefaultOptions());
    return flaky_ != nullptr;
  }

  void StartService(SignalServiceOptions options,
                    const std::function<void(SignalService&)>& before_start = nullptr) {
    sql::SqliteStoreOptions store_options;
    store_options.path = ":memory:";
    auto opened = sql::SqliteStore::Open(store_options);
    ASSERT_TRUE(opened.has_value()) << opened.error().message;
    ASSERT_TRUE((*opened)->Migrate().has_value());
    std::unique_ptr<sql::Store> store = std::move(*opened);
    if (flaky_wanted_) {
      auto flaky = std::make_unique<FlakyStore>(std::move(store));
      flaky_ = flaky.get();
      store = std::move(flaky);
    }
    auto created = SignalService::Create(std::move(options), std::move(store), *registry_);
    ASSERT_TRUE(created.has_value()) << created.error().message;
    service_ = std::move(*created);
    service_->SetSignedOutHook([this](const std::string& user, const AccessToken& /*current*/,
                                      int64_t /*stamp*/, std::string_view reason) {
      std::lock_guard lock(mutex_);
      signed_out_.push_back(user + ":" + std::string(reason));
    });
    ASSERT_TRUE(service_
                    ->Mount("/socket.io/",
                            [](net::HttpRequest request, net::Responder responder) {
                              responder.Respond(
                                  net::HttpResponse::Text(200, "mounted " + request.method));
                            })
                    .has_value());
    if (before_start) {
      before_start(*service_);
    }
    service_->Start();
    address_ = service_->local_address();
  }

  HttpTestResponse Post(const std::string& target, const Json& body,
                        const std::string& bearer = "") {
    return SendJson(address_, "POST", target, body, bearer);
  }
  HttpTestResponse Get(const std::string& target, const std::string& bearer = "",
                       std::vector<std::pair<std::string, std::string>> headers = {}) {
    HttpTestRequest request;
    request.target = target;
    request.bearer = bearer;
    request.headers = std::move(headers);
    return SendHttp(address_, request);
  }
  // Registers and returns the data of the answer.
  Json Register(const std::string& email, const std::string& password = "password-123",
                const std::string& handle = "") {
    Json body{{"email", email}, {"password", password}};
    if (!handle.empty()) {
      body["handle"] = handle;
    }
    HttpTestResponse response = Post("/api/auth/register", body);
    EXPECT_EQ(response.status, 201) << response.body;
    return response.Json()["data"];
  }
  // Holds a worker of the service's queue until the returned promise is set;
  // returns once the worker has taken the job (so queued() counts only what
  // comes after it).
  std::promise<void> HoldAWorker() {
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    std::promise<void> taken;
    std::future<void> taken_future = taken.get_future();
    EXPECT_TRUE(service_->work_queue().TryPost([released, taken = std::move(taken)]() mutable {
      taken.set_value();
      released.wait();
    }));
    taken_future.wait();
    return release;
  }
  // True once `count` jobs wait in the service's queue (10 s at most).
  bool WaitQueued(size_t count) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (service_->work_queue().queued() < count && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    return service_->work_queue().queued() == count;
  }
  std::vector<std::string> SignedOut() {
    std::lock_guard lock(mutex_);
    return signed_out_;
  }

  SharedFakeClock clock_;
  std::unique_ptr<metrics::Registry> registry_ = std::make_unique<metrics::Registry>();
  std::unique_ptr<SignalService> service_;
  // Set by RestartOnFlakyStore: the next service's store is a FlakyStore.
  bool flaky_wanted_ = false;
  FlakyStore* flaky_ = nullptr;
  base::SocketAddress address_;
  std::mutex mutex_;
  std::vector<std::string> signed_out_;
};

void ExpectError(const HttpTestResponse& response, int status, const std::string& code,
                 const std::string& field = "") {
  EXPECT_EQ(response.status, status) << response.body;
  Json body = response.Json();
  EXPECT_EQ(body["success"], false) << response.body;
  EXPECT_EQ(body["code"], code) << response.body;
  EXPECT_TRUE(body.contains("message")) << response.body;
  EXPECT_TRUE(body.contains("data")) << response.body;
  if (!field.empty()) {
    EXPECT_EQ(body["field"], field) << response.body;
  }
}

TEST_F(SignalServiceTest, RegisterLoginMeRefreshLogout) {
  Json registered = Register("Alice@Example.org", "password-123", "Alice");
  ASSERT_TRUE(registered.is_object());
  EXPECT_EQ(registered["user"]["handle"], "Alice");
  EXPECT_EQ(registered["user"]["email"], "Alice@Example.org");
  EXPECT_FALSE(registered["user"].contains("passwordHash"));
  EXPECT_EQ(registered["expiresIn"], 900);
  const std::string user_id = registered["user"]["id"];

  HttpTestResponse login =
      Post("/api/auth/login", {{"email", "alice@EXAMPLE.org"}, {"password", "password-123"}});
  ASSERT_EQ(login.status, 200) << login.body;
  Json data = login.Json()["data"];
  EXPECT_EQ(login.Json()["success"], true);
  EXPECT_EQ(data["user"]["id"], user_id);
  EXPECT_EQ(login.Header("cache-control"), "no-store");
  EXPECT_EQ(login.Header("x-content-type-options"), "nosniff");

  HttpTestResponse me = Get("/api/users/me", data["token"]);
  ASSERT_EQ(me.status, 200) << me.body;
  EXPECT_EQ(me.Json()["data"]["user"]["id"], user_id);

  HttpTestResponse refreshed = Post("/api/auth/refresh", {{"refreshToken", data["refreshToken"]}});
  ASSERT_EQ(refreshed.status, 200) << refreshed.body;
  Json fresh = refreshed.Json()["data"];
  EXPECT_NE(fresh["refreshToken"], data["refreshToken"]);
  EXPECT_EQ(Get("/api/users/me", fresh["token"]).status, 200);

  // Every token issued before the logout is refused, though the clock has
  // not moved since any of them (the same second, the same millisecond).
  HttpTestResponse other_device =
      Post("/api/auth/login", {{"email", "alice@example.org"}, {"password", "password-123"}});
  ASSERT_EQ(other_device.status, 200);
  HttpTestResponse logout = Post("/api/auth/logout", Json::object(), fresh["token"]);
  ASSERT_EQ(logout.status, 200) << logout.body;
  EXPECT_EQ(logout.Json()["data"]["revokedTokens"], 3);  // register's, the refreshed one, the other
  EXPECT_THAT(SignedOut(), ::testing::ElementsAre(user_id + ":logout"));
  ExpectError(Get("/api/users/me", fresh["token"]), 401, "TOKEN_REVOKED");
  ExpectError(Get("/api/users/me", registered["token"]), 401, "TOKEN_REVOKED");
  ExpectError(Get("/api/users/me", other_device.Json()["data"]["token"]), 401, "TOKEN_REVOKED");
  ExpectError(Post("/api/auth/refresh", {{"refreshToken", fresh["refreshToken"]}}), 401,
              "REFRESH_TOKEN_REVOKED");

  // A new login after the logout works at once.
  HttpTestResponse again =
      Post("/api/auth/login", {{"email", "alice@example.org"}, {"password", "password-123"}});
  ASSERT_EQ(again.status, 200);
  EXPECT_EQ(Get("/api/users/me", again.Json()["data"]["token"]).status, 200);
}

// The login (refresh token family) an access token names in its "sid".
std::string LoginOf(const std::string& token) {
  const size_t first = token.find('.');
  const size_t second = first == std::string::npos ? first : token.find('.', first + 1);
  if (second == std::string::npos) {
    return "";
  }
  auto payload = base::Base64UrlDecode(token.substr(first + 1, second - first - 1));
  if (!payload) {
    return "";
  }
  Json claims = Json::parse(payload->begin(), payload->end(), nullptr, false);
  return claims.is_object() && claims.contains("sid") ? claims["sid"].get<std::string>() : "";
}

TEST_F(SignalServiceTest, SignOutsRefuseLateTokensOfTheLoginsTheyEnded) {
  // A refresh whose rotation commits just before a logout's (or a password
  // change's) revocation signs its access token after the sign-out stamp.
  // The sign-out refuses it all the same, by its login, at once: the
  // ended-login poll (5 s by default) has not run.
  Json user = Register("race@example.org");
  const std::string user_id = user["user"]["id"];
  const std::string login = LoginOf(user["token"]);
  ASSERT_FALSE(login.empty());
  ASSERT_EQ(Post("/api/auth/logout", Json::object(), user["token"]).status, 200);
  ExpectError(Get("/api/users/me", service_->api().SignAccessToken(user_id, login)), 401,
              "TOKEN_REVOKED");
  HttpTestResponse again =
      Post("/api/auth/login", {{"email", "race@example.org"}, {"password", "password-123"}});
  ASSERT_EQ(again.status, 200);
  EXPECT_EQ(Get("/api/users/me", again.Json()["data"]["token"]).status, 200);

  // The password change: the old login's late token is refused, the new
  // session's login goes on.
  const std::string old_login = LoginOf(again.Json()["data"]["token"]);
  HttpTestResponse changed = Post(
      "/api/auth/password", {{"currentPassword", "password-123"}, {"newPassword", "password-456"}},
      again.Json()["data"]["token"]);
  ASSERT_EQ(changed.status, 200) << changed.body;
  ExpectError(Get("/api/users/me", service_->api().SignAccessToken(user_id, old_login)), 401,
              "TOKEN_REVOKED");
  const std::string new_login = LoginOf(changed.Json()["data"]["token"]);
  EXPECT_EQ(Get("/api/users/me", service_->api().SignAccessToken(user_id, new_login)).status, 200);
}

TEST_F(SignalServiceTest, RefreshTokenReuseRevokesTheLogin) {
  Json user = Register("reuse@example.org");
  HttpTestResponse other =
      Post("/api/auth/login", {{"email", "reuse@example.org"}, {"password", "password-123"}});
  ASSERT_EQ(other.status, 200);
  HttpTestResponse first = Post("/api/auth/refresh", {{"refreshToken", user["refreshToken"]}});
  ASSERT_EQ(first.status, 200);
  ExpectError(Post("/api/auth/refresh", {{"refreshToken", user["refreshToken"]}}), 401,
              "REFRESH_TOKEN_REUSED");
  // The access tokens of that login end with it; another login goes on.
  ExpectError(Get("/api/users/me", user["token"]), 401, "TOKEN_REVOKED");
  ExpectError(Get("/api/users/me", first.Json()["data"]["token"]), 401, "TOKEN_REVOKED");
  EXPECT_EQ(Get("/api/users/me", other.Json()["data"]["token"]).status, 200);
  ExpectError(Post("/api/auth/refresh", {{"refreshToken", first.Json()["data"]["refreshToken"]}}),
              401, "REFRESH_TOKEN_REVOKED");
  ExpectError(Post("/api/auth/refresh", {{"refreshToken", "garbage"}}), 401,
              "REFRESH_TOKEN_INVALID");
  ExpectError(Post("/api/auth/refresh", {{"refreshToken", std::string(43, 'A')}}), 401,
              "REFRESH_TOKEN_INVALID");
  ExpectError(Post("/api/auth/refresh", Json::object()), 400, "VALIDATION_ERROR", "refreshToken");
}

TEST_F(SignalServiceTest, LoginsEndedOutsideTheServiceAreFoundByThePoll) {
  SignalServiceOptions options = DefaultOptions();
  options.ended_login_poll = std::chrono::milliseconds(20);
  std::vector<std::string> ended;
  Restart(options, [&](SignalService& service) {
    service.SetLoginsEndedHook([&](const std::vector<sql::EndedLogin>& logins) {
      std::lock_guard lock(mutex_);
      for (const sql::EndedLogin& login : logins) {
        ended.push_back(login.user_id);
      }
    });
  });
  Json user = Register("poll@example.org");
  Json kept = Register("kept@example.org");
  ASSERT_EQ(Get("/api/users/me", user["token"]).status, 200);
  // As `turnkey user revoke-sessions` does: straight in the database.
  const std::string user_id = user["user"]["id"];
  ASSERT_TRUE(service_->api().store().RevokeAllRefreshTokens(user_id, clock_.UnixMillis()));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (Get("/api/users/me", user["token"]).status == 200 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ExpectError(Get("/api/users/me", user["token"]), 401, "TOKEN_REVOKED");
  EXPECT_EQ(Get("/api/users/me", kept["token"]).status, 200);
  service_->Stop();  // the hook writes `ended`, a local
  EXPECT_EQ(ended, std::vector<std::string>{user_id});
}

TEST_F(SignalServiceTest, ExpiredRefreshTokensAreDeletedInBatches) {
  // Every login and refresh adds a row; without the purge the table grows
  // forever.
  SignalServiceOptions options = DefaultOptions();
  options.refresh_token_purge = std::chrono::milliseconds(50);
  options.refresh_token_purge_batch = 2;
  Restart(options);
  Json kept = Register("kept@example.org");
  sql::Store& store = service_->api().store();
  const std::string user_id = kept["user"]["id"];
  for (int i = 0; i < 5; ++i) {
    sql::RefreshToken token;
    token.token_hash = "expired-" + std::to_string(i);
    token.user_id = user_id;
    token.family_id = "family-" + std::to_string(i);
    token.created_at_ms = clock_.UnixMillis() - 7200'000;
    token.expires_at_ms = clock_.UnixMillis() - 3600'000;
    ASSERT_TRUE(store.InsertRefreshToken(token));
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (store.FindRefreshToken("expired-4").has_value() &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (int i = 0; i < 5; ++i) {
    EXPECT_FALSE(store.FindRefreshToken("expired-" + std::to_string(i)).has_value()) << i;
  }
  // The login's own token is valid and stays.
  EXPECT_EQ(Post("/api/auth/refresh", {{"refreshToken", kept["refreshToken"]}}).status, 200);
}

TEST_F(SignalServiceTest, AccessTokensExpireAndRefreshTokensToo) {
  Json user = Register("expiry@example.org");
  clock_.Advance(std::chrono::minutes(15));
  ExpectError(Get("/api/users/me", user["token"]), 401, "TOKEN_EXPIRED");
  HttpTestResponse refreshed = Post("/api/auth/refresh", {{"refreshToken", user["refreshToken"]}});
  ASSERT_EQ(refreshed.status, 200);
  EXPECT_EQ(Get("/api/users/me", refreshed.Json()["data"]["token"]).status, 200);
  clock_.Advance(std::chrono::hours(24 * 31));
  ExpectError(
      Post("/api/auth/refresh", {{"refreshToken", refreshed.Json()["data"]["refreshToken"]}}), 401,
      "REFRESH_TOKEN_EXPIRED");
}

TEST_F(SignalServiceTest, TokensWorkAfterTheWallClockStepsBack) {
  Json before = Register("step@example.org");
  clock_.StepWall(-std::chrono::hours(2));
  // Issued two hours "ahead" of the clock now, by this very process.
  EXPECT_EQ(Get("/api/users/me", before["token"]).status, 200);
  HttpTestResponse login =
      Post("/api/auth/login", {{"email", "step@example.org"}, {"password", "password-123"}});
  ASSERT_EQ(login.status, 200);
  EXPECT_EQ(Get("/api/users/me", login.Json()["data"]["token"]).status, 200);
  HttpTestResponse refreshed =
      Post("/api/auth/refresh", {{"refreshToken", before["refreshToken"]}});
  ASSERT_EQ(refreshed.status, 200);
  EXPECT_EQ(Get("/api/users/me", refreshed.Json()["data"]["token"]).status, 200);
  // A node whose clock did not step issues a token now: not expired here.
  auto node = auth::Jwt::Create(std::string(32, 'k'));
  ASSERT_TRUE(node.has_value());
  const std::string fresh = node->Sign(node->NewClaims(before["user"]["id"].get<std::string>(),
                                                       "access", clock_.UnixSeconds(), 900));
  EXPECT_EQ(Get("/api/users/me", fresh).status, 200);
}

TEST_F(SignalServiceTest, ATokenFromANodeUpToAMinuteAheadIsAccepted) {
  Json user = Register("skew@example.org");
  const std::string user_id = user["user"]["id"];
  auto node = auth::Jwt::Create(std::string(32, 'k'));  // the same key: another node
  ASSERT_TRUE(node.has_value());
  auto token_issued_at = [&](int64_t iat) {
    auth::JwtClaims claims = node->NewClaims(user_id, "access", iat, 900);
    return node->Sign(claims);
  };
  EXPECT_EQ(Get("/api/users/me", token_issued_at(clock_.UnixSeconds() + 60)).status, 200);
  ExpectError(Get("/api/users/me", token_issued_at(clock_.UnixSeconds() + 3600)), 401,
              "TOKEN_INVALID");
}

TEST_F(SignalServiceTest, BadTokensAreRefused) {
  ExpectError(Get("/api/users/me"), 401, "UNAUTHORIZED");
  HttpTestResponse garbage = Get("/api/users/me", "not.a.jwt");
  ExpectError(garbage, 401, "TOKEN_INVALID");
  EXPECT_THAT(garbage.Header("www-authenticate"), ::testing::StartsWith("Bearer"));
  ExpectError(Get("/api/users/me", "", {{"Authorization", "Basic YTpi"}}), 401, "UNAUTHORIZED");
  // A token signed with another key.
  auto other = auth::Jwt::Create(std::string(32, 'x'));
  ASSERT_TRUE(other.has_value());
  std::string forged = other->Sign(other->NewClaims("someone", "access", clock_.UnixSeconds(), 60));
  ExpectError(Get("/api/users/me", forged), 401, "TOKEN_INVALID");
  EXPECT_FALSE(service_->VerifyAccessToken(forged).has_value());
}

TEST_F(SignalServiceTest, UnknownUserAndWrongPasswordAnswerTheSameBytes) {
  Register("known@example.org");
  HttpTestResponse wrong =
      Post("/api/auth/login", {{"email", "known@example.org"}, {"password", "wrong-password"}});
  HttpTestResponse unknown =
      Post("/api/auth/login", {{"email", "nobody@example.org"}, {"password", "wrong-password"}});
  ExpectError(wrong, 401, "INVALID_CREDENTIALS");
  EXPECT_EQ(wrong.status, unknown.status);
  EXPECT_EQ(wrong.body, unknown.body);
  auto without_date = [](std::map<std::string, std::string> headers) {
    headers.erase("date");
    return headers;
  };
  EXPECT_EQ(without_date(wrong.headers), without_date(unknown.headers));
}

TEST_F(SignalServiceTest, FailedLoginsAreThrottledPerAccount) {
  Register("slow@example.org");
  Json bad{{"email", "slow@example.org"}, {"password", "wrong-password"}};
  HttpTestResponse response;
  int attempts = 0;
  for (; attempts < 6; ++attempts) {
    response = Post("/api/auth/login", bad);
    if (response.status == 429) {
      break;
    }
    EXPECT_EQ(response.status, 401);
  }
  ExpectError(response, 429, "RATE_LIMITED");
  EXPECT_EQ(attempts, 3);  // two free failures, the third sets the delay
  EXPECT_EQ(response.Header("retry-after"), "1");
  // Even the right password waits.
  Json good{{"email", "slow@example.org"}, {"password", "password-123"}};
  EXPECT_EQ(Post("/api/auth/login", good).status, 429);
  clock_.Advance(std::chrono::seconds(1));
  EXPECT_EQ(Post("/api/auth/login", good).status, 200);
}

// A commit whose answer was lost (the connection dropped after COMMIT went
// out) but that went in is answered as made: the new token's row, or the
// new user's, tells. A 503 there made the client's retry of the refresh
// look like reuse, which revokes the login, and a retried register get
// EMAIL_TAKEN for an account it never heard of.
TEST_F(SignalServiceTest, AWriteWhoseCommitAnswerWasLostIsAnsweredAsMadeWhenItWentIn) {
  ASSERT_TRUE(RestartOnFlakyStore());
  flaky_->LoseNextCommitAnswer();
  Json session = Register("lost@example.org");  // expects 201
  const std::string refresh = session.value("refreshToken", "");
  ASSERT_FALSE(refresh.empty());

  flaky_->LoseNextCommitAnswer();
  HttpTestResponse rotated = Post("/api/auth/refresh", {{"refreshToken", refresh}});
  ASSERT_EQ(rotated.status, 200) << rotated.body;
  const std::string next = rotated.Json()["data"].value("refreshToken", "");
  // The token handed out is the one the database holds, and it works.
  EXPECT_EQ(Post("/api/auth/refresh", {{"refreshToken", next}}).status, 200);
}

// Registration makes the account and its first login in one transaction: a
// database failing between the two no longer answers 503 for an account
// that was made (whose retry then got EMAIL_TAKEN).
TEST_F(SignalServiceTest, RegisterMakesTheAccountAndItsLoginTogether) {
  ASSERT_TRUE(RestartOnFlakyStore());
  flaky_->FailNextTokenInsert();
  Json session = Register("together@example.org");  // expects 201
  EXPECT_EQ(Post("/api/auth/refresh", {{"refreshToken", session.value("refreshToken", "")}}).status,
            200);
}

// A password change, the revocation of the other logins and the new login of
// the device that made it are one transaction: once the password changed,
// nothing fails before the other sessions are told (a 503 there left them
// signed in with their access tokens).
TEST_F(SignalServiceTest, APasswordChangeAndItsNewLoginAreOneTransaction) {
  ASSERT_TRUE(RestartOnFlakyStore());
  Json session = Register("change@example.org");
  const std::string old_token = session.value("token", "");
  flaky_->FailNextTokenInsert();
  HttpTestResponse changed =
      Post("/api/auth/password",
           {{"currentPassword", "password-123"}, {"newPassword", "password-456"}}, old_token);
  ASSERT_EQ(changed.status, 200) << changed.body;
  ExpectError(Get("/api/users/me", old_token), 401, "TOKEN_REVOKED");
  EXPECT_EQ(Post("/api/auth/refresh", {{"refreshToken", session.value("refreshToken", "")}}).status,
            401);
  EXPECT_EQ(Post("/api/auth/refresh",
                 {{"refreshToken", changed.Json()["data"].value("refreshToken", "")}})
                .status,
            200);
  flaky_->FailNextTokenInsert(false);  // never asked for: the change made no second write

  // The answer to its commit lost: answered as made, since it went in.
  flaky_->LoseNextCommitAnswer();
  HttpTestResponse again = Post(
      "/api/auth/password", {{"currentPassword", "password-456"}, {"newPassword", "password-789"}},
      changed.Json()["data"].value("token", ""));
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(Post("/api/auth/login", {{"email", "change@example.org"}, {"password", "password-789"}})
                .status,
            200);
}

// The address an account was registered from knows its password, as one it
// logged in from: others' failures do not lock the owner out.
TEST_F(SignalServiceTest, TheAddressThatRegisteredIsNotLockedOutByOthersFailures) {
  Register("fresh@example.org");  // from 127.0.0.1
  HttpTestRequest guess;
  guess.method = "POST";
  guess.target = "/api/auth/login";
  guess.headers = {{"Content-Type", "application/json"}};
  guess.body = Json{{"email", "fresh@example.org"}, {"password", "wrong-password"}}.dump();
  guess.source_ip = "127.0.0.2";
  int status = 0;
  for (int i = 0; i < 6 && status != 429; ++i) {
    status = SendHttp(address_, guess).status;
  }
  ASSERT_EQ(status, 429);
  EXPECT_EQ(Post("/api/auth/login", {{"email", "fresh@example.org"}, {"password", "password-123"}})
                .status,
            200);
}

TEST_F(SignalServiceTest, ClosedRegistrationRefusesNewAccountsUntilReopened) {
  Json alice{{"email", "alice@example.org"}, {"password", "password-123"}};
  ASSERT_EQ(Post("/api/auth/register", alice).status, 201);
  SignalSettings closed = DefaultOptions().settings;
  closed.registration_open = false;
  service_->Reload(closed, nullptr);
  // Refused before anything is read: a bad body gets the same answer.
  ExpectError(
      Post("/api/auth/register", {{"email", "bob@example.org"}, {"password", "password-123"}}), 403,
      "REGISTRATION_CLOSED");
  ExpectError(Post("/api/auth/register", {{"email", 1}}), 403, "REGISTRATION_CLOSED");
  // Existing accounts log in as before.
  EXPECT_EQ(Post("/api/auth/login", alice).status, 200);
  SignalSettings open = DefaultOptions().settings;
  service_->Reload(open, nullptr);
  EXPECT_EQ(Post("/api/auth/register", {{"email", "bob@example.org"}, {"password", "password-123"}})
                .status,
            201);
}

TEST_F(SignalServiceTest, ValidationNamesTheField) {
  ExpectError(Post("/api/auth/register", {{"password", "password-123"}}), 400, "VALIDATION_ERROR",
              "email");
  ExpectError(Post("/api/auth/register", {{"email", "no-at-sign"}, {"password", "password-123"}}),
              400, "VALIDATION_ERROR", "email");
  ExpectError(Post("/api/auth/register", {{"email", 42}, {"password", "password-123"}}), 400,
              "VALIDATION_ERROR", "email");
  ExpectError(Post("/api/auth/register", {{"email", "a@b.c"}, {"password", "short"}}), 400,
              "VALIDATION_ERROR", "password");
  ExpectError(
      Post("/api/auth/register", {{"email", "a@b.c"}, {"password", std::string(1025, 'p')}}), 400,
      "VALIDATION_ERROR", "password");
  ExpectError(Post("/api/auth/register",
                   {{"email", "a@b.c"}, {"password", "password-123"}, {"handle", "no spaces"}}),
              400, "VALIDATION_ERROR", "handle");
  ExpectError(Post("/api/auth/register",
                   {{"email", "a@b.c"}, {"password", "password-123"}, {"displayName", "a\nb"}}),
              400, "VALIDATION_ERROR", "displayName");
  ExpectError(Post("/api/auth/login", {{"email", "a@b.c"}, {"password", std::string(1025, 'p')}}),
              400, "VALIDATION_ERROR", "password");
  HttpTestRequest not_json;
  not_json.method = "POST";
  not_json.target = "/api/auth/login";
  not_json.body = "{not json";
  ExpectError(SendHttp(address_, not_json), 400, "INVALID_JSON");
  not_json.body = "[1,2]";
  ExpectError(SendHttp(address_, not_json), 400, "INVALID_JSON");
  not_json.body = R"({"email":"a@b.c","password":"password-123","email":"x@y.z"})";
  ExpectError(SendHttp(address_, not_json), 400, "INVALID_JSON");
}

TEST_F(SignalServiceTest, EmailAndHandleAreUniqueIgnoringCase) {
  Json first = Register("one@example.org", "password-123", "Bob.Smith");
  ExpectError(Post("/api/auth/register",
                   {{"email", "ONE@example.org"}, {"password", "password-123"}, {"handle", "x12"}}),
              409, "EMAIL_TAKEN");
  ExpectError(
      Post("/api/auth/register",
           {{"email", "two@example.org"}, {"password", "password-123"}, {"handle", "bob.smith"}}),
      409, "HANDLE_TAKEN");
  Json second = Register("two@example.org");
  const std::string generated = second["user"]["handle"];
  EXPECT_THAT(generated, ::testing::MatchesRegex("two[0-9]{4}"));
  EXPECT_EQ(second["user"]["displayName"], generated);

  HttpTestResponse conflict =
      SendJson(address_, "PATCH", "/api/users/me", {{"handle", "BOB.SMITH"}}, second["token"]);
  ExpectError(conflict, 409, "HANDLE_TAKEN");
  HttpTestResponse own_case =
      SendJson(address_, "PATCH", "/api/users/me", {{"handle", "bob.smith"}}, first["token"]);
  ASSERT_EQ(own_case.status, 200) << own_case.body;
  EXPECT_EQ(own_case.Json()["data"]["user"]["handle"], "bob.smith");
  ExpectError(SendJson(address_, "PATCH", "/api/users/me", Json::object(), first["token"]), 400,
              "VALIDATION_ERROR");
}

TEST_F(SignalServiceTest, IceServersCarryTurnRestCredentials) {
  Json user = Register("ice@example.org");
  const std::string user_id = user["user"]["id"];
  ASSERT_EQ(user["iceServers"].size(), 2u);
  EXPECT_EQ(user["iceServers"][0]["urls"][0], "stun:stun.example.org:3478");
  EXPECT_FALSE(user["iceServers"][0].contains("username"));
  const Json& turn = user["iceServers"][1];
  const std::string username = turn["username"];
  EXPECT_EQ(username, std::to_string(clock_.UnixSeconds() + 3600) + ":" + user_id);
  EXPECT_EQ(turn["credential"], auth::TurnRestPassword(kTurnSecret, username));

  HttpTestResponse credentials = Get("/api/turn/credentials", user["token"]);
  ASSERT_EQ(credentials.status, 200) << credentials.body;
  Json data = credentials.Json()["data"];
  EXPECT_EQ(data["ttl"], 3600);
  EXPECT_EQ(data["password"],
            auth::TurnRestPassword(kTurnSecret, data["username"].get<std::string>()));
  EXPECT_EQ(data["uris"], Json::array({"turn:turn.example.org:3478?transport=udp"}));

  // Without a secret only STUN is handed out.
  SignalSettings stun_only;
  stun_only.ice_urls = {"stun:stun.example.org:3478", "turn:turn.example.org:3478"};
  service_->Reload(stun_only, nullptr);
  HttpTestResponse login =
      Post("/api/auth/login", {{"email", "ice@example.org"}, {"password", "password-123"}});
  ASSERT_EQ(login.status, 200);
  EXPECT_EQ(login.Json()["data"]["iceServers"].size(), 1u);
  ExpectError(Get("/api/turn/credentials", user["token"]), 503, "TURN_NOT_CONFIGURED");
}

TEST_F(SignalServiceTest, CorsAllowsListedOriginsOnly) {
  HttpTestRequest preflight;
  preflight.method = "OPTIONS";
  preflight.target = "/api/auth/login";
  preflight.headers = {{"Origin", kAllowedOrigin},
                       {"Access-Control-Request-Method", "POST"},
                       {"Access-Control-Request-Headers", "authorization,content-type"}};
  HttpTestResponse allowed = SendHttp(address_, preflight);
  EXPECT_EQ(allowed.status, 204);
  EXPECT_EQ(allowed.Header("access-control-allow-origin"), kAllowedOrigin);
  // The same preflight answer as on /socket.io/ (net::Cors): what was asked for.
  EXPECT_EQ(allowed.Header("access-control-allow-headers"), "authorization, content-type");
  EXPECT_EQ(allowed.Header("vary"), "Origin, Access-Control-Request-Headers");

  preflight.headers[0].second = "https://evil.example";
  HttpTestResponse denied = SendHttp(address_, preflight);
  ExpectError(denied, 403, "ORIGIN_NOT_ALLOWED");  // the envelope, as every API answer
  EXPECT_EQ(denied.Header("cache-control"), "no-store");
  EXPECT_EQ(denied.Header("x-content-type-options"), "nosniff");
  EXPECT_EQ(denied.Header("vary"), "Origin");
  EXPECT_EQ(denied.Header("access-control-allow-origin"), "");

  HttpTestResponse evil = Get("/healthz", "", {{"Origin", "https://evil.example"}});
  ExpectError(evil, 403, "ORIGIN_NOT_ALLOWED");
  HttpTestResponse good = Get("/healthz", "", {{"Origin", kAllowedOrigin}});
  EXPECT_EQ(good.status, 200);
  EXPECT_EQ(good.Header("access-control-allow-origin"), kAllowedOrigin);
  // Same origin needs no listing.
  HttpTestResponse same = Get("/healthz", "", {{"Origin", "http://" + address_.ToString()}});
  EXPECT_EQ(same.status, 200);

  SignalSettings reloaded;
  reloaded.allowed_origins = {"https://evil.example"};
  service_->Reload(reloaded, nullptr);
  EXPECT_EQ(SendHttp(address_, preflight).status, 204);
  EXPECT_EQ(Get("/healthz", "", {{"Origin", kAllowedOrigin}}).status, 403);
}

TEST_F(SignalServiceTest, LimitsAndUnknownRoutesAnswerJson) {
  HttpTestRequest big;
  big.method = "POST";
  big.target = "/api/auth/register";
  big.body = "{\"email\":\"" + std::string(70 * 1024, 'a') + "\"}";
  ExpectError(SendHttp(address_, big), 413, "PAYLOAD_TOO_LARGE");
  ExpectError(Get("/api/nothing/here"), 404, "NOT_FOUND");
  HttpTestResponse wrong_method = Get("/api/auth/login");
  ExpectError(wrong_method, 405, "METHOD_NOT_ALLOWED");
  EXPECT_THAT(wrong_method.Header("allow"), ::testing::HasSubstr("POST"));
}

TEST_F(SignalServiceTest, ABodyOverTheApiLimitIsRefusedBeforeItIsSentWhateverThePath) {
  // Only the head is sent: the 413 must not wait for 100 KB that would only
  // be held. An API route, an unknown one, and a mount without a limit of
  // its own all take at most the API's 64 KiB.
  for (const char* path : {"/api/auth/login", "/nothing/here", "/socket.io/x"}) {
    SCOPED_TRACE(path);
    auto client = testing::RawClient::Connect(address_.port());
    ASSERT_NE(client, nullptr);
    ASSERT_TRUE(client->SendRaw(std::string("POST ") + path +
                                " HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"));
    auto reply = client->ReadReply();
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->status, 413);
  }
}

TEST_F(SignalServiceTest, PathsAreMatchedAndDecodedAsRfc3986Says) {
  Json alice = Register("pct-alice@example.org");
  Json bob = Register("pct-bob@example.org");
  const std::string token = alice["token"];
  const std::string bob_id = bob["user"]["id"];
  // An escaped unreserved character is that character, in a static segment
  // as much as in a parameter.
  for (const char* target : {"/api/users/%6de", "/api/%75sers/me", "/api/users/%6D%65"}) {
    HttpTestResponse me = Get(target, token);
    ASSERT_EQ(me.status, 200) << target << " " << me.body;
    EXPECT_EQ(me.Json()["data"]["user"]["id"], alice["user"]["id"]);
  }
  ExpectError(Get("/api/users%2Fme", token), 404, "NOT_FOUND");
  ASSERT_EQ(Post("/api/contacts", {{"userId", bob_id}}, token).status, 201);
  std::string escaped_id;
  for (char c : bob_id) {
    escaped_id += fmt::format("%{:02X}", static_cast<unsigned char>(c));
  }
  HttpTestRequest remove;
  remove.method = "DELETE";
  remove.target = "/api/contacts/" + escaped_id;
  remove.bearer = token;
  HttpTestResponse removed = SendHttp(address_, remove);
  ASSERT_EQ(removed.status, 200) << removed.body;
  EXPECT_EQ(removed.Json()["data"]["removed"], true);
  for (const char* target : {"/api/contacts/%zz", "/api/contacts/%2", "/api/%zz/me"}) {
    remove.target = target;
    ExpectError(SendHttp(address_, remove), 400, "VALIDATION_ERROR", "path");
  }
}

TEST_F(SignalServiceTest, ABodyOverTheHttpLimitIsRefusedInTheEnvelopeToo) {
  // The HTTP server's own limit (Engine.IO's maxPayload in production) is
  // above the API's 64 KiB; past it the request never reaches the API.
  SignalServiceOptions options = DefaultOptions();
  options.http.max_body_bytes = 80 * 1024;
  Restart(std::move(options));
  HttpTestRequest big;
  big.method = "POST";
  big.target = "/api/auth/register";
  big.headers = {{"Origin", kAllowedOrigin}};
  big.body = std::string(100 * 1024, 'a');
  HttpTestResponse refused = SendHttp(address_, big);
  ExpectError(refused, 413, "PAYLOAD_TOO_LARGE");
  EXPECT_EQ(refused.Header("cache-control"), "no-store");
  EXPECT_EQ(refused.Header("access-control-allow-origin"), kAllowedOrigin);
}

TEST_F(SignalServiceTest, AMountAnswersTheHttpServersRefusalsOfItsOwnPaths) {
  // EngineIoServer::RefusalResponse in production: a 413 with CORS headers.
  SignalServiceOptions options = DefaultOptions();
  options.http.max_body_bytes = 1024;
  Restart(std::move(options), [](SignalService& service) {
    ASSERT_TRUE(service
                    .Mount(
                        "/refusing/",
                        [](net::HttpRequest, net::Responder responder) {
                          responder.Respond(net::HttpResponse::Text(200, "handled"));
                        },
                        nullptr,
                        [](const net::HttpRequest& head, int status) {
                          net::HttpResponse response = net::HttpResponse::Text(status, "mount");
                          response.headers.Set("X-Path", head.path);
                          return std::optional<net::HttpResponse>(std::move(response));
                        })
                    .has_value());
  });
  HttpTestRequest big;
  big.method = "POST";
  big.target = "/refusing/x?EIO=4";
  big.body = std::string(2048, 'a');
  HttpTestResponse refused = SendHttp(address_, big);
  EXPECT_EQ(refused.status, 413);
  EXPECT_EQ(refused.body, "mount");
  EXPECT_EQ(refused.Header("x-path"), "/refusing/x");
  // A mount without the hook gets the plain status page, not the API's envelope.
  big.target = "/socket.io/?EIO=4";
  HttpTestResponse plain = SendHttp(address_, big);
  EXPECT_EQ(plain.status, 413);
  EXPECT_EQ(plain.Header("x-path"), "");
  EXPECT_TRUE(plain.Json().is_null() || !plain.Json().contains("success")) << plain.body;
}

TEST_F(SignalServiceTest, HealthReadinessAndMount) {
  EXPECT_EQ(Get("/healthz").Json()["data"]["status"], "ok");
  EXPECT_EQ(Get("/readyz").Json()["data"]["status"], "ready");
  HttpTestResponse mounted = Get("/socket.io/?EIO=4&transport=polling");
  EXPECT_EQ(mounted.status, 200);
  EXPECT_EQ(mounted.body, "mounted GET");
  HttpTestRequest preflight;
  preflight.method = "OPTIONS";
  preflight.target = "/socket.io/";
  preflight.headers = {{"Origin", "https://evil.example"},
                       {"Access-Control-Request-Method", "GET"}};
  EXPECT_EQ(SendHttp(address_, preflight).body, "mounted OPTIONS");
  EXPECT_FALSE(service_->Mount("/late/", [](net::HttpRequest, net::Responder) {}).has_value());
}

TEST_F(SignalServiceTest, AMountsBodyPendingHookIsAskedAboutItsOwnPathsOnly) {
  // The heads the mount's hook was told about, and a signal for the first.
  struct Asked {
    std::mutex mutex;
    std::vector<std::string> paths;
    std::promise<void> first;
  };
  auto asked = std::make_shared<Asked>();
  Restart(DefaultOptions(), [asked](SignalService& service) {
    ASSERT_TRUE(service
                    .Mount(
                        "/stream/",
                        [](net::HttpRequest request, net::Responder responder) {
                          responder.Respond(net::HttpResponse::Text(200, request.body));
                        },
                        [asked](const net::HttpRequest& head) -> std::shared_ptr<void> {
                          std::lock_guard lock(asked->mutex);
                          asked->paths.push_back(head.path);
                          if (asked->paths.size() == 1) {
                            asked->first.set_value();
                          }
                          return nullptr;
                        })
                    .has_value());
  });
  const uint16_t port = address_.port();
  // An API request whose body comes in two parts is answered (so its head
  // was seen) without asking the mount.
  auto api = testing::RawClient::Connect(port);
  ASSERT_NE(api, nullptr);
  ASSERT_TRUE(
      api->SendRaw("POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Content-Length: 2\r\n\r\n{"));
  ASSERT_TRUE(api->SendRaw("}"));
  auto api_reply = api->ReadReply();
  ASSERT_TRUE(api_reply.has_value());
  EXPECT_EQ(api_reply->status, 400);
  // The same under the mount.
  auto mounted = testing::RawClient::Connect(port);
  ASSERT_NE(mounted, nullptr);
  ASSERT_TRUE(mounted->SendRaw("POST /stream/x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\na"));
  ASSERT_EQ(asked->first.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);
  ASSERT_TRUE(mounted->SendRaw("b"));
  auto reply = mounted->ReadReply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->body, "ab");
  std::lock_guard lock(asked->mutex);
  EXPECT_EQ(asked->paths, std::vector<std::string>{"/stream/x"});
}

TEST_F(SignalServiceTest, ADrainMakesReadyzFailSoBalancersSendNewClientsElsewhere) {
  service_->SetDraining(true);
  ExpectError(Get("/readyz"), 503, "SERVICE_UNAVAILABLE");
  EXPECT_EQ(Get("/healthz").status, 200);  // the process still serves
  service_->SetDraining(false);
  EXPECT_EQ(Get("/readyz").status, 200);
}

TEST_F(SignalServiceTest, OtherCodeAddsRoutesThatBehaveLikeTheApi) {
  Restart(DefaultOptions(), [](SignalService& service) {
    ASSERT_TRUE(service
                    .AddRoute("GET", "/",
                              [](net::HttpRequest, net::Responder responder) {
                                responder.Respond(net::HttpResponse::Text(200, "demo page"));
                              })
                    .has_value());
    ASSERT_TRUE(service.api()
                    .Add("POST", "/api/calls/initiate", ApiContext::Access::kUser,
                         [](ApiCall call) {
                           call.Ok(Json{{"caller", call.user_id()}}, "Call initiated", 201);
                         })
                    .has_value());
  });
  EXPECT_EQ(Get("/").body, "demo page");
  ExpectError(Post("/api/calls/initiate", Json::object()), 401, "UNAUTHORIZED");
  Json user = Register("caller@example.org");
  HttpTestResponse initiated = Post("/api/calls/initiate", Json::object(), user["token"]);
  ASSERT_EQ(initiated.status, 201) << initiated.body;
  EXPECT_EQ(initiated.Json()["data"]["caller"], user["user"]["id"]);
  EXPECT_FALSE(
      service_->AddRoute("GET", "/late", [](net::HttpRequest, net::Responder) {}).has_value());
  auto verified = service_->VerifyAccessToken(std::string(user["token"]));
  ASSERT_TRUE(verified.has_value());
  EXPECT_EQ(verified->user_id, user["user"]["id"].get<std::string>());
}

TEST_F(SignalServiceTest, RequestsAndQueriesAreCounted) {
  Register("counted@example.org");
  ExpectError(Get("/api/users/me"), 401, "UNAUTHORIZED");
  Get("/api/nothing");
  EXPECT_EQ(Get("/socket.io/?EIO=4").status, 200);  // the mount's own answer
  // Refused by the HTTP layer before any route: malformed, unsupported method.
  for (const char* raw :
       {"GET / HTTP/1.1\r\nNo colon here\r\n\r\n", "FROB / HTTP/1.1\r\nHost: x\r\n\r\n"}) {
    auto client = testing::RawClient::Connect(address_.port());
    ASSERT_NE(client, nullptr);
    ASSERT_TRUE(client->SendRaw(raw));
    ASSERT_TRUE(client->ReadReply().has_value()) << raw;
  }
  const std::string text = registry_->Render();
  EXPECT_THAT(
      text, ::testing::HasSubstr("turnkey_http_requests_total{route=\"refused\",code=\"400\"} 1"));
  EXPECT_THAT(
      text, ::testing::HasSubstr("turnkey_http_requests_total{route=\"refused\",code=\"501\"} 1"));
  EXPECT_THAT(text, ::testing::HasSubstr(
                        "turnkey_http_requests_total{route=\"/socket.io/*\",code=\"200\"} 1"));
  EXPECT_THAT(text,
              ::testing::HasSubstr(
                  "turnkey_http_requests_total{route=\"/api/auth/register\",code=\"201\"} 1"));
  EXPECT_THAT(text, ::testing::HasSubstr(
                        "turnkey_http_requests_total{route=\"/api/users/me\",code=\"401\"} 1"));
  EXPECT_THAT(text, ::testing::HasSubstr(
                        "turnkey_http_requests_total{route=\"unmatched\",code=\"404\"} 1"));
  EXPECT_THAT(text, ::testing::ContainsRegex("turnkey_db_query_seconds_count [1-9]"));
}

TEST_F(SignalServiceTest, FullWorkQueueAnswers503) {
  SignalServiceOptions options = DefaultOptions();
  options.work_queue.threads = 1;
  options.work_queue.max_queued = 1;
  Restart(std::move(options));
  std::promise<void> release = HoldAWorker();
  ASSERT_TRUE(service_->work_queue().TryPost([] {}));  // fills the queue
  HttpTestResponse busy = Get("/readyz");
  ExpectError(busy, 503, "SERVICE_UNAVAILABLE");
  EXPECT_EQ(busy.Header("retry-after"), "1");
  release.set_value();
  EXPECT_EQ(Get("/healthz").status, 200);
}

TEST_F(SignalServiceTest, ARequestThatWaitedTooLongForAWorkerAnswers503Unrun) {
  SignalServiceOptions options = DefaultOptions();
  options.work_queue.threads = 1;
  options.max_queue_wait = std::chrono::seconds(1);
  Restart(std::move(options));
  const std::string token = Register("queued@example.test")["token"];
  std::promise<void> release = HoldAWorker();
  // A profile update waits behind the blocked worker for longer than allowed.
  std::future<HttpTestResponse> update = std::async(std::launch::async, [&] {
    return SendJson(address_, "PATCH", "/api/users/me", Json{{"displayName", "Late"}}, token);
  });
  ASSERT_TRUE(WaitQueued(1));
  clock_.Advance(std::chrono::seconds(2));  // the service's clock, not a sleep
  release.set_value();
  ExpectError(update.get(), 503, "SERVICE_UNAVAILABLE");
  // It was not run: the name is unchanged. A request that did not wait runs.
  HttpTestResponse me = Get("/api/users/me", token);
  ASSERT_EQ(me.status, 200) << me.body;
  EXPECT_NE(me.Json()["data"]["user"]["displayName"], "Late") << me.body;
}

TEST_F(SignalServiceTest, StopLetsARequestInFlightFinish) {
  SignalServiceOptions options = DefaultOptions();
  options.work_queue.threads = 1;
  std::promise<void> stopping;
  Restart(std::move(options), [&stopping](SignalService& service) {
    service.OnStopping([&stopping] { stopping.set_value(); });
  });
  // HoldAWorker waits until the worker holds the blocking job: before that,
  // queued() == 1 counts the blocking job itself, and Stop() could run before
  // the request below has even been accepted (it then hangs in the listen
  // backlog).
  std::promise<void> release = HoldAWorker();
  std::future<HttpTestResponse> ready =
      std::async(std::launch::async, [this] { return Get("/readyz"); });
  // The readiness check waits behind the blocked worker.
  ASSERT_TRUE(WaitQueued(1));
  std::future<void> stopped = std::async(std::launch::async, [this] { service_->Stop(); });
  // The listener stops in the same loop task as this hook, so the answer
  // below goes out while the server drains.
  stopping.get_future().wait();
  release.set_value();
  HttpTestResponse answer = ready.get();
  stopped.get();
  EXPECT_EQ(answer.status, 200) << answer.body;
  EXPECT_EQ(answer.Header("connection"), "close");
}

TEST_F(SignalServiceTest, ChangePasswordEndsOtherSessions) {
  Json user = Register("pw@example.org", "old-password");
  HttpTestResponse other =
      Post("/api/auth/login", {{"email", "pw@example.org"}, {"password", "old-password"}});
  ASSERT_EQ(other.status, 200);
  ExpectError(
      Post("/api/auth/password",
           {{"currentPassword", "not-it-at-all"}, {"newPassword", "new-password"}}, user["token"]),
      401, "INVALID_CREDENTIALS");
  ExpectError(Post("/api/auth/password",
                   {{"currentPassword", "old-password"}, {"newPassword", "short"}}, user["token"]),
              400, "VALIDATION_ERROR", "newPassword");
  // No clock movement: the other session was issued in the same second (and
  // millisecond) as the change, and still ends; the new one does not.
  HttpTestResponse changed =
      Post("/api/auth/password",
           {{"currentPassword", "old-password"}, {"newPassword", "new-password"}}, user["token"]);
  ASSERT_EQ(changed.status, 200) << changed.body;
  EXPECT_THAT(SignedOut(),
              ::testing::ElementsAre(std::string(user["user"]["id"]) + ":password_changed"));
  EXPECT_EQ(Get("/api/users/me", changed.Json()["data"]["token"]).status, 200);
  ExpectError(Get("/api/users/me", other.Json()["data"]["token"]), 401, "TOKEN_REVOKED");
  ExpectError(Post("/api/auth/refresh", {{"refreshToken", other.Json()["data"]["refreshToken"]}}),
              401, "REFRESH_TOKEN_REVOKED");
  EXPECT_EQ(
      Post("/api/auth/login", {{"email", "pw@example.org"}, {"password", "old-password"}}).status,
      401);
  EXPECT_EQ(
      Post("/api/auth/login", {{"email", "pw@example.org"}, {"password", "new-password"}}).status,
      200);
}

TEST_F(SignalServiceTest, StopRunsTheHooksInOrder) {
  std::vector<std::string> events;
  Restart(DefaultOptions(), [&](SignalService& service) {
    service.OnStopping([&] { events.push_back("stopping"); });
    service.OnStopped([&] { events.push_back("stopped"); });
  });
  EXPECT_EQ(Get("/healthz").status, 200);
  service_->Stop();
  EXPECT_THAT(events, ::testing::ElementsAre("stopping", "stopped"));
  service_->Stop();  // idempotent
  EXPECT_THAT(events, ::testing::ElementsAre("stopping", "stopped"));
}

}  // namespace
}  // namespace turnkey::signal
