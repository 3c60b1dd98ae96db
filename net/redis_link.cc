#include "net/redis_link.h"

// hiredis' libevent adapter defines static functions over <event2/event.h>,
// which is why only net/ may include it.
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <cassert>
#include <utility>
#include <vector>

#include "net/event_loop.h"

namespace turnkey::net {

RedisLink::RedisLink(EventLoop& loop, RedisOptions options, std::string name, Hooks hooks)
    : loop_(loop),
      options_(std::move(options)),
      name_(std::move(name)),
      hooks_(std::move(hooks)),
      // A zero back-off would retry in a busy loop.
      backoff_(std::max(options_.reconnect_min, std::chrono::milliseconds(1))),
      connect_timer_(
          loop,
          [this] {
            if (state_ == State::kConnecting || state_ == State::kAuthenticating) {
              WarnAttemptFailed(fmt::format("no connection within {} ms (state {})",
                                            options_.connect_timeout.count(), StateName(state_)));
              DropContext();
            }
          }),
      retry_timer_(loop, [this] {
        if (state_ == State::kWaiting) {
          StartAttempt();
        }
      }) {}

RedisLink::~RedisLink() {
  *alive_ = false;
  if (redisAsyncContext* ac = std::exchange(ac_, nullptr)) {
    // With data cleared, the reply callbacks hiredis runs from
    // redisAsyncFree() (each pending one, with a null reply) only free their
    // privdata, and no hook runs. We never get here from inside one of this
    // context's callbacks: user code runs only from deferred tasks.
    ac->data = nullptr;
    ac->onConnect = nullptr;
    ac->onDisconnect = nullptr;
    redisAsyncFree(ac);
  }
}

const char* RedisLink::StateName(State state) {
  switch (state) {
    case State::kWaiting:
      return "waiting";
    case State::kConnecting:
      return "connecting";
    case State::kAuthenticating:
      return "authenticating";
    case State::kReady:
      return "ready";
    case State::kFailed:
      return "failed";
  }
  return "?";
}

void RedisLink::SetState(State next) {
  bool legal = false;
  switch (state_) {
    case State::kWaiting:
      legal = next == State::kConnecting;
      break;
    case State::kConnecting:
      legal = next == State::kAuthenticating || next == State::kReady || next == State::kWaiting ||
              next == State::kFailed;
      break;
    case State::kAuthenticating:
      legal = next == State::kReady || next == State::kWaiting || next == State::kFailed;
      break;
    case State::kReady:
      legal = next == State::kWaiting || next == State::kFailed;
      break;
    case State::kFailed:
      legal = next == State::kWaiting;
      break;
  }
  if (!legal) {
    TK_LOG_ERROR("redis({}): illegal state change {} -> {}", name_, StateName(state_),
                 StateName(next));
    assert(false);
  }
  state_ = next;
}

void RedisLink::Start() { StartAttempt(); }

redisAsyncContext* RedisLink::ready_context() const {
  return state_ == State::kReady ? ac_ : nullptr;
}

RedisLink* RedisLink::FromContext(const redisAsyncContext* ac) {
  return static_cast<RedisLink*>(ac->data);
}

void RedisLink::StartAttempt() {
  // hiredis resolves a host name here, blocking (see redis_client.h).
  redisAsyncContext* ac = redisAsyncConnect(options_.host.c_str(), options_.port);
  if (ac == nullptr) {
    WarnAttemptFailed("out of memory creating a hiredis context");
    ScheduleRetry();
    return;
  }
  if (ac->err != 0) {
    WarnAttemptFailed(fmt::format("connect failed: {}", ac->errstr));
    redisAsyncFree(ac);
    ScheduleRetry();
    return;
  }
  ac->data = this;
  // Probes an idle connection (hiredis' REDIS_KEEPALIVE_INTERVAL, 15 s), so a
  // server host that vanished without a FIN or RST is noticed. (0.14 exports
  // no redisKeepAlive() with another interval.)
  if (redisEnableKeepAlive(&ac->c) != REDIS_OK) {
    WarnAttemptFailed(fmt::format("enabling TCP keepalive failed: {}", ac->c.errstr));
    redisAsyncFree(ac);
    ScheduleRetry();
    return;
  }
  if (redisLibeventAttach(ac, loop_.base()) != REDIS_OK) {
    WarnAttemptFailed("attaching to the event loop failed");
    redisAsyncFree(ac);
    ScheduleRetry();
    return;
  }
  redisAsyncSetConnectCallback(ac, &RedisLink::OnConnect);
  redisAsyncSetDisconnectCallback(ac, &RedisLink::OnDisconnect);
  ac_ = ac;
  SetState(State::kConnecting);
  connect_timer_.Start(options_.connect_timeout);
}

void RedisLink::OnConnect(const redisAsyncContext* ac, int status) noexcept {
  RedisLink* link = FromContext(ac);
  if (link == nullptr || link->ac_ != ac || link->state_ != State::kConnecting) {
    return;
  }
  if (status != REDIS_OK) {
    // hiredis frees the context when this callback returns (and runs no
    // disconnect callback, as it never was connected).
    link->ac_ = nullptr;
    link->connect_timer_.Stop();
    link->WarnAttemptFailed(fmt::format("connect failed: {}", ac->c.errstr));
    link->SetState(State::kWaiting);
    link->ScheduleRetry();
    return;
  }
  link->OnConnected();
}

void RedisLink::OnConnected() {
  if (options_.password.empty()) {
    OnAuthAccepted();
    return;
  }
  std::vector<const char*> argv{"AUTH"};
  std::vector<size_t> lens{4};
  if (!options_.username.empty()) {
    argv.push_back(options_.username.data());
    lens.push_back(options_.username.size());
  }
  argv.push_back(options_.password.data());
  lens.push_back(options_.password.size());
  SetState(State::kAuthenticating);
  if (redisAsyncCommandArgv(ac_, &RedisLink::OnAuthReply, nullptr, static_cast<int>(argv.size()),
                            argv.data(), lens.data()) != REDIS_OK) {
    Fail("AUTH could not be queued");
  }
}

void RedisLink::OnAuthReply(redisAsyncContext* ac, void* reply, void* /*privdata*/) noexcept {
  RedisLink* link = FromContext(ac);
  // A null reply: the context is going away, and whoever frees it handles
  // that.
  if (link == nullptr || reply == nullptr || link->ac_ != ac ||
      link->state_ != State::kAuthenticating) {
    return;
  }
  const auto* r = static_cast<const redisReply*>(reply);
  if (r->type == REDIS_REPLY_ERROR) {
    // Redis' answer names no secret ("WRONGPASS invalid username-password
    // pair or user is disabled.").
    link->Fail(fmt::format("AUTH refused{}{}: {}", link->options_.username.empty() ? "" : " for ",
                           link->options_.username, std::string_view(r->str, r->len)));
    return;
  }
  link->OnAuthAccepted();
}

void RedisLink::OnAuthAccepted() {
  connect_timer_.Stop();
  SetState(State::kReady);
  backoff_ = std::max(options_.reconnect_min, std::chrono::milliseconds(1));
  if (failed_attempts_ == 0) {
    TK_LOG_INFO("redis({}): connected to {}:{}", name_, options_.host, options_.port);
  } else {
    TK_LOG_INFO("redis({}): connected to {}:{} after {} failed attempt(s)", name_, options_.host,
                options_.port, failed_attempts_);
  }
  failed_attempts_ = 0;
  last_failure_.clear();
  if (hooks_.on_ready) {
    hooks_.on_ready(ac_);
  }
}

void RedisLink::OnDisconnect(const redisAsyncContext* ac, int status) noexcept {
  RedisLink* link = FromContext(ac);
  if (link == nullptr || link->ac_ != ac) {
    return;
  }
  // hiredis frees the context when this returns; the replies pending on it
  // have had their null reply already.
  link->ac_ = nullptr;
  link->connect_timer_.Stop();
  const bool was_ready = link->state_ == State::kReady;
  link->WarnAttemptFailed(
      status == REDIS_OK || ac->c.err == 0
          ? std::string("connection closed")
          : fmt::format("connection lost ({}): {}", StateName(link->state_), ac->c.errstr));
  link->SetState(State::kWaiting);
  if (was_ready && link->hooks_.on_lost) {
    link->hooks_.on_lost();
  }
  link->ScheduleRetry();
}

void RedisLink::Fail(std::string_view why) {
  if (state_ == State::kWaiting || state_ == State::kFailed) {
    return;
  }
  const bool was_ready = state_ == State::kReady;
  WarnAttemptFailed(why);
  connect_timer_.Stop();
  SetState(State::kFailed);
  if (was_ready && hooks_.on_lost) {
    hooks_.on_lost();
  }
  // We may be inside one of the context's own callbacks (an AUTH or SUBSCRIBE
  // reply): free it from a task of our own instead.
  Defer([this] {
    if (state_ == State::kFailed) {
      DropContext();
    }
  });
}

void RedisLink::DropContext() {
  connect_timer_.Stop();
  if (redisAsyncContext* ac = std::exchange(ac_, nullptr)) {
    // Our own bookkeeping follows; the pending replies still get their null
    // reply (data stays set), so their callers hear Unavailable.
    ac->onDisconnect = nullptr;
    redisAsyncFree(ac);
  }
  SetState(State::kWaiting);
  ScheduleRetry();
}

void RedisLink::ScheduleRetry() {
  retry_timer_.Start(backoff_);
  const auto max = std::max(options_.reconnect_max, options_.reconnect_min);
  backoff_ = std::min(backoff_ * 2, std::max(max, std::chrono::milliseconds(1)));
}

void RedisLink::WarnAttemptFailed(std::string_view why) {
  ++failed_attempts_;
  last_failure_ = why;
  if (uint64_t held_back = 0; warn_limiter_.Allow(&held_back)) {
    TK_LOG_WARN("redis({}): {}:{}: {}{}", name_, options_.host, options_.port, why,
                base::HeldBack(held_back));
  }
}

void RedisLink::Defer(Task task) {
  deferred_.push_back(std::move(task));
  if (!drain_posted_) {
    drain_posted_ = true;
    loop_.Post([this, alive = alive_] {
      if (*alive) {
        Drain();
      }
    });
  }
}

void RedisLink::Drain() {
  // A task may destroy the owner, and with it this link: `alive` stays valid.
  const std::shared_ptr<bool> alive = alive_;
  while (!deferred_.empty()) {
    Task task = std::move(deferred_.front());
    deferred_.pop_front();
    task();
    if (!*alive) {
      return;
    }
  }
  drain_posted_ = false;
}

void RedisLink::NotifyState(bool up) {
  Defer([this, up] {
    // The copy keeps the handler alive if it destroys the owner.
    const auto handler = state_handler_;
    if (handler && *handler) {
      (*handler)(up);
    }
  });
}

void RedisLink::SetStateHandler(std::function<void(bool)> handler) {
  state_handler_ = std::make_shared<const std::function<void(bool)>>(std::move(handler));
}

}  // namespace turnkey::net
