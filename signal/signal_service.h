// SignalService: the signaling and account service's HTTP side (DESIGN.md
// section 5): one event-loop thread running an HttpServer on signal.listen
// (plain or TLS) with the REST API under /api/, /healthz and /readyz, a
// bounded work queue for database calls and argon2id, and mount points for
// other handlers on the same port (the Socket.IO server under /socket.io/).
//
// Lifecycle (from the owning thread, normally main):
//   auto service = SignalService::Create(options, std::move(store), registry);
//   (*service)->Mount("/socket.io/", socketio->AsHandler());   // optional
//   (*service)->SetSignedOutHook(...);  OnStopping(...);  OnStopped(...);
//   (*service)->Start();
//   ... (*service)->Reload(settings, tls) on SIGHUP ...
//   (*service)->Stop();  // drain, then the destructor
//
// Objects of other code that live on the service's loop (e.g. a
// SocketIoServer) are created on the loop thread or before Start() and are
// destroyed in an OnStopped() hook: it runs on the loop thread after the
// drain and before the HttpServer is destroyed, as EngineIoServer requires.
//
// Threads: Create, Mount, the hook setters, Start, Stop, Reload and the
// destructor from one owning thread. Everything marked "loop thread" only
// from the loop (e.g. inside a handler, a hook, or a task posted with
// loop().Post()).
#pragma once

#include <chrono>
#include <expected>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "auth/ice_servers.h"
#include "auth/jwt.h"
#include "auth/login_throttle.h"
#include "auth/password_hasher.h"
#include "base/address.h"
#include "base/clock.h"
#include "base/status.h"
#include "metrics/registry.h"
#include "metrics/turnkey_metrics.h"
#include "net/event_loop.h"
#include "net/http_server.h"
#include "net/router.h"
#include "net/timer.h"
#include "net/tls_context.h"
#include "net/work_queue.h"
#include "signal/api_call.h"
#include "signal/api_context.h"
#include "signal/signal_settings.h"
#include "sql/store.h"

namespace turnkey::signal {

class EngineIoServer;

struct SignalServiceOptions {
  // Where to listen (signal.listen). Port 0 = any (see local_address()).
  base::SocketAddress listen = base::SocketAddress::V4({127, 0, 0, 1}, 0);
  // Server TLS context for HTTPS/WSS; null = plain HTTP.
  std::shared_ptr<net::TlsContext> tls;
  // HTTP limits. The body limit must stay above a mounted Engine.IO
  // server's max_payload; REST bodies have their own, smaller one below.
  net::HttpServerOptions http;
  // Largest REST request body. Default 64 KiB.
  size_t max_api_body_bytes = 64 * 1024;
  // Blocking work: database calls and argon2id. Default 4 threads (one
  // kept for reads), 1024 queued jobs.
  net::WorkQueueOptions work_queue;
  // A REST job that waited longer for a worker answers 503 unrun
  // (ApiContextOptions::max_queue_wait). Default 10 s.
  std::chrono::milliseconds max_queue_wait{10'000};
  // HMAC key of the access tokens, >= 32 bytes (signal.jwt.secret or the
  // generated state_dir/jwt.key). Required. Never logged.
  std::string jwt_key;
  // iss / aud of the tokens; iat may lie up to a minute ahead (another
  // node's clock).
  auth::JwtOptions jwt{.issued_leeway_seconds = 60};
  // Token lifetimes (signal.jwt.access_ttl, refresh_ttl).
  std::chrono::seconds access_ttl{15 * 60};
  std::chrono::seconds refresh_ttl{30 * 24 * 3600};
  auth::PasswordHashOptions password_hash;
  auth::LoginThrottleOptions login_throttle;
  // Registrations per client address (signal.rate_limits.
  // register_per_address): rate per second, 0 = no limit; burst. Default none.
  double register_rate = 0;
  double register_burst = 1;
  // The reloadable part.
  SignalSettings settings;
  // Stop(): how long in-flight requests and taken-over connections may take
  // to finish before they are closed. Default 10 s.
  std::chrono::milliseconds drain_timeout{10000};
  // How often the store is asked for logins that ended outside this
  // process (`turnkey user`, another node; Store::ListEndedLogins), whose
  // access tokens are then refused and sockets closed. Logins that ended
  // within one access-token lifetime before the start are read at Create.
  // Zero = only at Create. Default 5 s.
  std::chrono::milliseconds ended_login_poll{5000};
  // How often refresh tokens that expired are deleted from the store (every
  // login and refresh adds a row), in batches of refresh_token_purge_batch
  // rows, one write transaction each, until none is left. The first run is
  // a minute after the start (or after the interval, if shorter). Zero =
  // never. Default 1 h, 1000.
  std::chrono::milliseconds refresh_token_purge{3600 * 1000};
  int64_t refresh_token_purge_batch = 1000;
  // Time source; null = base::SystemClock. Must outlive the service.
  const base::Clock* clock = nullptr;
};

class SignalService {
 public:
  // Binds the listener, starts the work queue and checks the options (JWT
  // key length, password-hash cost); the loop thread starts with Start().
  // `registry` must outlive the service; the signaling metric families are
  // registered in it here.
  static base::Result<std::unique_ptr<SignalService>> Create(SignalServiceOptions options,
                                                             std::unique_ptr<sql::Store> store,
                                                             metrics::Registry& registry);
  // Stop() if still running, then frees everything.
  ~SignalService();
  SignalService(const SignalService&) = delete;
  SignalService& operator=(const SignalService&) = delete;

