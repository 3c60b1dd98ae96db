// WorkQueue: results come back on the loop thread, a full queue refuses,
// the two shutdown modes, and reads that get a worker while writes stall.
#include "net/work_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <initializer_list>
#include <memory>
#include <thread>
#include <vector>

#include "tests/net/net_test_util.h"

namespace turnkey::net {
namespace {

using namespace std::chrono_literals;
using testing::MakeLoop;
using testing::RunUntil;

std::unique_ptr<WorkQueue> MakeQueue(size_t threads, size_t max_queued) {
  WorkQueueOptions options;
  options.threads = threads;
  options.max_queued = max_queued;
  auto queue = WorkQueue::Create(options);
  EXPECT_TRUE(queue.has_value()) << queue.error().message;
  return queue ? std::move(*queue) : nullptr;
}

// A job that reports that it started and then waits until opened.
class Gate {
 public:
  void Open() {
    if (!opened_once_) {
      opened_once_ = true;
      open_.set_value();
    }
  }
  void WaitOpen() { opened_.wait(); }
  void MarkStarted() { started_.set_value(); }
  bool WaitStarted() { return started_future_.wait_for(5s) == std::future_status::ready; }

 private:
  bool opened_once_ = false;  // Open() is called from the test thread only
  std::promise<void> open_;
  std::shared_future<void> opened_ = open_.get_future().share();
  std::promise<void> started_;
  std::future<void> started_future_ = started_.get_future();
};

// Posts a job that holds a worker until `gate` opens; true once it runs.
bool HoldAWorker(EventLoop& loop, WorkQueue& queue, Gate& gate) {
  const bool posted = queue.TryPost(
      loop,
      [&gate] {
        gate.MarkStarted();
        gate.WaitOpen();
      },
      [] {});
  return posted && gate.WaitStarted();
}

// Opens the gates and shuts the queue down however the test leaves (a failed
// ASSERT returns early): workers blocked on a gate must be released and
// joined before the gate goes away. Declare it after the queue and gates.
class ReleaseOnExit {
 public:
  ReleaseOnExit(WorkQueue& queue, std::initializer_list<Gate*> gates)
      : queue_(queue), gates_(gates) {}
  ~ReleaseOnExit() {
    for (Gate* gate : gates_) {
      gate->Open();
    }
    queue_.Shutdown();
  }
  ReleaseOnExit(const ReleaseOnExit&) = delete;
  ReleaseOnExit& operator=(const ReleaseOnExit&) = delete;

