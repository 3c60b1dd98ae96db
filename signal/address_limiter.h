// AddressLimiter: a token bucket per client address, for what one host may
// do over the REST API however many accounts it uses (registrations). IPv6
// clients count per /64, the block one subscriber usually holds; IPv4 per
// address (IPv4-mapped IPv6 as IPv4). Buckets that have refilled are
// forgotten, so memory follows the addresses active within about
// burst / rate. Not thread-safe: owned and used by the signaling loop.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>

#include "base/address.h"
#include "base/clock.h"
#include "signal/token_bucket.h"

namespace turnkey::signal {

// The block a client address stands for: the IPv4 address (IPv4-mapped
// IPv6 too), or the /64 of an IPv6 address. Family byte, then 4 or 8 bytes.
using AddressBlock = std::array<uint8_t, 9>;
AddressBlock AddressBlockOf(const base::SocketAddress& address);

class AddressLimiter {
 public:
  // rate 0 = no limit.
  AddressLimiter(double rate, double burst) : rate_(rate), burst_(burst < 1 ? 1 : burst) {}

  // Takes one token for `from`; false when its bucket is empty.
  bool TryTake(const base::SocketAddress& from, base::MonoTime now);

  // When a refused caller may try again, rounded up to whole seconds (at
  // least 1).
  std::chrono::seconds RetryAfter() const;

  size_t tracked() const { return buckets_.size(); }

 private:
  // Drops buckets full again by `now`: they would say "yes" like a new one.
  void Sweep(base::MonoTime now);

  struct Entry {
    TokenBucket bucket;
    base::MonoTime last;
  };
  double rate_;
  double burst_;
  std::map<AddressBlock, Entry> buckets_;
  size_t takes_since_sweep_ = 0;
};

}  // namespace turnkey::signal
