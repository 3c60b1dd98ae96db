// ApiContext: what the REST handlers of the account service share: the
// route table with its CORS, body-size and bearer-token checks, the work
// queue for blocking work, the store, the token machinery, the login
// throttle and the reloadable settings. SignalService owns one; the route
// files (auth_routes.cc, user_routes.cc, ...) add their handlers to it.
//
// Threads: everything runs on the loop thread except what is marked "any
// thread" (used from work-queue jobs). The loop, queue, router, store,
// metrics and shard passed in must outlive the context.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <initializer_list>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "auth/ice_servers.h"
#include "auth/jwt.h"
#include "auth/login_throttle.h"
#include "auth/password_hasher.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/source_rate_limiter.h"
#include "base/status.h"
#include "metrics/shard.h"
#include "metrics/turnkey_metrics.h"
#include "net/cors.h"
#include "net/event_loop.h"
#include "net/router.h"
#include "net/work_queue.h"
#include "signal/api_call.h"
#include "signal/api_error.h"
#include "signal/signal_settings.h"
#include "sql/store.h"

namespace turnkey::signal {

// The JWT "typ" of access tokens.
inline constexpr std::string_view kAccessTokenKind = "access";

// A new login session: an access token and a refresh token.
struct IssuedSession {
  std::string access_token;
  std::string refresh_token;
  int64_t access_expires_in = 0;  // seconds
};

// Called on the loop thread when every session of a user ended (logout,
// password change): close the user's sockets. `current` is the access
// token the request used and `signed_out_stamp` the EndUserSessions
// arguments (another node of a cluster applies the same); `reason` is
// "logout" or "password_changed".
using UserSignedOutHook = std::function<void(const std::string& user_id, const AccessToken& current,
                                             int64_t signed_out_stamp, std::string_view reason)>;

// Called on the loop thread with logins (refresh-token families) that ended
// and were not known to have ended here before: close the sockets that
// authenticated with their tokens.
using LoginsEndedHook = std::function<void(const std::vector<sql::EndedLogin>& logins)>;

struct ApiContextOptions {
  // Largest REST request body; larger ones get 413 PAYLOAD_TOO_LARGE.
  // Default 64 KiB.
  size_t max_body_bytes = 64 * 1024;
  // Access token lifetime. Default 15m.
  std::chrono::seconds access_ttl{15 * 60};
  // Refresh token lifetime. Default 30d.
  std::chrono::seconds refresh_ttl{30 * 24 * 3600};
  // Registrations per client (SocketAddress::ClientBlock), a token bucket:
  // `register_burst` at once, refilled at `register_rate` per second.
  // 0 = no limit. Default none.
  double register_rate = 0;
  double register_burst = 1;
  // A job that waited longer than this for a worker (behind writes held up
  // by a locked or unreachable database) is not run: its request gets 503
  // SERVICE_UNAVAILABLE, as its client has likely given up (OkHttp's default
  // read timeout is 10 s). Default 10s.
  std::chrono::milliseconds max_queue_wait{10'000};
};

class ApiContext {
 public:
  enum class Access {
    kPublic,  // no token needed
    kUser,    // a valid access token (Authorization: Bearer) is required
  };
  using Handler = std::function<void(ApiCall call)>;
  using RouteFunction = void (*)(ApiContext& api, ApiCall call);
  struct RouteSpec {
    std::string_view method;
    std::string_view pattern;
    Access access;
    RouteFunction handler;
  };

  ApiContext(net::EventLoop& loop, net::WorkQueue& queue, net::Router& router, sql::Store& store,
             auth::Jwt jwt, auth::PasswordHasher hasher, auth::LoginThrottle throttle,
             const base::Clock& clock, const metrics::SignalMetrics& metrics, metrics::Shard& shard,
             ApiContextOptions options, SignalSettings settings);
  ApiContext(const ApiContext&) = delete;
  ApiContext& operator=(const ApiContext&) = delete;

  // Adds a REST route. Its handler gets an ApiCall only after the checks:
  // origin allowed (else 403 ORIGIN_NOT_ALLOWED), body within
  // max_body_bytes (else 413), and for kUser a valid bearer token (else
  // 401; the call then carries the user id). Before the server starts.
  [[nodiscard]] base::Status Add(std::string_view method, std::string_view pattern, Access access,
                                 Handler handler);
  // Add() for each of `routes`, stopping at the first failure.
  [[nodiscard]] base::Status AddAll(std::initializer_list<RouteSpec> routes);

  // Runs `job` on the work queue, then `done(call, result)` on the loop.
  // A full or stopped queue answers 503 SERVICE_UNAVAILABLE at once.
  // RunRead is for a job that only reads (net::JobKind::kRead): it gets a
  // worker even while writes wait for a locked database. A job that waited
  // more than options().max_queue_wait is not run (503).
  template <typename Job, typename Done>
  void Run(ApiCall call, Job job, Done done, net::JobKind kind = net::JobKind::kWrite);
  template <typename Job, typename Done>
  void RunRead(ApiCall call, Job job, Done done) {
    Run(std::move(call), std::move(job), std::move(done), net::JobKind::kRead);
  }

