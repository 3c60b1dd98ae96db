// StreamConnection: the reads and writes of a plain TCP connection on the
// socket, and the libevent callbacks of both kinds (the bufferevent's for
// TLS). Opening, writing, closing and lingering are in stream_connection.cc.
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <exception>

#include "base/log.h"
#include "net/event_loop.h"
#include "net/socket_util.h"
#include "net/stream_connection.h"
#include "net/stream_connection_internal.h"

namespace turnkey::net {
namespace {

// StreamConnectionOptions::plain_http_answer, on the raw socket.
void AnswerPlainHttp(int fd, std::string_view answer) {
  // Whatever of the request is here is read and dropped: a close with input
  // unread would be a reset, which can cost the client the answer. Bounded;
  // the socket is non-blocking.
  char drop[4096];
  for (int i = 0; i < 16 && ::recv(fd, drop, sizeof(drop), MSG_DONTWAIT) > 0; ++i) {
  }
  (void)::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

}  // namespace

using stream_internal::Joined;
using stream_internal::kReadChunk;
using stream_internal::ReadBuffer;
using stream_internal::WouldBlock;

// ---- Plain TCP

void StreamConnection::AddEvent(event* ev) {
  timeval tv{};
  if (timeout_.count() > 0) {
    tv.tv_sec = static_cast<time_t>(timeout_.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout_.count() % 1000) * 1000);
  }
  event_add(ev, timeout_.count() > 0 ? &tv : nullptr);
}

event* StreamConnection::WriteEvent() {
  if (!write_event_) {
    write_event_.reset(
        event_new(loop_.base(), fd_, EV_WRITE | EV_PERSIST, &StreamConnection::OnWritable, this));
    if (!write_event_) {
      TK_LOG_ERROR("out of memory creating a connection event");
      std::abort();
    }
  }
  return write_event_.get();
}

void StreamConnection::ActivateFinish() {
  if (!finish_event_) {
    finish_event_.reset(event_new(loop_.base(), -1, 0, &StreamConnection::OnFinished, this));
    if (!finish_event_) {
      TK_LOG_ERROR("out of memory creating a connection event");
      std::abort();
    }
  }
  event_active(finish_event_.get(), 0, 0);
}

void StreamConnection::UpdateReadInterest() {
  if (state_ == State::kLingering) {
    return;  // DropLingeringInput keeps the read event
  }
  const bool want = state_ == State::kOpen && (!reading_paused_ || watching_close_);
  const bool pending = event_pending(read_event_.get(), EV_READ, nullptr) != 0;
  if (want && !pending) {
    if (reading_paused_) {
      event_add(read_event_.get(), nullptr);  // watching: no idle timer while paused
    } else {
      AddEvent(read_event_.get());
    }
  } else if (!want && pending) {
    event_del(read_event_.get());
  }
}

void StreamConnection::ReadSome() {
  uint8_t* buffer = ReadBuffer();
  // Never more than one byte past the limit in hand: reaching it means the
  // handler could not make progress (as documented in the header).
  const size_t room =
      options_.max_input_bytes + 1 - std::min(input_.size(), options_.max_input_bytes);
  const ssize_t received = ::recv(fd_, buffer, std::min(kReadChunk, room), 0);
  if (received < 0) {
    if (!WouldBlock(errno)) {
      TK_LOG_DEBUG("connection {} from {}: {}", id_, peer_address_.ToString(),
                   std::strerror(errno));
      Finish(CloseReason::kError);
    }
    return;
  }
  if (received == 0) {
    Finish(CloseReason::kPeerClosed);
    return;
  }
  const base::ByteView data(buffer, static_cast<size_t>(received));
  if (!input_.empty()) {
    input_.insert(input_.end(), data.begin(), data.end());
    DeliverKeptInput();
    return;
  }
  // The common case: handed over straight from the thread's buffer; only an
  // unconsumed tail is copied.
  const size_t consumed = Deliver(data);
  if (consumed < data.size() && state_ == State::kOpen) {
    input_.assign(data.begin() + static_cast<ptrdiff_t>(consumed), data.end());
  }
  EnforceInputLimit();
}

void StreamConnection::DeliverKeptInput() {
  const size_t consumed = Deliver(input_);
  input_.erase(input_.begin(), input_.begin() + static_cast<ptrdiff_t>(consumed));
  if (input_.empty()) {
    base::Bytes().swap(input_);  // an idle connection keeps no buffer
  }
  EnforceInputLimit();
}

ssize_t StreamConnection::SendNow(base::ByteView data) {
  return SendNow(std::span(&data, 1), data.size());
}

ssize_t StreamConnection::SendNow(std::span<const base::ByteView> parts, size_t total) {
  constexpr size_t kMaxParts = 8;
  if (parts.size() > kMaxParts) {
    return SendNow(Joined(parts, total));
  }
  std::array<iovec, kMaxParts> vectors{};
  size_t first = 0;  // vectors[first, parts.size()) is still to send
  for (size_t i = 0; i < parts.size(); ++i) {
    // sendmsg does not write through iov_base.
    vectors[i] = iovec{const_cast<uint8_t*>(parts[i].data()), parts[i].size()};
  }
  size_t sent = 0;
  while (sent < total) {
    msghdr message{};
    message.msg_iov = vectors.data() + first;
    message.msg_iovlen = parts.size() - first;
    const ssize_t n = ::sendmsg(fd_, &message, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        break;
      }
      TK_LOG_DEBUG("connection {} from {}: {}", id_, peer_address_.ToString(),
                   std::strerror(errno));
      Finish(CloseReason::kError);
      return -1;
    }
    sent += static_cast<size_t>(n);
    for (size_t left = static_cast<size_t>(n); left > 0 && first < parts.size();) {
      iovec& vector = vectors[first];
      const size_t taken = std::min(left, vector.iov_len);
      vector.iov_base = static_cast<uint8_t*>(vector.iov_base) + taken;
      vector.iov_len -= taken;
      left -= taken;
      if (vector.iov_len == 0) {
        ++first;
      }
    }
  }
  return static_cast<ssize_t>(sent);
}

