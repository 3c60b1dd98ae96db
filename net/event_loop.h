// EventLoop: one libevent event_base driven by one thread.
//
// Every object of net/ (sockets, timers, connections) belongs to exactly one
// loop and is used only on that loop's thread. Other threads reach a loop only
// through Post() and Stop() (STYLE.md: one loop per thread).
//
// Deferred deletion: an object must never be destroyed inside one of its own
// callbacks. Hand it to DeleteLater() instead; it is destroyed after the
// callback that is running returns, in the same loop iteration.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "base/status.h"

struct event_base;
struct event;

namespace turnkey::net {

class EventLoop {
 public:
  // Creates a loop. Once per process, also turns on libevent's pthread
  // locking (before the first base exists) and ignores SIGPIPE (writes to a
  // reset socket must fail with EPIPE, not kill the daemon). The calling thread is the loop
  // thread until Run() or RunOnce() is called from another thread.
  static base::Result<std::unique_ptr<EventLoop>> Create();

  // Destroys what DeleteLater() still holds and drops posted work that never
  // ran. Every socket, timer and connection of this loop must be destroyed
  // first. Call on the loop thread after Run() has returned. Runs one
  // non-blocking iteration first, so that libevent callbacks still pending
  // for objects freed while the loop was stopped can release them.
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Dispatches events until Stop(); the calling thread becomes the loop thread.
  void Run();
  // Runs one iteration: waits until at least one event is ready, handles the
  // ready ones and returns. For tests and for callers that drive the loop
  // themselves (e.g. "run until this happened or a deadline timer fired").
  void RunOnce();
  // Makes Run() return after the current callback. Any thread. Tasks posted
  // before Stop() still run first. A Stop() before Run() makes the next Run()
  // return after one iteration.
  void Stop();

  // Queues `task` to run on the loop thread in a later iteration. Any thread.
  // Tasks run in the order they were posted. Tasks must not throw (an escaping
  // exception is caught, logged and dropped).
  void Post(std::function<void()> task);
  // Runs `task` now when called on the loop thread, else Post()s it.
  void RunInLoop(std::function<void()> task);
  // True on the thread that runs (or will run) this loop.
  bool IsInLoopThread() const;

  // Destroys `object` after the current callback returns (same iteration).
  // Loop thread only. Null is ignored.
  template <typename T>
  void DeleteLater(std::unique_ptr<T> object) {
    if (object) {
      DeferDestroy(Deferred(object.release(), [](void* p) { delete static_cast<T*>(p); }));
    }
  }

  // For net/ internals: the libevent base. Users outside net/ never need it.
  event_base* base() const { return base_.get(); }

 private:
  using Deferred = std::unique_ptr<void, void (*)(void*)>;
  struct BaseDeleter {
    void operator()(event_base* base) const;
  };
  struct EventDeleter {
    void operator()(event* ev) const;
  };

  EventLoop() = default;
  void DeferDestroy(Deferred object);
  void RunPosted() noexcept;
  void RunDeferredDestroy() noexcept;
  // Destroys everything deferred, including what those destructors defer.
  void DestroyDeferred() noexcept;
  static void OnPosted(int fd, short what, void* arg) noexcept;
  static void OnDeferredDestroy(int fd, short what, void* arg) noexcept;
  static void OnStop(int fd, short what, void* arg) noexcept;

  std::unique_ptr<event_base, BaseDeleter> base_;
  // Activated by Post(); runs everything queued so far.
  std::unique_ptr<event, EventDeleter> post_event_;
  // Activated by DeleteLater(); frees what was deferred.
  std::unique_ptr<event, EventDeleter> destroy_event_;
  // Activated by Stop(); breaks the loop from inside it. A plain
  // event_base_loopbreak() from another thread is lost when it lands just
  // before event_base_loop() starts (the loop clears the flag on entry).
  std::unique_ptr<event, EventDeleter> stop_event_;

  std::mutex post_mutex_;
  std::vector<std::function<void()>> posted_;  // guarded by post_mutex_
  bool posts_closed_ = false;                  // guarded by post_mutex_; set by the destructor

  std::vector<Deferred> deferred_;  // loop thread only
  bool closing_ = false;            // set by the destructor: posted tasks and stops are ignored
  std::atomic<std::thread::id> loop_thread_;
  std::atomic<bool> stop_requested_{false};
};

}  // namespace turnkey::net
