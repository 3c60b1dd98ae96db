// TokenBucket: `rate` tokens per second, at most `burst` saved up; starts
// full. Time comes from the caller. Not thread-safe; plain value.
#pragma once

#include <algorithm>
#include <chrono>

#include "base/clock.h"

namespace turnkey::signal {

class TokenBucket {
 public:
  TokenBucket(double burst, base::MonoTime now) : tokens_(burst), last_(now) {}

  // Refills for the time since the last call, then takes one token if there
  // is one. A `now` earlier than the last one refills nothing.
  bool TryTake(base::MonoTime now, double rate, double burst) {
    if (now > last_) {
      const double elapsed = std::chrono::duration<double>(now - last_).count();
      tokens_ = std::min(burst, tokens_ + elapsed * rate);
      last_ = now;
    }
    tokens_ = std::min(tokens_, burst);
    if (tokens_ < 1.0) {
      return false;
    }
    tokens_ -= 1.0;
    return true;
  }

  // Whether the bucket has refilled to `burst` by `now`: forgetting it then
  // changes nothing.
  bool FullAt(base::MonoTime now, double rate, double burst) const {
    const double elapsed = now > last_ ? std::chrono::duration<double>(now - last_).count() : 0.0;
    return tokens_ + elapsed * rate >= burst;
  }

 private:
  double tokens_;
  base::MonoTime last_;
};

}  // namespace turnkey::signal