  // Calls `query` (one store call) and records its duration in
  // turnkey_db_query_seconds. Any thread.
  template <typename Query>
  auto Db(Query&& query) const {
    const auto start = std::chrono::steady_clock::now();
    auto result = query(store_);
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    metrics_.db_query_seconds.Observe(shard_, took.count());
    return result;
  }

  // Checks "Authorization: Bearer <jwt>" (scheme in any case): signature,
  // expiry (TOKEN_EXPIRED), shape (TOKEN_INVALID), sign-out (TOKEN_REVOKED);
  // UNAUTHORIZED when there is none, 400 VALIDATION_ERROR (field
  // "Authorization") when there are two.
  std::expected<AccessToken, ApiError> Authenticate(const net::HttpRequest& request) const;
  std::expected<AccessToken, ApiError> VerifyAccessToken(std::string_view token) const;

  // A new login session for `user_id` before it is stored: a refresh token
  // of a new family and an access token in that family. The caller stores
  // `row` in its own transaction; the session is valid once that committed.
  // Any thread.
  struct PendingSession {
    IssuedSession session;
    sql::RefreshToken row;
  };
  PendingSession NewSession(const std::string& user_id) const;
  // A login's session, in a new family: only while the user's password hash
  // is still `password_hash`, the one the login checked (else
  // kPermissionDenied): a login racing a password change never outlives it
  // (Store::InsertLoginRefreshToken).
  base::Result<IssuedSession> IssueLoginSession(const std::string& user_id,
                                                std::string_view password_hash) const;
  // Signs an access token only, naming the login (refresh token family)
  // `family_id` in its "sid" claim. Any thread.
  std::string SignAccessToken(const std::string& user_id, const std::string& family_id) const;

  // A refresh token of the login `family_id` was reused (or presented after
  // its login was revoked): the access tokens that login bought are refused
  // from now on (TOKEN_REVOKED), until the last of them would have expired.
  void EndLogin(const std::string& user_id, const std::string& family_id);
  // Logins the store reports ended (Store::ListEndedLogins: at start-up, and
  // polled while serving, which brings in sign-outs made by `turnkey user`
  // or another node): their access tokens are refused until one access-token
  // lifetime after each ended. The hook runs for those not known before.
  void LoginsEnded(const std::vector<sql::EndedLogin>& logins);
  void set_logins_ended_hook(LoginsEndedHook hook) { logins_ended_hook_ = std::move(hook); }

  // {token, refreshToken, expiresIn, user, iceServers, iceServersTtl}: what
  // register and login answer.
  nlohmann::json SessionJson(const IssuedSession& session, const sql::User& user) const;

  // The ICE servers for `user_id` with fresh TURN credentials (STUN only
  // when no TURN secret is set).
  base::Result<auth::IceServerList> IceServers(std::string_view user_id) const;

  // A point in the order of token issues: unix microseconds, strictly
  // increasing across calls (and threads) in this process. Every access token
  // carries the stamp of its signing (JWT claim iat_us). Any thread.
  int64_t IssueStamp() const;
  // Unix seconds of the latest token issue this process may have made: the
  // clock, or the last stamp when the clock stepped back below it.
  int64_t LatestIssueSeconds() const;

  // After the store revoked every refresh token of `user_id`: refuses the
  // access tokens stamped before `signed_out_stamp` (an IssueStamp() taken
  // when the revocation began: a session issued after it, as a password
  // change's new one, stays valid) and `current` (the one in use); then runs
  // the signed-out hook.
  void EndUserSessions(const std::string& user_id, const AccessToken& current,
                       int64_t signed_out_stamp, std::string_view reason);
  void set_signed_out_hook(UserSignedOutHook hook) { signed_out_hook_ = std::move(hook); }

  // Runs on the loop whenever a handler has the user's current profile from
  // the store (GET /api/users/me read it; PATCH stored it: `changed`), so
  // in-memory copies of connected users stay current.
  using ProfileReadHook = std::function<void(const sql::User& user, bool changed)>;
  void set_profile_read_hook(ProfileReadHook hook) { profile_read_hook_ = std::move(hook); }
  void ProfileRead(const sql::User& user, bool changed = false) const {
    if (profile_read_hook_) {
      profile_read_hook_(user, changed);
    }
  }

  // Call-history reads run `HistoryBarrier(max_wait)`'s function on their
  // worker first, so they see every call record made before the request (the
  // call history writer batches its writes); it waits at most `max_wait` and
  // returns false when some of them still wait for the database
  // (CallStoreRecorder::WriteBarrier). Loop thread; no barrier when unset.
  using HistoryBarrierHook =
      std::function<std::function<bool()>(std::chrono::milliseconds max_wait)>;
  void set_history_barrier(HistoryBarrierHook hook) { history_barrier_ = std::move(hook); }
  std::function<bool()> HistoryBarrier(std::chrono::milliseconds max_wait) const {
    return history_barrier_ ? history_barrier_(max_wait)
                            : std::function<bool()>([] { return true; });
  }

