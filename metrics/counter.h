// Counter and CounterFamily: monotonic counts, summed over shards.
//
//   CounterFamily requests = registry.AddCounter({...}).value();   // startup
//   Counter allocate_ok = requests.Get({"allocate", "200"});       // startup
//   allocate_ok.Inc(shard);                                        // per packet
//
// Handles are small values, cheap to copy, valid as long as their Registry.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string_view>

#include "metrics/shard.h"

namespace turnkey::metrics {

struct FamilyState;
struct SeriesState;

// One counter series. A default-constructed Counter is detached: increments
// go to a scratch cell and Value() is 0.
class Counter {
 public:
  Counter() = default;

  // Adds `n`. Lock-free and allocation-free: on a per-thread shard a load and
  // a store. `shard` must come from this counter's registry and be written
  // only by the calling thread (or be the registry's shared shard).
  void Add(Shard& shard, uint64_t n) const { shard.Add(slot_, n); }
  void Inc(Shard& shard) const { shard.Add(slot_, 1); }

  // The sum over all shards now. Lock-free; any thread.
  uint64_t Value() const;

  bool attached() const { return series_ != nullptr; }

 private:
  friend class CounterFamily;

  Counter(const SeriesState* series, uint32_t slot) : series_(series), slot_(slot) {}

  const SeriesState* series_ = nullptr;
  uint32_t slot_ = Shard::kScratchSlot;
};

// A family of counters with fixed label names. A default-constructed family
// is detached and hands out detached counters.
class CounterFamily {
 public:
  CounterFamily() = default;

  // The series for `values` (one per label, in declaration order), created
  // on first use. Never fails: a value a label does not allow becomes
  // "other"; a new tuple when the family is full, or the wrong number of
  // values, gives the overflow series (every label "other"). Takes the
  // registry's mutex: resolve handles once, not per packet. Any thread.
  Counter Get(std::initializer_list<std::string_view> values = {}) const {
    return Get(std::span<const std::string_view>(values.begin(), values.size()));
  }
  Counter Get(std::span<const std::string_view> values) const;

 private:
  friend class Registry;

  explicit CounterFamily(FamilyState* family) : family_(family) {}

  FamilyState* family_ = nullptr;
};

}  // namespace turnkey::metrics
