#include "base/source_rate_limiter.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <functional>
#include <string_view>
#include <utility>

#include "base/crypto.h"

namespace turnkey::base {

SourceRateLimiter::SourceRateLimiter(double rate, double burst, size_t slots)
    : rate_(rate), burst_(burst) {
  // RandomUint64 aborts when the RNG fails.
  const std::array<uint64_t, 2> key{RandomUint64(), RandomUint64()};
  static_assert(sizeof(key) == kKeySize);
  std::memcpy(key_.data(), key.data(), kKeySize);
  size_t size = 1;
  while (size < slots) {
    size <<= 1;
  }
  mask_ = size - 1;
  slots_.resize(size);
}

size_t SourceRateLimiter::SlotOfBlock(const std::string& block) const {
  // On the stack: the relay asks for every unauthenticated request.
  std::array<char, kKeySize + 32> keyed{};
  const size_t size = std::min(block.size(), keyed.size() - kKeySize);
  std::memcpy(keyed.data(), key_.data(), kKeySize);
  std::memcpy(keyed.data() + kKeySize, block.data(), size);
  return std::hash<std::string_view>{}(std::string_view(keyed.data(), kKeySize + size)) & mask_;
}

size_t SourceRateLimiter::SlotOf(const SocketAddress& source) const {
  return SlotOfBlock(source.ClientBlock());
}

bool SourceRateLimiter::Allow(const SocketAddress& source, MonoTime now) {
  std::string block = source.ClientBlock();
  Slot& slot = slots_[SlotOfBlock(block)];
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
