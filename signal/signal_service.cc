#include "signal/signal_service.h"

#include <utility>

#include "base/log.h"
#include "net/cors.h"
#include "signal/api_routes.h"
#include "signal/engineio_server.h"

namespace turnkey::signal {

namespace {

// How often the drain looks whether the last connection is gone.
constexpr std::chrono::milliseconds kDrainPoll{20};

// "/socket.io/" -> "/socket.io".
std::string TrimSlash(std::string_view prefix) {
  while (prefix.size() > 1 && prefix.back() == '/') {
    prefix.remove_suffix(1);
  }
  return std::string(prefix);
}

bool UnderPrefix(std::string_view path, std::string_view prefix) {
  return path.starts_with(prefix) && (path.size() == prefix.size() || path[prefix.size()] == '/');
}

}  // namespace

SignalService::SignalService(SignalServiceOptions options, std::unique_ptr<sql::Store> store,
                             metrics::Registry& registry, metrics::SignalMetrics metrics)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : &base::SystemClock::Instance()),
      registry_(registry),
      metrics_(std::move(metrics)),
      store_(std::move(store)) {}

base::Result<std::unique_ptr<SignalService>> SignalService::Create(
    SignalServiceOptions options, std::unique_ptr<sql::Store> store, metrics::Registry& registry) {
  if (!store) {
    return base::InvalidArgument("signal: no store");
  }
  if (options.refresh_token_purge.count() > 0 && options.refresh_token_purge_batch <= 0) {
    return base::InvalidArgument("signal: refresh_token_purge_batch must be positive");
  }
  auto jwt = auth::Jwt::Create(options.jwt_key, options.jwt);
  if (!jwt) {
    return base::InvalidArgument("signal.jwt: " + jwt.error().message);
  }
  auto hasher = auth::PasswordHasher::Create(options.password_hash);
  if (!hasher) {
    return std::unexpected(hasher.error());
  }
  auto throttle = auth::LoginThrottle::Create(options.login_throttle);
  if (!throttle) {
    return std::unexpected(throttle.error());
  }
  auto signal_metrics = metrics::SignalMetrics::Create(registry);
  if (!signal_metrics) {
    return std::unexpected(signal_metrics.error());
  }
  std::unique_ptr<SignalService> service(
      new SignalService(std::move(options), std::move(store), registry, *signal_metrics));
  const SignalServiceOptions& opts = service->options_;

  auto loop = net::EventLoop::Create();
  if (!loop) {
    return std::unexpected(loop.error());
  }
  service->loop_ = std::move(*loop);
  net::WorkQueueOptions queue_options = opts.work_queue;
  queue_options.name = "tk-signal";
  auto queue = net::WorkQueue::Create(queue_options);
  if (!queue) {
    return std::unexpected(queue.error());
  }
  service->queue_ = std::move(*queue);

  ApiContextOptions api_options;
  api_options.max_body_bytes = opts.max_api_body_bytes;
  api_options.access_ttl = opts.access_ttl;
  api_options.refresh_ttl = opts.refresh_ttl;
  api_options.register_rate = opts.register_rate;
  api_options.register_burst = opts.register_burst;
  api_options.max_queue_wait = opts.max_queue_wait;
  service->api_ = std::make_unique<ApiContext>(
      *service->loop_, *service->queue_, service->router_, *service->store_, std::move(*jwt),
      std::move(*hasher), std::move(*throttle), *service->clock_, service->metrics_,
      registry.shared_shard(), api_options, opts.settings);
  for (auto add : {&AddAuthRoutes, &AddUserRoutes, &AddContactRoutes, &AddCallHistoryRoutes,
                   &AddTurnAndHealthRoutes}) {
    if (auto added = add(*service->api_); !added) {
      return std::unexpected(added.error());
    }
  }
  // Sign-outs made before this start (by an earlier run, `turnkey user` or
  // another node) keep refusing the access tokens of their logins.
  const int64_t now_ms = service->clock_->UnixMillis();
  auto ended = service->api_->Db([&](sql::Store& store) {
    return store.ListEndedLogins(now_ms - opts.access_ttl.count() * 1000);
  });
  if (!ended) {
    return base::Unavailable("signal: cannot read the ended logins: " + ended.error().message);
  }
  service->api_->LoginsEnded(*ended);
  service->login_polled_at_ms_ = now_ms;

  SignalService* self = service.get();
  service->router_.set_error_response([self](const net::HttpRequest& request, int status) {
    return self->RouterError(request, status);
  });
  // Every request the router dispatches is counted when it is answered (a
  // held poll later, an upgrade as 101), under its route's pattern. The
  // connection being alive then means the server, and so this service, is.
  service->router_.set_on_route([self](std::string_view pattern, net::Responder& responder) {
    self->CountAnswer(responder, pattern.empty() ? "unmatched" : pattern);
  });

  // A body over the HTTP limit (about 1 MB: Engine.IO's maxPayload) never
  // reaches the API's own 64 KiB check; answer it in the envelope too.
  net::HttpServerOptions http = opts.http;
  http.error_response = [self](const net::HttpRequest& head,
                               int status) -> std::optional<net::HttpResponse> {
    return self->HttpError(head, status);
  };
  http.on_body_pending = [self](const net::HttpRequest& head) { return self->BodyPending(head); };
  // Each request's own limit, so that a client cannot have the server hold
  // the HTTP limit (about 1 MB) for any path before anything else is
  // checked: a mount (Engine.IO) says what a request of its takes; every
  // other request, and one the mount has no limit for, takes at most the
  // API's 64 KiB.
  const uint64_t api_limit = opts.max_api_body_bytes;
  http.body_limit = [self, api_limit](const net::HttpRequest& head) -> uint64_t {
    const MountPoint* mount = self->MountOf(head.path);
    const uint64_t own =
        mount != nullptr && mount->body_limit ? mount->body_limit(head) : UINT64_MAX;
    return own == UINT64_MAX ? api_limit : own;
  };
  http.on_refused = [self](int status) {
    self->metrics_.HttpRequest("refused", status).Inc(*self->loop_shard_);
  };
  auto server = net::HttpServer::Create(*service->loop_, opts.listen, opts.tls, http,
                                        [self](net::HttpRequest request, net::Responder responder) {
                                          self->Handle(std::move(request), std::move(responder));
                                        });
  if (!server) {
    return base::Unavailable("listen on " + opts.listen.ToString() + ": " + server.error().message);
  }
  service->server_ = std::move(*server);
  service->drain_timer_ =
      std::make_unique<net::Timer>(*service->loop_, [self] { self->CheckDrained(); });
  service->login_poll_timer_ =
      std::make_unique<net::Timer>(*service->loop_, [self] { self->PollEndedLogins(); });
  service->purge_timer_ =
      std::make_unique<net::Timer>(*service->loop_, [self] { self->PurgeExpiredRefreshTokens(); });
  // Written by the loop thread only; handed out before it starts.
  service->loop_shard_ = &registry.AcquireShard();
  return service;
}

