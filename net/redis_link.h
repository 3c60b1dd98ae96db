// RedisLink: the part of RedisConnection and RedisSubscriber that keeps one
// hiredis async context connected: connect with a timeout, AUTH, TCP
// keepalive, back-off between attempts, and a queue of deferred calls that
// keeps user callbacks out of hiredis' own callbacks. Internal to net/.
//
// Rules for the owner:
// - The hooks run inside hiredis or timer callbacks. They may send commands
//   on the context and call Fail() and Defer(), but must not call user code
//   or destroy the link: user code goes through Defer().
// - hiredis reply callbacks of the owner start with FromContext(ac): null
//   means the link is being destroyed, and the callback must only free its
//   privdata.
// - The link may be destroyed anywhere outside hiredis callbacks, which is
//   everywhere user code runs (deferred tasks).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/log.h"
#include "net/redis_client.h"
#include "net/timer.h"

struct redisAsyncContext;

namespace turnkey::net {

class EventLoop;

class RedisLink {
 public:
  using Task = std::move_only_function<void()>;
  struct Hooks {
    // The connection is up (AUTH accepted when a password is set): `ac`
    // takes commands now.
    std::function<void(redisAsyncContext* ac)> on_ready;
    // The connection that was up is gone; commands sent on it have already
    // been answered with a null reply.
    std::function<void()> on_lost;
  };

  // Does not connect yet: call Start(). `loop` must outlive the link.
  RedisLink(EventLoop& loop, RedisOptions options, std::string name, Hooks hooks);
  // Frees the context without running hooks or deferred tasks.
  ~RedisLink();
  RedisLink(const RedisLink&) = delete;
  RedisLink& operator=(const RedisLink&) = delete;

  // Makes the first attempt.
  void Start();
  // The context while the connection is up, else null.
  redisAsyncContext* ready_context() const;
  bool ready() const { return state_ == State::kReady; }
  // Gives up the current attempt or connection (logged with `why`, which
  // must hold no secret) and retries after the back-off. Safe inside hiredis
  // callbacks: the context is freed from a deferred task.
  void Fail(std::string_view why);
  // Runs `task` later from a loop task of the link's, after the tasks
  // deferred before it; dropped when the link is destroyed first. A task may
  // destroy the link's owner.
  void Defer(Task task);
  // Defers a call of the state handler with `up`.
  void NotifyState(bool up);
  void SetStateHandler(std::function<void(bool)> handler);

  const std::string& name() const { return name_; }
  // Why the last attempt or connection failed (no secret in it); "" once
  // connected.
  const std::string& last_failure() const { return last_failure_; }
  const RedisOptions& options() const { return options_; }
  // The link that owns `ac`, or null while the link is being destroyed.
  static RedisLink* FromContext(const redisAsyncContext* ac);

 private:
  enum class State {
    kWaiting,         // no context; the retry timer runs (or Start() is due)
    kConnecting,      // context made, TCP connect in progress; connect timer runs
    kAuthenticating,  // TCP up, AUTH sent, no answer yet; connect timer runs
    kReady,           // up: commands may be sent
    kFailed,          // given up by Fail(); the context is freed by a deferred task
  };
  static const char* StateName(State state);
  void SetState(State next);

  void StartAttempt();
  void OnConnected();
  void OnAuthAccepted();
  // Frees the context outside its callbacks (its pending reply callbacks
  // get a null reply), then waits for the retry. Not in kReady: on_lost has
  // run already.
  void DropContext();
  // Arms the retry timer with the current back-off and doubles it.
  void ScheduleRetry();
  void WarnAttemptFailed(std::string_view why);
  void Drain();

  static void OnConnect(const redisAsyncContext* ac, int status) noexcept;
  static void OnDisconnect(const redisAsyncContext* ac, int status) noexcept;
  static void OnAuthReply(redisAsyncContext* ac, void* reply, void* privdata) noexcept;

  EventLoop& loop_;
  const RedisOptions options_;
  const std::string name_;
  Hooks hooks_;
  State state_ = State::kWaiting;
  redisAsyncContext* ac_ = nullptr;  // owned; null in kWaiting
  std::chrono::milliseconds backoff_;
  Timer connect_timer_;
  Timer retry_timer_;
  // Attempts failed (or connections lost) since the last success.
  uint64_t failed_attempts_ = 0;
  std::string last_failure_;
  // A failed attempt is warned about at most this often.
  base::LogLimiter warn_limiter_{std::chrono::seconds(10)};
  // Shared with the handler call in flight, so that a handler destroying the
  // owner does not destroy itself while it runs.
  std::shared_ptr<const std::function<void(bool)>> state_handler_;

  std::deque<Task> deferred_;
  bool drain_posted_ = false;
  // False from the destructor on; the posted drain task holds a copy and
  // checks it, since a posted task cannot be cancelled.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace turnkey::net
