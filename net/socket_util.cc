#include "net/socket_util.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace turnkey::net {

ScopedFd& ScopedFd::operator=(ScopedFd&& other) noexcept {
  if (this != &other) {
    Reset();
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

ScopedFd::~ScopedFd() { Reset(); }

void ScopedFd::Reset() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

std::string ErrnoMessage(const char* what, int err) {
  return fmt::format("{}: {}", what, std::strerror(err));
}

namespace {

base::Status SetIntOption(int fd, int level, int name, int value, const char* what) {
  if (::setsockopt(fd, level, name, &value, sizeof(value)) != 0) {
    return base::Unavailable(ErrnoMessage(what, errno));
  }
  return base::Ok();
}

}  // namespace

base::Status SetDontFragment(int fd, int family, bool on) {
  if (family == AF_INET) {
    return SetIntOption(fd, IPPROTO_IP, IP_MTU_DISCOVER, on ? IP_PMTUDISC_DO : IP_PMTUDISC_DONT,
                        "IP_MTU_DISCOVER");
  }
  return SetIntOption(fd, IPPROTO_IPV6, IPV6_DONTFRAG, on ? 1 : 0, "IPV6_DONTFRAG");
}

base::Result<ScopedFd> CreateBoundSocket(const base::SocketAddress& bind_address, int type,
                                         const BindOptions& options) {
  sockaddr_storage storage{};
  socklen_t len = bind_address.ToSockaddr(&storage);
  if (len == 0) {
    return base::InvalidArgument("bind address has no family");
  }
  ScopedFd fd(::socket(storage.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    return base::Unavailable(ErrnoMessage("socket", errno));
  }
  if (options.reuse_addr) {
    if (auto s = SetIntOption(fd.get(), SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR"); !s) {
      return std::unexpected(s.error());
    }
  }
  if (options.reuse_port) {
    if (auto s = SetIntOption(fd.get(), SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT"); !s) {
      return std::unexpected(s.error());
    }
  }
  if (storage.ss_family == AF_INET6) {
    if (auto s = SetIntOption(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, options.v6_only ? 1 : 0,
                              "IPV6_V6ONLY");
        !s) {
      return std::unexpected(s.error());
    }
  }
  if (type == SOCK_DGRAM) {
    if (auto s = SetDontFragment(fd.get(), storage.ss_family, options.dont_fragment); !s) {
      return std::unexpected(s.error());
    }
    if (options.receive_errors) {
      const bool v4 = storage.ss_family == AF_INET;
      if (auto s = SetIntOption(fd.get(), v4 ? IPPROTO_IP : IPPROTO_IPV6,
                                v4 ? IP_RECVERR : IPV6_RECVERR, 1, "IP_RECVERR");
          !s) {
        return std::unexpected(s.error());
      }
    }
  }
  if (options.receive_buffer_bytes > 0) {
    if (auto s = SetIntOption(fd.get(), SOL_SOCKET, SO_RCVBUF, options.receive_buffer_bytes,
                              "SO_RCVBUF");
        !s) {
      return std::unexpected(s.error());
    }
  }
  if (options.send_buffer_bytes > 0) {
    if (auto s =
            SetIntOption(fd.get(), SOL_SOCKET, SO_SNDBUF, options.send_buffer_bytes, "SO_SNDBUF");
        !s) {
      return std::unexpected(s.error());
    }
  }
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&storage), len) != 0) {
    int err = errno;
    return base::MakeError(
        err == EADDRINUSE ? base::ErrorCode::kAlreadyExists : base::ErrorCode::kUnavailable,
        fmt::format("bind {}: {}", bind_address.ToString(), std::strerror(err)));
  }
  return fd;
}

base::Result<base::SocketAddress> LocalAddressOf(int fd) {
  sockaddr_storage storage{};
  socklen_t len = sizeof(storage);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &len) != 0) {
    return base::Unavailable(ErrnoMessage("getsockname", errno));
  }
  auto address = base::SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&storage), len);
  if (!address) {
    return base::Internal("getsockname returned a non-IP address");
  }
  return *address;
}

base::Result<base::SocketAddress> PeerAddressOf(int fd) {
  sockaddr_storage storage{};
  socklen_t len = sizeof(storage);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&storage), &len) != 0) {
    return base::Unavailable(ErrnoMessage("getpeername", errno));
  }
  auto address = base::SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&storage), len);
  if (!address) {
    return base::Internal("getpeername returned a non-IP address");
  }
  return *address;
}

namespace {

bool IsV4Mapped(const base::SocketAddress& a) {
  if (!a.is_v6()) {
    return false;
  }
  const uint8_t* b = a.bytes();
  for (int i = 0; i < 10; ++i) {
    if (b[i] != 0) {
      return false;
    }
  }
  return b[10] == 0xff && b[11] == 0xff;
}

}  // namespace

base::SocketAddress Unmap(const base::SocketAddress& address) {
  if (!IsV4Mapped(address)) {
    return address;
  }
  const uint8_t* b = address.bytes();
  return base::SocketAddress::V4({b[12], b[13], b[14], b[15]}, address.port());
}

socklen_t DestinationSockaddr(const base::SocketAddress& to, int socket_family,
                              sockaddr_storage* out) {
  if (socket_family == AF_INET6 && to.is_v4()) {
    std::array<uint8_t, 16> mapped{};
    mapped[10] = 0xff;
    mapped[11] = 0xff;
    std::memcpy(mapped.data() + 12, to.bytes(), 4);
    return base::SocketAddress::V6(mapped, to.port()).ToSockaddr(out);
  }
  if (socket_family == AF_INET && to.is_v6()) {
    if (!IsV4Mapped(to)) {
      return 0;
    }
    return Unmap(to).ToSockaddr(out);
  }
  return to.ToSockaddr(out);
}

}  // namespace turnkey::net