  // How the HTTP server's own refusal of a request under a mount (413 for a
  // body over the HTTP limit, 417) is answered: given the head and the
  // status, a response, or nullopt for the plain status page. Loop thread.
  using MountErrorHook =
      std::function<std::optional<net::HttpResponse>(const net::HttpRequest& head, int status)>;

  // Routes every method under `prefix` ("/socket.io/") to `handler` on the
  // loop thread; the handler answers CORS and everything else itself.
  // `on_body_pending` (optional) is the HttpServer's hook for the requests
  // under `prefix` (e.g. EngineIoServer::OnBodyPending), `on_http_error`
  // (optional) its answer to the refusals the handler never sees (e.g.
  // EngineIoServer::RefusalResponse). Before Start().
  // `body_limit` (optional) is the HttpServer's body_limit for them; where
  // it is unset or answers UINT64_MAX, a request takes at most
  // max_api_body_bytes, as every request outside a mount does.
  [[nodiscard]] base::Status Mount(
      std::string_view prefix, net::HttpHandler handler,
      net::HttpBodyPendingHook on_body_pending = nullptr, MountErrorHook on_http_error = nullptr,
      std::function<uint64_t(const net::HttpRequest& head)> body_limit = nullptr);

  // Mount() for an Engine.IO server: requests, the body-pending hook and the
  // HTTP server's refusals under `prefix` all go to the server `engine`
  // returns; while it returns nullptr, requests get 503 and refusals the
  // plain page. `engine` runs on the loop thread. Before Start().
  [[nodiscard]] base::Status MountEngineIo(std::string_view prefix,
                                           std::function<EngineIoServer*()> engine);

  // A plain route (no CORS, token or metrics wrapping), e.g. the demo page
  // at "/". Before Start().
  [[nodiscard]] base::Status AddRoute(std::string_view method, std::string_view pattern,
                                      net::HttpHandler handler);
  // The REST machinery, to add /api/ routes that behave like the built-in
  // ones (ApiContext::Add: CORS, body limit, bearer token, metrics,
  // {success, message, data}; ApiContext::Run for blocking work), e.g.
  // POST /api/calls/initiate. Routes before Start(); the rest on the loop.
  ApiContext& api() { return *api_; }

  // Runs on the loop thread after logout or a password change revoked every
  // session of a user: close that user's sockets. Before Start().
  void SetSignedOutHook(UserSignedOutHook hook);
  // Runs on the loop thread when logins (refresh-token families) end that
  // were not known here: a reused refresh token, or a sign-out found by the
  // poll (ended_login_poll). Close the sockets of those logins. Before
  // Start().
  void SetLoginsEndedHook(LoginsEndedHook hook);
  // Run on the loop thread when Stop() begins, before the listener closes
  // (end calls, close sockets gracefully), and after the drain, before the
  // HttpServer is destroyed (destroy what lives on the loop). In the order
  // added. Before Start().
  void OnStopping(std::function<void()> hook);
  void OnStopped(std::function<void()> hook);

  // Starts the loop thread.
  void Start();
  // Stops accepting, runs the stopping hooks, waits up to drain_timeout for
  // requests in flight and taken-over connections, runs the stopped hooks,
  // closes what is left, stops the loop thread and the work queue (queued
  // jobs still run; their answers are dropped). Idempotent.
  void Stop();

