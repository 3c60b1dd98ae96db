#include "base/source_rate_limiter.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <string_view>
#include <utility>

namespace turnkey::base {

SourceRateLimiter::SourceRateLimiter(double rate, double burst, size_t slots)
    : rate_(rate), burst_(burst) {
  size_t size = 1;
  while (size < slots) {
    size <<= 1;
  }
  mask_ = size - 1;
  slots_.resize(size);
}

bool SourceRateLimiter::Allow(const SocketAddress& source, MonoTime now) {
  std::string block = source.ClientBlock();
  Slot& slot = slots_[std::hash<std::string_view>{}(block)&mask_];
  if (slot.block != block) {
    slot.block = std::move(block);
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

}  // namespace turnkey::base