  void SetSettings(SignalSettings settings);
  const SignalSettings& settings() const { return settings_; }
  // A drain (SIGUSR1) has begun: /readyz answers 503 so load balancers send
  // new clients elsewhere. Any thread.
  void SetDraining(bool draining) { draining_.store(draining); }
  bool draining() const { return draining_.load(); }
  // One more condition of /readyz (a cluster node's link): why the node is
  // not ready, or "". Loop thread.
  using ReadyCheck = std::function<std::string()>;
  void set_ready_check(ReadyCheck check) { ready_check_ = std::move(check); }
  std::string NotReadyReason() const { return ready_check_ ? ready_check_() : std::string(); }
  std::shared_ptr<const net::Cors> cors() const { return cors_; }

  sql::Store& store() const { return store_; }
  const auth::PasswordHasher& hasher() const { return hasher_; }
  auth::LoginThrottle& throttle() { return throttle_; }
  // Registrations per client; consult only when options().register_rate > 0.
  base::SourceRateLimiter& register_limiter() { return register_limiter_; }
  const base::Clock& clock() const { return clock_; }
  const metrics::SignalMetrics& metrics() const { return metrics_; }
  metrics::Shard& shard() const { return shard_; }
  const ApiContextOptions& options() const { return options_; }
  // Unix time for the store (milliseconds) and tokens (seconds). Any thread.
  int64_t NowMs() const { return clock_.UnixMillis(); }
  int64_t NowSeconds() const { return clock_.UnixSeconds(); }

 private:
  // Runs `done(call, result)` on the loop; keeps the call when the queue
  // refuses the job (WorkQueue::TryPost leaves a named argument alone then).
  template <typename Done>
  struct Completion {
    ApiCall call;
    Done done;
    template <typename... Result>
    void operator()(Result&&... result) {
      done(std::move(call), std::forward<Result>(result)...);
    }
  };

  // Drops revocation entries whose tokens have all expired.
  void PruneRevocations(int64_t now);

  net::EventLoop& loop_;
  net::WorkQueue& queue_;
  net::Router& router_;
  sql::Store& store_;
  const auth::Jwt jwt_;
  const auth::PasswordHasher hasher_;
  auth::LoginThrottle throttle_;
  const base::Clock& clock_;
  const metrics::SignalMetrics& metrics_;
  metrics::Shard& shard_;
  const ApiContextOptions options_;
  base::SourceRateLimiter register_limiter_;
  SignalSettings settings_;
  std::shared_ptr<const net::Cors> cors_;
  UserSignedOutHook signed_out_hook_;
  LoginsEndedHook logins_ended_hook_;
  HistoryBarrierHook history_barrier_;
  ProfileReadHook profile_read_hook_;
  // Sign-outs: access tokens of the user stamped before the stamp (the
  // token's iat_us) are refused; single tokens by id, until they expire
  // (unix seconds); and every token of an ended login (by its "sid"), until
  // the time its newest token expires at the latest (unix seconds).
  std::unordered_map<std::string, int64_t> signed_out_at_;
  std::unordered_map<std::string, int64_t> revoked_token_ids_;  // jti -> exp
  std::unordered_map<std::string, int64_t> ended_logins_;       // family id -> unix seconds
  mutable std::atomic<int64_t> last_stamp_{0};
  std::atomic<bool> draining_{false};
  ReadyCheck ready_check_;
};

template <typename Job, typename Done>
void ApiContext::Run(ApiCall call, Job job, Done done, net::JobKind kind) {
  using Result = std::invoke_result_t<Job&>;
  using Outcome = std::conditional_t<std::is_void_v<Result>, bool, std::optional<Result>>;
  // The outcome is empty (false) when the job waited too long to be run.
  auto timed = [job = std::move(job), &clock = clock_, posted = clock_.Now(),
                max_wait = options_.max_queue_wait]() mutable -> Outcome {
    if (clock.Now() - posted > max_wait) {
      return Outcome{};
    }
    if constexpr (std::is_void_v<Result>) {
      job();
      return true;
    } else {
      return Outcome{job()};
    }
  };
  auto answer = [done = std::move(done)](ApiCall call, Outcome outcome) mutable {
    if (!outcome) {
      TK_LOG_WARN_EVERY(std::chrono::seconds(10),
                        "signal: {} {} waited too long for a database worker; answered 503",
                        call.request().method, call.request().path);
      call.Fail(ApiError::Unavailable("The server is busy; try again shortly"));
    } else if constexpr (std::is_void_v<Result>) {
      done(std::move(call));
    } else {
      done(std::move(call), std::move(*outcome));
    }
  };
  Completion<decltype(answer)> finish{std::move(call), std::move(answer)};
  if (queue_.TryPost(loop_, std::move(timed), std::move(finish), kind)) {
    return;
  }
  finish.call.Fail(ApiError::Unavailable("The server is busy; try again shortly"));
}

}  // namespace turnkey::signal
