// UdpBatch: preallocated slots for recvmmsg / sendmmsg.
//
// Each slot is a buffer of `slot_bytes` with `headroom` bytes reserved at the
// front, so a receiver can prepend a header in place (the forwarder receives a
// peer datagram at offset 4 and writes a 4-byte channel header before it).
// Nothing allocates after construction.
//
// Receive() fills slots 0..n-1; the same slots can then be sent back with
// SetSend() (the echo peer does exactly that). A batch belongs to one thread.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace turnkey::bench {

class UdpBatch {
 public:
  UdpBatch(size_t slots, size_t slot_bytes, size_t headroom = 0);
  UdpBatch(const UdpBatch&) = delete;
  UdpBatch& operator=(const UdpBatch&) = delete;

  size_t slots() const { return headers_.size(); }
  size_t headroom() const { return headroom_; }
  size_t slot_bytes() const { return slot_bytes_; }

  // One recvmmsg into slots [0, max_count) (all slots when 0). Non-blocking
  // unless `wait_for_one` (MSG_WAITFORONE on a blocking socket: waits for
  // the first datagram, then takes what is queued). Returns the number
  // received; 0 when nothing was queued; -1 on another error (errno set).
  int Receive(int fd, bool wait_for_one = false, size_t max_count = 0);

  // The received datagram in slot i (after headroom) and its length.
  uint8_t* data(size_t i) { return buffer_.data() + i * slot_bytes_ + headroom_; }
  size_t size(size_t i) const { return headers_[i].msg_len; }
  // True if the datagram did not fit and was cut short.
  bool truncated(size_t i) const { return (headers_[i].msg_hdr.msg_flags & MSG_TRUNC) != 0; }
  const sockaddr* source(size_t i) const {
    return reinterpret_cast<const sockaddr*>(&addresses_[i]);
  }
  socklen_t source_length(size_t i) const { return headers_[i].msg_hdr.msg_namelen; }

  // The whole slot i, headroom included: where a sender writes its datagram.
  uint8_t* slot(size_t i) { return buffer_.data() + i * slot_bytes_; }

  // Points slot i's message at `bytes` (any memory that outlives the send) and
  // the destination at `to` (copied; nullptr for a connected socket).
  void SetSend(size_t i, const uint8_t* bytes, size_t length, const sockaddr* to,
               socklen_t to_length);
  // Keeps slot i's received source as its destination (for echoing back).
  void SetSendToSource(size_t i, const uint8_t* bytes, size_t length);

  // sendmmsg of slots [first, first + count), retrying after partial sends.
  // Returns how many went out; stops early when the kernel says EAGAIN /
  // ENOBUFS or on an error (errno set, last_error() remembers it).
  size_t Send(int fd, size_t first, size_t count);
  int last_error() const { return last_error_; }

 private:
  size_t slot_bytes_;
  size_t headroom_;
  std::vector<uint8_t> buffer_;
  std::vector<mmsghdr> headers_;
  std::vector<iovec> iovecs_;
  std::vector<sockaddr_storage> addresses_;
  int last_error_ = 0;
};

}  // namespace turnkey::bench
