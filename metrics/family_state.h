// Internal bookkeeping behind the handle types: what a Registry keeps per
// family and per series. Not an API: include registry.h, counter.h, gauge.h
// and histogram.h instead.
//
// Series and families are created under the registry's mutex and never
// destroyed before the registry, so handles may point at them.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/metric_spec.h"

namespace turnkey::metrics {

class Registry;
struct FamilyState;

enum class MetricType {
  kCounter,    // monotonic, sharded uint64
  kGauge,      // sharded int64 deltas, a Set() value, or a callback
  kHistogram,  // sharded bucket counts and sum
};

struct SeriesState {
  FamilyState* family = nullptr;
  // First cell of the series in every shard; a histogram has bucket cells
  // (bounds, then +Inf) followed by its sum cell.
  uint32_t slot = 0;
  // Handed out by a lookup at least once; only visible series are written.
  // Guarded by the registry's mutex.
  bool visible = false;
  // Gauges: the Set() value as the bits of a double (0 is 0.0).
  std::atomic<uint64_t> set_bits{0};
  // Gauges: computes the value at scrape time. Guarded by the registry's
  // mutex, and only called with it held.
  std::function<double()> callback;
};

// Orders label tuples; compares stored tuples with looked-up views without
// building a key.
struct LabelTupleLess {
  using is_transparent = void;

  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const {
    return std::lexicographical_compare(
        a.begin(), a.end(), b.begin(), b.end(),
        [](std::string_view x, std::string_view y) { return x < y; });
  }
};

struct FamilyState {
  Registry* registry = nullptr;
  MetricType type = MetricType::kCounter;
  MetricSpec spec;
  uint32_t cells_per_series = 1;
  // Series created by lookups, not counting the overflow series.
  size_t regular_series = 0;
  // The all-"other" series (for a family without labels, its one series).
  SeriesState* overflow = nullptr;
  // Guarded by the registry's mutex; sorted, so the exposition is stable.
  std::map<std::vector<std::string>, std::unique_ptr<SeriesState>, LabelTupleLess> series;
};

}  // namespace turnkey::metrics
