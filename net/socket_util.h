// Helpers shared by the socket classes of net/: an owning file descriptor and
// socket creation with the options every listener needs. Public headers of
// net/ include it for ScopedFd; other folders have no reason to call it.
#pragma once

#include <sys/socket.h>

#include <string>
#include <utility>

#include "base/address.h"
#include "base/status.h"

namespace turnkey::net {

// Owns one file descriptor; closes it on destruction. Movable, not copyable.
class ScopedFd {
 public:
  ScopedFd() = default;
  explicit ScopedFd(int fd) : fd_(fd) {}
  ScopedFd(ScopedFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  ScopedFd& operator=(ScopedFd&& other) noexcept;
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  ~ScopedFd();

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership; the caller closes the descriptor.
  int Release() { return std::exchange(fd_, -1); }
  void Reset();

 private:
  int fd_ = -1;
};

struct BindOptions {
  bool reuse_addr = false;       // SO_REUSEADDR (TCP listeners: rebind while TIME_WAIT lingers)
  bool reuse_port = false;       // SO_REUSEPORT (one socket per worker on the same port)
  bool v6_only = true;           // IPV6_V6ONLY for IPv6 sockets
  int receive_buffer_bytes = 0;  // SO_RCVBUF; 0 keeps the kernel default
  int send_buffer_bytes = 0;     // SO_SNDBUF; 0 keeps the kernel default
  // Datagram sockets: whether what they send carries "don't fragment" (see
  // SetDontFragment). Off: Linux would otherwise set DF on every IPv4
  // datagram, where a TURN relay should leave it clear (RFC 8656 section 14).
  bool dont_fragment = false;
  // Datagram sockets: queue the ICMP errors the kernel matches to what they
  // sent on the socket's error queue (IP_RECVERR / IPV6_RECVERR), to read
  // with ReadIcmpError (net/mmsg_batch.h). While one is pending the socket
  // polls as readable, and the next receive or send on it may fail once with
  // the error's errno instead of carrying its datagram.
  bool receive_errors = false;
};

// IPv4: the DF bit on every datagram `fd` sends (IP_PMTUDISC_DO), or never,
// letting a smaller path MTU fragment them (IP_PMTUDISC_DONT). IPv6, which
// has no DF bit: IPV6_DONTFRAG, whether the kernel may fragment them itself.
base::Status SetDontFragment(int fd, int family, bool on);

// Creates a non-blocking, close-on-exec socket of `type` (SOCK_DGRAM or
// SOCK_STREAM) for the family of `bind_address`, applies `options` and binds.
base::Result<ScopedFd> CreateBoundSocket(const base::SocketAddress& bind_address, int type,
                                         const BindOptions& options);

// The address the kernel bound `fd` to (getsockname).
base::Result<base::SocketAddress> LocalAddressOf(int fd);
// The connected peer of `fd` (getpeername).
base::Result<base::SocketAddress> PeerAddressOf(int fd);

// "what: strerror(err)".
std::string ErrnoMessage(const char* what, int err);

// Writes the sockaddr to use for sending to `to` from a socket of family
// `socket_family` (AF_INET / AF_INET6): an IPv4 destination on an IPv6 socket
// becomes ::ffff:a.b.c.d, an IPv4-mapped destination on an IPv4 socket becomes
// plain IPv4. Returns the length, or 0 when the families cannot meet.
socklen_t DestinationSockaddr(const base::SocketAddress& to, int socket_family,
                              sockaddr_storage* out);

// Reduces ::ffff:a.b.c.d to a.b.c.d so addresses received on a dual-stack
// socket compare equal to the IPv4 form callers configured.
base::SocketAddress Unmap(const base::SocketAddress& address);

}  // namespace turnkey::net