  // Applies reloadable settings (allowed origins, ICE URIs, TURN secret and
  // credential lifetime) to requests from now on, and a new certificate to
  // connections from now on (`tls` null = keep the current one). Any thread.
  void Reload(SignalSettings settings, std::shared_ptr<net::TlsContext> tls);
  // A drain has begun (SIGUSR1): /readyz answers 503 from now on. Any thread.
  void SetDraining(bool draining);

  // ---- For code mounted on the service (loop thread unless noted)

  // Verifies an access token as the REST API does (e.g. a Socket.IO CONNECT
  // `auth.token`). The error's `code` is TOKEN_EXPIRED, TOKEN_INVALID or
  // TOKEN_REVOKED.
  std::expected<AccessToken, ApiError> VerifyAccessToken(std::string_view token) const;
  // Fresh ICE servers for `user_id` (socket connect, getIceServers).
  base::Result<auth::IceServerList> IceServers(std::string_view user_id) const;
  // The current reloadable settings.
  const SignalSettings& settings() const;

  // Any thread.
  net::EventLoop& loop() { return *loop_; }
  net::WorkQueue& work_queue() { return *queue_; }
  sql::Store& store() { return *store_; }
  const base::Clock& clock() const { return *clock_; }
  const metrics::SignalMetrics& metrics() const { return metrics_; }
  // A metrics shard for the loop thread's own counting (e.g.
  // SignalMetricsCallSink); only the loop thread writes it.
  metrics::Shard& loop_shard() { return *loop_shard_; }
  metrics::Registry& registry() { return registry_; }
  base::SocketAddress local_address() const { return server_->local_address(); }

 private:
  SignalService(SignalServiceOptions options, std::unique_ptr<sql::Store> store,
                metrics::Registry& registry, metrics::SignalMetrics metrics);
  struct MountPoint;
  // The Mount() whose prefix `path` is under, or null.
  const MountPoint* MountOf(std::string_view path) const;
  // The HttpServer's handler: CORS preflights of the API, then the router.
  void Handle(net::HttpRequest request, net::Responder responder);
  // Answers the router's own 400 / 404 / 405 as JSON.
  net::HttpResponse RouterError(const net::HttpRequest& request, int status);
  // turnkey_http_requests_total{route} counts the request once `responder`
  // answers it.
  void CountAnswer(net::Responder& responder, std::string_view route);
  // HttpServerOptions::error_response: a 413 outside the mounts in the
  // API's envelope; under a mount, what its on_http_error answers.
  std::optional<net::HttpResponse> HttpError(const net::HttpRequest& head, int status);
  // HttpServerOptions::on_body_pending: the hook of the mount `head` is under.
  std::shared_ptr<void> BodyPending(const net::HttpRequest& head);
  // Loop thread: one step of the drain.
  void CheckDrained();
  // Asks the store for logins ended since the last poll (on the work queue).
  void PollEndedLogins();
  // Deletes one batch of expired refresh tokens (on the work queue) and
  // schedules the next run.
  void PurgeExpiredRefreshTokens();
  void FinishDrain();

  SignalServiceOptions options_;
  const base::Clock* clock_;
  metrics::Registry& registry_;
  const metrics::SignalMetrics metrics_;
  metrics::Shard* loop_shard_ = nullptr;
  std::unique_ptr<sql::Store> store_;
  std::unique_ptr<net::EventLoop> loop_;
  std::unique_ptr<net::WorkQueue> queue_;
  net::Router router_;
  std::unique_ptr<ApiContext> api_;
  std::unique_ptr<net::HttpServer> server_;
  std::unique_ptr<net::Timer> drain_timer_;
  // The ended-login poll: its timer, whether a query is on the work queue,
  // and the unix ms at which the last successful one was made.
  std::unique_ptr<net::Timer> login_poll_timer_;
  bool login_poll_in_flight_ = false;
  int64_t login_polled_at_ms_ = 0;
  bool login_poll_failing_ = false;
  // SignalServiceOptions::refresh_token_purge.
  std::unique_ptr<net::Timer> purge_timer_;
  struct MountPoint {
    std::string prefix;  // without the trailing '/'
    net::HttpBodyPendingHook on_body_pending;
    MountErrorHook on_http_error;
    std::function<uint64_t(const net::HttpRequest& head)> body_limit;
  };
  std::vector<MountPoint> mounts_;
  std::vector<std::function<void()>> stopping_hooks_;
  std::vector<std::function<void()>> stopped_hooks_;
  std::chrono::steady_clock::time_point drain_deadline_{};
  std::thread thread_;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace turnkey::signal
