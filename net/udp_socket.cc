#include "net/udp_socket.h"

#include <event2/event.h>

#include <cerrno>
#include <cstring>
#include <exception>

#include "base/log.h"
#include "net/event_loop.h"

namespace turnkey::net {

void UdpSocket::EventDeleter::operator()(event* ev) const { event_free(ev); }

base::Result<std::unique_ptr<UdpSocket>> UdpSocket::Create(EventLoop& loop,
                                                           const base::SocketAddress& bind_address,
                                                           const UdpSocketOptions& options,
                                                           BatchHandler handler) {
  if (options.batch_size == 0 || options.batch_size > 1024) {
    return base::InvalidArgument("udp batch_size must be in 1..1024");
  }
  if (options.max_datagram_bytes == 0 || options.max_datagram_bytes > 65536) {
    return base::InvalidArgument("udp max_datagram_bytes must be in 1..65536");
  }
  if (!handler) {
    return base::InvalidArgument("udp socket needs a handler");
  }
  BindOptions bind_options;
  bind_options.reuse_port = options.reuse_port;
  bind_options.v6_only = options.v6_only;
  bind_options.receive_buffer_bytes = options.receive_buffer_bytes;
  bind_options.send_buffer_bytes = options.send_buffer_bytes;
  auto fd = CreateBoundSocket(bind_address, SOCK_DGRAM, bind_options);
  if (!fd) {
    return std::unexpected(fd.error());
  }
  auto local = LocalAddressOf(fd->get());
  if (!local) {
    return std::unexpected(local.error());
  }
  std::unique_ptr<UdpSocket> socket(
      new UdpSocket(loop, std::move(*fd), options, std::move(handler)));
  socket->family_ = bind_address.is_v4() ? AF_INET : AF_INET6;
  socket->local_address_ = *local;
  socket->read_event_.reset(event_new(loop.base(), socket->fd_.get(), EV_READ | EV_PERSIST,
                                      &UdpSocket::OnReadableEvent, socket.get()));
  socket->flush_event_.reset(event_new(loop.base(), -1, 0, &UdpSocket::OnFlushEvent, socket.get()));
  if (!socket->read_event_ || !socket->flush_event_) {
    return base::Unavailable("event_new failed");
  }
  if (event_add(socket->read_event_.get(), nullptr) != 0) {
    return base::Unavailable("event_add failed for udp socket");
  }
  return socket;
}

UdpSocket::UdpSocket(EventLoop& loop, ScopedFd fd, const UdpSocketOptions& options,
                     BatchHandler handler)
    : loop_(loop), fd_(std::move(fd)), options_(options), handler_(std::move(handler)) {
  const size_t n = options_.batch_size;
  const size_t size = options_.max_datagram_bytes;
  recv_buffers_.resize(n * size);
  recv_addresses_.resize(n);
  recv_iovecs_.resize(n);
  recv_headers_.resize(n);
  recv_batch_.reserve(n);
  send_buffers_.resize(n * size);
  send_addresses_.resize(n);
  send_iovecs_.resize(n);
  send_headers_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    recv_iovecs_[i].iov_base = recv_buffers_.data() + i * size;
    recv_iovecs_[i].iov_len = size;
    std::memset(&recv_headers_[i], 0, sizeof(mmsghdr));
    recv_headers_[i].msg_hdr.msg_name = &recv_addresses_[i];
    recv_headers_[i].msg_hdr.msg_iov = &recv_iovecs_[i];
    recv_headers_[i].msg_hdr.msg_iovlen = 1;
    send_iovecs_[i].iov_base = send_buffers_.data() + i * size;
    send_iovecs_[i].iov_len = 0;
    std::memset(&send_headers_[i], 0, sizeof(mmsghdr));
    send_headers_[i].msg_hdr.msg_name = &send_addresses_[i];
    send_headers_[i].msg_hdr.msg_iov = &send_iovecs_[i];
    send_headers_[i].msg_hdr.msg_iovlen = 1;
  }
}

UdpSocket::~UdpSocket() {
  // Queued replies are still owed to clients; losing them on shutdown is
  // harmless for UDP, but sending them is cheap and keeps tests exact.
  Flush();
}

void UdpSocket::OnReadableEvent(int /*fd*/, short /*what*/, void* arg) noexcept {
  static_cast<UdpSocket*>(arg)->OnReadable();
}

void UdpSocket::OnFlushEvent(int /*fd*/, short /*what*/, void* arg) noexcept {
  auto* socket = static_cast<UdpSocket*>(arg);
  socket->flush_scheduled_ = false;
  socket->Flush();
}

