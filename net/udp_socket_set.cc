#include "net/udp_socket_set.h"

#include <event2/event.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>
#include <exception>

#include "base/log.h"
#include "net/event_loop.h"
#include "net/socket_util.h"

namespace turnkey::net {

struct UdpSocketSet::Entry {
  UdpSocketSet* set = nullptr;
  ScopedFd fd;
  int family = AF_INET;
  void* context = nullptr;
  base::SocketAddress local;
  std::unique_ptr<event, EventDeleter> read_event;
  Entry* prev = nullptr;
  Entry* next = nullptr;
};

void UdpSocketSet::EventDeleter::operator()(event* ev) const { event_free(ev); }

base::Result<std::unique_ptr<UdpSocketSet>> UdpSocketSet::Create(EventLoop& loop,
                                                                 const UdpSocketSetOptions& options,
                                                                 BatchHandler handler) {
  if (options.batch_size == 0 || options.batch_size > 1024) {
    return base::InvalidArgument("udp batch_size must be in 1..1024");
  }
  if (options.max_datagram_bytes == 0 || options.max_datagram_bytes > 65536) {
    return base::InvalidArgument("udp max_datagram_bytes must be in 1..65536");
  }
  if (!handler) {
    return base::InvalidArgument("udp socket set needs a handler");
  }
  std::unique_ptr<UdpSocketSet> set(new UdpSocketSet(loop, options, std::move(handler)));
  set->flush_event_.reset(event_new(loop.base(), -1, 0, &UdpSocketSet::OnFlushEvent, set.get()));
  if (!set->flush_event_) {
    return base::Unavailable("event_new failed");
  }
  return set;
}

UdpSocketSet::UdpSocketSet(EventLoop& loop, const UdpSocketSetOptions& options,
                           BatchHandler handler)
    : loop_(loop), options_(options), handler_(std::move(handler)) {
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

UdpSocketSet::~UdpSocketSet() {
  while (first_ != nullptr) {
    Close(first_);
  }
}

base::Result<UdpSocketSet::Handle> UdpSocketSet::Open(const base::SocketAddress& bind_address,
                                                      const UdpOpenOptions& options, void* context,
                                                      bool* address_in_use) {
  if (address_in_use != nullptr) {
    *address_in_use = false;
  }
  BindOptions bind_options;
  bind_options.receive_buffer_bytes = options.receive_buffer_bytes;
  bind_options.send_buffer_bytes = options.send_buffer_bytes;
  auto fd = CreateBoundSocket(bind_address, SOCK_DGRAM, bind_options);
  if (!fd) {
    if (address_in_use != nullptr && fd.error().code == base::ErrorCode::kAlreadyExists) {
      *address_in_use = true;
    }
    return std::unexpected(fd.error());
  }
  if (options.dont_fragment) {
    int rc = 0;
    if (bind_address.is_v4()) {
      int value = IP_PMTUDISC_DO;
      rc = ::setsockopt(fd->get(), IPPROTO_IP, IP_MTU_DISCOVER, &value, sizeof(value));
    } else {
      int value = 1;
      rc = ::setsockopt(fd->get(), IPPROTO_IPV6, IPV6_DONTFRAG, &value, sizeof(value));
    }
    if (rc != 0) {
      return base::Unavailable(ErrnoMessage("setsockopt(dont fragment)", errno));
    }
  }
  auto local = LocalAddressOf(fd->get());
  if (!local) {
    return std::unexpected(local.error());
  }
  auto entry = std::make_unique<Entry>();
  entry->set = this;
  entry->family = bind_address.is_v4() ? AF_INET : AF_INET6;
  entry->context = context;
  entry->local = *local;
  entry->read_event.reset(event_new(loop_.base(), fd->get(), EV_READ | EV_PERSIST,
                                    &UdpSocketSet::OnReadableEvent, entry.get()));
  if (!entry->read_event || event_add(entry->read_event.get(), nullptr) != 0) {
    return base::Unavailable("event_add failed for relay socket");
  }
  entry->fd = std::move(*fd);
  Entry* raw = entry.release();
  raw->next = first_;
  if (first_ != nullptr) {
    first_->prev = raw;
  }
  first_ = raw;
  ++open_count_;
  return raw;
}

void UdpSocketSet::Close(Handle handle) {
  if (handle == nullptr) {
    return;
  }
  if (send_owner_ == handle) {
    Flush();
  }
  if (handle->prev != nullptr) {
    handle->prev->next = handle->next;
  } else {
    first_ = handle->next;
  }
  if (handle->next != nullptr) {
    handle->next->prev = handle->prev;
  }
  --open_count_;
  delete handle;
}

const base::SocketAddress& UdpSocketSet::LocalAddress(Handle handle) { return handle->local; }

void UdpSocketSet::OnReadableEvent(int /*fd*/, short /*what*/, void* arg) noexcept {
  auto* entry = static_cast<Entry*>(arg);
  entry->set->OnReadable(*entry);
}

void UdpSocketSet::OnFlushEvent(int /*fd*/, short /*what*/, void* arg) noexcept {
  auto* set = static_cast<UdpSocketSet*>(arg);
  set->flush_scheduled_ = false;
  set->Flush();
}

void UdpSocketSet::OnReadable(Entry& entry) noexcept {
  const size_t n = options_.batch_size;
  for (size_t round = 0; round < options_.max_batches_per_wakeup; ++round) {
    // recvmmsg rewrites only the name length, flags and msg_len of the
    // headers set up in the constructor.
    for (size_t i = 0; i < n; ++i) {
      recv_headers_[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
      recv_headers_[i].msg_hdr.msg_flags = 0;
    }
    int got = ::recvmmsg(entry.fd.get(), recv_headers_.data(), static_cast<unsigned>(n),
                         MSG_DONTWAIT, nullptr);
    if (got <= 0) {
      // EAGAIN, or an ICMP error reported on the socket: neither ends it.
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
          *from,
          base::ByteView(static_cast<const uint8_t*>(recv_iovecs_[i].iov_base), header.msg_len)});
    }
    if (!recv_batch_.empty()) {
      try {
        handler_(entry.context, std::span<const Datagram>(recv_batch_));
      } catch (const std::exception& e) {
        TK_LOG_ERROR("relay socket handler threw: {}", e.what());
      } catch (...) {
        TK_LOG_ERROR("relay socket handler threw a non-standard exception");
      }
    }
    if (static_cast<size_t>(got) < n) {
      break;
    }
  }
}

SendResult UdpSocketSet::CountSendError(int err) {
  if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) {
    ++dropped_sends_;
    return SendResult::kDropped;
  }
  ++send_errors_;
  return SendResult::kError;
}

