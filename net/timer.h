// Timer: a one-shot or periodic timer on an EventLoop.
//
// Owned by the caller (a plain member is typical); destroying it cancels it.
// Loop thread only. The callback must not destroy the Timer that runs it
// (use EventLoop::DeleteLater on the owner); it may Start() or Stop() it.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

struct event;

namespace turnkey::net {

class EventLoop;

class Timer {
 public:
  using Callback = std::function<void()>;

  // `loop` must outlive the timer. The timer starts stopped. Starting it only
  // fails when memory runs out, which aborts like operator new would.
  Timer(EventLoop& loop, Callback callback);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // Fires once after `delay`; restarts if already running.
  void Start(std::chrono::steady_clock::duration delay);
  // Fires every `interval` until Stop(); restarts if already running.
  void StartPeriodic(std::chrono::steady_clock::duration interval);
  void Stop();
  // True while a one-shot has not fired yet or a periodic timer runs.
  bool IsRunning() const;

  void set_callback(Callback callback) { callback_ = std::move(callback); }

 private:
  struct EventDeleter {
    void operator()(event* ev) const;
  };
  void Arm(std::chrono::steady_clock::duration delay, bool periodic);
  static void OnFire(int fd, short what, void* arg) noexcept;

  EventLoop& loop_;
  Callback callback_;
  // Made by the first Start (a timer that never runs costs no event), and
  // re-assigned between one-shot and periodic while stopped.
  std::unique_ptr<event, EventDeleter> event_;
  bool periodic_ = false;
};

}  // namespace turnkey::net