SignalService::~SignalService() {
  Stop();
  server_.reset();
  drain_timer_.reset();
  login_poll_timer_.reset();
  purge_timer_.reset();
  if (loop_shard_ != nullptr) {
    registry_.ReleaseShard(*loop_shard_);
  }
}

base::Status SignalService::Mount(
    std::string_view prefix, net::HttpHandler handler, net::HttpBodyPendingHook on_body_pending,
    MountErrorHook on_http_error,
    std::function<uint64_t(const net::HttpRequest& head)> body_limit) {
  if (started_) {
    return base::InvalidArgument("signal: Mount after Start");
  }
  std::string base = TrimSlash(prefix);
  if (base.size() < 2 || base.front() != '/') {
    return base::InvalidArgument("signal: mount prefix must look like /name/: " +
                                 std::string(prefix));
  }
  if (auto added = router_.Add("*", base + "/*", std::move(handler)); !added) {
    return added;
  }
  mounts_.push_back(MountPoint{std::move(base), std::move(on_body_pending),
                               std::move(on_http_error), std::move(body_limit)});
  return base::Ok();
}

base::Status SignalService::MountEngineIo(std::string_view prefix,
                                          std::function<EngineIoServer*()> engine) {
  return Mount(
      prefix,
      [engine](net::HttpRequest request, net::Responder responder) {
        if (EngineIoServer* server = engine()) {
          server->HandleRequest(std::move(request), std::move(responder));
        } else {
          responder.Respond(net::HttpResponse::Error(503));
        }
      },
      [engine](const net::HttpRequest& head) -> std::shared_ptr<void> {
        EngineIoServer* server = engine();
        return server != nullptr ? server->OnBodyPending(head) : nullptr;
      },
      [engine](const net::HttpRequest& head, int status) -> std::optional<net::HttpResponse> {
        if (EngineIoServer* server = engine()) {
          return server->RefusalResponse(head, status);
        }
        return std::nullopt;
      },
      [engine](const net::HttpRequest& head) -> uint64_t {
        EngineIoServer* server = engine();
        return server != nullptr ? server->BodyLimit(head) : UINT64_MAX;
      });
}

