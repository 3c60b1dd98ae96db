#include "signal/address_limiter.h"

#include <algorithm>
#include <cmath>

namespace turnkey::signal {

AddressBlock AddressBlockOf(const base::SocketAddress& address) {
  AddressBlock key{};
  const uint8_t* bytes = address.bytes();
  static constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (address.is_v6() && !std::equal(kMappedPrefix, kMappedPrefix + 12, bytes)) {
    key[0] = 6;
    std::copy_n(bytes, 8, key.begin() + 1);
  } else if (address.is_v6()) {
    key[0] = 4;
    std::copy_n(bytes + 12, 4, key.begin() + 1);
  } else if (address.is_v4()) {
    key[0] = 4;
    std::copy_n(bytes, 4, key.begin() + 1);
  }
  return key;
}

bool AddressLimiter::TryTake(const base::SocketAddress& from, base::MonoTime now) {
  if (rate_ <= 0) {
    return true;
  }
  if (++takes_since_sweep_ >= 256) {
    Sweep(now);
  }
  auto [it, added] =
      buckets_.try_emplace(AddressBlockOf(from), Entry{TokenBucket(burst_, now), now});
  it->second.last = now;
  return it->second.bucket.TryTake(now, rate_, burst_);
}

std::chrono::seconds AddressLimiter::RetryAfter() const {
  if (rate_ <= 0) {
    return std::chrono::seconds(1);
  }
  return std::chrono::seconds(std::max<int64_t>(1, static_cast<int64_t>(std::ceil(1.0 / rate_))));
}

void AddressLimiter::Sweep(base::MonoTime now) {
  takes_since_sweep_ = 0;
  const auto refill = std::chrono::duration_cast<base::MonoTime::duration>(
      std::chrono::duration<double>(burst_ / rate_));
  std::erase_if(buckets_, [&](const auto& item) { return now - item.second.last >= refill; });
}

}  // namespace turnkey::signal
