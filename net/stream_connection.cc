#include "net/stream_connection.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <exception>

#include "base/log.h"
#include "net/event_loop.h"
#include "net/socket_util.h"
#include "net/tls_context.h"

namespace turnkey::net {

const char* CloseReasonName(CloseReason reason) {
  switch (reason) {
    case CloseReason::kPeerClosed:
      return "peer_closed";
    case CloseReason::kError:
      return "error";
    case CloseReason::kIdleTimeout:
      return "idle_timeout";
    case CloseReason::kReadLimit:
      return "read_limit";
    case CloseReason::kWriteLimit:
      return "write_limit";
    case CloseReason::kLocalClose:
      return "local_close";
  }
  return "unknown";
}

void StreamConnection::EventDeleter::operator()(event* ev) const { event_free(ev); }

std::unique_ptr<StreamConnection> StreamConnection::Create(
    EventLoop& loop, bufferevent* bev, uint64_t id, std::shared_ptr<TlsContext> tls,
    const base::SocketAddress& peer, const StreamConnectionOptions& options,
    std::function<void(StreamConnection&)> on_finished) {
  std::unique_ptr<StreamConnection> connection(new StreamConnection(loop, bev, id));
  connection->tls_ = std::move(tls);
  connection->options_ = options;
  connection->peer_address_ = Unmap(peer);
  connection->on_finished_ = std::move(on_finished);
  if (auto local = LocalAddressOf(bufferevent_getfd(bev)); local) {
    connection->local_address_ = Unmap(*local);
  }
  connection->finish_event_.reset(
      event_new(loop.base(), -1, 0, &StreamConnection::OnFinished, connection.get()));
  if (!connection->finish_event_) {
    return nullptr;
  }
  return connection;
}

StreamConnection::StreamConnection(EventLoop& loop, bufferevent* bev, uint64_t id)
    : loop_(loop), bev_(bev), id_(id) {}

StreamConnection::~StreamConnection() {
  // Callbacks first: libevent must not call back into a half-destroyed object.
  bufferevent_setcb(bev_, nullptr, nullptr, nullptr, nullptr);
  bufferevent_free(bev_);
}

void StreamConnection::Start() {
  bufferevent_setcb(bev_, &StreamConnection::OnRead, &StreamConnection::OnWrite,
                    &StreamConnection::OnEvent, this);
  // High read watermark one past the limit: libevent stops reading once the
  // buffer reaches it, so a peer can never make us buffer more than the limit
  // plus one byte, and reaching it means the handler could not make progress.
  bufferevent_setwatermark(bev_, EV_READ, 0, options_.max_input_bytes + 1);
  if (state_ == State::kClosing) {
    // Close() was called from the accept callback: only flush.
    ApplyTimeouts(options_.close_timeout);
    bufferevent_enable(bev_, EV_WRITE);
    return;
  }
  ApplyTimeouts(options_.idle_timeout);
  bufferevent_enable(bev_, reading_paused_ ? EV_WRITE : (EV_READ | EV_WRITE));
}

void StreamConnection::SetState(State next) {
  // Legal: open -> closing -> closed, open -> closed. Closed is final.
  bool legal = (state_ == State::kOpen && next != State::kOpen) ||
               (state_ == State::kClosing && next == State::kClosed);
  assert(legal);
  if (legal) {
    state_ = next;
  }
}

void StreamConnection::ApplyTimeouts(std::chrono::milliseconds timeout) {
  if (timeout.count() <= 0) {
    bufferevent_set_timeouts(bev_, nullptr, nullptr);
    return;
  }
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  bufferevent_set_timeouts(bev_, &tv, &tv);
}

void StreamConnection::SetCallbacks(DataCallback on_data, CloseCallback on_close) {
  if (in_data_callback_) {
    next_on_data_ = std::move(on_data);
    has_next_on_data_ = true;
  } else {
    on_data_ = std::move(on_data);
  }
  on_close_ = std::move(on_close);
}

bool StreamConnection::Write(base::ByteView data) {
  if (state_ != State::kOpen) {
    return false;
  }
  if (data.empty()) {
    return true;
  }
  if (bufferevent_write(bev_, data.data(), data.size()) != 0) {
    Finish(CloseReason::kError);
    return false;
  }
  if (options_.max_output_bytes > 0 && output_size() > options_.max_output_bytes) {
    Finish(CloseReason::kWriteLimit);
    return false;
  }
  return true;
}

void StreamConnection::Close() {
  if (state_ != State::kOpen) {
    return;
  }
  SetState(State::kClosing);
  bufferevent_disable(bev_, EV_READ);
  if (output_size() == 0) {
    Finish(CloseReason::kLocalClose);
    return;
  }
  // The write timeout now bounds the flush; OnWrite finishes once drained.
  ApplyTimeouts(options_.close_timeout);
  bufferevent_enable(bev_, EV_WRITE);
}

void StreamConnection::Abort() { Finish(CloseReason::kLocalClose); }

void StreamConnection::PauseReading() {
  reading_paused_ = true;
  if (state_ == State::kOpen) {
    bufferevent_disable(bev_, EV_READ);
  }
}

void StreamConnection::ResumeReading() {
  if (!reading_paused_) {
    return;
  }
  reading_paused_ = false;
  if (state_ != State::kOpen) {
    return;
  }
  bufferevent_enable(bev_, EV_READ);
  // Input that arrived before the pause was never offered to the handler.
  // Offer it from a loop callback, not from inside this call, so the caller
  // is not re-entered.
  if (input_size() > 0) {
    bufferevent_trigger(bev_, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
  }
}

void StreamConnection::SetIdleTimeout(std::chrono::milliseconds timeout) {
  options_.idle_timeout = timeout;
  if (state_ == State::kOpen) {
    ApplyTimeouts(timeout);
  }
}

size_t StreamConnection::input_size() const {
  return evbuffer_get_length(bufferevent_get_input(bev_));
}

size_t StreamConnection::output_size() const {
  return evbuffer_get_length(bufferevent_get_output(bev_));
}

void StreamConnection::Finish(CloseReason reason) {
  if (state_ == State::kClosed) {
    return;
  }
  SetState(State::kClosed);
  close_reason_ = reason;
  bufferevent_disable(bev_, EV_READ | EV_WRITE);
  bufferevent_setcb(bev_, nullptr, nullptr, nullptr, nullptr);
  if (tls_ != nullptr && reason == CloseReason::kLocalClose && output_size() == 0) {
    // Best effort close_notify so the peer sees a clean TLS end; the socket
    // is non-blocking, and whatever does not fit is not worth waiting for.
    if (SSL* ssl = bufferevent_openssl_get_ssl(bev_); ssl != nullptr) {
      SSL_shutdown(ssl);
      ERR_clear_error();
    }
  }
  // The close callback runs from its own loop callback so that Close(),
  // Abort() and Write() never call back into the caller.
  event_active(finish_event_.get(), 0, 0);
}

void StreamConnection::DeliverInput() {
  evbuffer* input = bufferevent_get_input(bev_);
  while (state_ == State::kOpen && !reading_paused_ && on_data_) {
    size_t length = evbuffer_get_length(input);
    if (length == 0) {
      break;
    }
    const uint8_t* bytes = evbuffer_pullup(input, -1);
    size_t consumed = 0;
    in_data_callback_ = true;
    try {
      consumed = on_data_(*this, base::ByteView(bytes, length));
    } catch (const std::exception& e) {
      TK_LOG_ERROR("stream data handler threw: {}", e.what());
      Finish(CloseReason::kError);
    } catch (...) {
      TK_LOG_ERROR("stream data handler threw a non-standard exception");
      Finish(CloseReason::kError);
    }
    in_data_callback_ = false;
    if (has_next_on_data_) {
      on_data_ = std::move(next_on_data_);
      next_on_data_ = nullptr;
      has_next_on_data_ = false;
    }
    consumed = std::min(consumed, length);
    evbuffer_drain(input, consumed);
    if (consumed == 0) {
      break;
    }
  }
  if (state_ == State::kOpen && input_size() > options_.max_input_bytes) {
    Finish(CloseReason::kReadLimit);
  }
}

void StreamConnection::OnRead(bufferevent* /*bev*/, void* arg) noexcept {
  auto* connection = static_cast<StreamConnection*>(arg);
  if (connection->state_ != StreamConnection::State::kOpen) {
    return;
  }
  connection->DeliverInput();
}

void StreamConnection::OnWrite(bufferevent* /*bev*/, void* arg) noexcept {
  auto* connection = static_cast<StreamConnection*>(arg);
  if (connection->state_ == State::kClosing && connection->output_size() == 0) {
    connection->Finish(CloseReason::kLocalClose);
  }
}

void StreamConnection::OnEvent(bufferevent* bev, short what, void* arg) noexcept {
  auto* connection = static_cast<StreamConnection*>(arg);
  if ((what & BEV_EVENT_CONNECTED) != 0) {
    return;  // TLS handshake done; input starts flowing through OnRead
  }
  CloseReason reason = CloseReason::kError;
  if (connection->state_ == State::kClosing) {
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
