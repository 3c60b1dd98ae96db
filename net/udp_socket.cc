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
  if (options.receive_destinations) {
    if (auto enabled = EnablePacketInfo(socket->fd_.get(), socket->family_); !enabled) {
      return std::unexpected(enabled.error());
    }
    socket->recv_.ReadDestinations(local->port());
  }
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
    : loop_(loop),
      fd_(std::move(fd)),
      options_(options),
      handler_(std::move(handler)),
      recv_(options.batch_size, options.max_datagram_bytes),
      send_(options.batch_size, options.max_datagram_bytes) {}

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
  for (size_t round = 0; round < options_.max_batches_per_wakeup; ++round) {
    const size_t got = recv_.Receive(fd_.get(), options_.unmap_v4);
    std::span<const Datagram> batch = recv_.datagrams();
    received_ += batch.size();
    if (!batch.empty()) {
      try {
        handler_(batch);
      } catch (const std::exception& e) {
        TK_LOG_ERROR("udp handler threw: {}", e.what());
      } catch (...) {
        TK_LOG_ERROR("udp handler threw a non-standard exception");
      }
    }
    Flush();
    if (got < recv_.slots()) {
      break;  // the kernel queue is empty
    }
  }
}

SendResult UdpSocket::Count(SendResult result) {
  switch (result) {
    case SendResult::kSent:
      ++sent_;
      break;
    case SendResult::kDropped:
      ++dropped_sends_;
      break;
    case SendResult::kUnroutable:
    case SendResult::kError:
      ++send_errors_;
      break;
  }
  return result;
}

SendResult UdpSocket::Send(const base::SocketAddress& to, base::ByteView data,
                           const base::SocketAddress* from) {
  Flush();
  return Count(SendDatagram(fd_.get(), family_, to, data, from));
}

SendResult UdpSocket::QueueSend(const base::SocketAddress& to, base::ByteView data,
                                const base::SocketAddress* from) {
  if (data.size() > send_.slot_bytes()) {
    return Send(to, data, from);
  }
  if (send_.full()) {
    Flush();
  }
  if (send_.Add(family_, to, data, from) != SendResult::kSent) {
    ++send_errors_;
    return SendResult::kUnroutable;
  }
  if (!flush_scheduled_) {
    flush_scheduled_ = true;
    event_active(flush_event_.get(), 0, 0);
  }
  return SendResult::kSent;
}

void UdpSocket::Flush() {
  if (send_.empty()) {
    return;
  }
  const SendBatch::FlushResult result = send_.Flush(fd_.get());
  sent_ += result.sent;
  // UDP: a full send buffer means drop, never queue without bound.
  dropped_sends_ += result.dropped;
  send_errors_ += result.errors;
}

}  // namespace turnkey::net
