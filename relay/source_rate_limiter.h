// SourceRateLimiter: a token bucket per source IP address in a fixed-size
// table, for answers the relay gives before a client has authenticated (401
// challenges, failed authentications).
//
// The table never grows: an address hashes to one slot, and a different
// address landing on a taken slot takes it over with a full bucket. An
// attacker with many addresses can therefore only reset buckets, never make
// the server keep more state (reference/security.md: nothing is kept for a
// request until it authenticates, beyond this bounded table).
//
// One per worker thread; not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "base/address.h"
#include "base/clock.h"

namespace turnkey::relay {

class SourceRateLimiter {
 public:
  // `rate` tokens per second, at most `burst` saved up, `slots` table entries
  // (rounded up to a power of two).
  SourceRateLimiter(double rate, double burst, size_t slots);

  // Takes one token for `source` (its port is ignored). False when the
  // bucket is empty: drop the answer.
  bool Allow(const base::SocketAddress& source, base::MonoTime now);

 private:
  struct Slot {
    base::SocketAddress ip;  // kNone when unused
    double tokens = 0;
    base::MonoTime last{};
  };

  double rate_;
  double burst_;
  size_t mask_;
  std::vector<Slot> slots_;
};

}  // namespace turnkey::relay
