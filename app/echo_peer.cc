#include "app/echo_peer.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace turnkey::app {

base::Result<std::unique_ptr<EchoPeer>> EchoPeer::Start(const base::SocketAddress& bind_address) {
  auto socket = net::CreateBoundSocket(bind_address, SOCK_DGRAM, net::BindOptions{});
  if (!socket) {
    return std::unexpected(socket.error());
  }
  auto bound = net::LocalAddressOf(socket->get());
  if (!bound) {
    return std::unexpected(bound.error());
  }
  net::ScopedFd wakeup(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wakeup.valid()) {
    return base::Unavailable(net::ErrnoMessage("eventfd", errno));
  }
  std::unique_ptr<EchoPeer> peer(new EchoPeer(std::move(*socket), std::move(wakeup), *bound));
  peer->thread_ = std::thread([p = peer.get()] { p->Run(); });
  return peer;
}

EchoPeer::~EchoPeer() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    // An eventfd write of 8 bytes cannot be short; on failure the thread
    // would never see the stop, so there is nothing better to do than try.
    [[maybe_unused]] ssize_t w = ::write(wakeup_.get(), &one, sizeof(one));
    thread_.join();
  }
}

std::optional<base::SocketAddress> EchoPeer::last_source() const {
  std::lock_guard lock(source_mutex_);
  return last_source_;
}

void EchoPeer::Run() {
  uint8_t buffer[65536];
  pollfd fds[2] = {{socket_.get(), POLLIN, 0}, {wakeup_.get(), POLLIN, 0}};
  for (;;) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    if (fds[1].revents != 0) {
      return;
    }
    // Drain what is queued; the socket is non-blocking.
    for (;;) {
      sockaddr_storage from{};
      socklen_t from_length = sizeof(from);
      ssize_t got = ::recvfrom(socket_.get(), buffer, sizeof(buffer), 0,
                               reinterpret_cast<sockaddr*>(&from), &from_length);
      if (got < 0) {
        break;  // EAGAIN, or an ICMP error queued by an earlier send: poll again
      }
      // Only the probe's own payloads say where the relay sends from; a
      // stray datagram from elsewhere is echoed and nothing more.
      constexpr std::string_view kProbePrefix = "turnkey probe ";
      const bool ours = static_cast<size_t>(got) >= kProbePrefix.size() &&
                        std::memcmp(buffer, kProbePrefix.data(), kProbePrefix.size()) == 0;
      if (auto source = ours ? base::SocketAddress::FromSockaddr(
                                   reinterpret_cast<const sockaddr*>(&from), from_length)
                             : std::nullopt) {
        std::lock_guard lock(source_mutex_);
        last_source_ = source->Unmapped();
      }
      received_.fetch_add(1);
      // A failed echo is the sender's loss to notice; nothing to retry here.
      (void)::sendto(socket_.get(), buffer, static_cast<size_t>(got), 0,
                     reinterpret_cast<const sockaddr*>(&from), from_length);
    }
  }
}

}  // namespace turnkey::app
