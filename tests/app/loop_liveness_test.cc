#include "app/loop_liveness.h"

#include <gtest/gtest.h>

#include <functional>
#include <future>
#include <thread>
#include <vector>

#include "net/event_loop.h"

namespace turnkey::app {
namespace {

using namespace std::chrono_literals;
using Clock = LoopLiveness::Clock;
using Strings = std::vector<std::string>;

// A loop driven by hand: posted beats wait until Run().
struct FakeLoop {
  std::vector<std::function<void()>> queued;
  LoopLiveness::Poster poster() {
    return [this](std::function<void()> task) { queued.push_back(std::move(task)); };
  }
  void Run() {
    auto tasks = std::move(queued);
    queued.clear();
    for (auto& task : tasks) {
      task();
    }
  }
};

TEST(LoopLivenessTest, ALoopThatRunsItsBeatsIsNeverStuck) {
  LoopLiveness liveness(10s);
  FakeLoop loop;
  liveness.Watch("relay-0", loop.poster());
  Clock::time_point now{};
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(liveness.Check(now), Strings{});
    ASSERT_EQ(loop.queued.size(), 1u);
    loop.Run();
    now += 60s;  // however long between checks: the beat was answered
  }
}

TEST(LoopLivenessTest, ABeatWaitingLongerThanTheSilenceIsReportedUntilItRuns) {
  LoopLiveness liveness(10s);
  FakeLoop relay;
  FakeLoop signal;
  liveness.Watch("relay-0", relay.poster());
  liveness.Watch("signal", signal.poster());
  Clock::time_point start{};
  EXPECT_EQ(liveness.Check(start), Strings{});
  signal.Run();
  // relay-0 does not run its beat: not stuck yet at the limit, then stuck.
  EXPECT_EQ(liveness.Check(start + 10s), Strings{});
  signal.Run();
  EXPECT_EQ(liveness.Check(start + 11s), Strings{"relay-0"});
  signal.Run();
  EXPECT_EQ(liveness.Check(start + 30s), Strings{"relay-0"});
  // Only one beat is ever in flight per loop.
  EXPECT_EQ(relay.queued.size(), 1u);
  // Once the loop catches up it is alive again and gets a new beat.
  relay.Run();
  signal.Run();
  EXPECT_EQ(liveness.Check(start + 31s), Strings{});
  EXPECT_EQ(relay.queued.size(), 1u);
}

TEST(LoopLivenessTest, AnEventLoopBlockedInACallbackIsStuckAndRecovers) {
  auto created = net::EventLoop::Create();
  ASSERT_TRUE(created.has_value());
  std::unique_ptr<net::EventLoop> loop = std::move(*created);
  std::thread thread([&loop] { loop->Run(); });

  LoopLiveness liveness(1ms);
  liveness.Watch("signal", [&loop](std::function<void()> task) { loop->Post(std::move(task)); });
  std::promise<void> release;
  std::promise<void> blocked;
  loop->Post([&] {
    blocked.set_value();
    release.get_future().wait();
  });
  blocked.get_future().wait();
  const Clock::time_point start = Clock::now();
  EXPECT_EQ(liveness.Check(start), Strings{});
  EXPECT_EQ(liveness.Check(start + 1s), Strings{"signal"});

  release.set_value();
  // The beat runs as soon as the callback returns.
  Strings stuck{"signal"};
  for (int i = 0; i < 500 && !stuck.empty(); ++i) {
    std::this_thread::sleep_for(10ms);
    stuck = liveness.Check(start + 1s);
  }
  EXPECT_EQ(stuck, Strings{});

  loop->Stop();
  thread.join();
}

}  // namespace
}  // namespace turnkey::app
