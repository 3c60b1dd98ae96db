#include "app/loop_liveness.h"

#include <utility>

namespace turnkey::app {

void LoopLiveness::Watch(std::string name, Poster post) {
  Watched watched;
  watched.name = std::move(name);
  watched.post = std::move(post);
  watched.answered = std::make_shared<std::atomic<uint64_t>>(0);
  loops_.push_back(std::move(watched));
}

std::vector<std::string> LoopLiveness::Check(Clock::time_point now) {
  std::vector<std::string> stuck;
  for (Watched& loop : loops_) {
    if (loop.sent != 0 && loop.answered->load(std::memory_order_acquire) < loop.sent) {
      if (now - loop.sent_at > silence_) {
        stuck.push_back(loop.name);
      }
      continue;  // one beat in flight at a time
    }
    const uint64_t beat = ++loop.sent;
    loop.sent_at = now;
    loop.post(
        [answered = loop.answered, beat] { answered->store(beat, std::memory_order_release); });
  }
  return stuck;
}

}  // namespace turnkey::app
