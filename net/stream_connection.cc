#include "net/stream_connection.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>

#include "base/log.h"
#include "net/event_loop.h"
#include "net/socket_util.h"
#include "net/stream_connection_internal.h"
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

namespace stream_internal {

uint8_t* ReadBuffer() {
  thread_local std::unique_ptr<uint8_t[]> buffer(new uint8_t[kReadChunk]);
  return buffer.get();
}

bool WouldBlock(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }

base::Bytes Joined(std::span<const base::ByteView> parts, size_t total) {
  base::Bytes joined;
  joined.reserve(total);
  for (const base::ByteView part : parts) {
    joined.insert(joined.end(), part.begin(), part.end());
  }
  return joined;
}

}  // namespace stream_internal

using stream_internal::Joined;
using stream_internal::kReadChunk;
using stream_internal::ReadBuffer;
using stream_internal::WouldBlock;

void StreamConnection::EventDeleter::operator()(event* ev) const { event_free(ev); }

// The write BIO of a TLS connection with tls_record_per_write. OpenSSL hands
// it each record's ciphertext, which goes to the connection's output queue
// (StreamConnection::QueueCiphertext) and leaves as plain TCP's bytes do: so
// the records of several writes made while corked share one send(). It never
// refuses bytes (the queue is bounded by max_output_bytes, as on plain TCP),
// so SSL_write never waits on it. It answers BIO_get_fd with the socket,
// which libevent checks when it makes the bufferevent and closes when it
// frees it.
struct RecordBio {
  struct State {
    int fd = -1;
    StreamConnection* connection = nullptr;  // null until attached, and once gone
  };

  // The BIO type (a fresh index) and its method, made once per process.
  struct Kind {
    int type = 0;
    BIO_METHOD* method = nullptr;
  };
  static const Kind& Get() {
    static const Kind kind = [] {
      Kind made;
      const int index = BIO_get_new_index();
      made.type = index | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR;
      made.method = index < 0 ? nullptr : BIO_meth_new(made.type, "turnkey TLS records");
      if (made.method == nullptr || BIO_meth_set_write(made.method, &Write) != 1 ||
          BIO_meth_set_ctrl(made.method, &Ctrl) != 1 ||
          BIO_meth_set_create(made.method, &Create) != 1 ||
          BIO_meth_set_destroy(made.method, &Destroy) != 1) {
        TK_LOG_ERROR("out of memory creating a TLS write BIO method");
        std::abort();
      }
      return made;
    }();
    return kind;
  }
  static State* Of(BIO* bio) { return static_cast<State*>(BIO_get_data(bio)); }
  static bool Is(BIO* bio) { return bio != nullptr && BIO_method_type(bio) == Get().type; }

  static int Create(BIO* bio) {
    BIO_set_data(bio, new (std::nothrow) State);
    BIO_set_init(bio, 1);
    return BIO_get_data(bio) != nullptr ? 1 : 0;
  }
  static int Destroy(BIO* bio) {
    delete Of(bio);
    BIO_set_data(bio, nullptr);
    return 1;
  }
  static int Write(BIO* bio, const char* data, int size) {
    BIO_clear_retry_flags(bio);
    State* state = Of(bio);
    if (state == nullptr || state->connection == nullptr || size < 0) {
      return -1;
    }
    state->connection->QueueCiphertext(
        base::ByteView(reinterpret_cast<const uint8_t*>(data), static_cast<size_t>(size)));
    return size;
  }
  static long Ctrl(BIO* bio, int cmd, long /*num*/, void* ptr) {
    State* state = Of(bio);
    switch (cmd) {
      case BIO_C_GET_FD:
        if (state == nullptr) {
          return -1;
        }
        if (ptr != nullptr) {
          *static_cast<int*>(ptr) = state->fd;
        }
        return state->fd;
      case BIO_CTRL_GET_CLOSE:
        return BIO_NOCLOSE;  // the bufferevent closes the socket
      case BIO_CTRL_SET_CLOSE:
      case BIO_CTRL_FLUSH:  // nothing is held here: it is queued, and sent by the connection
      case BIO_CTRL_DUP:
        return 1;
      default:
        return 0;
    }
  }
};

