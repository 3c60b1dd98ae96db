// SourceRateLimiter: a token bucket per client (SocketAddress::ClientBlock:
// an IPv4 address, or an IPv6 /64) in a fixed-size table. The relay limits
// the answers it gives before a client has authenticated with it (401
// challenges, failed authentications); the signaling service limits
// registrations with it.
//
// The table never grows: a client hashes to one slot, and a different
// client landing on a taken slot takes it over with a full bucket. An
// attacker with many addresses can therefore only reset buckets, never make
// the server keep more state (reference/security.md: nothing is kept for a
// request until it authenticates, beyond this bounded table). The slot of
// an address depends on a random key of each limiter, so two addresses
// that share a slot cannot be found offline (alternating them would reset
// each other's bucket: a limit bypassed with two addresses).
//
// Not thread-safe: one owner thread (a relay worker, the signaling loop).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "base/address.h"
#include "base/clock.h"

namespace turnkey::base {

class SourceRateLimiter {
 public:
  // `rate` tokens per second, at most `burst` saved up, `slots` table entries
  // (rounded up to a power of two).
  SourceRateLimiter(double rate, double burst, size_t slots);

  // Takes one token for `source`'s client block (its port is ignored).
  // False when the bucket is empty.
  bool Allow(const SocketAddress& source, MonoTime now);
  // The slot of `source` (tests).
  size_t SlotOf(const SocketAddress& source) const;

 private:
  struct Slot {
    std::string block;  // "" when unused
    double tokens = 0;
    MonoTime last{};
  };

  size_t SlotOfBlock(const std::string& block) const;

  double rate_;
  double burst_;
  size_t mask_;
  static constexpr size_t kKeySize = 16;
  std::array<char, kKeySize> key_{};  // random, prefixed to a block before hashing
  std::vector<Slot> slots_;
};

}  // namespace turnkey::base
