// Registry: owns every metric family and the shards their cells live in, and
// writes the Prometheus text exposition (format 0.0.4).
//
// Life of a metric:
//   1. startup, any thread: registry.AddCounter(spec) -> CounterFamily;
//      family.Get({label values}) -> Counter (resolve hot-path handles here);
//   2. each writer thread: Shard& shard = registry.AcquireShard();
//   3. hot path: counter.Add(shard, n) — no lock, no allocation;
//   4. scrape, any thread: registry.Render() sums each cell over the shards.
//
// Families are written sorted by name, series sorted by label values, so the
// output is deterministic. Cardinality is bounded (see metric_spec.h), and
// so is the memory: every shard has `max_cells` cells, fixed at
// construction; a series that no longer fits is counted under its family's
// overflow series.
//
// Thread-safety: every method may be called from any thread. Registration,
// lookups, SetCallback, shard hand-out and Render take one mutex; handle
// increments and Value()/Snapshot() do not.
//
// Lifetime: the registry must outlive every handle, family and shard it
// handed out. It cannot be moved.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <string_view>

#include "base/status.h"
#include "metrics/counter.h"
#include "metrics/family_state.h"
#include "metrics/gauge.h"
#include "metrics/histogram.h"
#include "metrics/metric_spec.h"
#include "metrics/shard.h"

namespace turnkey::metrics {

// The Content-Type of Render()'s output.
inline constexpr std::string_view kExpositionContentType =
    "text/plain; version=0.0.4; charset=utf-8";

struct RegistryOptions {
  // Cells in every shard (8 bytes each). A counter or gauge series takes one
  // cell, a histogram series one per bucket bound plus two. Default 4096
  // (32 KiB per shard).
  size_t max_cells = 4096;
  // Shards AcquireShard() may create, besides the shared one. When all are
  // leased, AcquireShard() returns the shared shard. Default 256.
  size_t max_shards = 256;
};

class Registry {
 public:
  explicit Registry(RegistryOptions options = {});
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Declares a family. Fails (kInvalidArgument) on a malformed name, label
  // name or bucket list, a name taken by another family's exposition lines,
  // or (kResourceExhausted) when the shards have no cells left for it. A
  // family without labels has its one series from the start; a labelled one
  // starts empty.
  [[nodiscard]] base::Result<CounterFamily> AddCounter(MetricSpec spec);
  [[nodiscard]] base::Result<GaugeFamily> AddGauge(MetricSpec spec);
  [[nodiscard]] base::Result<HistogramFamily> AddHistogram(MetricSpec spec);

  // A shard for the calling thread to write, until it calls ReleaseShard().
  // Reuses a released shard (its counts stay) before creating one; when
  // max_shards are leased, returns the shared shard.
  Shard& AcquireShard();
  // Hands `shard` back; its values stay in the totals. The shared shard is
  // ignored.
  void ReleaseShard(Shard& shard);
  // The shard any thread may write at any time (atomic read-modify-write).
  Shard& shared_shard() { return *shared_; }

  // The exposition text of every family.
  std::string Render() const;
  // Appends the exposition text to `out`.
  void RenderTo(std::string& out) const;

 private:
  friend class Counter;
  friend class CounterFamily;
  friend class Gauge;
  friend class GaugeFamily;
  friend class Histogram;
  friend class HistogramFamily;

  base::Result<FamilyState*> AddFamily(MetricType type, MetricSpec spec);
  // Finds or creates the series for `values` and marks it visible.
  SeriesState* Lookup(FamilyState& family, std::span<const std::string_view> values);
  SeriesState* CreateSeriesLocked(FamilyState& family, std::vector<std::string> values);
  void SetCallback(SeriesState& series, std::function<double()> callback);
  // The sum of cell `slot` over all shards.
  uint64_t SumCell(uint32_t slot) const;
  double SumDoubleCell(uint32_t slot) const;
  HistogramSnapshot SnapshotOf(const SeriesState& series) const;

  void RenderFamilyLocked(const FamilyState& family, std::string& out) const;

  const RegistryOptions options_;
  // Shards in creation order, the shared one first. Pointers are published
  // before shard_count_ grows, so readers need no lock.
  std::unique_ptr<std::atomic<Shard*>[]> shards_;
  std::atomic<size_t> shard_count_{0};
  Shard* shared_ = nullptr;

  mutable std::mutex mu_;
  uint32_t next_slot_ = Shard::kFirstSeriesSlot;                               // guarded by mu_
  std::map<std::string, std::unique_ptr<FamilyState>, std::less<>> families_;  // guarded by mu_
  std::set<std::string, std::less<>> sample_names_;                            // guarded by mu_
};

}  // namespace turnkey::metrics
