// Small helpers shared by the bench tools: an owning fd, UDP socket setup,
// the monotonic clock in nanoseconds, and stop-on-signal.
//
// The bench tools talk to raw Linux sockets (no libevent) so that what they
// measure is the relay, not an event library. Everything here is for the
// tools' own threads; nothing is shared unless stated.
#pragma once

#include <time.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "base/address.h"
#include "base/status.h"

namespace turnkey::bench {

// Owns one file descriptor; closes it on destruction. Movable, not copyable.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      Reset(other.Release());
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void Reset(int fd = -1);

 private:
  int fd_ = -1;
};

struct UdpSocketSetup {
  // Where to bind; port 0 picks a free one.
  base::SocketAddress bind;
  // When set (family != kNone), connect() to it: send() needs no address and
  // the kernel drops datagrams from anyone else.
  base::SocketAddress connect_to;
  bool reuse_port = false;
  bool non_blocking = true;
  // SO_RCVBUF / SO_SNDBUF in bytes; 0 keeps the kernel default.
  int buffer_bytes = 0;
};

// Opens, configures and binds (and maybe connects) a UDP socket.
base::Result<UniqueFd> OpenUdpSocket(const UdpSocketSetup& setup);

// The socket's bound address (getsockname), kNone on error.
base::SocketAddress LocalAddress(int fd);

// CLOCK_MONOTONIC in nanoseconds (vDSO: cheap enough per batch).
inline int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// Sleeps until CLOCK_MONOTONIC reaches `deadline_ns` (returns early on a signal).
void SleepUntilNs(int64_t deadline_ns);

// Installs SIGINT/SIGTERM handlers that set the returned flag, and ignores
// SIGPIPE. Call once from main before starting threads.
std::atomic<bool>& InstallStopFlag();

// Raises RLIMIT_NOFILE's soft limit to the hard limit; returns the new soft limit.
uint64_t RaiseFileLimit();

// "errno text" for messages.
std::string ErrnoText(int err);

}  // namespace turnkey::bench
