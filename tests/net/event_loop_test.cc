#include "net/event_loop.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

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

TEST(EventLoopTest, BuffereventWithADeferredCallbackPendingAtDestructionIsFreed) {
  // A bufferevent holds a reference on itself while one of its deferred
  // callbacks is pending (the TLS bufferevent defers its write callback after
  // every send). Freed while one is pending on a loop that has stopped, it
  // must still be gone once the loop is: the reference is dropped only when
  // that callback runs. Its output buffer (writing disabled) holds a chunk
  // whose cleanup runs when the bufferevent's buffers are freed.
  bool freed = false;
  bool called = false;
  {
    auto loop = MakeLoop();
    ASSERT_TRUE(loop);
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    bufferevent* bev = bufferevent_socket_new(loop->base(), fds[0], BEV_OPT_CLOSE_ON_FREE);
    ASSERT_NE(bev, nullptr);
    bufferevent_disable(bev, EV_WRITE);
    static const char kChunk[] = "x";
    ASSERT_EQ(evbuffer_add_reference(
                  bufferevent_get_output(bev), kChunk, 1,
                  [](const void*, size_t, void* arg) { *static_cast<bool*>(arg) = true; }, &freed),
              0);
    bufferevent_setcb(
        bev, nullptr, [](bufferevent*, void* arg) { *static_cast<bool*>(arg) = true; }, nullptr,
        &called);
    // A Stop() that came in before the callback was scheduled, as from another
    // thread while the loop was sending, is ahead of it in the queue; the
    // destructor's pass must not stop there.
    loop->Stop();
    bufferevent_trigger(bev, EV_WRITE, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
    bufferevent_free(bev);
    ::close(fds[1]);
    EXPECT_FALSE(freed);
  }
  EXPECT_TRUE(freed);
  EXPECT_FALSE(called);  // freeing the bufferevent cleared its callbacks
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