bool UseRecordWriteBio(SSL* ssl, int fd) {
  BIO* read_bio = BIO_new_socket(fd, BIO_NOCLOSE);
  BIO* write_bio = BIO_new(RecordBio::Get().method);
  if (read_bio == nullptr || write_bio == nullptr) {
    BIO_free(read_bio);
    BIO_free(write_bio);
    ERR_clear_error();
    return false;
  }
  RecordBio::Of(write_bio)->fd = fd;
  SSL_set_bio(ssl, read_bio, write_bio);
  return true;
}

std::unique_ptr<StreamConnection> StreamConnection::Create(
    EventLoop& loop, int fd, bufferevent* bev, uint64_t id, std::shared_ptr<TlsContext> tls,
    const base::SocketAddress& peer, const StreamConnectionOptions& options,
    std::function<void(StreamConnection&)> on_finished) {
  std::unique_ptr<StreamConnection> connection(new StreamConnection(loop, fd, bev, id));
  connection->tls_ = std::move(tls);
  connection->options_ = options;
  connection->timeout_ = options.idle_timeout;
  connection->peer_address_ = Unmap(peer);
  connection->on_finished_ = std::move(on_finished);
  if (auto local = LocalAddressOf(fd); local) {
    connection->local_address_ = Unmap(*local);
  }
  // The write and finish events are made when first needed: most
  // connections never fill the socket buffer, and an idle one should cost
  // as little as it can.
  if (bev == nullptr) {
    connection->read_event_.reset(event_new(loop.base(), fd, EV_READ | EV_PERSIST,
                                            &StreamConnection::OnReadable, connection.get()));
  }
  if (bev == nullptr && !connection->read_event_) {
    // The socket (or bufferevent) stays the caller's.
    connection->fd_ = -1;
    connection->bev_ = nullptr;
    return nullptr;
  }
  if (bev != nullptr && options.tls_record_per_write) {
    SSL* ssl = bufferevent_openssl_get_ssl(bev);
    if (BIO* bio = ssl != nullptr ? SSL_get_wbio(ssl) : nullptr; RecordBio::Is(bio)) {
      RecordBio::Of(bio)->connection = connection.get();
      connection->record_bio_ = bio;
    }
  }
  return connection;
}

StreamConnection::StreamConnection(EventLoop& loop, int fd, bufferevent* bev, uint64_t id)
    : loop_(loop), fd_(fd), bev_(bev), id_(id) {}

