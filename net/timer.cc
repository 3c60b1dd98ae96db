#include "net/timer.h"

#include <event2/event.h>

#include <cstdlib>
#include <exception>

#include "base/log.h"
#include "net/event_loop.h"

namespace turnkey::net {

void Timer::EventDeleter::operator()(event* ev) const { event_free(ev); }

namespace {

timeval ToTimeval(std::chrono::steady_clock::duration d) {
  if (d < std::chrono::steady_clock::duration::zero()) {
    d = std::chrono::steady_clock::duration::zero();
  }
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(us / 1'000'000);
  tv.tv_usec = static_cast<suseconds_t>(us % 1'000'000);
  return tv;
}

}  // namespace

Timer::Timer(EventLoop& loop, Callback callback) : loop_(loop), callback_(std::move(callback)) {
  // Two events because libevent fixes EV_PERSIST at creation; only one of
  // them is ever pending.
  one_shot_.reset(evtimer_new(loop_.base(), &Timer::OnFire, this));
  periodic_.reset(event_new(loop_.base(), -1, EV_PERSIST, &Timer::OnFire, this));
  if (!one_shot_ || !periodic_) {
    TK_LOG_ERROR("out of memory creating a timer");
    std::abort();
  }
}

Timer::~Timer() = default;

void Timer::Start(std::chrono::steady_clock::duration delay) { Arm(delay, false); }

void Timer::StartPeriodic(std::chrono::steady_clock::duration interval) { Arm(interval, true); }

void Timer::Arm(std::chrono::steady_clock::duration delay, bool periodic) {
  Stop();
  timeval tv = ToTimeval(delay);
  event_add(periodic ? periodic_.get() : one_shot_.get(), &tv);
}

void Timer::Stop() {
  event_del(one_shot_.get());
  event_del(periodic_.get());
}

bool Timer::IsRunning() const {
  return event_pending(one_shot_.get(), EV_TIMEOUT, nullptr) != 0 ||
         event_pending(periodic_.get(), EV_TIMEOUT, nullptr) != 0;
}

void Timer::OnFire(int /*fd*/, short /*what*/, void* arg) noexcept {
  auto* timer = static_cast<Timer*>(arg);
  if (!timer->callback_) {
    return;
  }
  try {
    timer->callback_();
  } catch (const std::exception& e) {
    TK_LOG_ERROR("timer callback threw: {}", e.what());
  } catch (...) {
    TK_LOG_ERROR("timer callback threw a non-standard exception");
  }
}

}  // namespace turnkey::net
