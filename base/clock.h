// Clock interface: protocol logic takes `now` from a Clock so tests drive time
// with FakeClock instead of sleeping.
#pragma once

#include <chrono>
#include <cstdint>

namespace turnkey::base {

using MonoTime = std::chrono::steady_clock::time_point;
using Duration = std::chrono::steady_clock::duration;

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time, for timeouts and lifetimes.
  virtual MonoTime Now() const = 0;
  // Wall-clock seconds since the Unix epoch, for TURN REST expiry and JWTs.
  virtual int64_t UnixSeconds() const = 0;
  // The same clock in milliseconds (UnixSeconds() == UnixMillis() / 1000), for
  // stored times and for ordering events within a second.
  virtual int64_t UnixMillis() const = 0;
};

// The real clocks. Thread-safe.
class SystemClock final : public Clock {
 public:
  MonoTime Now() const override { return std::chrono::steady_clock::now(); }
  int64_t UnixSeconds() const override;
  int64_t UnixMillis() const override;
  // A process-wide instance.
  static const SystemClock& Instance();
};

// A clock that only moves when told to. Not thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t unix_seconds = 1'700'000'000) : unix_base_(unix_seconds) {}
  MonoTime Now() const override { return MonoTime{} + elapsed_; }
  int64_t UnixSeconds() const override {
    return unix_base_ + std::chrono::floor<std::chrono::seconds>(elapsed_ + wall_step_).count();
  }
  int64_t UnixMillis() const override {
    return unix_base_ * 1000 +
           std::chrono::floor<std::chrono::milliseconds>(elapsed_ + wall_step_).count();
  }
  void Advance(Duration d) { elapsed_ += d; }
  // Moves the wall clock alone, as NTP or an admin stepping it does.
  void StepWall(Duration d) { wall_step_ += d; }

 private:
  int64_t unix_base_;
  Duration elapsed_{};
  Duration wall_step_{};
};

}  // namespace turnkey::base
