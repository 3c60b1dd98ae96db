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
  bool dont_fragment = false;  // what the socket was opened with
  bool receive_errors = false;
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
    : loop_(loop),
      options_(options),
      handler_(std::move(handler)),
      recv_(options.batch_size, options.max_datagram_bytes),
      send_(options.batch_size, options.max_datagram_bytes) {}

UdpSocketSet::~UdpSocketSet() {
  while (first_ != nullptr) {
    Close(first_);
  }
}

struct UdpSocketSet::Bound {
  ScopedFd fd;
  int family = AF_INET;
  bool dont_fragment = false;
  bool receive_errors = false;
  base::SocketAddress local;
};

base::Result<UdpSocketSet::BoundHandle> UdpSocketSet::Bind(const base::SocketAddress& bind_address,
                                                           const UdpOpenOptions& options,
                                                           bool* address_in_use) {
  if (address_in_use != nullptr) {
    *address_in_use = false;
  }
  BindOptions bind_options;
  bind_options.receive_buffer_bytes = options.receive_buffer_bytes;
  bind_options.send_buffer_bytes = options.send_buffer_bytes;
  bind_options.dont_fragment = options.dont_fragment;
  bind_options.receive_errors = options.receive_errors;
  auto fd = CreateBoundSocket(bind_address, SOCK_DGRAM, bind_options);
  if (!fd) {
    if (address_in_use != nullptr && fd.error().code == base::ErrorCode::kAlreadyExists) {
      *address_in_use = true;
    }
    return std::unexpected(fd.error());
  }
  auto local = LocalAddressOf(fd->get());
  if (!local) {
    return std::unexpected(local.error());
  }
  auto bound = std::make_unique<Bound>();
  bound->fd = std::move(*fd);
  bound->family = bind_address.is_v4() ? AF_INET : AF_INET6;
  bound->dont_fragment = options.dont_fragment;
  bound->receive_errors = options.receive_errors;
  bound->local = *local;
  return bound.release();
}

void UdpSocketSet::FreeBound(BoundHandle bound) { delete bound; }

const base::SocketAddress& UdpSocketSet::BoundAddress(BoundHandle bound) { return bound->local; }

base::Result<UdpSocketSet::Handle> UdpSocketSet::Open(const base::SocketAddress& bind_address,
                                                      const UdpOpenOptions& options, void* context,
                                                      bool* address_in_use) {
  auto bound = Bind(bind_address, options, address_in_use);
  if (!bound) {
    return std::unexpected(bound.error());
  }
  return Adopt(*bound, options, context);
}

base::Result<UdpSocketSet::Handle> UdpSocketSet::Adopt(BoundHandle bound,
                                                       const UdpOpenOptions& options,
                                                       void* context) {
  std::unique_ptr<Bound> owned(bound);
  if (options.dont_fragment != owned->dont_fragment) {
    if (auto set = SetDontFragment(owned->fd.get(), owned->family, options.dont_fragment); !set) {
      return std::unexpected(set.error());
    }
  }
  auto entry = std::make_unique<Entry>();
  entry->set = this;
  entry->family = owned->family;
  entry->dont_fragment = options.dont_fragment;
  entry->receive_errors = owned->receive_errors;
  entry->context = context;
  entry->local = owned->local;
  entry->read_event.reset(event_new(loop_.base(), owned->fd.get(), EV_READ | EV_PERSIST,
                                    &UdpSocketSet::OnReadableEvent, entry.get()));
  if (!entry->read_event || event_add(entry->read_event.get(), nullptr) != 0) {
    return base::Unavailable("event_add failed for relay socket");
  }
  entry->fd = std::move(owned->fd);
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

int UdpSocketSet::Fd(Handle handle) { return handle->fd.get(); }

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
  for (size_t round = 0; round < options_.max_batches_per_wakeup; ++round) {
    const size_t got = recv_.Receive(entry.fd.get(), /*unmap_v4=*/false);
    if (got == 0 && entry.receive_errors) {
      // No datagram: the wake-up was an ICMP error (the receive may have
      // failed on it, with datagrams still queued behind). Read the errors,
      // then the datagrams again.
      if (ReadErrors(entry)) {
        continue;
      }
      break;
    }
    if (!recv_.datagrams().empty()) {
      try {
        handler_(entry.context, recv_.datagrams());
      } catch (const std::exception& e) {
        TK_LOG_ERROR("relay socket handler threw: {}", e.what());
      } catch (...) {
        TK_LOG_ERROR("relay socket handler threw a non-standard exception");
      }
    }
    if (got < recv_.slots()) {
      break;
    }
  }
}

bool UdpSocketSet::ReadErrors(Entry& entry) noexcept {
  // Bounded, as a batch of datagrams is: more wakes the loop again.
  constexpr int kMaxErrorsPerWakeup = 64;
  bool took = false;
  IcmpError error;
  for (int i = 0; i < kMaxErrorsPerWakeup; ++i) {
    const ErrorQueueRead read = ReadIcmpError(entry.fd.get(), &error);
    if (read == ErrorQueueRead::kEmpty) {
      break;
    }
    took = true;
    if (read != ErrorQueueRead::kIcmp || !icmp_handler_) {
      continue;
    }
    try {
      icmp_handler_(entry.context, error);
    } catch (const std::exception& e) {
      TK_LOG_ERROR("relay socket ICMP handler threw: {}", e.what());
    } catch (...) {
      TK_LOG_ERROR("relay socket ICMP handler threw a non-standard exception");
    }
  }
  return took;
}

SendResult UdpSocketSet::QueueSend(Handle handle, const base::SocketAddress& to,
                                   base::ByteView data) {
  if (data.size() > send_.slot_bytes()) {
    Flush();
    const SendResult result = Count(SendDatagram(handle->fd.get(), handle->family, to, data));
    if (result == SendResult::kSent && flush_handler_) {
      flush_handler_(SendBatch::FlushResult{.sent = 1, .sent_bytes = data.size()});
    }
    return result;
  }
  if (send_.full() || (!send_.empty() && send_owner_ != handle)) {
    Flush();
  }
  if (send_.Add(handle->family, to, data) != SendResult::kSent) {
    ++send_errors_;
    return SendResult::kUnroutable;
  }
  send_owner_ = handle;
  if (!flush_scheduled_) {
    flush_scheduled_ = true;
    event_active(flush_event_.get(), 0, 0);
  }
  return SendResult::kSent;
}

SendResult UdpSocketSet::SendDontFragment(Handle handle, const base::SocketAddress& to,
                                          base::ByteView data) {
  Flush();  // what was queued before goes first, with the socket's own setting
  const int fd = handle->fd.get();
  if (!handle->dont_fragment && !SetDontFragment(fd, handle->family, true)) {
    ++send_errors_;
    return SendResult::kError;
  }
  const SendResult result = SendDatagram(fd, handle->family, to, data);
  if (!handle->dont_fragment) {
    (void)SetDontFragment(fd, handle->family, false);
  }
  return Count(result);
}

SendResult UdpSocketSet::Count(SendResult result) {
  if (result == SendResult::kDropped) {
    ++dropped_sends_;
  } else if (result != SendResult::kSent) {
    ++send_errors_;
  }
  return result;
}

void UdpSocketSet::Flush() {
  if (!send_.empty()) {
    const SendBatch::FlushResult result = send_.Flush(send_owner_->fd.get());
    dropped_sends_ += result.dropped;
    send_errors_ += result.errors;
    if (flush_handler_) {
      flush_handler_(result);
    }
  }
  send_owner_ = nullptr;
}

}  // namespace turnkey::net
