// RecorderFixture: a CallStoreRecorder over a real event loop (on its own
// thread), a work queue of two workers and an in-memory SQLite store behind
// FlakyStore holding alice-id and bob-id; for the history writer's tests.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <thread>
#include <utility>

#include "base/clock.h"
#include "metrics/registry.h"
#include "metrics/turnkey_metrics.h"
#include "net/event_loop.h"
#include "net/work_queue.h"
#include "signal/call_store_recorder.h"
#include "tests/signal/flaky_store.h"

namespace turnkey::signal::testing {

class RecorderFixture : public ::testing::Test {
 protected:
  // The fake clock's start (Unix seconds): the recorder's anchor.
  static constexpr int64_t kUnixBase = 1'700'000'000;

  void SetUp() override {
    auto loop = net::EventLoop::Create();
    ASSERT_TRUE(loop.has_value());
    loop_ = std::move(*loop);
    net::WorkQueueOptions queue_options;
    queue_options.threads = 2;
    auto queue = net::WorkQueue::Create(queue_options);
    ASSERT_TRUE(queue.has_value());
    queue_ = std::move(*queue);
    auto store = OpenStoreOfAliceAndBob(kUnixBase * 1000);
    ASSERT_TRUE(store.has_value()) << store.error().message;
    store_ = std::move(*store);
    auto metrics = metrics::SignalMetrics::Create(registry_);
    ASSERT_TRUE(metrics.has_value());
    metrics_ = std::make_unique<metrics::SignalMetrics>(*metrics);
    thread_ = std::thread([this] { loop_->Run(); });
  }

  void TearDown() override {
    OnLoop([this] {
      recorder_.reset();
      return 0;
    });
    store_->Open();
    queue_->Shutdown();
    loop_->Stop();
    thread_.join();
  }

  void MakeRecorder(CallStoreRecorderOptions options = {}) {
    OnLoop([&] {
      recorder_ = std::make_unique<CallStoreRecorder>(*loop_, *queue_, *store_, clock_, *metrics_,
                                                      registry_.shared_shard(), options);
      stats_ = recorder_->shared_stats();
      return 0;
    });
  }

  // Runs `fn` on the loop thread and returns its result.
  template <typename F>
  auto OnLoop(F fn) -> decltype(fn()) {
    auto task = std::make_shared<std::packaged_task<decltype(fn())()>>(std::move(fn));
    auto result = task->get_future();
    loop_->Post([task] { (*task)(); });
    return result.get();
  }

  // Waits until `done` holds, at most 30 s (a bound against a hang, not a
  // timing expectation).
  bool WaitUntil(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) {
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  }

  // turnkey_call_history_writes_total{result}.
  uint64_t HistoryWrites(metrics::HistoryWriteResult result) const {
    return metrics_->history_writes[result].Value();
  }

  base::FakeClock clock_{kUnixBase};
  metrics::Registry registry_;
  std::unique_ptr<metrics::SignalMetrics> metrics_;
  std::unique_ptr<net::EventLoop> loop_;
  std::unique_ptr<net::WorkQueue> queue_;
  std::unique_ptr<FlakyStore> store_;
  std::unique_ptr<CallStoreRecorder> recorder_;
  std::shared_ptr<const CallStoreRecorderStats> stats_;
  std::thread thread_;
};

}  // namespace turnkey::signal::testing
