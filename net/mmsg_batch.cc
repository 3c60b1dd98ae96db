#include "net/mmsg_batch.h"

#include <linux/errqueue.h>
#include <netinet/in.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string>

#include "net/socket_util.h"

namespace turnkey::net {

namespace {

// The control message of `level` and `type` in `msg` read into `info`;
// false when there is none (or it is short).
template <typename Info>
bool ReadControl(msghdr& msg, int level, int type, Info& info) {
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == level && c->cmsg_type == type && c->cmsg_len >= CMSG_LEN(sizeof(Info))) {
      std::memcpy(&info, CMSG_DATA(c), sizeof(Info));
      return true;
    }
  }
  return false;
}

// Points `msg` at one control message of `level` and `type` holding `info`,
// written into `control`.
template <typename Info>
void WriteControl(msghdr& msg, PacketInfoControl& control, int level, int type, const Info& info) {
  static_assert(CMSG_SPACE(sizeof(Info)) <= sizeof(control.bytes));
  std::memset(control.bytes, 0, sizeof(control.bytes));
  msg.msg_control = control.bytes;
  msg.msg_controllen = CMSG_SPACE(sizeof(Info));
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = level;
  c->cmsg_type = type;
  c->cmsg_len = CMSG_LEN(sizeof(Info));
  std::memcpy(CMSG_DATA(c), &info, sizeof(Info));
}

// The destination address in a received datagram's packet-info control
// message, with `port`; unset without one.
base::SocketAddress DestinationOf(msghdr& msg, uint16_t port) {
  if (in_pktinfo v4; ReadControl(msg, IPPROTO_IP, IP_PKTINFO, v4)) {
    std::array<uint8_t, 4> address;
    std::memcpy(address.data(), &v4.ipi_addr, address.size());
    return base::SocketAddress::V4(address, port);
  }
  if (in6_pktinfo v6; ReadControl(msg, IPPROTO_IPV6, IPV6_PKTINFO, v6)) {
    std::array<uint8_t, 16> address;
    std::memcpy(address.data(), &v6.ipi6_addr, address.size());
    return base::SocketAddress::V6(address, port);
  }
  return {};
}

// Points `msg` at a control message in `control` that makes its datagram
// leave from `from` (any interface); false when a socket of
// `socket_family` cannot send from it (an IPv6 source on an IPv4 socket).
bool SetSource(int socket_family, const base::SocketAddress& from, PacketInfoControl& control,
               msghdr& msg) {
  if (socket_family == AF_INET) {
    if (!from.is_v4()) {
      return false;
    }
    in_pktinfo info{};
    std::memcpy(&info.ipi_spec_dst, from.bytes(), 4);
    WriteControl(msg, control, IPPROTO_IP, IP_PKTINFO, info);
    return true;
  }
  // An IPv6 socket sends to an IPv4 client (dual stack) from the
  // IPv4-mapped form of the source.
  sockaddr_storage storage;
  if (DestinationSockaddr(from, AF_INET6, &storage) == 0) {
    return false;
  }
  in6_pktinfo info{};
  info.ipi6_addr = reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr;
  WriteControl(msg, control, IPPROTO_IPV6, IPV6_PKTINFO, info);
  return true;
}

}  // namespace

base::Status EnablePacketInfo(int fd, int socket_family) {
  const int on = 1;
  const bool v6 = socket_family == AF_INET6;
  if (::setsockopt(fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_RECVPKTINFO : IP_PKTINFO, &on,
                   sizeof(on)) != 0) {
    return base::Unavailable(std::string("setsockopt(") + (v6 ? "IPV6_RECVPKTINFO" : "IP_PKTINFO") +
                             "): " + std::strerror(errno));
  }
  return base::Ok();
}

void RecvBatch::ReadDestinations(uint16_t port) {
  destination_port_ = port;
  controls_.resize(headers_.size());
}

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
  for (size_t i = 0; i < controls_.size(); ++i) {
    headers_[i].msg_hdr.msg_control = controls_[i].bytes;
    headers_[i].msg_hdr.msg_controllen = sizeof(controls_[i].bytes);
  }
  int got = ::recvmmsg(fd, headers_.data(), static_cast<unsigned>(headers_.size()), MSG_DONTWAIT,
                       nullptr);
  if (got <= 0) {
    // EAGAIN, or an ICMP error reported on the socket: neither ends it.
    return 0;
  }
  for (int i = 0; i < got; ++i) {
    mmsghdr& header = headers_[i];
    if ((header.msg_hdr.msg_flags & MSG_TRUNC) != 0) {
      ++truncated_;
      continue;
    }
    auto from = base::SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&addresses_[i]),
                                                  header.msg_hdr.msg_namelen);
    if (!from) {
      continue;
    }
    base::SocketAddress to;
    if (!controls_.empty()) {
      to = DestinationOf(header.msg_hdr, destination_port_);
      if (unmap_v4) {
        to = Unmap(to);
      }
    }
    datagrams_.push_back(Datagram{
        unmap_v4 ? Unmap(*from) : *from,
        base::ByteView(static_cast<const uint8_t*>(iovecs_[i].iov_base), header.msg_len), to});
  }
  return static_cast<size_t>(got);
}

SendResult SendDatagram(int fd, int socket_family, const base::SocketAddress& to,
                        base::ByteView data, const base::SocketAddress* from) {
  sockaddr_storage storage;
  socklen_t len = DestinationSockaddr(to, socket_family, &storage);
  if (len == 0) {
    return SendResult::kUnroutable;
  }
  iovec iov{const_cast<uint8_t*>(data.data()), data.size()};
  msghdr msg{};
  msg.msg_name = &storage;
  msg.msg_namelen = len;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  PacketInfoControl control;
  if (from != nullptr && !SetSource(socket_family, *from, control, msg)) {
    return SendResult::kUnroutable;
  }
  bool retried = false;
  for (;;) {
    ssize_t sent = ::sendmsg(fd, &msg, MSG_DONTWAIT);
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

SendResult SendBatch::Add(int socket_family, const base::SocketAddress& to, base::ByteView data,
                          const base::SocketAddress* from) {
  const size_t slot = count_;
  socklen_t len = DestinationSockaddr(to, socket_family, &addresses_[slot]);
  if (len == 0) {
    return SendResult::kUnroutable;
  }
  msghdr& msg = headers_[slot].msg_hdr;
  if (from != nullptr) {
    if (controls_.empty()) {
      controls_.resize(headers_.size());
    }
    if (!SetSource(socket_family, *from, controls_[slot], msg)) {
      msg.msg_control = nullptr;
      msg.msg_controllen = 0;
      return SendResult::kUnroutable;
    }
  } else {
    msg.msg_control = nullptr;
    msg.msg_controllen = 0;
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
