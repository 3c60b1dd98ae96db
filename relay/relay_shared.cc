#include "relay/relay_shared.h"

namespace turnkey::relay {

base::Result<std::unique_ptr<SharedPortPools>> SharedPortPools::Create(uint16_t min, uint16_t max,
                                                                       unsigned workers) {
  std::vector<PortRange> ranges = PortPool::Partition(min, max, workers);
  if (ranges.empty()) {
    return base::InvalidArgument("relay port range " + std::to_string(min) + "-" +
                                 std::to_string(max) + " is too small for " +
                                 std::to_string(workers) + " worker threads");
  }
  auto pools = std::unique_ptr<SharedPortPools>(new SharedPortPools());
  for (const PortRange& range : ranges) {
    auto pool = PortPool::Create(range);
    if (!pool) {
      return std::unexpected(pool.error());
    }
    pools->slices_.push_back(std::make_unique<Slice>(std::move(*pool)));
  }
  return pools;
}

SharedPortPools::Slice* SharedPortPools::SliceOf(uint16_t port) {
  for (auto& slice : slices_) {
    if (slice->pool.range().Contains(port)) {
      return slice.get();
    }
  }
  return nullptr;
}

std::optional<uint16_t> SharedPortPools::Acquire(unsigned worker) {
  Slice& slice = *slices_[worker % slices_.size()];
  std::lock_guard lock(slice.mutex);
  return slice.pool.Acquire();
}

std::optional<EvenPortGrant> SharedPortPools::AcquireEven(unsigned worker, bool reserve_next,
                                                          base::MonoTime now) {
  Slice& slice = *slices_[worker % slices_.size()];
  std::lock_guard lock(slice.mutex);
  return slice.pool.AcquireEven(reserve_next, now);
}

std::optional<uint16_t> SharedPortPools::AcquireReserved(uint64_t token, base::MonoTime now,
                                                         uintptr_t* socket) {
  Slice* slice = SliceOf(PortPool::TokenPort(token));
  if (slice == nullptr) {
    if (socket != nullptr) {
      *socket = 0;
    }
    return std::nullopt;
  }
  std::lock_guard lock(slice->mutex);
  return slice->pool.AcquireReserved(token, now, socket);
}

bool SharedPortPools::AttachSocket(uint64_t token, uintptr_t socket) {
  Slice* slice = SliceOf(PortPool::TokenPort(token));
  if (slice == nullptr) {
    return false;
  }
  std::lock_guard lock(slice->mutex);
  return slice->pool.AttachSocket(token, socket);
}

void SharedPortPools::Release(uint16_t port) {
  if (Slice* slice = SliceOf(port)) {
    std::lock_guard lock(slice->mutex);
    slice->pool.Release(port);
  }
}

void SharedPortPools::MarkUnusable(uint16_t port, base::MonoTime now) {
  if (Slice* slice = SliceOf(port)) {
    std::lock_guard lock(slice->mutex);
    slice->pool.MarkUnusable(port, now);
  }
}

void SharedPortPools::ExpireReservations(unsigned worker, base::MonoTime now,
                                         std::vector<uintptr_t>* released) {
  Slice& slice = *slices_[worker % slices_.size()];
  std::lock_guard lock(slice.mutex);
  slice.pool.ExpireReservations(now);
  slice.pool.TakeReleasedSockets(released);
}

size_t SharedPortPools::free_count() const {
  size_t total = 0;
  for (const auto& slice : slices_) {
    std::lock_guard lock(slice->mutex);
    total += slice->pool.free_count();
  }
  return total;
}

size_t SharedPortPools::capacity() const {
  size_t total = 0;
  for (const auto& slice : slices_) {
    total += slice->pool.capacity();
  }
  return total;
}

AllocationQuota::Verdict AllocationQuota::TryAcquire(std::string_view user, uint32_t per_user,
                                                     uint32_t total) {
  std::lock_guard lock(mutex_);
  if (total != 0 && total_.load(std::memory_order_relaxed) >= total) {
    return Verdict::kTotalLimit;
  }
  auto it = per_user_.find(std::string(user));
  uint32_t current = it == per_user_.end() ? 0 : it->second;
  if (per_user != 0 && current >= per_user) {
    return Verdict::kUserLimit;
  }
  if (it == per_user_.end()) {
    per_user_.emplace(std::string(user), 1);
  } else {
    ++it->second;
  }
  total_.fetch_add(1, std::memory_order_relaxed);
  return Verdict::kOk;
}

void AllocationQuota::Release(std::string_view user) {
  std::lock_guard lock(mutex_);
  auto it = per_user_.find(std::string(user));
  if (it == per_user_.end()) {
    return;
  }
  if (--it->second == 0) {
    per_user_.erase(it);
  }
  total_.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace turnkey::relay
