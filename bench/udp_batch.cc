#include "bench/udp_batch.h"

#include <cerrno>
#include <cstring>

namespace turnkey::bench {

UdpBatch::UdpBatch(size_t slots, size_t slot_bytes, size_t headroom)
    : slot_bytes_(slot_bytes),
      headroom_(headroom),
      buffer_(slots * slot_bytes),
      headers_(slots),
      iovecs_(slots),
      addresses_(slots) {
  for (size_t i = 0; i < slots; ++i) {
    headers_[i] = mmsghdr{};
    headers_[i].msg_hdr.msg_iov = &iovecs_[i];
    headers_[i].msg_hdr.msg_iovlen = 1;
  }
}

int UdpBatch::Receive(int fd, bool wait_for_one, size_t max_count) {
  size_t count = (max_count == 0 || max_count > slots()) ? slots() : max_count;
  for (size_t i = 0; i < count; ++i) {
    iovecs_[i].iov_base = data(i);
    iovecs_[i].iov_len = slot_bytes_ - headroom_;
    msghdr& h = headers_[i].msg_hdr;
    h.msg_name = &addresses_[i];
    h.msg_namelen = sizeof(sockaddr_storage);
    h.msg_control = nullptr;
    h.msg_controllen = 0;
    h.msg_flags = 0;
    headers_[i].msg_len = 0;
  }
  int flags = wait_for_one ? MSG_WAITFORONE : MSG_DONTWAIT;
  int n = ::recvmmsg(fd, headers_.data(), static_cast<unsigned>(count), flags, nullptr);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      return 0;
    }
    return -1;
  }
  return n;
}

void UdpBatch::SetSend(size_t i, const uint8_t* bytes, size_t length, const sockaddr* to,
                       socklen_t to_length) {
  iovecs_[i].iov_base = const_cast<uint8_t*>(bytes);
  iovecs_[i].iov_len = length;
  msghdr& h = headers_[i].msg_hdr;
  if (to != nullptr) {
    std::memcpy(&addresses_[i], to, to_length);
    h.msg_name = &addresses_[i];
    h.msg_namelen = to_length;
  } else {
    h.msg_name = nullptr;
    h.msg_namelen = 0;
  }
  h.msg_control = nullptr;
  h.msg_controllen = 0;
  h.msg_flags = 0;
}

void UdpBatch::SetSendToSource(size_t i, const uint8_t* bytes, size_t length) {
  iovecs_[i].iov_base = const_cast<uint8_t*>(bytes);
  iovecs_[i].iov_len = length;
  msghdr& h = headers_[i].msg_hdr;
  h.msg_name = &addresses_[i];  // msg_namelen still holds what recvmmsg wrote
  h.msg_control = nullptr;
  h.msg_controllen = 0;
  h.msg_flags = 0;
}

size_t UdpBatch::Send(int fd, size_t first, size_t count) {
  size_t sent = 0;
  while (sent < count) {
    int n = ::sendmmsg(fd, headers_.data() + first + sent, static_cast<unsigned>(count - sent),
                       MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      last_error_ = errno;
      break;
    }
    if (n == 0) {
      break;
    }
    sent += static_cast<size_t>(n);
  }
  return sent;
}

}  // namespace turnkey::bench
