// Shard: one writer thread's block of metric cells.
//
// Every counter, gauge and histogram series owns a fixed slot (histograms a
// run of slots) that is the same in every shard of its Registry. A relay
// worker acquires one shard at start and passes it to every increment, so an
// increment is a load and a store on memory that only its own thread writes:
// no lock, no atomic read-modify-write, no allocation, no shared cache line
// (each shard's cells start on their own cache line). The scraper sums a slot
// over all shards with relaxed atomic loads.
//
// The registry also owns one shared shard (Registry::shared_shard()) that any
// thread may write at any time; increments there are atomic read-modify-write
// operations, still lock-free but slower under contention. Use it from
// threads that have no shard of their own (work-queue threads, tests).
//
// Ownership: shards belong to their Registry and live as long as it does;
// Registry::AcquireShard() hands them out. A shard's values stay counted
// after its thread stops.
//
// Thread-safety: a shard that is not the shared one must be written by one
// thread at a time (the thread it was acquired for, or the next one after a
// Registry::ReleaseShard()/AcquireShard() hand-over). Reading is lock-free
// from any thread.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace turnkey::metrics {

class Registry;
class Counter;
class Gauge;
class Histogram;

class Shard {
 public:
  ~Shard();
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  // True for the registry's shared shard, which any thread may write.
  bool shared() const { return shared_; }

  // Slots 0 and 1 are scratch cells that belong to no series and are never
  // read: detached (default-constructed) handles write there, so an
  // increment needs no null check. Series slots start at kFirstSeriesSlot.
  static constexpr uint32_t kScratchSlot = 0;
  static constexpr uint32_t kFirstSeriesSlot = 2;

 private:
  friend class Registry;
  friend class Counter;
  friend class Gauge;
  friend class Histogram;

  Shard(size_t cells, bool shared);

  // Adds `n` (mod 2^64) to cell `slot`. On a per-thread shard the one writer
  // needs no read-modify-write: a relaxed load and store cannot lose an
  // update nobody else makes, and readers still see a whole value.
  void Add(uint32_t slot, uint64_t n) {
    std::atomic<uint64_t>& cell = cells_[slot];
    if (shared_) {
      cell.fetch_add(n, std::memory_order_relaxed);
    } else {
      cell.store(cell.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
  }

  // Adds `v` to cell `slot` read as the bits of a double (histogram sums).
  void AddDouble(uint32_t slot, double v) {
    std::atomic<uint64_t>& cell = cells_[slot];
    uint64_t old_bits = cell.load(std::memory_order_relaxed);
    if (shared_) {
      while (!cell.compare_exchange_weak(
          old_bits, std::bit_cast<uint64_t>(std::bit_cast<double>(old_bits) + v),
          std::memory_order_relaxed)) {
      }
    } else {
      cell.store(std::bit_cast<uint64_t>(std::bit_cast<double>(old_bits) + v),
                 std::memory_order_relaxed);
    }
  }

  uint64_t Load(uint32_t slot) const { return cells_[slot].load(std::memory_order_relaxed); }

  std::atomic<uint64_t>* const cells_;
  const size_t size_;
  const bool shared_;
  bool leased_ = false;  // guarded by the registry's mutex
};

}  // namespace turnkey::metrics