 private:
  WorkQueue& queue_;
  std::vector<Gate*> gates_;
};

TEST(WorkQueueTest, CreateRejectsEmptyPools) {
  WorkQueueOptions options;
  options.threads = 0;
  EXPECT_FALSE(WorkQueue::Create(options).has_value());
  options.threads = 1;
  options.max_queued = 0;
  EXPECT_FALSE(WorkQueue::Create(options).has_value());
}

TEST(WorkQueueTest, JobRunsOnAWorkerAndDoneOnTheLoopThread) {
  auto loop = MakeLoop();
  auto queue = MakeQueue(2, 8);
  ASSERT_TRUE(loop && queue);
  const std::thread::id loop_thread = std::this_thread::get_id();
  std::thread::id job_thread;
  int result = 0;
  bool done_on_loop = false;
  ASSERT_TRUE(queue->TryPost(
      *loop,
      [&job_thread] {
        job_thread = std::this_thread::get_id();
        return 6 * 7;
      },
      [&](int value) {
        result = value;
        done_on_loop = std::this_thread::get_id() == loop_thread && loop->IsInLoopThread();
      }));
  ASSERT_TRUE(RunUntil(*loop, [&] { return result != 0; }));
  EXPECT_EQ(result, 42);
  EXPECT_TRUE(done_on_loop);
  EXPECT_NE(job_thread, loop_thread);
}

TEST(WorkQueueTest, VoidJobsAndMoveOnlyCaptures) {
  auto loop = MakeLoop();
  auto queue = MakeQueue(1, 8);
  ASSERT_TRUE(loop && queue);
  auto input = std::make_unique<int>(5);
  auto token = std::make_unique<int>(1);
  int out = 0;
  bool finished = false;
  ASSERT_TRUE(queue->TryPost(
      *loop, [input = std::move(input)] { return std::make_unique<int>(*input + 1); },
      [&out, token = std::move(token)](std::unique_ptr<int> value) { out = *value + *token; }));
  ASSERT_TRUE(queue->TryPost(
      *loop, [] {}, [&finished] { finished = true; }));
  ASSERT_TRUE(RunUntil(*loop, [&] { return finished; }));
  // One worker runs jobs in order and the loop runs posts in order, so the
  // first done ran before the second.
  EXPECT_EQ(out, 7);
}

TEST(WorkQueueTest, FullQueueRefusesWithoutTouchingTheArguments) {
  auto loop = MakeLoop();
  auto queue = MakeQueue(1, 1);
  ASSERT_TRUE(loop && queue);
  Gate gate;
  ReleaseOnExit release(*queue, {&gate});
  std::atomic<int> ran{0};
  int done = 0;
  // The only worker blocks in the first job; the second fills the queue.
  ASSERT_TRUE(queue->TryPost(
      *loop,
      [&] {
        gate.MarkStarted();
        gate.WaitOpen();
        ++ran;
      },
      [&done] { ++done; }));
  ASSERT_TRUE(gate.WaitStarted());
  ASSERT_TRUE(queue->TryPost(
      *loop, [&ran] { ++ran; }, [&done] { ++done; }));
  EXPECT_EQ(queue->queued(), 1u);

  struct Keeper {
    std::unique_ptr<int> value = std::make_unique<int>(7);
    void operator()() {}
  };
  Keeper keeper;
  EXPECT_FALSE(queue->TryPost(
      *loop, [] {}, std::move(keeper)));
  ASSERT_NE(keeper.value, nullptr);  // not moved from on refusal
  EXPECT_EQ(*keeper.value, 7);
  EXPECT_FALSE(queue->TryPost([] {}));
  EXPECT_EQ(queue->rejected(), 2u);

  gate.Open();
  ASSERT_TRUE(RunUntil(*loop, [&] { return done == 2; }));
  EXPECT_EQ(ran.load(), 2);
  // Room again.
  EXPECT_TRUE(queue->TryPost(
      *loop, [] {}, [&done] { ++done; }));
  ASSERT_TRUE(RunUntil(*loop, [&] { return done == 3; }));
}

TEST(WorkQueueTest, StopAcceptingKeepsQueuedJobsByDefault) {
  auto loop = MakeLoop();
  auto queue = MakeQueue(1, 8);
  ASSERT_TRUE(loop && queue);
  Gate gate;
  ReleaseOnExit release(*queue, {&gate});
  int done = 0;
  ASSERT_TRUE(queue->TryPost(
      *loop,
      [&gate] {
        gate.MarkStarted();
        gate.WaitOpen();
      },
      [&done] { ++done; }));
  ASSERT_TRUE(gate.WaitStarted());
  ASSERT_TRUE(queue->TryPost(
      *loop, [] {}, [&done] { ++done; }));
  ASSERT_TRUE(queue->TryPost(
      *loop, [] {}, [&done] { ++done; }));
  queue->StopAccepting();
  EXPECT_FALSE(queue->TryPost(
      *loop, [] {}, [&done] { ++done; }));
  gate.Open();
  queue->Shutdown();
  ASSERT_TRUE(RunUntil(*loop, [&] { return done == 3; }));
}

TEST(WorkQueueTest, DropModeDestroysQueuedJobsUnrun) {
  auto loop = MakeLoop();
  auto queue = MakeQueue(1, 8);
  ASSERT_TRUE(loop && queue);
  Gate gate;
  ReleaseOnExit release(*queue, {&gate});
  int done = 0;
  std::atomic<int> ran{0};
  ASSERT_TRUE(queue->TryPost(
      *loop,
      [&gate] {
        gate.MarkStarted();
        gate.WaitOpen();
      },
      [&done] { ++done; }));
  ASSERT_TRUE(gate.WaitStarted());
  auto dropped_marker = std::make_shared<int>(0);
  std::weak_ptr<int> watch = dropped_marker;
  ASSERT_TRUE(queue->TryPost(
      *loop, [&ran, marker = std::move(dropped_marker)] { ++ran; }, [&done] { ++done; }));
  queue->StopAccepting(WorkQueue::ShutdownMode::kDropQueued);
  EXPECT_TRUE(watch.expired());  // destroyed on this thread, unrun
  EXPECT_EQ(queue->queued(), 0u);
  gate.Open();
  queue->Shutdown();
  // The running job still reports back; the dropped one never ran.
  ASSERT_TRUE(RunUntil(*loop, [&] { return done == 1; }));
  EXPECT_EQ(ran.load(), 0);
}

TEST(WorkQueueTest, ThrowingJobIsContained) {
  auto loop = MakeLoop();
  auto queue = MakeQueue(1, 8);
  ASSERT_TRUE(loop && queue);
  bool called = false;
  bool after = false;
  ASSERT_TRUE(queue->TryPost(
      *loop, []() -> int { throw std::runtime_error("boom"); }, [&called](int) { called = true; }));
  ASSERT_TRUE(queue->TryPost(
      *loop, [] {}, [&after] { after = true; }));
  ASSERT_TRUE(RunUntil(*loop, [&] { return after; }));
  EXPECT_FALSE(called);
}

TEST(WorkQueueTest, ReadsGetAWorkerWhileWritesStall) {
  auto loop = MakeLoop();
  auto queue = MakeQueue(3, 16);  // default reserve: one worker kept for reads
  ASSERT_TRUE(loop && queue);
  EXPECT_EQ(queue->max_writers(), 2u);
  // Four writes wait for a lock (the gate): two run, two wait their turn.
  Gate lock;
  ReleaseOnExit release(*queue, {&lock});
  std::atomic<int> writes_started{0};
  int writes_done = 0;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(queue->TryPost(
        *loop,
        [&] {
          ++writes_started;
          lock.WaitOpen();
        },
        [&writes_done] { ++writes_done; }));
  }
  // Reads posted after them still run, one after the other on the third worker.
  int reads_done = 0;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(queue->TryPost(
        *loop, [] {}, [&reads_done] { ++reads_done; }, JobKind::kRead));
  }
  ASSERT_TRUE(RunUntil(*loop, [&] { return reads_done == 3; }));
  // A worker pops a write before its job counts itself: wait for both.
  ASSERT_TRUE(RunUntil(*loop, [&] { return writes_started.load() == 2; }));
  EXPECT_EQ(writes_done, 0);
  EXPECT_EQ(queue->queued(), 2u);
  lock.Open();
  ASSERT_TRUE(RunUntil(*loop, [&] { return writes_done == 4; }));
}

