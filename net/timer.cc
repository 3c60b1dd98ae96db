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

Timer::Timer(EventLoop& loop, Callback callback) : loop_(loop), callback_(std::move(callback)) {}

Timer::~Timer() = default;

void Timer::Start(std::chrono::steady_clock::duration delay) { Arm(delay, false); }

void Timer::StartPeriodic(std::chrono::steady_clock::duration interval) { Arm(interval, true); }

void Timer::Arm(std::chrono::steady_clock::duration delay, bool periodic) {
  Stop();
  // libevent fixes EV_PERSIST when an event is set up, so a change of kind
  // sets the (not pending) event up again.
  const short flags = periodic ? EV_PERSIST : 0;
  if (!event_) {
    event_.reset(event_new(loop_.base(), -1, flags, &Timer::OnFire, this));
    if (!event_) {
      TK_LOG_ERROR("out of memory creating a timer");
      std::abort();
    }
  } else if (periodic != periodic_) {
    event_assign(event_.get(), loop_.base(), -1, flags, &Timer::OnFire, this);
  }
  periodic_ = periodic;
  timeval tv = ToTimeval(delay);
  event_add(event_.get(), &tv);
}

void Timer::Stop() {
  if (event_) {
    event_del(event_.get());
  }
}

bool Timer::IsRunning() const {
  return event_ && event_pending(event_.get(), EV_TIMEOUT, nullptr) != 0;
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