void UdpSocket::OnReadable() noexcept {
  const size_t n = options_.batch_size;
  for (size_t round = 0; round < options_.max_batches_per_wakeup; ++round) {
    // recvmmsg rewrites msg_namelen and msg_len, so the headers are reset on
    // every call.
    // recvmmsg rewrites only the name length, flags and msg_len of the
    // headers set up in the constructor.
    for (size_t i = 0; i < n; ++i) {
      recv_headers_[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
      recv_headers_[i].msg_hdr.msg_flags = 0;
    }
    int got = ::recvmmsg(fd_.get(), recv_headers_.data(), static_cast<unsigned>(n), MSG_DONTWAIT,
                         nullptr);
    if (got < 0) {
      int err = errno;
      if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
        // ICMP errors surface here on some kernels; they do not end the socket.
        TK_LOG_DEBUG("recvmmsg on {}: {}", local_address_.ToString(), std::strerror(err));
      }
      break;
    }
    recv_batch_.clear();
    for (int i = 0; i < got; ++i) {
      const mmsghdr& header = recv_headers_[i];
      if ((header.msg_hdr.msg_flags & MSG_TRUNC) != 0) {
        ++truncated_;
        continue;
      }
      auto from = base::SocketAddress::FromSockaddr(
          reinterpret_cast<const sockaddr*>(&recv_addresses_[i]), header.msg_hdr.msg_namelen);
      if (!from) {
        continue;
      }
      recv_batch_.push_back(Datagram{
          options_.unmap_v4 ? Unmap(*from) : *from,
          base::ByteView(static_cast<const uint8_t*>(recv_iovecs_[i].iov_base), header.msg_len)});
    }
    received_ += recv_batch_.size();
    if (!recv_batch_.empty()) {
      try {
        handler_(std::span<const Datagram>(recv_batch_));
      } catch (const std::exception& e) {
        TK_LOG_ERROR("udp handler threw: {}", e.what());
      } catch (...) {
        TK_LOG_ERROR("udp handler threw a non-standard exception");
      }
    }
    Flush();
    if (static_cast<size_t>(got) < n) {
      break;  // the kernel queue is empty
    }
  }
}

SendResult UdpSocket::CountSendError(int err) {
  if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) {
    ++dropped_sends_;
    return SendResult::kDropped;
  }
  ++send_errors_;
  return SendResult::kError;
}

SendResult UdpSocket::Send(const base::SocketAddress& to, base::ByteView data) {
  Flush();
  sockaddr_storage storage;
  socklen_t len = DestinationSockaddr(to, family_, &storage);
  if (len == 0) {
    ++send_errors_;
    return SendResult::kUnroutable;
  }
  for (;;) {
    ssize_t sent = ::sendto(fd_.get(), data.data(), data.size(), MSG_DONTWAIT,
                            reinterpret_cast<const sockaddr*>(&storage), len);
    if (sent >= 0) {
      ++sent_;
      return SendResult::kSent;
    }
    if (errno != EINTR) {
      return CountSendError(errno);
    }
  }
}

SendResult UdpSocket::QueueSend(const base::SocketAddress& to, base::ByteView data) {
  if (data.size() > options_.max_datagram_bytes) {
    return Send(to, data);
  }
  if (send_count_ == options_.batch_size) {
    Flush();
  }
  const size_t slot = send_count_;
  socklen_t len = DestinationSockaddr(to, family_, &send_addresses_[slot]);
  if (len == 0) {
    ++send_errors_;
    return SendResult::kUnroutable;
  }
  if (!data.empty()) {
    std::memcpy(send_iovecs_[slot].iov_base, data.data(), data.size());
  }
  send_iovecs_[slot].iov_len = data.size();
  send_headers_[slot].msg_hdr.msg_namelen = len;
  ++send_count_;
  if (!flush_scheduled_) {
    flush_scheduled_ = true;
    event_active(flush_event_.get(), 0, 0);
  }
  return SendResult::kSent;
}

void UdpSocket::Flush() {
  size_t offset = 0;
  while (offset < send_count_) {
    int sent = ::sendmmsg(fd_.get(), send_headers_.data() + offset,
                          static_cast<unsigned>(send_count_ - offset), MSG_DONTWAIT);
    if (sent > 0) {
      sent_ += static_cast<uint64_t>(sent);
      offset += static_cast<size_t>(sent);
      continue;
    }
    int err = errno;
    if (sent < 0 && err == EINTR) {
      continue;
    }
    if (sent < 0 && (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS)) {
      // UDP: a full send buffer means drop, never queue without bound.
      dropped_sends_ += send_count_ - offset;
      break;
    }
    // The first remaining datagram failed on its own (e.g. unreachable
    // destination); skip it and keep the rest of the batch.
    ++send_errors_;
    ++offset;
  }
  send_count_ = 0;
}

}  // namespace turnkey::net