SendResult UdpSocketSet::QueueSend(Handle handle, const base::SocketAddress& to,
                                   base::ByteView data) {
  if (data.size() > options_.max_datagram_bytes) {
    Flush();
    sockaddr_storage storage;
    socklen_t len = DestinationSockaddr(to, handle->family, &storage);
    if (len == 0) {
      ++send_errors_;
      return SendResult::kUnroutable;
    }
    for (;;) {
      ssize_t sent = ::sendto(handle->fd.get(), data.data(), data.size(), MSG_DONTWAIT,
                              reinterpret_cast<const sockaddr*>(&storage), len);
      if (sent >= 0) {
        return SendResult::kSent;
      }
      if (errno != EINTR) {
        return CountSendError(errno);
      }
    }
  }
  if (send_count_ == options_.batch_size || (send_count_ > 0 && send_owner_ != handle)) {
    Flush();
  }
  const size_t slot = send_count_;
  socklen_t len = DestinationSockaddr(to, handle->family, &send_addresses_[slot]);
  if (len == 0) {
    ++send_errors_;
    return SendResult::kUnroutable;
  }
  if (!data.empty()) {
    std::memcpy(send_iovecs_[slot].iov_base, data.data(), data.size());
  }
  send_iovecs_[slot].iov_len = data.size();
  send_headers_[slot].msg_hdr.msg_namelen = len;
  send_owner_ = handle;
  ++send_count_;
  if (!flush_scheduled_) {
    flush_scheduled_ = true;
    event_active(flush_event_.get(), 0, 0);
  }
  return SendResult::kSent;
}

void UdpSocketSet::Flush() {
  size_t offset = 0;
  while (offset < send_count_) {
    int sent = ::sendmmsg(send_owner_->fd.get(), send_headers_.data() + offset,
                          static_cast<unsigned>(send_count_ - offset), MSG_DONTWAIT);
    if (sent > 0) {
      offset += static_cast<size_t>(sent);
      continue;
    }
    int err = errno;
    if (sent < 0 && err == EINTR) {
      continue;
    }
    if (sent < 0 && (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS)) {
      dropped_sends_ += send_count_ - offset;
      break;
    }
    ++send_errors_;
    ++offset;
  }
  send_count_ = 0;
  send_owner_ = nullptr;
}

}  // namespace turnkey::net
