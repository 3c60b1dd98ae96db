// UdpSocketSet: many small UDP sockets on one EventLoop that share one set of
// batch buffers: the relay sockets of a TURN worker (one per allocation and
// address family).
//
// A plain UdpSocket preallocates its own recvmmsg/sendmmsg buffers (64 KiB
// each way at the defaults), which is right for a listener and far too much
// for thousands of relay sockets. Here the receive buffers are shared (one
// socket is read at a time on the loop thread) and so is the send queue: it
// holds datagrams for one socket at a time and is flushed with one sendmmsg
// when a datagram for another socket is queued, when it is full, and at the
// end of the loop iteration. A socket then costs its descriptor, one libevent
// event and a small entry.
//
// Loop thread only. Handlers must not close the socket they are called for
// (closing any other socket of the set is fine).
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

struct event;

namespace turnkey::net {

class EventLoop;

struct UdpSocketSetOptions {
  // Datagrams per recvmmsg/sendmmsg call. Default 32.
  size_t batch_size = 32;
  // Largest datagram received or queued; longer received ones are dropped
  // (counted as truncated). Default 65536: every UDP datagram.
  size_t max_datagram_bytes = 65536;
  // recvmmsg calls per readiness event before yielding. Default 4.
  size_t max_batches_per_wakeup = 4;
};

struct UdpOpenOptions {
  // Every datagram leaves with "don't fragment" (SetDontFragment), for TURN's
  // DONT-FRAGMENT (RFC 8656 section 7.2). Default off: DF clear.
  bool dont_fragment = false;
  // SO_RCVBUF / SO_SNDBUF; 0 keeps the kernel default.
  int receive_buffer_bytes = 0;
  int send_buffer_bytes = 0;
  // Read the ICMP errors about what the socket sent and hand them to the
  // set's ICMP handler (BindOptions::receive_errors). Set at Bind(); Adopt()
  // keeps what Bind() set. Default off.
  bool receive_errors = false;
};

class UdpSocketSet {
 public:
  // An open socket. Valid from Open() until Close(); opaque to callers.
  struct Entry;
  using Handle = Entry*;
  // Called with each batch one recvmmsg read on socket `context` (the value
  // given to Open()).
  using BatchHandler = std::function<void(void* context, std::span<const Datagram> batch)>;

  static base::Result<std::unique_ptr<UdpSocketSet>> Create(EventLoop& loop,
                                                            const UdpSocketSetOptions& options,
                                                            BatchHandler handler);
  // Closes every socket still open.
  ~UdpSocketSet();
  UdpSocketSet(const UdpSocketSet&) = delete;
  UdpSocketSet& operator=(const UdpSocketSet&) = delete;

  // Binds a socket to `bind_address` and starts reading. `address_in_use`
  // is set when the kernel said EADDRINUSE (the caller tries another port).
  base::Result<Handle> Open(const base::SocketAddress& bind_address, const UdpOpenOptions& options,
                            void* context, bool* address_in_use = nullptr);
  // Sends what is queued for it, then closes. Null is ignored.
  void Close(Handle handle);

  // A bound socket that no set reads yet: it holds its port until a set
  // adopts it or it is freed (TURN's EVEN-PORT reservation of the next port,
  // RFC 8656 section 7.2). It belongs to no loop, so any thread may adopt or
  // free it; datagrams sent to it wait in its kernel buffer meanwhile.
  struct Bound;
  using BoundHandle = Bound*;
  // Binds a socket to `bind_address` with `options`, as Open() would, without
  // reading from it. `address_in_use` as for Open(). The caller owns the
  // result until it passes it to Adopt() or FreeBound().
  static base::Result<BoundHandle> Bind(const base::SocketAddress& bind_address,
                                        const UdpOpenOptions& options,
                                        bool* address_in_use = nullptr);
  // Closes a bound socket that was never adopted. Null is ignored.
  static void FreeBound(BoundHandle bound);
  // The address the kernel bound it to.
  static const base::SocketAddress& BoundAddress(BoundHandle bound);
  // Starts reading `bound` as a socket of this set, as if Open() had made it;
  // `options.dont_fragment` replaces what Bind() set (the buffer sizes stay).
  // Takes ownership of `bound` whether or not it succeeds.
  base::Result<Handle> Adopt(BoundHandle bound, const UdpOpenOptions& options, void* context);

  // Queues one datagram from `handle` to `to` (see the class comment).
  // kSent means queued (or, for one longer than a batch slot, sent at once);
  // what the kernel then did with it reaches the flush handler.
  SendResult QueueSend(Handle handle, const base::SocketAddress& to, base::ByteView data);
  // Called on the loop thread with what the kernel did with the datagrams
  // QueueSend() accepted: once per flushed batch, and at once for one sent
  // without batching. Each such datagram is reported exactly once, as sent
  // (with its bytes), dropped or an error. SendDontFragment() returns its own
  // outcome and is not reported. The handler must not close sockets or queue.
  using FlushHandler = std::function<void(const SendBatch::FlushResult& result)>;
  void SetFlushHandler(FlushHandler handler) { flush_handler_ = std::move(handler); }
  // Called on the loop thread with each ICMP error read from a socket opened
  // with `receive_errors`, with its context. A socket's error queue is read
  // when a wake-up finds no datagram on it (a pending error makes a socket
  // readable), so reading it costs nothing while datagrams flow. Same
  // restrictions as the batch handler.
  using IcmpHandler = std::function<void(void* context, const IcmpError& error)>;
  void SetIcmpHandler(IcmpHandler handler) { icmp_handler_ = std::move(handler); }
  // Sends one datagram at once with "don't fragment" set (SetDontFragment),
  // whatever the socket was opened with (TURN's Send indication with
  // DONT-FRAGMENT). Queued datagrams are flushed first. Rare: two system
  // calls more than a send when the socket is not already so.
  SendResult SendDontFragment(Handle handle, const base::SocketAddress& to, base::ByteView data);
  void Flush();

  static const base::SocketAddress& LocalAddress(Handle handle);
  // The socket's descriptor, to inspect its options (tests).
  static int Fd(Handle handle);
  size_t open_count() const { return open_count_; }

  uint64_t truncated_datagrams() const { return recv_.truncated(); }
  uint64_t dropped_sends() const { return dropped_sends_; }
  uint64_t send_errors() const { return send_errors_; }

 private:
  struct EventDeleter {
    void operator()(event* ev) const;
  };
  UdpSocketSet(EventLoop& loop, const UdpSocketSetOptions& options, BatchHandler handler);
  void OnReadable(Entry& entry) noexcept;
  // Reads up to a bound of `entry`'s error queue into the ICMP handler;
  // true if it took anything.
  bool ReadErrors(Entry& entry) noexcept;
  // Counts an immediate send's failure (dropped or error); returns `result`.
  SendResult Count(SendResult result);
  static void OnReadableEvent(int fd, short what, void* arg) noexcept;
  static void OnFlushEvent(int fd, short what, void* arg) noexcept;

  EventLoop& loop_;
  UdpSocketSetOptions options_;
  BatchHandler handler_;
  FlushHandler flush_handler_;
  IcmpHandler icmp_handler_;
  std::unique_ptr<event, EventDeleter> flush_event_;
  bool flush_scheduled_ = false;
  size_t open_count_ = 0;
  // Every open entry, so the destructor can close them.
  Entry* first_ = nullptr;

  RecvBatch recv_;
  SendBatch send_;
  Entry* send_owner_ = nullptr;  // the socket whose datagrams send_ holds

  uint64_t dropped_sends_ = 0;
  uint64_t send_errors_ = 0;
};

}  // namespace turnkey::net
