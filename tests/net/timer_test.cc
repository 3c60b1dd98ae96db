#include "net/timer.h"

#include <gtest/gtest.h>

#include <chrono>

#include "tests/net/net_test_util.h"

namespace turnkey::net {
namespace {

using namespace std::chrono_literals;
using testing::MakeLoop;
using testing::RunUntil;

TEST(TimerTest, OneShotFiresOnceAfterTheDelay) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  int fired = 0;
  Timer timer(*loop, [&] { ++fired; });
  EXPECT_FALSE(timer.IsRunning());
  const auto start = std::chrono::steady_clock::now();
  timer.Start(20ms);
  EXPECT_TRUE(timer.IsRunning());
  EXPECT_TRUE(RunUntil(*loop, [&] { return fired == 1; }));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
  EXPECT_FALSE(timer.IsRunning());
  // A later, unrelated deadline passes without a second firing.
  Timer other(*loop, [] {});
  other.Start(50ms);
  RunUntil(*loop, [&] { return !other.IsRunning(); });
  EXPECT_EQ(fired, 1);
}

TEST(TimerTest, PeriodicFiresUntilStopped) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  int fired = 0;
  Timer timer(*loop, [&] {});
  timer.set_callback([&] {
    if (++fired == 5) {
      timer.Stop();
    }
  });
  timer.StartPeriodic(5ms);
  EXPECT_TRUE(RunUntil(*loop, [&] { return fired == 5; }));
  EXPECT_FALSE(timer.IsRunning());
  Timer other(*loop, [] {});
  other.Start(30ms);
  RunUntil(*loop, [&] { return !other.IsRunning(); });
  EXPECT_EQ(fired, 5);
}

TEST(TimerTest, StopPreventsFiringAndRestartWorks) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  int fired = 0;
  Timer timer(*loop, [&] { ++fired; });
  timer.Start(10ms);
  timer.Stop();
  Timer guard(*loop, [] {});
  guard.Start(40ms);
  RunUntil(*loop, [&] { return !guard.IsRunning(); });
  EXPECT_EQ(fired, 0);
  timer.Start(1ms);
  EXPECT_TRUE(RunUntil(*loop, [&] { return fired == 1; }));
}

TEST(TimerTest, CallbackMayRestartItsOwnTimer) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  int fired = 0;
  Timer timer(*loop, nullptr);
  timer.set_callback([&] {
    if (++fired < 3) {
      timer.Start(1ms);
    }
  });
  timer.Start(1ms);
  EXPECT_TRUE(RunUntil(*loop, [&] { return fired == 3; }));
}

TEST(TimerTest, DestroyingAPendingTimerCancelsIt) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  int fired = 0;
  {
    Timer timer(*loop, [&] { ++fired; });
    timer.Start(1ms);
  }
  Timer guard(*loop, [] {});
  guard.Start(20ms);
  RunUntil(*loop, [&] { return !guard.IsRunning(); });
  EXPECT_EQ(fired, 0);
}

}  // namespace
}  // namespace turnkey::net
