// EchoPeer: a UDP echo server on its own thread, the peer `turnkey probe`
// relays to. Every datagram is sent back, unchanged, to the address it came
// from (for a TURN probe that is the relayed transport address, so the echo
// travels back through the relay).
//
// Start() binds the socket before returning, so address() is usable at once
// and nothing is lost to a start-up race. The destructor stops the thread and
// joins it. Methods may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "base/address.h"
#include "base/status.h"
#include "net/socket_util.h"

namespace turnkey::app {

class EchoPeer {
 public:
  // Binds a UDP socket to `bind_address` (port 0 picks a free port) and
  // starts echoing.
  static base::Result<std::unique_ptr<EchoPeer>> Start(const base::SocketAddress& bind_address);
  ~EchoPeer();
  EchoPeer(const EchoPeer&) = delete;
  EchoPeer& operator=(const EchoPeer&) = delete;

  // The bound address, with the port the kernel chose.
  const base::SocketAddress& address() const { return address_; }
  // Datagrams received so far; each is echoed once (counted before the echo
  // is sent, so a sender that has its echo back sees it counted).
  uint64_t received() const { return received_.load(); }
  // Where the latest datagram starting with "turnkey probe " (the probe's
  // payloads) came from: for a TURN probe, where peers see the relay send
  // from. nullopt before the first.
  std::optional<base::SocketAddress> last_source() const;

 private:
  EchoPeer(net::ScopedFd socket, net::ScopedFd wakeup, const base::SocketAddress& address)
      : socket_(std::move(socket)), wakeup_(std::move(wakeup)), address_(address) {}
  void Run();

  net::ScopedFd socket_;
  net::ScopedFd wakeup_;  // eventfd: written by the destructor to end Run()
  base::SocketAddress address_;
  std::atomic<uint64_t> received_{0};
  mutable std::mutex source_mutex_;
  std::optional<base::SocketAddress> last_source_;  // guarded by source_mutex_
  std::thread thread_;
};

}  // namespace turnkey::app