base::Status SignalService::AddRoute(std::string_view method, std::string_view pattern,
                                     net::HttpHandler handler) {
  if (started_) {
    return base::InvalidArgument("signal: AddRoute after Start");
  }
  return router_.Add(method, pattern, std::move(handler));
}

void SignalService::SetSignedOutHook(UserSignedOutHook hook) {
  api_->set_signed_out_hook(std::move(hook));
}

void SignalService::SetLoginsEndedHook(LoginsEndedHook hook) {
  api_->set_logins_ended_hook(std::move(hook));
}

void SignalService::OnStopping(std::function<void()> hook) {
  stopping_hooks_.push_back(std::move(hook));
}

void SignalService::OnStopped(std::function<void()> hook) {
  stopped_hooks_.push_back(std::move(hook));
}

void SignalService::Start() {
  if (started_ || stopped_) {
    return;
  }
  started_ = true;
  if (options_.ended_login_poll.count() > 0) {
    // The loop does not run yet: starting its timer from here is safe.
    login_poll_timer_->StartPeriodic(options_.ended_login_poll);
  }
  if (options_.refresh_token_purge.count() > 0) {
    // The first run a minute after the start, out of the way of its work.
    purge_timer_->Start(
        std::min<std::chrono::milliseconds>(options_.refresh_token_purge, std::chrono::minutes(1)));
  }
  TK_LOG_INFO("signal: serving {}://{}", options_.tls ? "https" : "http",
              server_->local_address().ToString());
  thread_ = std::thread([this] { loop_->Run(); });
}

void SignalService::Stop() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  if (loop_ == nullptr || server_ == nullptr) {
    if (queue_) {
      queue_->Shutdown();
    }
    return;
  }
  if (started_) {
    loop_->Post([this] {
      login_poll_timer_->Stop();
      purge_timer_->Stop();
      for (auto& hook : stopping_hooks_) {
        hook();
      }
      server_->Stop();
      drain_deadline_ = std::chrono::steady_clock::now() + options_.drain_timeout;
      CheckDrained();
    });
    thread_.join();
  } else {
    // Never served: the calling thread is still the loop thread.
    for (auto& hook : stopping_hooks_) {
      hook();
    }
    server_->Stop();
    for (auto& hook : stopped_hooks_) {
      hook();
    }
    server_->CloseAll();
  }
  // Jobs still queued run; their answers go to a loop that no longer runs
  // and are dropped with it (their connections are closed by then).
  queue_->Shutdown();
  TK_LOG_INFO("signal: stopped");
}

void SignalService::CheckDrained() {
  if (server_->connection_count() == 0 || std::chrono::steady_clock::now() >= drain_deadline_) {
    FinishDrain();
    return;
  }
  drain_timer_->Start(kDrainPoll);
}

void SignalService::PollEndedLogins() {
  if (login_poll_in_flight_) {
    return;
  }
  // Each poll reaches back a minute before the last one began: a revocation
  // whose transaction committed late, or stamped by another host's clock,
  // is still found. Logins already known are skipped by LoginsEnded.
  constexpr int64_t kOverlapMs = 60'000;
  const int64_t started_ms = clock_->UnixMillis();
  const int64_t since_ms = login_polled_at_ms_ - kOverlapMs;
  auto job = [api = api_.get(), since_ms] {
    return api->Db([&](sql::Store& store) { return store.ListEndedLogins(since_ms); });
  };
  auto done = [this, started_ms](base::Result<std::vector<sql::EndedLogin>> ended) {
    login_poll_in_flight_ = false;
    if (!ended) {
      // Once per outage, not every few seconds.
      if (!login_poll_failing_) {
        TK_LOG_WARN("signal: cannot read the ended logins: {}", ended.error().message);
      }
      login_poll_failing_ = true;
      return;
    }
    if (login_poll_failing_) {
      TK_LOG_INFO("signal: reading the ended logins again");
    }
    login_poll_failing_ = false;
    login_polled_at_ms_ = started_ms;
    api_->LoginsEnded(*ended);
  };
  login_poll_in_flight_ =
      queue_->TryPost(*loop_, std::move(job), std::move(done), net::JobKind::kRead);
}

void SignalService::PurgeExpiredRefreshTokens() {
  const int64_t now_ms = clock_->UnixMillis();
  const int64_t batch = options_.refresh_token_purge_batch;
  auto job = [api = api_.get(), now_ms, batch] {
    return api->Db(
        [&](sql::Store& store) { return store.PurgeExpiredRefreshTokens(now_ms, batch); });
  };
  auto done = [this, batch](base::Result<int64_t> purged) {
    if (!purged) {
      TK_LOG_WARN("signal: cannot delete expired refresh tokens: {}", purged.error().message);
    } else if (*purged > 0) {
      TK_LOG_DEBUG("signal: deleted {} expired refresh tokens", *purged);
    }
    // A full batch: more are waiting, after a pause that lets other writes in.
    purge_timer_->Start(purged && *purged >= batch ? std::chrono::milliseconds(100)
                                                   : options_.refresh_token_purge);
  };
  if (!queue_->TryPost(*loop_, std::move(job), std::move(done))) {
    purge_timer_->Start(options_.refresh_token_purge);
  }
}

