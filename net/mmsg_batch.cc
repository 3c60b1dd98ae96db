#include "net/mmsg_batch.h"

#include <linux/errqueue.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>

#include "net/socket_util.h"

namespace turnkey::net {

RecvBatch::RecvBatch(size_t slots, size_t slot_bytes)
    : buffers_(new uint8_t[slots * slot_bytes]),
      addresses_(slots),
      iovecs_(slots),
      headers_(slots) {
  datagrams_.reserve(slots);
  for (size_t i = 0; i < slots; ++i) {
    iovecs_[i].iov_base = buffers_.get() + i * slot_bytes;
    iovecs_[i].iov_len = slot_bytes;
    std::memset(&headers_[i], 0, sizeof(mmsghdr));
    headers_[i].msg_hdr.msg_name = &addresses_[i];
    headers_[i].msg_hdr.msg_iov = &iovecs_[i];
    headers_[i].msg_hdr.msg_iovlen = 1;
  }
}

size_t RecvBatch::Receive(int fd, bool unmap_v4) {
  datagrams_.clear();
  // recvmmsg rewrites only the name length, flags and msg_len of the headers
  // set up in the constructor.
  for (mmsghdr& header : headers_) {
    header.msg_hdr.msg_namelen = sizeof(sockaddr_storage);
    header.msg_hdr.msg_flags = 0;
  }
  int got = ::recvmmsg(fd, headers_.data(), static_cast<unsigned>(headers_.size()), MSG_DONTWAIT,
                       nullptr);
  if (got <= 0) {
    // EAGAIN, or an ICMP error reported on the socket: neither ends it.
    return 0;
  }
  for (int i = 0; i < got; ++i) {
    const mmsghdr& header = headers_[i];
    if ((header.msg_hdr.msg_flags & MSG_TRUNC) != 0) {
      ++truncated_;
      continue;
    }
    auto from = base::SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&addresses_[i]),
                                                  header.msg_hdr.msg_namelen);
    if (!from) {
      continue;
    }
    datagrams_.push_back(
        Datagram{unmap_v4 ? Unmap(*from) : *from,
                 base::ByteView(static_cast<const uint8_t*>(iovecs_[i].iov_base), header.msg_len)});
  }
  return static_cast<size_t>(got);
}

SendResult SendDatagram(int fd, int socket_family, const base::SocketAddress& to,
                        base::ByteView data) {
  sockaddr_storage storage;
  socklen_t len = DestinationSockaddr(to, socket_family, &storage);
  if (len == 0) {
    return SendResult::kUnroutable;
  }
  bool retried = false;
  for (;;) {
    ssize_t sent = ::sendto(fd, data.data(), data.size(), MSG_DONTWAIT,
                            reinterpret_cast<const sockaddr*>(&storage), len);
    if (sent >= 0) {
      return SendResult::kSent;
    }
    if (errno == EINTR) {
      continue;
    }
    if (IsDropErrno(errno)) {
      return SendResult::kDropped;
    }
    // Maybe an ICMP error pending on the socket, about another datagram
    // (BindOptions::receive_errors): it fails one send, whatever its
    // destination. A second failure is this datagram's own.
    if (retried) {
      return SendResult::kError;
    }
    retried = true;
  }
}

ErrorQueueRead ReadIcmpError(int fd, IcmpError* out) {
  sockaddr_storage name{};
  alignas(cmsghdr) uint8_t control[256];
  uint8_t payload;  // the datagram that drew the error is not needed
  iovec iov{&payload, 1};
  msghdr msg{};
  msg.msg_name = &name;
  msg.msg_namelen = sizeof(name);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t got;
  do {
    got = ::recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT);
  } while (got < 0 && errno == EINTR);
  if (got < 0) {
    return ErrorQueueRead::kEmpty;
  }
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    const bool v4 = c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR;
    const bool v6 = c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR;
    if (!v4 && !v6) {
      continue;
    }
    sock_extended_err ee;
    std::memcpy(&ee, CMSG_DATA(c), sizeof(ee));
    if (ee.ee_origin != SO_EE_ORIGIN_ICMP && ee.ee_origin != SO_EE_ORIGIN_ICMP6) {
      return ErrorQueueRead::kOther;
    }
    auto destination = base::SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&name),
                                                         msg.msg_namelen);
    if (!destination) {
      return ErrorQueueRead::kOther;
    }
    out->destination = *destination;
    out->v6 = ee.ee_origin == SO_EE_ORIGIN_ICMP6;
    out->type = ee.ee_type;
    out->code = ee.ee_code;
    out->info = ee.ee_info;
    return ErrorQueueRead::kIcmp;
  }
  return ErrorQueueRead::kOther;
}

SendBatch::SendBatch(size_t slots, size_t slot_bytes)
    : slot_bytes_(slot_bytes),
      buffers_(new uint8_t[slots * slot_bytes]),
      addresses_(slots),
      iovecs_(slots),
      headers_(slots) {
  for (size_t i = 0; i < slots; ++i) {
    iovecs_[i].iov_base = buffers_.get() + i * slot_bytes;
    iovecs_[i].iov_len = 0;
    std::memset(&headers_[i], 0, sizeof(mmsghdr));
    headers_[i].msg_hdr.msg_name = &addresses_[i];
    headers_[i].msg_hdr.msg_iov = &iovecs_[i];
    headers_[i].msg_hdr.msg_iovlen = 1;
  }
}

SendResult SendBatch::Add(int socket_family, const base::SocketAddress& to, base::ByteView data) {
  const size_t slot = count_;
  socklen_t len = DestinationSockaddr(to, socket_family, &addresses_[slot]);
  if (len == 0) {
    return SendResult::kUnroutable;
  }
  if (!data.empty()) {
    std::memcpy(iovecs_[slot].iov_base, data.data(), data.size());
  }
  iovecs_[slot].iov_len = data.size();
  headers_[slot].msg_hdr.msg_namelen = len;
  ++count_;
  return SendResult::kSent;
}

SendBatch::FlushResult SendBatch::Flush(int fd) {
  FlushResult result;
  size_t offset = 0;
  size_t retried = count_;  // the datagram tried a second time, if any
  while (offset < count_) {
    int sent = ::sendmmsg(fd, headers_.data() + offset, static_cast<unsigned>(count_ - offset),
                          MSG_DONTWAIT);
    if (sent > 0) {
      result.sent += static_cast<uint64_t>(sent);
      for (size_t i = offset; i < offset + static_cast<size_t>(sent); ++i) {
        result.sent_bytes += headers_[i].msg_len;
      }
      offset += static_cast<size_t>(sent);
      continue;
    }
    int err = errno;
    if (sent < 0 && err == EINTR) {
      continue;
    }
    if (sent < 0 && IsDropErrno(err)) {
      result.dropped += count_ - offset;
      break;
    }
    // The first remaining datagram failed. Maybe an ICMP error pending on
    // the socket, about another datagram (BindOptions::receive_errors), which
    // fails one send whatever its destination: try it once more. Failed
    // again, it failed on its own (e.g. unreachable destination): skip it
    // and keep the rest of the batch.
    if (retried != offset) {
      retried = offset;
      continue;
    }
    ++result.errors;
    ++offset;
  }
  count_ = 0;
  return result;
}

}  // namespace turnkey::net