TEST(WorkQueueTest, KindsStartInPostOrderWhenWritesMayRun) {
  auto loop = MakeLoop();
  auto queue = MakeQueue(1, 16);  // one thread: no reserve, writes never held
  ASSERT_TRUE(loop && queue);
  EXPECT_EQ(queue->max_writers(), 1u);
  Gate gate;
  ReleaseOnExit release(*queue, {&gate});
  ASSERT_TRUE(HoldAWorker(*loop, *queue, gate));
  std::vector<int> order;  // written by the one worker, read after its done
  int done = 0;
  const JobKind kinds[] = {JobKind::kWrite, JobKind::kRead, JobKind::kRead, JobKind::kWrite};
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(queue->TryPost(
        *loop, [&order, i] { order.push_back(i); }, [&done] { ++done; }, kinds[i]));
  }
  gate.Open();
  ASSERT_TRUE(RunUntil(*loop, [&] { return done == 4; }));
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
}

TEST(WorkQueueTest, ShutdownWithAHeldWriteEndsEveryWorker) {
  // Idle workers wait while a write is held back; once the last job ran,
  // each of them must hear that the queue is stopping and empty (the last
  // finished write wakes only one). A hang here is the failure; it needs
  // the idle workers asleep at the stop, hence the rounds.
  for (int round = 0; round < 50; ++round) {
    for (const auto& [threads, reserve] :
         {std::pair<size_t, size_t>{4, 3}, {5, 3}, {8, 6}, {3, 1}, {2, 1}}) {
      WorkQueueOptions options;
      options.threads = threads;
      options.read_reserve = reserve;
      auto created = WorkQueue::Create(options);
      ASSERT_TRUE(created.has_value());
      auto queue = std::move(*created);
      Gate gate;
      ReleaseOnExit release(*queue, {&gate});
      for (size_t i = 0; i < queue->max_writers(); ++i) {
        ASSERT_TRUE(queue->TryPost([&gate] { gate.WaitOpen(); }));
      }
      std::atomic<bool> held_ran{false};
      ASSERT_TRUE(queue->TryPost([&held_ran] { held_ran = true; }));
      queue->StopAccepting();
      gate.Open();
      queue->Shutdown();
      ASSERT_TRUE(held_ran.load()) << threads << " threads, " << reserve << " reserved";
    }
  }
}

