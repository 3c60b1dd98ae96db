#include "net/event_loop.h"

#include <event2/event.h>
#include <event2/thread.h>

#include <csignal>
#include <exception>

#include "base/log.h"

namespace turnkey::net {

void EventLoop::BaseDeleter::operator()(event_base* base) const { event_base_free(base); }
void EventLoop::EventDeleter::operator()(event* ev) const { event_free(ev); }

namespace {

// libevent requires the locking callbacks to be installed before any base is
// created, and only once per process.
bool EnableThreads() {
  static const bool enabled = evthread_use_pthreads() == 0;
  return enabled;
}

// A peer that resets a connection while we write must cost an EPIPE, not
// the process: libevent writes with writev(2) and OpenSSL with write(2),
// neither of which can pass MSG_NOSIGNAL.
void IgnoreSigpipe() {
  static const bool ignored = std::signal(SIGPIPE, SIG_IGN) != SIG_ERR;
  (void)ignored;
}

}  // namespace

base::Result<std::unique_ptr<EventLoop>> EventLoop::Create() {
  IgnoreSigpipe();
  if (!EnableThreads()) {
    return base::Internal("evthread_use_pthreads failed");
  }
  std::unique_ptr<EventLoop> loop(new EventLoop());
  loop->base_.reset(event_base_new());
  if (!loop->base_) {
    return base::Unavailable("event_base_new failed");
  }
  // Neither event is ever added with a timeout or a descriptor: they only run
  // when activated by event_active(), which wakes the base from any thread.
  loop->post_event_.reset(event_new(loop->base_.get(), -1, 0, &EventLoop::OnPosted, loop.get()));
  loop->destroy_event_.reset(
      event_new(loop->base_.get(), -1, 0, &EventLoop::OnDeferredDestroy, loop.get()));
  loop->stop_event_.reset(event_new(loop->base_.get(), -1, 0, &EventLoop::OnStop, loop.get()));
  if (!loop->post_event_ || !loop->destroy_event_ || !loop->stop_event_) {
    return base::Unavailable("event_new failed");
  }
  loop->loop_thread_.store(std::this_thread::get_id());
  return loop;
}

EventLoop::~EventLoop() {
  // Work posted from here on is dropped, and a Stop() is ignored.
  closing_ = true;
  // Deferred objects may still reference the base in their destructors, so
  // they go first; their destructors may defer more.
  DestroyDeferred();
  // A bufferevent keeps a reference on itself while one of its deferred
  // callbacks is pending (the TLS one defers its write callback after every
  // send), and event_base_free() cancels such a callback without dropping
  // that reference. One freed while the loop was stopped before the callback
  // ran would never be. One non-blocking pass runs those callbacks: freeing
  // a bufferevent cleared its user callbacks, so they only drop the reference
  // and schedule the finalizer that event_base_free() runs.
  event_base_loop(base_.get(), EVLOOP_NONBLOCK | EVLOOP_ONCE);
  DestroyDeferred();
  std::vector<std::function<void()>> dropped;
  {
    // From here on Post() and Stop() return without touching the events
    // (they activate them under this lock), so freeing them is safe even if
    // another thread still posts.
    std::lock_guard lock(post_mutex_);
    posts_closed_ = true;
    dropped.swap(posted_);
  }
  dropped.clear();  // outside the lock: a task's destructor may Post (ignored)
  post_event_.reset();
  destroy_event_.reset();
  stop_event_.reset();
  base_.reset();
}

void EventLoop::Run() {
  loop_thread_.store(std::this_thread::get_id());
  // EVLOOP_NO_EXIT_ON_EMPTY: a loop with nothing registered yet (e.g. a worker
  // waiting for posted work) must keep running until Stop().
  // The loop runs at least once even after an early Stop(): the stop event is
  // then already active and breaks the first iteration, after the tasks
  // posted before it (active events run in activation order).
  do {
    if (event_base_loop(base_.get(), EVLOOP_NO_EXIT_ON_EMPTY) < 0) {
      TK_LOG_ERROR("event_base_loop failed; stopping the loop");
      return;
    }
  } while (!stop_requested_.exchange(false));
}

void EventLoop::RunOnce() {
  loop_thread_.store(std::this_thread::get_id());
  event_base_loop(base_.get(), EVLOOP_ONCE);
}

void EventLoop::Stop() {
  stop_requested_.store(true);
  std::lock_guard lock(post_mutex_);
  if (!posts_closed_) {
    event_active(stop_event_.get(), 0, 0);
  }
}

void EventLoop::Post(std::function<void()> task) {
  std::lock_guard lock(post_mutex_);
  if (posts_closed_) {
    return;  // `task` is destroyed by the caller, after the lock is released
  }
  const bool was_empty = posted_.empty();
  posted_.push_back(std::move(task));
  // One activation covers everything queued until the callback swaps the
  // queue out, so only the first Post after a drain needs to wake the loop.
  // Under the lock, so the destructor cannot free the event meanwhile.
  if (was_empty) {
    event_active(post_event_.get(), 0, 0);
  }
}

void EventLoop::RunInLoop(std::function<void()> task) {
  if (IsInLoopThread()) {
    task();
  } else {
    Post(std::move(task));
  }
}

bool EventLoop::IsInLoopThread() const { return loop_thread_.load() == std::this_thread::get_id(); }

void EventLoop::DeferDestroy(Deferred object) {
  deferred_.push_back(std::move(object));
  if (deferred_.size() == 1) {
    event_active(destroy_event_.get(), 0, 0);
  }
}

void EventLoop::RunPosted() noexcept {
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard lock(post_mutex_);
    tasks.swap(posted_);
  }
  if (closing_) {
    return;
  }
  for (auto& task : tasks) {
    try {
      task();
    } catch (const std::exception& e) {
      TK_LOG_ERROR("posted task threw: {}", e.what());
    } catch (...) {
      TK_LOG_ERROR("posted task threw a non-standard exception");
    }
  }
}

void EventLoop::DestroyDeferred() noexcept {
  while (!deferred_.empty()) {
    std::vector<Deferred> batch;
    batch.swap(deferred_);
  }
}

void EventLoop::RunDeferredDestroy() noexcept {
  // Swap first: a destructor may DeleteLater() more objects, which then get
  // their own activation and go in a later pass.
  std::vector<Deferred> batch;
  batch.swap(deferred_);
  batch.clear();
}

void EventLoop::OnPosted(int /*fd*/, short /*what*/, void* arg) noexcept {
  static_cast<EventLoop*>(arg)->RunPosted();
}

void EventLoop::OnDeferredDestroy(int /*fd*/, short /*what*/, void* arg) noexcept {
  static_cast<EventLoop*>(arg)->RunDeferredDestroy();
}

void EventLoop::OnStop(int /*fd*/, short /*what*/, void* arg) noexcept {
  auto* loop = static_cast<EventLoop*>(arg);
  // A Stop() left over from after Run() returned must not cut the
  // destructor's pass short.
  if (!loop->closing_) {
    event_base_loopbreak(loop->base_.get());
  }
}

}  // namespace turnkey::net
