// Gauge and GaugeFamily: values that go up and down.
//
// A gauge series is used in one of three ways (mixing them on one series is
// allowed but rarely meaningful: the value is the Set() value plus the sum
// of all Add() deltas, unless a callback replaces both):
//   - up/down count, sharded like a counter: allocations.Inc(shard) on
//     create, allocations.Dec(shard) on delete, possibly on different
//     shards; the scrape shows the sum of all deltas;
//   - Set(value) from any thread (certificate expiry, build info);
//   - SetCallback(fn): fn computes the value at each scrape.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <span>
#include <string_view>

#include "metrics/shard.h"

namespace turnkey::metrics {

struct FamilyState;
struct SeriesState;

// One gauge series. A default-constructed Gauge is detached: deltas go to a
// scratch cell, Set() and SetCallback() do nothing, Value() is 0.
class Gauge {
 public:
  Gauge() = default;

  // Adds `delta` (negative to subtract). Lock-free and allocation-free; the
  // same contract on `shard` as Counter::Add.
  void Add(Shard& shard, int64_t delta) const { shard.Add(slot_, static_cast<uint64_t>(delta)); }
  void Sub(Shard& shard, int64_t delta) const {
    shard.Add(slot_, uint64_t{0} - static_cast<uint64_t>(delta));
  }
  void Inc(Shard& shard) const { Add(shard, 1); }
  void Dec(Shard& shard) const { Add(shard, -1); }

  // Replaces the Set() part of the value. Lock-free; any thread.
  void Set(double value) const;

  // Makes the series' value whatever `callback` returns at each scrape
  // (replacing the Set() value and the deltas); an empty function removes
  // it. `callback` runs on the scraping thread with the registry's mutex
  // held, so it must be quick, thread-safe, and must not call the registry
  // or family methods that take the mutex (registration, Get, SetCallback,
  // Render, AcquireShard, ReleaseShard); Value() is fine. Once SetCallback
  // returns, the previous callback is not running and never runs again, so
  // an owner can remove its callback in its destructor. If it throws, the
  // value is written as NaN. Any thread.
  void SetCallback(std::function<double()> callback) const;

  // The Set() value plus the deltas over all shards now; ignores a callback.
  // Lock-free; any thread.
  double Value() const;

  bool attached() const { return series_ != nullptr; }

 private:
  friend class GaugeFamily;

  Gauge(SeriesState* series, uint32_t slot) : series_(series), slot_(slot) {}

  SeriesState* series_ = nullptr;
  uint32_t slot_ = Shard::kScratchSlot;
};

// A family of gauges with fixed label names; Get() as CounterFamily::Get().
class GaugeFamily {
 public:
  GaugeFamily() = default;

  Gauge Get(std::initializer_list<std::string_view> values = {}) const {
    return Get(std::span<const std::string_view>(values.begin(), values.size()));
  }
  Gauge Get(std::span<const std::string_view> values) const;

 private:
  friend class Registry;

  explicit GaugeFamily(FamilyState* family) : family_(family) {}

  FamilyState* family_ = nullptr;
};

}  // namespace turnkey::metrics