void SignalService::FinishDrain() {
  if (server_->connection_count() > 0) {
    TK_LOG_WARN("signal: drain deadline reached with {} connections; closing them",
                server_->connection_count());
  }
  for (auto& hook : stopped_hooks_) {
    hook();
  }
  server_->CloseAll();
  loop_->Stop();
}

void SignalService::Reload(SignalSettings settings, std::shared_ptr<net::TlsContext> tls) {
  loop_->RunInLoop([this, settings = std::move(settings), tls = std::move(tls)]() mutable {
    api_->SetSettings(std::move(settings));
    if (tls && options_.tls) {
      if (auto set = server_->SetTlsContext(std::move(tls)); !set) {
        TK_LOG_ERROR("signal: tls reload: {}", set.error().message);
      }
    }
  });
}

std::expected<AccessToken, ApiError> SignalService::VerifyAccessToken(
    std::string_view token) const {
  return api_->VerifyAccessToken(token);
}

base::Result<auth::IceServerList> SignalService::IceServers(std::string_view user_id) const {
  return api_->IceServers(user_id);
}

const SignalSettings& SignalService::settings() const { return api_->settings(); }

const SignalService::MountPoint* SignalService::MountOf(std::string_view path) const {
  for (const MountPoint& mount : mounts_) {
    if (UnderPrefix(path, mount.prefix)) {
      return &mount;
    }
  }
  return nullptr;
}

std::shared_ptr<void> SignalService::BodyPending(const net::HttpRequest& head) {
  const MountPoint* mount = MountOf(head.path);
  return mount != nullptr && mount->on_body_pending ? mount->on_body_pending(head) : nullptr;
}

void SignalService::Handle(net::HttpRequest request, net::Responder responder) {
  if (MountOf(request.path) != nullptr) {
    router_.Dispatch(std::move(request), std::move(responder));
    return;
  }
  // Preflights are answered before routing: the router would answer an
  // OPTIONS itself, without the CORS headers (Fetch standard, "CORS-preflight
  // request").
  if (net::Cors::IsPreflight(request)) {
    net::HttpResponse response = api_->cors()->Preflight(request);
    if (response.status == 403) {
      // Refused in the API's envelope, as any other answer (docs/api.md).
      net::HttpResponse denied = ErrorResponse(ApiError::OriginNotAllowed());
      if (auto vary = response.headers.Get("Vary")) {
        denied.headers.Set("Vary", std::string(*vary));
      }
      response = std::move(denied);
    }
    CountAnswer(responder, "preflight");
    responder.Respond(std::move(response));
    return;
  }
  router_.Dispatch(std::move(request), std::move(responder));
}

std::optional<net::HttpResponse> SignalService::HttpError(const net::HttpRequest& head,
                                                          int status) {
  if (const MountPoint* mount = MountOf(head.path)) {
    // Engine.IO answers its own way (socketio.md sections 1.6 and 1.11).
    return mount->on_http_error ? mount->on_http_error(head, status) : std::nullopt;
  }
  if (status != 413) {
    return std::nullopt;
  }
  net::HttpResponse response = ErrorResponse(ApiError::PayloadTooLarge());
  api_->cors()->AddHeaders(head, response);
  return response;
}

void SignalService::SetDraining(bool draining) { api_->SetDraining(draining); }

void SignalService::CountAnswer(net::Responder& responder, std::string_view route) {
  responder.OnAnswer([this, route = std::string(route)](int status) {
    metrics_.HttpRequest(route, status).Inc(*loop_shard_);
  });
}

net::HttpResponse SignalService::RouterError(const net::HttpRequest& request, int status) {
  ApiError error;
  error.status = status;
  if (status == 405) {
    error.code = std::string(api_code::kMethodNotAllowed);
    error.message = "Method not allowed";
  } else if (status == 400) {
    error.code = std::string(api_code::kValidation);
    error.field = "path";
    error.message = "The path has a '%' that is not followed by two hex digits";
  } else {
    error.code = std::string(api_code::kNotFound);
    error.message = "No such endpoint";
  }
  net::HttpResponse response = ErrorResponse(error);
  api_->cors()->AddHeaders(request, response);
  return response;
}

}  // namespace turnkey::signal
