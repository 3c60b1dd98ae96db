// UdpSocket: a bound UDP socket on an EventLoop, receiving and sending in
// batches (recvmmsg / sendmmsg) for the TURN per-packet path.
//
// Nothing here allocates per packet: received datagrams land in buffers
// preallocated at Create(), and queued sends are copied into preallocated
// slots. Loop thread only. The handler must not destroy the socket (use
// EventLoop::DeleteLater on it or its owner).
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "base/address.h"
#include "base/bytes.h"
#include "base/status.h"
#include "net/mmsg_batch.h"
#include "net/socket_util.h"

struct event;

namespace turnkey::net {

class EventLoop;

struct UdpSocketOptions {
  // SO_REUSEPORT: every worker thread binds its own socket to the same port and
  // the kernel spreads clients over them by 5-tuple. Default off.
  bool reuse_port = false;
  // IPV6_V6ONLY for IPv6 binds. Off lets "::" also receive IPv4 (reported as
  // ::ffff:a.b.c.d unless unmap_v4 is set). Default on.
  bool v6_only = true;
  // Reports IPv4-mapped sources on a dual-stack socket as plain IPv4. Sends to
  // IPv4 destinations are mapped back either way. Default on.
  bool unmap_v4 = true;
  // SO_RCVBUF / SO_SNDBUF in bytes; 0 keeps the kernel default.
  int receive_buffer_bytes = 0;
  int send_buffer_bytes = 0;
  // Datagrams per recvmmsg/sendmmsg call. Default 32.
  size_t batch_size = 32;
  // Largest datagram received or queued, in bytes. Longer received datagrams
  // are truncated by the kernel and dropped (counted). Default 65536: every
  // UDP datagram (TURN relays whatever size arrives, RFC 8656 section 11).
  size_t max_datagram_bytes = 65536;
  // recvmmsg calls per readiness event before yielding to other sockets, so
  // one flooded socket cannot starve the loop. Default 8.
  size_t max_batches_per_wakeup = 8;
  // Reports the address each datagram was sent to in Datagram::to
  // (IP_PKTINFO / IPV6_RECVPKTINFO). A socket bound to a wildcard address
  // needs it to answer from the address a client wrote to (Send/QueueSend
  // with `from`): the kernel would otherwise pick the source by route, and
  // on a host with several addresses a client, or its NAT, drops answers
  // from the wrong one. Default off.
  bool receive_destinations = false;
};

class UdpSocket {
 public:
  // Receives each batch read by one recvmmsg call, in arrival order. Replies
  // queued with QueueSend() from inside the handler go out in one sendmmsg
  // right after it returns.
  using BatchHandler = std::function<void(std::span<const Datagram> batch)>;

  // Binds to `bind_address` (port 0 picks a free port; see local_address()).
  // `loop` must outlive the socket. Reading starts at once.
  static base::Result<std::unique_ptr<UdpSocket>> Create(EventLoop& loop,
                                                         const base::SocketAddress& bind_address,
                                                         const UdpSocketOptions& options,
                                                         BatchHandler handler);
  ~UdpSocket();
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  // Sends one datagram now (sendmsg). Anything queued goes first, so a mix
  // of Send and QueueSend keeps its order. With `from` (an address of this
  // host, for a socket bound to a wildcard address) it leaves from there.
  SendResult Send(const base::SocketAddress& to, base::ByteView data,
                  const base::SocketAddress* from = nullptr);
  // Copies one datagram into the send batch. The batch goes out when full,
  // after the current read batch, on Flush(), and at the latest at the end
  // of the current loop iteration. Datagrams over max_datagram_bytes are sent
  // immediately instead. `from` as for Send.
  SendResult QueueSend(const base::SocketAddress& to, base::ByteView data,
                       const base::SocketAddress* from = nullptr);
  // Sends everything queued with one sendmmsg (more if the kernel takes part).
  void Flush();

  // The bound address, with the real port after binding to port 0.
  const base::SocketAddress& local_address() const { return local_address_; }
  int fd() const { return fd_.get(); }

  // Counters since creation.
  uint64_t received_datagrams() const { return received_; }
  uint64_t truncated_datagrams() const { return recv_.truncated(); }
  uint64_t sent_datagrams() const { return sent_; }
  uint64_t dropped_sends() const { return dropped_sends_; }
  uint64_t send_errors() const { return send_errors_; }

 private:
  struct EventDeleter {
    void operator()(event* ev) const;
  };

  UdpSocket(EventLoop& loop, ScopedFd fd, const UdpSocketOptions& options, BatchHandler handler);
  void OnReadable() noexcept;
  // Counts the outcome of one immediate send and returns it.
  SendResult Count(SendResult result);
  static void OnReadableEvent(int fd, short what, void* arg) noexcept;
  static void OnFlushEvent(int fd, short what, void* arg) noexcept;

  EventLoop& loop_;
  ScopedFd fd_;
  int family_ = 0;  // AF_INET or AF_INET6
  UdpSocketOptions options_;
  BatchHandler handler_;
  base::SocketAddress local_address_;
  std::unique_ptr<event, EventDeleter> read_event_;
  // Activated by the first QueueSend after a flush so nothing queued outlives
  // the loop iteration.
  std::unique_ptr<event, EventDeleter> flush_event_;
  bool flush_scheduled_ = false;

  // batch_size slots of max_datagram_bytes each way.
  RecvBatch recv_;
  SendBatch send_;

  uint64_t received_ = 0;
  uint64_t sent_ = 0;
  uint64_t dropped_sends_ = 0;
  uint64_t send_errors_ = 0;
};

}  // namespace turnkey::net