void StreamConnection::FlushOutput() {
  if (!SendQueuedNow()) {
    if (state_ != State::kClosed && event_pending(WriteEvent(), EV_WRITE, nullptr) == 0) {
      AddEvent(WriteEvent());
    }
    return;
  }
  if (output_size() == 0) {  // TLS: the bufferevent's chains too (OnWrite otherwise)
    OutputSent();
  }
}

void StreamConnection::OutputSent() {
  if (state_ == State::kClosing) {
    OutputDrained();
  } else if (resume_once_sent_ && state_ == State::kOpen) {
    ResumeReading();
  }
}

void StreamConnection::OnReadable(int /*fd*/, short what, void* arg) noexcept {
  auto* connection = static_cast<StreamConnection*>(arg);
  if (connection->state_ == State::kLingering) {
    connection->DropLingeringInput((what & EV_TIMEOUT) != 0);
    return;
  }
  if (connection->state_ != State::kOpen) {
    return;
  }
  if ((what & EV_TIMEOUT) != 0) {
    connection->Finish(CloseReason::kIdleTimeout);
    return;
  }
  if (connection->reading_paused_) {
    if (connection->watching_close_) {
      connection->CheckPeerClosed();
    }
    return;  // else it became ready before the pause took effect; the kernel keeps it
  }
  if (connection->redeliver_) {
    connection->redeliver_ = false;
    connection->DeliverKeptInput();
    return;  // still readable? the next iteration reads it
  }
  connection->ReadSome();
}

void StreamConnection::OnWritable(int /*fd*/, short what, void* arg) noexcept {
  auto* connection = static_cast<StreamConnection*>(arg);
  if (connection->state_ == State::kClosed) {
    return;
  }
  if ((what & EV_TIMEOUT) != 0) {
    // Output did not move for the whole timeout (or the close flush ran out).
    connection->Finish(connection->state_ == State::kClosing ? CloseReason::kLocalClose
                                                             : CloseReason::kIdleTimeout);
    return;
  }
  connection->FlushOutput();
}

// ---- TLS (bufferevent)

void StreamConnection::OnRead(bufferevent* /*bev*/, void* arg) noexcept {
  auto* connection = static_cast<StreamConnection*>(arg);
  if (connection->state_ == State::kLingering) {
    connection->DropLingeringTlsInput();
    return;
  }
  if (connection->state_ != StreamConnection::State::kOpen || connection->reading_paused_) {
    return;  // paused (watching for a close): kept until ResumeReading
  }
  connection->DeliverBufferedInput();
}

void StreamConnection::OnWrite(bufferevent* /*bev*/, void* arg) noexcept {
  auto* connection = static_cast<StreamConnection*>(arg);
  if (connection->output_size() == 0) {
    connection->OutputSent();
  }
}

void StreamConnection::OnEvent(bufferevent* bev, short what, void* arg) noexcept {
  auto* connection = static_cast<StreamConnection*>(arg);
  if ((what & BEV_EVENT_CONNECTED) != 0) {
    return;  // TLS handshake done; input starts flowing through OnRead
  }
  CloseReason reason = CloseReason::kError;
  if (connection->state_ == State::kClosing || connection->state_ == State::kLingering) {
    reason = CloseReason::kLocalClose;
  } else if ((what & BEV_EVENT_TIMEOUT) != 0) {
    reason = CloseReason::kIdleTimeout;
  } else if ((what & BEV_EVENT_EOF) != 0) {
    reason = CloseReason::kPeerClosed;
  }
  if (reason == CloseReason::kError) {
    int err = EVUTIL_SOCKET_ERROR();
    unsigned long tls_error = bufferevent_get_openssl_error(bev);
    while (bufferevent_get_openssl_error(bev) != 0) {
    }
    if (tls_error != 0) {
      char buffer[256];
      ERR_error_string_n(tls_error, buffer, sizeof(buffer));
      TK_LOG_DEBUG("connection {} from {}: TLS error {}", connection->id_,
                   connection->peer_address_.ToString(), buffer);
      if (ERR_GET_REASON(tls_error) == SSL_R_HTTP_REQUEST &&
          !connection->options_.plain_http_answer.empty()) {
        AnswerPlainHttp(connection->fd_, connection->options_.plain_http_answer);
      }
    } else {
      TK_LOG_DEBUG("connection {} from {}: {}", connection->id_,
                   connection->peer_address_.ToString(), std::strerror(err));
    }
  }
  connection->Finish(reason);
}

void StreamConnection::OnFinished(int /*fd*/, short /*what*/, void* arg) noexcept {
  auto* connection = static_cast<StreamConnection*>(arg);
  if (connection->on_close_) {
    try {
      connection->on_close_(*connection, connection->close_reason_);
    } catch (const std::exception& e) {
      TK_LOG_ERROR("stream close handler threw: {}", e.what());
    } catch (...) {
      TK_LOG_ERROR("stream close handler threw a non-standard exception");
    }
  }
  if (connection->on_finished_) {
    // The owner releases (DeleteLater) the connection here; nothing of it is
    // touched afterwards.
    connection->on_finished_(*connection);
  }
}

}  // namespace turnkey::net
