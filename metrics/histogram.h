// Histogram and HistogramFamily: distributions in fixed buckets.
//
// Each series keeps, per shard, one count per bucket (not cumulative; the
// exposition accumulates) and the sum of observations. An observation v
// lands in the first bucket whose upper bound is >= v, or in +Inf.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string_view>
#include <vector>

#include "metrics/shard.h"

namespace turnkey::metrics {

struct FamilyState;
struct SeriesState;

// A histogram series read at one moment.
struct HistogramSnapshot {
  // Cumulative counts, one per bucket bound and the last for +Inf, as in the
  // exposition's _bucket lines.
  std::vector<uint64_t> cumulative;
  uint64_t count = 0;  // equals cumulative.back()
  double sum = 0;
};

// One histogram series. A default-constructed Histogram is detached:
// observations go to scratch cells and its snapshot is one empty +Inf
// bucket.
class Histogram {
 public:
  Histogram() = default;

  // Records `value`. A NaN is ignored (it would poison the sum for good).
  // Lock-free and allocation-free; the same contract on `shard` as
  // Counter::Add.
  void Observe(Shard& shard, double value) const {
    if (std::isnan(value)) {
      return;
    }
    const auto bucket =
        static_cast<uint32_t>(std::lower_bound(bounds_, bounds_ + bound_count_, value) - bounds_);
    shard.Add(slot_ + bucket, 1);
    shard.AddDouble(slot_ + bound_count_ + 1, value);
  }

  // The series summed over all shards now. Lock-free; any thread. Buckets are
  // read one by one while others may observe, so a snapshot can be slightly
  // behind on some buckets, but its count always equals its +Inf bucket.
  HistogramSnapshot Snapshot() const;

  bool attached() const { return series_ != nullptr; }

 private:
  friend class HistogramFamily;

  Histogram(const SeriesState* series, const double* bounds, uint32_t bound_count, uint32_t slot)
      : series_(series), bounds_(bounds), bound_count_(bound_count), slot_(slot) {}

  const SeriesState* series_ = nullptr;
  const double* bounds_ = nullptr;  // owned by the family
  uint32_t bound_count_ = 0;
  uint32_t slot_ = Shard::kScratchSlot;
};

// A family of histograms with fixed label names and bucket bounds; Get() as
// CounterFamily::Get().
class HistogramFamily {
 public:
  HistogramFamily() = default;

  Histogram Get(std::initializer_list<std::string_view> values = {}) const {
    return Get(std::span<const std::string_view>(values.begin(), values.size()));
  }
  Histogram Get(std::span<const std::string_view> values) const;

 private:
  friend class Registry;

  explicit HistogramFamily(FamilyState* family) : family_(family) {}

  FamilyState* family_ = nullptr;
};

}  // namespace turnkey::metrics
