#include "relay/source_rate_limiter.h"

#include <algorithm>
#include <chrono>

namespace turnkey::relay {

SourceRateLimiter::SourceRateLimiter(double rate, double burst, size_t slots)
    : rate_(rate), burst_(burst) {
  size_t size = 1;
  while (size < slots) {
    size <<= 1;
  }
  mask_ = size - 1;
  slots_.resize(size);
}

bool SourceRateLimiter::Allow(const base::SocketAddress& source, base::MonoTime now) {
  base::SocketAddress ip = source;
  ip.set_port(0);
  Slot& slot = slots_[ip.Hash() & mask_];
  if (!(slot.ip == ip)) {
    slot.ip = ip;
    slot.tokens = burst_;
    slot.last = now;
  } else if (now > slot.last) {
    const double elapsed = std::chrono::duration<double>(now - slot.last).count();
    slot.tokens = std::min(burst_, slot.tokens + elapsed * rate_);
    slot.last = now;
  }
  if (slot.tokens < 1.0) {
    return false;
  }
  slot.tokens -= 1.0;
  return true;
}

}  // namespace turnkey::relay
