#include "net/event_loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "tests/net/net_test_util.h"

namespace turnkey::net {
namespace {

using testing::MakeLoop;
using testing::RunUntil;

TEST(EventLoopTest, PostFromAnotherThreadRunsInOrderOnLoopThread) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  constexpr int kTasks = 1000;
  std::vector<int> seen;
  bool all_on_loop_thread = true;
  const auto loop_thread = std::this_thread::get_id();
  std::thread poster([&] {
    for (int i = 0; i < kTasks; ++i) {
      loop->Post([&, i] {
        seen.push_back(i);
        all_on_loop_thread = all_on_loop_thread && std::this_thread::get_id() == loop_thread &&
                             loop->IsInLoopThread();
      });
    }
  });
  EXPECT_TRUE(RunUntil(*loop, [&] { return seen.size() == kTasks; }));
  poster.join();
  ASSERT_EQ(seen.size(), static_cast<size_t>(kTasks));
  for (int i = 0; i < kTasks; ++i) {
    ASSERT_EQ(seen[i], i);
  }
  EXPECT_TRUE(all_on_loop_thread);
}

TEST(EventLoopTest, StopFromAnotherThreadEndsRun) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  std::atomic<bool> ran{false};
  std::thread other([&] {
    loop->Post([&] { ran = true; });
    loop->Stop();
  });
  loop->Run();  // returns only because of Stop()
  other.join();
  // The task may or may not have run before the stop; it must not be lost
  // for a later run.
  EXPECT_TRUE(RunUntil(*loop, [&] { return ran.load(); }));
}

TEST(EventLoopTest, StopBeforeRunMakesRunReturn) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  loop->Stop();
  loop->Run();
  SUCCEED();
}

TEST(EventLoopTest, RunOnAWorkerThreadWithNothingRegisteredWaitsForPosts) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  std::thread worker([&] { loop->Run(); });
  std::atomic<bool> on_worker{false};
  std::atomic<bool> done{false};
  loop->Post([&] {
    on_worker = loop->IsInLoopThread();
    done = true;
  });
  loop->Stop();
  worker.join();
  EXPECT_TRUE(done.load());
  EXPECT_TRUE(on_worker.load());
}

TEST(EventLoopTest, RunInLoopRunsInlineOnLoopThread) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  bool ran = false;
  loop->RunInLoop([&] { ran = true; });
  EXPECT_TRUE(ran);
}

struct Tracked {
  explicit Tracked(bool* destroyed) : destroyed(destroyed) {}
  ~Tracked() { *destroyed = true; }
  bool* destroyed;
};

TEST(EventLoopTest, DeleteLaterDestroysAfterTheCurrentCallback) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  bool destroyed = false;
  bool destroyed_inside_callback = true;
  loop->Post([&] {
    loop->DeleteLater(std::make_unique<Tracked>(&destroyed));
    destroyed_inside_callback = destroyed;
  });
  EXPECT_TRUE(RunUntil(*loop, [&] { return destroyed; }));
  EXPECT_FALSE(destroyed_inside_callback);
}

TEST(EventLoopTest, DeleteLaterPendingAtDestructionIsStillFreed) {
  bool destroyed = false;
  {
    auto loop = MakeLoop();
    ASSERT_TRUE(loop);
    loop->DeleteLater(std::make_unique<Tracked>(&destroyed));
    EXPECT_FALSE(destroyed);
  }
  EXPECT_TRUE(destroyed);
}

TEST(EventLoopTest, ThrowingTaskDoesNotEscapeTheLoop) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  bool after = false;
  loop->Post([] { throw std::runtime_error("boom"); });
  loop->Post([&] { after = true; });
  EXPECT_TRUE(RunUntil(*loop, [&] { return after; }));
}

}  // namespace
}  // namespace turnkey::net
