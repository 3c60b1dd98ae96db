// RecvBatch / SendBatch: the recvmmsg and sendmmsg buffers behind UdpSocket
// and UdpSocketSet (internal to net/). Datagram and IcmpError, the plain
// structs those classes' handlers are given, are for callers too (relay/'s
// core takes them as they are).
//
// Each holds `slots` datagram buffers of `slot_bytes`, set up once: a batch
// call touches only the per-datagram lengths, never allocates. The buffers
// are not zeroed, so a page of them costs memory only once a datagram has
// reached it: slots sized for the largest UDP datagram cost little more than
// small ones while the traffic is small.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "base/address.h"
#include "base/bytes.h"
#include "base/status.h"

namespace turnkey::net {

// One received datagram. `data` points into the socket's receive buffer and is
// valid only during the handler call.
struct Datagram {
  base::SocketAddress from;
  base::ByteView data;
  // The address it was sent to, with the socket's port, when the batch reads
  // destinations (RecvBatch::ReadDestinations: a socket bound to a wildcard
  // address); otherwise, or if the kernel did not say, left unset.
  base::SocketAddress to;
};

// Why a send did not go out. Per-packet path: no allocation, no message.
enum class SendResult {
  kSent,        // handed to the kernel (or queued, for QueueSend)
  kDropped,     // kernel buffer full (EAGAIN/ENOBUFS); counted in dropped_sends()
  kUnroutable,  // destination family cannot be reached from this socket, or too long
  kError,       // any other errno (e.g. EHOSTUNREACH); counted in send_errors()
};

// Room for one IP_PKTINFO or IPV6_PKTINFO control message.
struct PacketInfoControl {
  alignas(cmsghdr) uint8_t bytes[CMSG_SPACE(sizeof(in6_pktinfo))];
};

// Asks the kernel to report each datagram's destination address on `fd` (a
// socket of `socket_family`): IP_PKTINFO, or IPV6_RECVPKTINFO, which a
// dual-stack socket also answers for IPv4 (as ::ffff:a.b.c.d).
base::Status EnablePacketInfo(int fd, int socket_family);

class RecvBatch {
 public:
  RecvBatch(size_t slots, size_t slot_bytes);

  // One recvmmsg on `fd` (non-blocking). Returns how many datagrams the
  // kernel handed over (0 when none or on error); the usable ones are in
  // datagrams(), which skips truncated ones (counted) and non-IP sources.
  // With `unmap_v4`, ::ffff:a.b.c.d sources are reported as IPv4.
  size_t Receive(int fd, bool unmap_v4);
  std::span<const Datagram> datagrams() const { return datagrams_; }
  size_t slots() const { return headers_.size(); }
  uint64_t truncated() const { return truncated_; }

  // From now on fills each Datagram::to from the IP_PKTINFO / IPV6_PKTINFO
  // the socket delivers (EnablePacketInfo), with `port`.
  void ReadDestinations(uint16_t port);

 private:
  std::unique_ptr<uint8_t[]> buffers_;
  // Per slot, when reading destinations: room for one packet-info message.
  std::vector<PacketInfoControl> controls_;
  uint16_t destination_port_ = 0;
  std::vector<sockaddr_storage> addresses_;
  std::vector<iovec> iovecs_;
  std::vector<mmsghdr> headers_;
  std::vector<Datagram> datagrams_;
  uint64_t truncated_ = 0;
};

class SendBatch {
 public:
  SendBatch(size_t slots, size_t slot_bytes);

  bool empty() const { return count_ == 0; }
  bool full() const { return count_ == headers_.size(); }
  size_t slot_bytes() const { return slot_bytes_; }

  // Copies one datagram into the next slot. Precondition: !full() and
  // data.size() <= slot_bytes(). kUnroutable when `to` cannot be reached
  // from a socket of `socket_family` (nothing is queued then). With `from`
  // (an address of this host), the datagram leaves from that address: what
  // a socket bound to a wildcard address must do to answer a client from
  // the address it wrote to.
  SendResult Add(int socket_family, const base::SocketAddress& to, base::ByteView data,
                 const base::SocketAddress* from = nullptr);

  struct FlushResult {
    uint64_t sent = 0;
    uint64_t sent_bytes = 0;  // payload bytes of the datagrams sent
    uint64_t dropped = 0;     // kernel buffer full: UDP drops, never queues
    uint64_t errors = 0;      // e.g. unreachable destination
  };
  // Sends everything queued on `fd` with sendmmsg and empties the batch.
  FlushResult Flush(int fd);

 private:
  size_t slot_bytes_;
  std::unique_ptr<uint8_t[]> buffers_;
  std::vector<sockaddr_storage> addresses_;
  std::vector<iovec> iovecs_;
  std::vector<mmsghdr> headers_;
  // Per slot, allocated on the first Add with a source.
  std::vector<PacketInfoControl> controls_;
  size_t count_ = 0;
};

// An ICMP error the kernel matched to a datagram a socket sent (a socket
// bound with BindOptions::receive_errors).
struct IcmpError {
  base::SocketAddress destination;  // where the datagram that drew it was going
  bool v6 = false;                  // ICMPv6: type and code are ICMPv6's
  uint8_t type = 0;
  uint8_t code = 0;
  // The kernel's ee_info: the next-hop MTU of "fragmentation needed" /
  // "packet too big", else 0 (or a parameter problem's pointer).
  uint32_t info = 0;
};

enum class ErrorQueueRead {
  kEmpty,  // nothing queued (or the read failed)
  kIcmp,   // an ICMP error, in *out
  kOther,  // an entry that is not an ICMP error (a local one), consumed
};
// Takes the oldest entry of `fd`'s error queue (recvmsg with MSG_ERRQUEUE).
// Reading the queue also clears the error the socket would report once.
ErrorQueueRead ReadIcmpError(int fd, IcmpError* out);

// Whether a send errno means "buffer full, drop" (as opposed to an error).
inline bool IsDropErrno(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS; }

// Sends one datagram now with sendmsg (for datagrams larger than a batch
// slot), from `from` when given (as SendBatch::Add). The result says what
// the caller counts.
SendResult SendDatagram(int fd, int socket_family, const base::SocketAddress& to,
                        base::ByteView data, const base::SocketAddress* from = nullptr);

}  // namespace turnkey::net
