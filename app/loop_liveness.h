// LoopLiveness: whether every event loop of the daemon still runs posted
// work, so that the systemd watchdog is pinged only while all of them do.
//
// The main thread is the one that pings, and it never runs a loop: a relay
// worker or the signaling loop stuck in a callback (a deadlock, an endless
// loop) would otherwise go unnoticed while the process looked healthy. Each
// Check() posts a beat, a task that records its number, to every loop whose
// previous beat has run; a loop whose beat has waited longer than the allowed
// silence is reported stuck. The main thread then withholds WATCHDOG=1 and
// systemd restarts the service once WatchdogSec passes.
//
// Check() is called from one thread (the main thread). The beats run on the
// loops' threads and only touch shared atomics, so a beat still queued when
// the watcher or a loop goes away is harmless.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace turnkey::app {

class LoopLiveness {
 public:
  using Clock = std::chrono::steady_clock;
  // Queues a task on the watched loop's thread (EventLoop::Post or a
  // wrapper around it).
  using Poster = std::function<void(std::function<void()>)>;

  // A loop is stuck once its beat has been queued for longer than `silence`.
  explicit LoopLiveness(Clock::duration silence) : silence_(silence) {}

  void Watch(std::string name, Poster post);

  // Sends a new beat to every loop that answered the last one and returns
  // the names of the loops that are stuck, in the order they were added.
  std::vector<std::string> Check(Clock::time_point now);

 private:
  struct Watched {
    std::string name;
    Poster post;
    std::shared_ptr<std::atomic<uint64_t>> answered;
    uint64_t sent = 0;  // 0: no beat sent yet
    Clock::time_point sent_at{};
  };

  Clock::duration silence_;
  std::vector<Watched> loops_;
};

}  // namespace turnkey::app