TEST(WorkQueueTest, DropModeDropsBothKindsAndHeldWritesDoNotHangShutdown) {
  auto loop = MakeLoop();
  WorkQueueOptions options;
  options.threads = 2;
  options.read_reserve = 1;
  auto created = WorkQueue::Create(options);
  ASSERT_TRUE(loop && created);
  auto queue = std::move(*created);
  Gate gate;
  ReleaseOnExit release(*queue, {&gate});
  ASSERT_TRUE(HoldAWorker(*loop, *queue, gate));
  std::atomic<int> ran{0};
  auto marker = std::make_shared<int>(0);
  std::weak_ptr<int> watch = marker;
  // The write waits for the one writer; the read may run at once.
  ASSERT_TRUE(queue->TryPost([&ran, marker] { ++ran; }, JobKind::kRead));
  ASSERT_TRUE(queue->TryPost([&ran, marker] { ++ran; }, JobKind::kWrite));
  marker.reset();
  // Held writes still run on a plain shutdown, once the writer is free.
  std::atomic<int> kept{0};
  ASSERT_TRUE(queue->TryPost([&kept] { ++kept; }, JobKind::kWrite));
  queue->StopAccepting();
  gate.Open();
  queue->Shutdown();
  EXPECT_EQ(ran.load(), 2);
  EXPECT_EQ(kept.load(), 1);
  EXPECT_TRUE(watch.expired());

  // Drop mode: queued jobs of both kinds are destroyed unrun.
  auto again = MakeQueue(2, 16);
  ASSERT_TRUE(again);
  Gate blocker;
  Gate reader;
  ReleaseOnExit release_again(*again, {&blocker, &reader});
  ASSERT_TRUE(HoldAWorker(*loop, *again, blocker));
  ASSERT_TRUE(again->TryPost(
      [&reader] {
        reader.MarkStarted();
        reader.WaitOpen();
      },
      JobKind::kRead));
  ASSERT_TRUE(reader.WaitStarted());
  auto dropped = std::make_shared<int>(0);
  std::weak_ptr<int> dropped_watch = dropped;
  std::atomic<int> dropped_ran{0};
  ASSERT_TRUE(again->TryPost([&dropped_ran, dropped] { ++dropped_ran; }, JobKind::kRead));
  ASSERT_TRUE(again->TryPost([&dropped_ran, dropped] { ++dropped_ran; }, JobKind::kWrite));
  dropped.reset();
  EXPECT_EQ(again->queued(), 2u);
  again->StopAccepting(WorkQueue::ShutdownMode::kDropQueued);
  EXPECT_TRUE(dropped_watch.expired());
  EXPECT_EQ(again->queued(), 0u);
  blocker.Open();
  reader.Open();
  again->Shutdown();
  EXPECT_EQ(dropped_ran.load(), 0);
}

}  // namespace
}  // namespace turnkey::net
