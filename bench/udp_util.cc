#include "bench/udp_util.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace turnkey::bench {

void UniqueFd::Reset(int fd) {
  if (fd_ >= 0) {
    ::close(fd_);
  }
  fd_ = fd;
}

std::string ErrnoText(int err) { return std::strerror(err); }

namespace {

bool SetInt(int fd, int level, int name, int value) {
  return ::setsockopt(fd, level, name, &value, sizeof(value)) == 0;
}

std::atomic<bool> g_stop{false};

void OnStopSignal(int) { g_stop.store(true, std::memory_order_relaxed); }

}  // namespace

base::Result<UniqueFd> OpenUdpSocket(const UdpSocketSetup& setup) {
  sockaddr_storage bind_storage{};
  socklen_t bind_len = setup.bind.ToSockaddr(&bind_storage);
  if (bind_len == 0) {
    return base::InvalidArgument("bind address has no family");
  }
  int flags = SOCK_DGRAM | SOCK_CLOEXEC | (setup.non_blocking ? SOCK_NONBLOCK : 0);
  UniqueFd fd(::socket(bind_storage.ss_family, flags, 0));
  if (!fd.valid()) {
    return base::Unavailable("socket: " + ErrnoText(errno));
  }
  if (setup.reuse_port && !SetInt(fd.get(), SOL_SOCKET, SO_REUSEPORT, 1)) {
    return base::Unavailable("SO_REUSEPORT: " + ErrnoText(errno));
  }
  if (setup.buffer_bytes > 0) {
    // Failure only means the kernel default stays; not worth failing a run.
    SetInt(fd.get(), SOL_SOCKET, SO_RCVBUF, setup.buffer_bytes);
    SetInt(fd.get(), SOL_SOCKET, SO_SNDBUF, setup.buffer_bytes);
  }
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&bind_storage), bind_len) != 0) {
    return base::Unavailable("bind " + setup.bind.ToString() + ": " + ErrnoText(errno));
  }
  if (setup.connect_to.family() != base::Family::kNone) {
    sockaddr_storage peer{};
    socklen_t peer_len = setup.connect_to.ToSockaddr(&peer);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&peer), peer_len) != 0) {
      return base::Unavailable("connect " + setup.connect_to.ToString() + ": " + ErrnoText(errno));
    }
  }
  return fd;
}

base::SocketAddress LocalAddress(int fd) {
  sockaddr_storage storage{};
  socklen_t len = sizeof(storage);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &len) != 0) {
    return {};
  }
  return base::SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&storage), len)
      .value_or(base::SocketAddress{});
}

void SleepUntilNs(int64_t deadline_ns) {
  timespec ts;
  ts.tv_sec = deadline_ns / 1'000'000'000;
  ts.tv_nsec = deadline_ns % 1'000'000'000;
  clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
}

std::atomic<bool>& InstallStopFlag() {
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return g_stop;
}

uint64_t RaiseFileLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    return 0;
  }
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur;
}

}  // namespace turnkey::bench
