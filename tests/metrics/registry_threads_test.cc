// Several threads counting at once: exact totals after join, and scrapes
// during the counting that never go backwards.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "metrics/registry.h"

namespace turnkey::metrics {
namespace {

// The value of the sample line that starts with `prefix` (name, labels and
// the space), or -1 when there is none.
double SampleValue(const std::string& text, std::string_view prefix) {
  size_t at = 0;
  while (at < text.size()) {
    const size_t end = text.find('\n', at);
    std::string_view line(text.data() + at, end - at);
    if (line.starts_with(prefix)) {
      return std::stod(std::string(line.substr(prefix.size())));
    }
    at = end + 1;
  }
  return -1;
}

void WaitFor(const std::atomic<int>& count, int target) {
  while (count.load() < target) {
    std::this_thread::yield();
  }
}

TEST(RegistryThreadsTest, ConcurrentIncrementsSumExactly) {
  Registry registry;
  auto counters = registry.AddCounter({.name = "packets_total", .labels = {{.name = "dir"}}});
  auto gauges = registry.AddGauge({.name = "active"});
  auto histograms = registry.AddHistogram({.name = "size", .buckets = {1, 2}});
  ASSERT_TRUE(counters.has_value());
  ASSERT_TRUE(gauges.has_value());
  ASSERT_TRUE(histograms.has_value());
  const Counter in = counters->Get({"in"});
  const Counter out = counters->Get({"out"});
  const Gauge active = gauges->Get();
  const Histogram size = histograms->Get();

  constexpr int kOwnShardThreads = 4;
  constexpr int kSharedShardThreads = 2;
  constexpr uint64_t kIterations = 100'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kOwnShardThreads + kSharedShardThreads; ++t) {
    const bool own = t < kOwnShardThreads;
    threads.emplace_back([&, own] {
      Shard& shard = own ? registry.AcquireShard() : registry.shared_shard();
      for (uint64_t i = 0; i < kIterations; ++i) {
        in.Inc(shard);
        out.Add(shard, 3);
        active.Add(shard, 2);
        active.Dec(shard);
        size.Observe(shard, static_cast<double>(i % 3) + 0.5);  // 0.5, 1.5, 2.5
      }
      if (own) {
        registry.ReleaseShard(shard);
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }

  constexpr uint64_t kTotal = (kOwnShardThreads + kSharedShardThreads) * kIterations;
  EXPECT_EQ(in.Value(), kTotal);
  EXPECT_EQ(out.Value(), 3 * kTotal);
  EXPECT_EQ(active.Value(), static_cast<double>(kTotal));
  const HistogramSnapshot snapshot = size.Snapshot();
  // 100000 = 3 * 33333 + 1: i % 3 == 0 once more than the others per thread.
  constexpr uint64_t kThreads = kOwnShardThreads + kSharedShardThreads;
  EXPECT_EQ(snapshot.cumulative,
            (std::vector<uint64_t>{kThreads * 33334, kThreads * 66667, kTotal}));
  EXPECT_EQ(snapshot.count, kTotal);
  EXPECT_EQ(snapshot.sum, kThreads * (33334 * 0.5 + 33333 * 1.5 + 33333 * 2.5));

  const std::string text = registry.Render();
  EXPECT_EQ(SampleValue(text, "packets_total{dir=\"in\"} "), static_cast<double>(kTotal));
  EXPECT_EQ(SampleValue(text, "packets_total{dir=\"out\"} "), static_cast<double>(3 * kTotal));
  EXPECT_EQ(SampleValue(text, "active "), static_cast<double>(kTotal));
  EXPECT_EQ(SampleValue(text, "size_count "), static_cast<double>(kTotal));
}

TEST(RegistryThreadsTest, ScrapesWhileCountingNeverGoBackwards) {
  Registry registry;
  auto counters = registry.AddCounter({.name = "hammer_total"});
  auto gauges = registry.AddGauge({.name = "inflight", .labels = {{.name = "k"}}});
  auto histograms = registry.AddHistogram({.name = "lat", .buckets = {1, 2, 3}});
  auto dynamic =
      registry.AddCounter({.name = "dyn_total", .labels = {{.name = "k"}}, .max_series = 50});
  ASSERT_TRUE(counters.has_value());
  ASSERT_TRUE(gauges.has_value());
  ASSERT_TRUE(histograms.has_value());
  ASSERT_TRUE(dynamic.has_value());
  const Counter hammer = counters->Get();
  const Gauge inflight = gauges->Get({"writers"});
  const Histogram lat = histograms->Get();

  constexpr int kWriters = 3;
  std::atomic<bool> stop{false};
  std::atomic<int> started{0};
  std::atomic<int> lookups{0};
  std::vector<uint64_t> done(kWriters, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kWriters; ++t) {
    threads.emplace_back([&, t] {
      Shard& shard = registry.AcquireShard();
      uint64_t n = 0;
      do {
        hammer.Inc(shard);
        inflight.Inc(shard);
        lat.Observe(shard, static_cast<double>(n % 4));
        inflight.Dec(shard);
        if (++n == 1) {
          started.fetch_add(1);
        }
      } while (!stop.load(std::memory_order_relaxed));
      done[t] = n;
    });
  }
  // Control-plane traffic at the same time: new series (past the family's
  // bound), new families, callbacks swapped while scrapes call them.
  threads.emplace_back([&] {
    Shard& shard = registry.shared_shard();
    int i = 0;
    started.fetch_add(1);
    do {
      dynamic->Get({std::to_string(i % 200)}).Inc(shard);
      if (i < 20) {
        ASSERT_TRUE(registry.AddCounter({.name = "late_" + std::to_string(i) + "_total"}));
      }
      const double value = i;
      gauges->Get({"callback"}).SetCallback([value] { return value; });
      lookups.store(++i);
    } while (!stop.load(std::memory_order_relaxed));
  });
  WaitFor(started, kWriters + 1);

  double last_hammer = 0;
  double last_count = 0;
  double last_callback = -1;
  for (int scrape = 0; scrape < 300; ++scrape) {
    const std::string text = registry.Render();
    const double value = SampleValue(text, "hammer_total ");
    EXPECT_GE(value, last_hammer);
    last_hammer = value;

    const double in_flight = SampleValue(text, "inflight{k=\"writers\"} ");
    EXPECT_GE(in_flight, 0);
    EXPECT_LE(in_flight, kWriters);
    const double callback = SampleValue(text, "inflight{k=\"callback\"} ");
    EXPECT_GE(callback, last_callback);
    last_callback = callback;

    // Buckets are cumulative, +Inf equals _count, and the count only grows.
    double previous_bucket = 0;
    for (std::string_view le : {"1", "2", "3", "+Inf"}) {
      const double bucket = SampleValue(text, "lat_bucket{le=\"" + std::string(le) + "\"} ");
      EXPECT_GE(bucket, previous_bucket);
      previous_bucket = bucket;
    }
    const double count = SampleValue(text, "lat_count ");
    EXPECT_EQ(count, previous_bucket);
    EXPECT_GE(count, last_count);
    last_count = count;
  }
  WaitFor(lookups, 200);  // every value of dyn_total asked for at least once
  stop.store(true);
  for (std::thread& thread : threads) {
    thread.join();
  }

  uint64_t total = 0;
  for (uint64_t n : done) {
    total += n;
  }
  EXPECT_EQ(hammer.Value(), total);
  EXPECT_EQ(lat.Snapshot().count, total);
  EXPECT_EQ(inflight.Value(), 0);
  EXPECT_GE(static_cast<double>(total), last_hammer);
  // 50 series plus the overflow one, no matter how many values were asked.
  const std::string text = registry.Render();
  size_t dyn_lines = 0;
  for (size_t at = text.find("\ndyn_total{"); at != std::string::npos;
       at = text.find("\ndyn_total{", at + 1)) {
    ++dyn_lines;
  }
  EXPECT_EQ(dyn_lines, 51u);
}

}  // namespace
}  // namespace turnkey::metrics