StreamConnection::~StreamConnection() {
  if (bev_ != nullptr) {
    // Callbacks first: libevent must not call back into a half-destroyed object.
    bufferevent_setcb(bev_, nullptr, nullptr, nullptr, nullptr);
    if (record_bio_ != nullptr) {
      RecordBio::Of(record_bio_)->connection = nullptr;  // the SSL may outlive us
    }
    write_event_.reset();
    bufferevent_free(bev_);
    return;
  }
  read_event_.reset();
  write_event_.reset();
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

void StreamConnection::Start() {
  if (bev_ == nullptr) {
    // Close() from the accept callback already watches the flush.
    UpdateReadInterest();
    return;
  }
  bufferevent_setcb(bev_, &StreamConnection::OnRead, &StreamConnection::OnWrite,
                    &StreamConnection::OnEvent, this);
  // High read watermark one past the limit: libevent stops reading once the
  // buffer reaches it, so a peer can never make us buffer more than the limit
  // plus one byte, and reaching it means the handler could not make progress.
  bufferevent_setwatermark(bev_, EV_READ, 0, options_.max_input_bytes + 1);
  if (options_.tls_record_per_write) {
    // Each write pass takes up to 8 chains and at most this many bytes; the
    // default (16 KiB) could end a pass inside a message and so split its
    // record. 8 of the largest TURN frames (64 KiB + 4) fit in this.
    bufferevent_set_max_single_write(bev_, 1024 * 1024);
  }
  if (state_ == State::kClosing) {
    // Close() was called from the accept callback: only flush.
    ApplyTimeouts(options_.close_timeout);
    bufferevent_enable(bev_, EV_WRITE);
    return;
  }
  ApplyTimeouts(options_.idle_timeout);
  bufferevent_enable(bev_, reading_paused_ ? EV_WRITE : (EV_READ | EV_WRITE));
}

void StreamConnection::WatchForPeerClose() {
  if (!reading_paused_ || state_ != State::kOpen) {
    return;
  }
  if (bev_ == nullptr) {
    watching_close_ = true;
    UpdateReadInterest();
    return;
  }
  // timeout_ is the plain path's; a TLS connection's idle timeout is the
  // bufferevent's read timeout, which must not run while paused.
  if (options_.idle_timeout.count() == 0) {
    watching_close_ = true;
    bufferevent_enable(bev_, EV_READ);
  }
}

void StreamConnection::CheckPeerClosed() {
  uint8_t byte;
  const ssize_t peeked = ::recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (peeked == 0) {
    Finish(CloseReason::kPeerClosed);
    return;
  }
  if (peeked < 0) {
    if (!WouldBlock(errno)) {
      Finish(CloseReason::kError);
    }
    return;
  }
  watching_close_ = false;
  UpdateReadInterest();
}

void StreamConnection::SetState(State next) {
  // Legal: open -> closing -> lingering -> closed, and from any of them to
  // closed. Closed is final.
  bool legal =
      (state_ == State::kOpen && (next == State::kClosing || next == State::kClosed)) ||
      (state_ == State::kClosing && (next == State::kLingering || next == State::kClosed)) ||
      (state_ == State::kLingering && next == State::kClosed);
  assert(legal);
  if (legal) {
    state_ = next;
  }
}

void StreamConnection::ApplyTimeouts(std::chrono::milliseconds timeout) {
  // The plain path's events (TLS with record_bio_: the write event of the
  // queued ciphertext). Adding a pending event again restarts it with the
  // new timeout (not the read event of a paused connection watching for a
  // close).
  timeout_ = timeout;
  for (event* ev : {read_event_.get(), write_event_.get()}) {
    if (ev == read_event_.get() && reading_paused_) {
      continue;
    }
    if (ev != nullptr && event_pending(ev, EV_READ | EV_WRITE, nullptr) != 0) {
      AddEvent(ev);
    }
  }
  if (bev_ == nullptr) {
    return;
  }
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

bool StreamConnection::Write(base::ByteView data) { return Write(std::span(&data, 1)); }

bool StreamConnection::Write(std::span<const base::ByteView> parts) {
  if (state_ != State::kOpen) {
    return false;
  }
  size_t total = 0;
  for (const base::ByteView part : parts) {
    total += part.size();
  }
  if (total == 0) {
    return true;
  }
  if (bev_ == nullptr) {
    size_t sent = 0;
    if (cork_ == 0 && output_size() == 0) {
      const ssize_t n = SendNow(parts, total);
      if (n < 0) {
        return false;
      }
      sent = static_cast<size_t>(n);
      if (sent == total) {
        return true;
      }
    }
    if (options_.max_output_bytes > 0 &&
        output_size() + (total - sent) > options_.max_output_bytes) {
      Finish(CloseReason::kWriteLimit);  // before copying what would be refused
      return false;
    }
    QueueOutput(parts, total, sent);
    if (cork_ == 0) {
      AddEvent(WriteEvent());
    }
    return true;
  }
  if (cork_ > 0 && !options_.tls_record_per_write) {
    // Gathered for one bufferevent_write at Uncork: one run of TLS records
    // instead of an SSL_write per message.
    QueueOutput(parts, total, 0);
    return CheckOutputLimit();
  }
  // One run of records for the whole, not a record per part.
  const base::Bytes joined = parts.size() > 1 ? Joined(parts, total) : base::Bytes();
  const base::ByteView data = parts.size() > 1 ? base::ByteView(joined) : parts.front();
  if (options_.tls_record_per_write) {
    if (!WriteRecord(data)) {
      Finish(CloseReason::kError);
      return false;
    }
    if (state_ != State::kOpen) {
      return false;  // sending it failed
    }
  } else if (bufferevent_write(bev_, data.data(), data.size()) != 0) {
    Finish(CloseReason::kError);
    return false;
  }
  return CheckOutputLimit();
}

bool StreamConnection::CheckOutputLimit() {
  if (options_.max_output_bytes > 0 && output_size() > options_.max_output_bytes) {
    Finish(CloseReason::kWriteLimit);
    return false;
  }
  return true;
}

void StreamConnection::QueueOutput(std::span<const base::ByteView> parts, size_t total,
                                   size_t skip) {
  const size_t needed = output_.size() + total - skip;
  if (output_.capacity() < needed) {
    output_.reserve(std::max(needed, 2 * output_.capacity()));
  }
  for (base::ByteView part : parts) {
    const size_t dropped = std::min(skip, part.size());
    skip -= dropped;
    part = part.subspan(dropped);
    output_.insert(output_.end(), part.begin(), part.end());
  }
}

bool StreamConnection::WriteRecord(base::ByteView data) {
  SSL* ssl = record_bio_ != nullptr ? bufferevent_openssl_get_ssl(bev_) : nullptr;
  if (ssl == nullptr || SSL_is_init_finished(ssl) == 0 ||
      evbuffer_get_length(bufferevent_get_output(bev_)) > 0) {
    // Still handshaking (or what was written then is not out yet): libevent
    // writes it once the handshake is done, a record per chain.
    return AddRecord(data);
  }
  // SSL_write makes the records now; record_bio_ queues their ciphertext,
  // and the Uncork sends it unless an outer cork gathers more.
  Cork();
  const int written = SSL_write(ssl, data.data(), static_cast<int>(data.size()));
  if (written <= 0) {
    TK_LOG_DEBUG("connection {} from {}: {}", id_, peer_address_.ToString(),
                 TlsErrorMessage("TLS write"));  // and clears OpenSSL's error queue
  }
  Uncork();
  return written > 0 && static_cast<size_t>(written) == data.size();
}

void StreamConnection::QueueCiphertext(base::ByteView data) {
  output_.insert(output_.end(), data.begin(), data.end());
  if (cork_ == 0 && (state_ == State::kOpen || state_ == State::kClosing) &&
      event_pending(WriteEvent(), EV_WRITE, nullptr) == 0) {
    // Made by libevent (the handshake, a write pass) or by SSL_read: sent
    // from the write event, with whatever else the loop makes before it.
    AddEvent(WriteEvent());
  }
}

bool StreamConnection::SendQueuedNow() {
  if (queued() > 0) {
    const ssize_t sent = SendNow(base::ByteView(output_).subspan(output_offset_));
    if (sent < 0) {
      return false;
    }
    output_offset_ += static_cast<size_t>(sent);
    if (queued() > 0) {
      return false;
    }
  }
  base::Bytes().swap(output_);
  output_offset_ = 0;
  if (write_event_) {
    event_del(write_event_.get());
  }
  return true;
}

bool StreamConnection::AddRecord(base::ByteView data) {
  // The OpenSSL bufferevent makes one SSL_write per chain of its output
  // buffer, and bytes added to a buffer fill its last chain. A reference
  // chain is never filled further (the memory is not the buffer's), so a
  // copy added by reference is a chain, and so a run of records, of its own.
  void* copy = std::malloc(data.size());
  if (copy == nullptr) {
    return false;
  }
  std::memcpy(copy, data.data(), data.size());
  const auto release = [](const void* bytes, size_t, void*) {
    std::free(const_cast<void*>(bytes));
  };
  if (evbuffer_add_reference(bufferevent_get_output(bev_), copy, data.size(), release, nullptr) !=
      0) {
    std::free(copy);
    return false;
  }
  return true;
}

void StreamConnection::Cork() { ++cork_; }

void StreamConnection::Uncork() {
  if (cork_ == 0 || --cork_ > 0 || state_ == State::kClosed) {
    return;
  }
  if (bev_ == nullptr || record_bio_ != nullptr) {
    FlushOutput();
    return;
  }
  if (!output_.empty()) {
    const int written = bufferevent_write(bev_, output_.data(), output_.size());
    base::Bytes().swap(output_);
    if (written != 0) {
      Finish(CloseReason::kError);
    }
  }
}

void StreamConnection::Close() {
  if (state_ != State::kOpen) {
    return;
  }
  SetState(State::kClosing);
  if (bev_ == nullptr) {
    UpdateReadInterest();
    if (output_size() == 0) {
      OutputDrained();
      return;
    }
    // The write event's timeout now bounds the flush; FlushOutput finishes
    // once drained (or Uncork does, when corked).
    ApplyTimeouts(options_.close_timeout);
    if (cork_ == 0) {
      AddEvent(WriteEvent());
    }
    return;
  }
  bufferevent_disable(bev_, EV_READ);
  if (output_size() == 0) {
    OutputDrained();
    return;
  }
  // The write timeout now bounds the flush; OnWrite calls OutputDrained.
  ApplyTimeouts(options_.close_timeout);
  bufferevent_enable(bev_, EV_WRITE);
}

void StreamConnection::CloseLingering() {
  if (state_ != State::kOpen) {
    return;
  }
  linger_ = options_.linger_timeout.count() > 0 && options_.linger_bytes > 0;
  Close();
}

void StreamConnection::OutputDrained() {
  if (!linger_) {
    Finish(CloseReason::kLocalClose);
    return;
  }
  if (bev_ != nullptr) {
    LingerTls();
    return;
  }
  // The FIN tells the peer the answer is complete; a reset now could cost
  // it the answer (see the header).
  if (::shutdown(fd_, SHUT_WR) != 0) {
    Finish(CloseReason::kLocalClose);
    return;
  }
  BeginLinger();
  timeout_ = options_.linger_timeout;
  AddEvent(read_event_.get());
}

void StreamConnection::BeginLinger() {
  SetState(State::kLingering);
  linger_left_ = options_.linger_bytes;
  linger_deadline_ = std::chrono::steady_clock::now() + options_.linger_timeout;
}

std::optional<std::chrono::milliseconds> StreamConnection::LingerLeft(size_t dropped) {
  linger_left_ -= std::min(dropped, linger_left_);
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      linger_deadline_ - std::chrono::steady_clock::now());
  if (linger_left_ == 0 || left.count() <= 0) {
    Finish(CloseReason::kLocalClose);
    return std::nullopt;
  }
  return left;
}

void StreamConnection::DropLingeringInput(bool timed_out) {
  if (timed_out) {
    Finish(CloseReason::kLocalClose);
    return;
  }
  const ssize_t received = ::recv(fd_, ReadBuffer(), std::min(kReadChunk, linger_left_), 0);
  if (received == 0 || (received < 0 && !WouldBlock(errno))) {
    Finish(CloseReason::kLocalClose);  // the peer closed (or reset) too
    return;
  }
  if (auto left = LingerLeft(received > 0 ? static_cast<size_t>(received) : 0)) {
    // A persistent event's timeout restarts on every activation; the linger
    // is bounded as a whole.
    timeout_ = *left;
    AddEvent(read_event_.get());
  }
}

void StreamConnection::LingerTls() {
  // RFC 8446 section 6.1: close_notify ends our side of the TLS stream, as
  // the FIN after it ends the TCP one; the peer may go on sending until it
  // has seen them, and its records are still read and decrypted (OpenSSL
  // reads after sending close_notify), then dropped. Should the alert not
  // fit into the socket now, the plain close it is.
  SSL* ssl = bufferevent_openssl_get_ssl(bev_);
  const int sent = ssl != nullptr ? SSL_shutdown(ssl) : -1;
  ERR_clear_error();
  if (sent != 0) {
    Finish(CloseReason::kLocalClose);  // not sent, or the peer's close_notify is already here
    return;
  }
  if (record_bio_ != nullptr && !SendQueuedNow()) {
    Finish(CloseReason::kLocalClose);  // the alert is queued, not in the socket
    return;
  }
  BeginLinger();
  ::shutdown(fd_, SHUT_WR);
  bufferevent_disable(bev_, EV_WRITE);
  ApplyTimeouts(options_.linger_timeout);
  bufferevent_enable(bev_, EV_READ);
  DropLingeringTlsInput();
}

void StreamConnection::DropLingeringTlsInput() {
  evbuffer* input = bufferevent_get_input(bev_);
  const size_t length = evbuffer_get_length(input);
  evbuffer_drain(input, length);
  if (auto left = LingerLeft(length)) {
    // The read timeout restarts with every read; the linger is bounded as a
    // whole. The peer's end (EOF, close_notify, reset) comes through OnEvent.
    ApplyTimeouts(*left);
  }
}

void StreamConnection::Abort() { Finish(CloseReason::kLocalClose); }

void StreamConnection::PauseReading() {
  reading_paused_ = true;
  watching_close_ = false;
  resume_once_sent_ = false;
  if (bev_ == nullptr) {
    UpdateReadInterest();
    return;
  }
  if (state_ == State::kOpen) {
    bufferevent_disable(bev_, EV_READ);
  }
}

void StreamConnection::ResumeReading() {
  resume_once_sent_ = false;
  if (!reading_paused_) {
    return;
  }
  reading_paused_ = false;
  watching_close_ = false;
  if (state_ != State::kOpen) {
    return;
  }
  if (bev_ == nullptr) {
    // Added again even if the watch left it pending: with the idle timeout.
    AddEvent(read_event_.get());
    // Inside Deliver (its Uncork flushed the output) the unconsumed rest is
    // not in input_ yet: it is kept when Deliver returns.
    if (!input_.empty() || delivering_) {
      // As below: offered from a loop callback, not from inside this call.
      redeliver_ = true;
      event_active(read_event_.get(), EV_READ, 0);
    }
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

void StreamConnection::ResumeReadingOnceSent() {
  if (output_size() == 0) {
    ResumeReading();
    return;
  }
  resume_once_sent_ = true;
}

void StreamConnection::SetIdleTimeout(std::chrono::milliseconds timeout) {
  options_.idle_timeout = timeout;
  if (state_ == State::kOpen) {
    ApplyTimeouts(timeout);
  }
}

size_t StreamConnection::input_size() const {
  if (bev_ == nullptr) {
    return input_.size();
  }
  return evbuffer_get_length(bufferevent_get_input(bev_));
}

size_t StreamConnection::output_size() const {
  if (bev_ == nullptr) {
    return queued();
  }
  // TLS: what the bufferevent holds and what waits for Uncork (or, with
  // record_bio_, the ciphertext not sent yet).
  return evbuffer_get_length(bufferevent_get_output(bev_)) + queued();
}

void StreamConnection::Finish(CloseReason reason) {
  if (state_ == State::kClosed) {
    return;
  }
  SetState(State::kClosed);
  close_reason_ = reason;
  if (bev_ == nullptr) {
    event_del(read_event_.get());
    if (write_event_) {
      event_del(write_event_.get());
    }
    ActivateFinish();
    return;
  }
  bufferevent_disable(bev_, EV_READ | EV_WRITE);
  bufferevent_setcb(bev_, nullptr, nullptr, nullptr, nullptr);
  if (write_event_) {
    event_del(write_event_.get());
  }
  if (tls_ != nullptr && reason == CloseReason::kLocalClose && output_size() == 0) {
    // Best effort close_notify so the peer sees a clean TLS end; the socket
    // is non-blocking, and whatever does not fit is not worth waiting for.
    // A lingering connection has sent it already.
    if (SSL* ssl = bufferevent_openssl_get_ssl(bev_);
        ssl != nullptr && (SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN) == 0) {
      SSL_shutdown(ssl);
      ERR_clear_error();
      if (record_bio_ != nullptr) {
        SendQueuedNow();
      }
    }
  }
  // The close callback runs from its own loop callback so that Close(),
  // Abort() and Write() never call back into the caller.
  ActivateFinish();
}

size_t StreamConnection::Deliver(base::ByteView data) {
  size_t offset = 0;
  delivering_ = true;
  Cork();
  while (state_ == State::kOpen && !reading_paused_ && on_data_ && offset < data.size()) {
    const base::ByteView rest = data.subspan(offset);
    size_t consumed = 0;
    in_data_callback_ = true;
    try {
      consumed = on_data_(*this, rest);
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
    consumed = std::min(consumed, rest.size());
    offset += consumed;
    if (consumed == 0) {
      break;
    }
  }
  Uncork();
  delivering_ = false;
  return offset;
}

void StreamConnection::DeliverBufferedInput() {
  evbuffer* input = bufferevent_get_input(bev_);
  const size_t length = evbuffer_get_length(input);
  if (length > 0) {
    const uint8_t* bytes = evbuffer_pullup(input, -1);
    evbuffer_drain(input, Deliver(base::ByteView(bytes, length)));
  }
  EnforceInputLimit();
}

void StreamConnection::EnforceInputLimit() {
  // Input the handler left beyond the limit: it cannot make progress.
  if (state_ == State::kOpen && input_size() > options_.max_input_bytes) {
    Finish(CloseReason::kReadLimit);
  }
}

}  // namespace turnkey::net
