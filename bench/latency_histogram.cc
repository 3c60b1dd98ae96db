#include "bench/latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace turnkey::bench {

size_t LatencyHistogram::Index(uint64_t v) {
  if (v < kLinear) {
    return static_cast<size_t>(v);
  }
  const int exponent = std::bit_width(v) - 1;  // >= kSubBits + 1
  const uint64_t sub = (v >> (exponent - kSubBits)) & ((uint64_t{1} << kSubBits) - 1);
  return kLinear + static_cast<size_t>(exponent - kSubBits - 1) * (size_t{1} << kSubBits) +
         static_cast<size_t>(sub);
}

uint64_t LatencyHistogram::Midpoint(size_t index) {
  if (index < kLinear) {
    return index;
  }
  const size_t rel = index - kLinear;
  const int exponent = static_cast<int>(rel >> kSubBits) + kSubBits + 1;
  const uint64_t sub = rel & ((size_t{1} << kSubBits) - 1);
  const uint64_t width = uint64_t{1} << (exponent - kSubBits);
  const uint64_t lower = ((uint64_t{1} << kSubBits) + sub) * width;
  return lower + width / 2;
}

void LatencyHistogram::Record(int64_t value_ns) {
  const uint64_t v = value_ns < 0 ? 0 : static_cast<uint64_t>(value_ns);
  ++buckets_[Index(v)];
  ++count_;
  sum_ += v;
  min_ = std::min(min_, static_cast<int64_t>(v));
  max_ = std::max(max_, static_cast<int64_t>(v));
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < kBuckets; ++i) {
    buckets_[i] += other.buckets_[i];
  }
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

int64_t LatencyHistogram::Percentile(double q) const {
  if (count_ == 0) {
    return 0;
  }
  q = std::clamp(q, 0.0, 1.0);
  // The rank of the sample at quantile q, 1-based (nearest-rank method).
  const uint64_t rank =
      std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_))));
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= rank) {
      return std::clamp(static_cast<int64_t>(Midpoint(i)), min(), max_);
    }
  }
  return max_;
}

}  // namespace turnkey::bench
