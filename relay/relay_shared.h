// State the relay workers share: the relay port pools (one slice per worker
// and address family) and the allocation quota counters.
//
// Both are touched once per allocation (never per packet). Each port slice
// has its own mutex, taken uncontended by its worker except when another
// worker claims an EVEN-PORT reservation token from it or releases a port
// into it; the quota map has one mutex (DESIGN.md section 3: shared, rarely
// touched state behind one mutex).
//
// Thread-safe. Created before the workers and outlives them.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "relay/port_pool.h"

namespace turnkey::relay {

// The relay ports of one address family, partitioned between workers.
class SharedPortPools {
 public:
  // Partitions [min, max] into `workers` slices (PortPool::Partition).
  static base::Result<std::unique_ptr<SharedPortPools>> Create(uint16_t min, uint16_t max,
                                                               unsigned workers);

  std::optional<uint16_t> Acquire(unsigned worker);
  std::optional<EvenPortGrant> AcquireEven(unsigned worker, bool reserve_next, base::MonoTime now);
  // Claims a reservation made by any worker; `socket` as for
  // PortPool::AcquireReserved.
  std::optional<uint16_t> AcquireReserved(uint64_t token, base::MonoTime now,
                                          uintptr_t* socket = nullptr);
  // PortPool::AttachSocket on whichever slice holds the token's port.
  bool AttachSocket(uint64_t token, uintptr_t socket);
  // Returns a port to whichever slice holds it.
  void Release(uint16_t port);
  void MarkUnusable(uint16_t port, base::MonoTime now);
  // Expires `worker`'s slice (PortPool::ExpireReservations) and appends to
  // `released` every socket its reservations let go (TakeReleasedSockets),
  // including those of reservations that other workers' calls ended.
  void ExpireReservations(unsigned worker, base::MonoTime now, std::vector<uintptr_t>* released);

  size_t free_count() const;
  size_t capacity() const;

 private:
  struct Slice {
    mutable std::mutex mutex;
    PortPool pool;
    explicit Slice(PortPool p) : pool(std::move(p)) {}
  };
  Slice* SliceOf(uint16_t port);

  std::vector<std::unique_ptr<Slice>> slices_;
};

// Concurrent allocations per user and in total (turn.quotas).
class AllocationQuota {
 public:
  enum class Verdict { kOk, kUserLimit, kTotalLimit };

  // Counts one more allocation for `user` unless that would pass a limit
  // (0 = unlimited).
  Verdict TryAcquire(std::string_view user, uint32_t per_user, uint32_t total);
  void Release(std::string_view user);

  uint64_t total() const { return total_.load(std::memory_order_relaxed); }

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, uint32_t> per_user_;
  std::atomic<uint64_t> total_{0};
};

struct RelayShared {
  // Indexed by family: [0] IPv4, [1] IPv6; null when that family has no relay.
  std::unique_ptr<SharedPortPools> ports[2];
  AllocationQuota quota;
};

}  // namespace turnkey::relay
