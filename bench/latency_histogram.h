// LatencyHistogram: log-linear buckets of nanosecond values, for RTT
// percentiles without storing samples.
//
// Values below 64 ns get their own bucket; above that every power of two is
// split into 32 buckets, so a reported percentile is within about 3% of the
// true sample. Record() is a few instructions and never allocates. One
// histogram per thread; Merge() combines them at the end.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace turnkey::bench {

class LatencyHistogram {
 public:
  void Record(int64_t value_ns);
  void Merge(const LatencyHistogram& other);

  uint64_t count() const { return count_; }
  // The value at quantile q (0..1), as the midpoint of its bucket; 0 when empty.
  int64_t Percentile(double q) const;
  int64_t min() const { return count_ == 0 ? 0 : min_; }
  int64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / count_; }

 private:
  static constexpr int kSubBits = 5;  // 32 buckets per power of two
  static constexpr size_t kLinear = size_t{2} << kSubBits;
  static constexpr size_t kBuckets = kLinear + (64 - kSubBits - 1) * (size_t{1} << kSubBits);

  static size_t Index(uint64_t v);
  static uint64_t Midpoint(size_t index);

  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  int64_t min_ = INT64_MAX;
  int64_t max_ = 0;
  uint64_t sum_ = 0;
};

}  // namespace turnkey::bench
