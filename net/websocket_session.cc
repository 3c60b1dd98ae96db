#include "net/websocket_session.h"

#include <wslay/wslay.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cstring>
#include <exception>
#include <optional>
#include <string>

#include "base/log.h"
#include "base/utf8.h"
#include "net/event_loop.h"

namespace turnkey::net {

namespace {

// RFC 6455 s5.5: control frame payloads are at most 125 bytes, so a close
// reason after the 2-byte code is at most 123.
constexpr size_t kMaxControlPayload = 125;
constexpr size_t kMaxCloseReason = 123;
// What a frame of a fragmented message past the first kFreeFragments counts
// toward max_message_bytes on top of its payload: wslay keeps each one in a
// buffer of its own (about 94 bytes of heap for a 1-byte frame, measured),
// so a message of 1-byte fragments within the payload limit would hold ~94x
// its size (s10.4). Clients that fragment at all send a few large pieces.
constexpr uint64_t kFragmentCost = 128;
constexpr uint64_t kFreeFragments = 16;

// Cuts `text` to at most `limit` bytes without splitting a UTF-8 sequence.
std::string_view CutUtf8(std::string_view text, size_t limit) {
  if (text.size() <= limit) {
    return text;
  }
  size_t end = limit;
  while (end > 0 && (static_cast<uint8_t>(text[end]) & 0xC0) == 0x80) {
    --end;
  }
  return text.substr(0, end);
}

// s5.2: the bytes of extended payload length after a 7-bit length: 2 after
// 126, 8 after 127, none otherwise.
size_t ExtendedLengthBytes(uint8_t length7) { return length7 == 126 ? 2 : length7 == 127 ? 8 : 0; }

// s5.2: the payload length from the 7-bit length and, when it has them,
// the ExtendedLengthBytes(length7) bytes at `extended`; nullopt when those
// are not in the shortest form ("the minimal number of bytes MUST be used")
// or the 64-bit form has its most significant bit set.
std::optional<uint64_t> PayloadLength(uint8_t length7, const uint8_t* extended) {
  const size_t bytes = ExtendedLengthBytes(length7);
  if (bytes == 0) {
    return length7;
  }
  uint64_t length = 0;
  for (size_t b = 0; b < bytes; ++b) {
    length = (length << 8) | extended[b];
  }
  if (bytes == 2 ? length < 126 : (length <= 0xFFFF || (length >> 63) != 0)) {
    return std::nullopt;
  }
  return length;
}

}  // namespace

void WebSocketSession::ContextDeleter::operator()(wslay_event_context* context) const {
  wslay_event_context_free(context);
}

size_t WebSocketSession::FrameScanner::Scan(base::ByteView data) {
  if (failure != 0) {
    return 0;
  }
  size_t i = 0;
  size_t frame_start = 0;  // where the header being read began in `data`
  while (i < data.size()) {
    if (payload_left > 0) {
      const uint64_t take = std::min<uint64_t>(payload_left, data.size() - i);
      payload_left -= take;
      i += static_cast<size_t>(take);
      continue;
    }
    if (header_length == 0) {
      frame_start = i;
    }
    header[header_length++] = data[i++];
    if (header_length < 2) {
      continue;
    }
    const bool fin = (header[0] & 0x80) != 0;
    const uint8_t opcode = header[0] & 0x0F;
    const uint8_t length7 = header[1] & 0x7F;
    // s5.2: 7-bit length, or 126 + 16-bit, or 127 + 64-bit; then the mask.
    const size_t length_bytes = ExtendedLengthBytes(length7);
    if (header_length == 2 && (opcode & 0x8) != 0 &&
        (!fin || length7 > kMaxControlPayload ||
         (opcode == WSLAY_CONNECTION_CLOSE && length7 == 1))) {
      // s5.5: control frames are final and carry at most 125 bytes; s5.5.1:
      // a close body starts with a 2-byte code.
      failure = WebSocketCloseCode::kProtocolError;
      return frame_start;
    }
    if (header_length < 2 + length_bytes) {
      continue;
    }
    const std::optional<uint64_t> length = PayloadLength(length7, header + 2);
    if (!length) {
      failure = WebSocketCloseCode::kProtocolError;
      return frame_start;
    }
    const bool masked = (header[1] & 0x80) != 0;
    const size_t needed = 2 + length_bytes + (masked ? 4 : 0);
    if (header_length < needed) {
      continue;
    }
    if (opcode < 0x8) {
      // A data frame that wslay would take as far as its length: masked
      // (s5.1), no RSV bit (s5.2), a text or binary frame outside a message
      // or a continuation inside one (s5.4). Others get wslay's 1002.
      const bool in_sequence =
          opcode == WSLAY_CONTINUATION_FRAME
              ? in_message
              : !in_message && (opcode == WSLAY_TEXT_FRAME || opcode == WSLAY_BINARY_FRAME);
      if (masked && (header[0] & 0x70) == 0 && in_sequence) {
        // s7.4.1: 1009 for a message too big to process, known from this
        // header; waiting for its payload would only let the peer stall.
        // Frames of a fragmented message past kFreeFragments count
        // kFragmentCost more.
        message_frames = opcode == WSLAY_CONTINUATION_FRAME ? message_frames + 1 : 1;
        const uint64_t cost = message_frames > kFreeFragments ? kFragmentCost : 0;
        // A limit lowered while a message was open may be below it already.
        const uint64_t room =
            max_message_bytes > message_bytes ? max_message_bytes - message_bytes : 0;
        if (*length > room || cost > room - *length) {
          failure = WebSocketCloseCode::kMessageTooBig;
          return frame_start;
        }
        message_bytes = fin ? 0 : message_bytes + *length + cost;
      }
      // Data frames and continuations: a message ends with its FIN frame.
      in_message = !fin;
    }
    payload_left = *length;
    header_length = 0;
  }
  return data.size();
}

bool WebSocketSession::EnsureContext() {
  if (context_) {
    return true;
  }
  wslay_event_callbacks wslay_callbacks{};
  wslay_callbacks.recv_callback = &WebSocketSession::RecvCallback;
  wslay_callbacks.send_callback = &WebSocketSession::SendCallback;
  wslay_callbacks.on_msg_recv_callback = &WebSocketSession::MessageCallback;
  wslay_event_context* context = nullptr;
  if (wslay_event_context_server_init(&context, &wslay_callbacks, this) != 0) {
    return false;
  }
  context_.reset(context);
  // Buffered mode (the default) makes wslay check the whole message against
  // the limit as each frame header arrives, before it buffers the payload.
  wslay_event_config_set_max_recv_msg_length(context, options_.max_message_bytes);
  return true;
}

void WebSocketSession::ReleaseContextIfIdle() {
  if (!context_ || state_ != State::kOpen || in_receive_ || !scanner_.at_rest() ||
      pending_offset_ < pending_.size() || wslay_event_want_write(context_.get()) ||
      wslay_event_get_queued_msg_count(context_.get()) != 0) {
    return;
  }
  // In the open state with nothing half done, a fresh context behaves the
  // same as this one.
  context_.reset();
}

WebSocketSession::WebSocketSession(EventLoop& loop, StreamConnection& connection,
                                   const WebSocketOptions& options,
                                   std::shared_ptr<const Callbacks> callbacks, uint64_t tag)
    : loop_(loop),
      connection_(&connection),
      options_(options),
      callbacks_(std::move(callbacks)),
      tag_(tag),
      peer_address_(connection.peer_address()),
      id_(connection.id()) {
  scanner_.max_message_bytes = options.max_message_bytes;
}

base::Result<std::unique_ptr<WebSocketSession>> WebSocketSession::Create(
    EventLoop& loop, StreamConnection& connection, base::ByteView already_read,
    const WebSocketOptions& options, Callbacks callbacks) {
  return Create(loop, connection, already_read, options,
                std::make_shared<const Callbacks>(std::move(callbacks)), 0);
}

base::Result<std::unique_ptr<WebSocketSession>> WebSocketSession::Create(
    EventLoop& loop, StreamConnection& connection, base::ByteView already_read,
    const WebSocketOptions& options, std::shared_ptr<const Callbacks> callbacks, uint64_t tag) {
  if (!connection.is_open()) {
    return base::Unavailable("connection is already closing");
  }
  std::unique_ptr<WebSocketSession> session(
      new WebSocketSession(loop, connection, options, std::move(callbacks), tag));
  // No wslay context yet: a session at rest needs none (see the header), and
  // one made here would live until the client's first frame, so a burst of
  // handshakes would leave the heap full of freed holes.
  if (!already_read.empty()) {
    session->pending_.assign(already_read.begin(), already_read.end());
    session->start_timer_ =
        std::make_unique<Timer>(loop, [self = session.get()] { self->Receive({}); });
    session->start_timer_->Start(std::chrono::milliseconds(0));
  }
  WebSocketSession* self = session.get();
  connection.SetCallbacks(
      [self](StreamConnection&, base::ByteView data) { return self->OnData(data); },
      [self](StreamConnection&, CloseReason reason) { self->OnConnectionClosed(reason); });
  return session;
}

WebSocketSession::~WebSocketSession() {
  if (connection_ != nullptr) {
    connection_->SetCallbacks(nullptr, nullptr);
    connection_->Abort();
  }
}

void WebSocketSession::SetState(State next) {
  // Legal: open -> closing -> closed, open -> closed. Closed is final.
  bool legal = (state_ == State::kOpen && next != State::kOpen) ||
               (state_ == State::kClosing && next == State::kClosed);
  assert(legal);
  if (legal) {
    state_ = next;
  }
}

bool WebSocketSession::SendText(std::string_view text) {
  return SendMessage(WSLAY_TEXT_FRAME, {}, base::AsBytes(text));
}

bool WebSocketSession::SendText(std::string_view head, std::string_view text) {
  return SendMessage(WSLAY_TEXT_FRAME, base::AsBytes(head), base::AsBytes(text));
}

bool WebSocketSession::SendBinary(base::ByteView data) {
  return SendMessage(WSLAY_BINARY_FRAME, {}, data);
}

bool WebSocketSession::Ping(base::ByteView payload) {
  if (payload.size() > kMaxControlPayload) {
    return false;
  }
  return SendMessage(WSLAY_PING, {}, payload);
}

bool WebSocketSession::SendMessage(uint8_t opcode, base::ByteView head, base::ByteView rest) {
  if (state_ != State::kOpen || connection_ == nullptr) {
    return false;
  }
  if (!context_ || (!wslay_event_want_write(context_.get()) &&
                    wslay_event_get_queued_msg_count(context_.get()) == 0)) {
    // Nothing of wslay's waits to go out, so this frame cannot overtake one:
    // write it ourselves and spare an idle session a context.
    return WriteFrame(opcode, head, rest);
  }
  // wslay copies the message, so a joined copy lives only for the call.
  base::Bytes joined;
  base::ByteView payload = rest;
  if (!head.empty()) {
    joined.reserve(head.size() + rest.size());
    joined.insert(joined.end(), head.begin(), head.end());
    joined.insert(joined.end(), rest.begin(), rest.end());
    payload = joined;
  }
  wslay_event_msg message{opcode, payload.data(), payload.size()};
  if (wslay_event_queue_msg(context_.get(), &message) != 0) {
    return false;
  }
  Flush();
  ReleaseContextIfIdle();
  return connection_ != nullptr && connection_->is_open();
}

bool WebSocketSession::WriteFrame(uint8_t opcode, base::ByteView head, base::ByteView rest) {
  // s5.2: one final frame; a server never masks. The payload length takes 7
  // bits, or 126 and 16 bits, or 127 and 64 bits, in network byte order.
  uint8_t header[10];
  size_t length = 0;
  header[length++] = static_cast<uint8_t>(0x80 | opcode);
  const uint64_t size = head.size() + rest.size();
  if (size < 126) {
    header[length++] = static_cast<uint8_t>(size);
  } else if (size <= 0xFFFF) {
    header[length++] = 126;
    header[length++] = static_cast<uint8_t>(size >> 8);
    header[length++] = static_cast<uint8_t>(size);
  } else {
    header[length++] = 127;
    for (int shift = 56; shift >= 0; shift -= 8) {
      header[length++] = static_cast<uint8_t>(size >> shift);
    }
  }
  // Header and payload in one write.
  const std::array<base::ByteView, 3> frame{base::ByteView(header, length), head, rest};
  const bool written = connection_->Write(frame);
  return written && connection_ != nullptr && connection_->is_open();
}

void WebSocketSession::Close(uint16_t code, std::string_view reason) {
  if (state_ != State::kOpen) {
    return;
  }
  if (!EnsureContext()) {
    SetState(State::kClosing);
    CloseTcp();  // out of memory: no close frame, just the TCP close
    return;
  }
  SetState(State::kClosing);
  closed_by_us_ = true;
  // 1005 and 0 mean "no status code": s7.4.1 forbids sending 1005 itself.
  const bool no_status = code == 0 || code == WebSocketCloseCode::kNoStatus;
  local_code_ = no_status ? WebSocketCloseCode::kNoStatus : code;
  close_reason_ = no_status ? std::string() : std::string(CutUtf8(reason, kMaxCloseReason));
  wslay_event_queue_close(context_.get(), no_status ? 0 : code,
                          reinterpret_cast<const uint8_t*>(close_reason_.data()),
                          close_reason_.size());
  if (!in_receive_) {
    Flush();
    AfterIo(0);
  }
}

void WebSocketSession::SetMaxMessageBytes(size_t bytes) {
  options_.max_message_bytes = bytes;
  scanner_.max_message_bytes = bytes;
  if (context_) {
    wslay_event_config_set_max_recv_msg_length(context_.get(), bytes);
  }
}

size_t WebSocketSession::buffered_amount() const {
  if (connection_ == nullptr) {
    return 0;
  }
  return connection_->output_size() +
         (context_ ? wslay_event_get_queued_msg_length(context_.get()) : 0);
}

size_t WebSocketSession::OnData(base::ByteView data) {
  Receive(data);
  // wslay copies everything it reads; whatever it did not read (after a close
  // frame or a failure) is not wanted.
  return data.size();
}

size_t WebSocketSession::ReceiveWholeFrames(base::ByteView data) {
  // Scratch for unmasked payloads; one per loop thread, trimmed after a big
  // one. A session reached from inside another's handler leaves it alone.
  thread_local std::string payload;
  thread_local bool payload_in_use = false;
  if (payload_in_use) {
    return 0;
  }
  payload_in_use = true;
  size_t used = 0;
  in_receive_ = true;
  while (state_ == State::kOpen && connection_ != nullptr && !tcp_closing_ && !context_) {
    const base::ByteView rest = data.subspan(used);
    if (rest.size() < 2) {
      break;
    }
    // s5.2. Only the plain case is ours: one final, masked text or binary
    // frame, no RSV bits, the length in its shortest form, within the
    // message limit, and all of it here. Anything else (control frames,
    // fragments, partial frames, every violation) goes to wslay.
    const uint8_t first = rest[0];
    const uint8_t opcode = first & 0x0F;
    if ((first & 0xF0) != 0x80 || (opcode != WSLAY_TEXT_FRAME && opcode != WSLAY_BINARY_FRAME) ||
        (rest[1] & 0x80) == 0) {
      break;
    }
    const uint8_t length7 = rest[1] & 0x7F;
    const size_t header = 2 + ExtendedLengthBytes(length7);
    if (rest.size() < header) {
      break;
    }
    const std::optional<uint64_t> maybe_length = PayloadLength(length7, rest.data() + 2);
    if (!maybe_length) {
      break;
    }
    const uint64_t length = *maybe_length;
    if (rest.size() < header + 4 || rest.size() - header - 4 < length ||
        length > options_.max_message_bytes) {
      break;
    }
    const uint8_t* mask = rest.data() + header;
    const uint8_t* body = mask + 4;
    payload.resize(static_cast<size_t>(length));
    for (size_t i = 0; i < payload.size(); ++i) {
      payload[i] = static_cast<char>(body[i] ^ mask[i & 3]);
    }
    if (opcode == WSLAY_TEXT_FRAME && !base::IsValidUtf8(payload)) {
      break;  // wslay fails it with 1007
    }
    used += header + 4 + static_cast<size_t>(length);
    wslay_event_on_msg_recv_arg message{};
    message.opcode = opcode;
    message.msg = reinterpret_cast<const uint8_t*>(payload.data());
    message.msg_length = payload.size();
    MessageCallback(nullptr, &message, this);
  }
  in_receive_ = false;
  if (payload.capacity() > 64 * 1024) {
    payload = std::string();
  }
  payload_in_use = false;
  return used;
}

void WebSocketSession::Receive(base::ByteView data) {
  if (!context_ && pending_offset_ >= pending_.size() && scanner_.at_rest()) {
    // Idle: whole plain frames need no wslay context.
    data = data.subspan(ReceiveWholeFrames(data));
    if (context_) {
      // A handler started a close (or failed the connection): send it now,
      // as the end of a wslay receive would.
      Flush();
      AfterIo(0);
      ReleaseContextIfIdle();
    }
    if (data.empty()) {
      return;
    }
  }
  if (connection_ == nullptr || tcp_closing_ || !EnsureContext() ||
      !wslay_event_get_read_enabled(context_.get())) {
    pending_.clear();
    pending_offset_ = 0;
    if (connection_ != nullptr && !context_) {
      connection_->Abort();  // out of memory
    }
    return;
  }
  // wslay reads all it is given (RecvCallback), so the scanner sees what
  // wslay sees; it is given nothing from a bad frame header on.
  if (pending_offset_ < pending_.size()) {
    const base::ByteView rest = base::ByteView(pending_).subspan(pending_offset_);
    const size_t good = scanner_.Scan(rest);
    if (good < rest.size()) {
      pending_.resize(pending_offset_ + good);
      data = {};
    }
  }
  data = data.first(scanner_.Scan(data));
  input_ = data;
  in_receive_ = true;
  int result = wslay_event_recv(context_.get());
  in_receive_ = false;
  input_ = {};
  if (scanner_.failure != 0 && result == 0 && wslay_event_get_read_enabled(context_.get())) {
    // wslay took everything before the bad header without objecting (had it
    // failed the connection or read a close frame, reading would be off).
    FailConnection(scanner_.failure);
  }
  Flush();
  AfterIo(result);
  ReleaseContextIfIdle();
}

void WebSocketSession::Flush() {
  if (in_receive_ || connection_ == nullptr || !context_ ||
      !wslay_event_want_write(context_.get())) {
    return;
  }
  // wslay hands over each frame header and payload apart: one send for all.
  StreamConnection* connection = connection_;
  connection->Cork();
  const int result = wslay_event_send(context_.get());
  connection->Uncork();
  if (result != 0 && connection_ != nullptr) {
    // Only a refused Write() fails a send; the connection is closing already.
    connection_->Abort();
  }
}

void WebSocketSession::AfterIo(int receive_result) {
  if (connection_ == nullptr || tcp_closing_ || !context_) {
    return;
  }
  wslay_event_context* context = context_.get();
  const bool failed_by_wslay = receive_result != 0 || (!wslay_event_get_read_enabled(context) &&
                                                       !wslay_event_get_close_received(context));
  if (failed_by_wslay) {
    // wslay queued a close frame and stopped reading: 1002/1007/1009 from its
    // message layer (the frame-level violations it would close without a
    // code never reach it: see FrameScanner), or a close without a code
    // when a callback failed.
    if (!closed_by_us_) {
      closed_by_us_ = true;
      close_reason_.clear();  // ours, without a reason, is the close reported
      if (receive_result == WSLAY_ERR_NOMEM) {
        local_code_ = WebSocketCloseCode::kInternalError;
      } else if (receive_result != 0) {
        local_code_ = WebSocketCloseCode::kProtocolError;
      } else {
        local_code_ = wslay_event_get_status_code_sent(context);
      }
      TK_LOG_DEBUG("websocket {} from {}: failing the connection with {}", id_,
                   peer_address_.ToString(), local_code_);
    }
    if (state_ == State::kOpen) {
      SetState(State::kClosing);
    }
    CloseTcp(/*peer_may_send=*/true);
    return;
  }
  if (wslay_event_get_close_received(context)) {
    // s7.1.1: once both close frames have passed, the server closes TCP first.
    CloseTcp();
    return;
  }
  if (closed_by_us_ && wslay_event_get_close_sent(context) &&
      !(close_timer_ && close_timer_->IsRunning())) {
    if (!close_timer_) {
      close_timer_ = std::make_unique<Timer>(loop_, [this] { CloseTcp(/*peer_may_send=*/true); });
    }
    close_timer_->Start(options_.close_timeout);
  }
}

void WebSocketSession::FailConnection(uint16_t code) {
  if (!closed_by_us_ && !peer_close_received_) {
    closed_by_us_ = true;
    local_code_ = code;
  }
  if (state_ == State::kOpen) {
    SetState(State::kClosing);
  }
  if (!EnsureContext()) {
    CloseTcp(/*peer_may_send=*/true);
    return;
  }
  wslay_event_queue_close(context_.get(), code, nullptr, 0);
  wslay_event_shutdown_read(context_.get());
  if (!in_receive_) {
    Flush();
    AfterIo(0);
  }
}

void WebSocketSession::CloseTcp(bool peer_may_send) {
  if (connection_ == nullptr || tcp_closing_) {
    return;
  }
  tcp_closing_ = true;
  if (close_timer_) {
    close_timer_->Stop();
  }
  if (!peer_may_send) {
    connection_->Close();
    return;
  }
  // The peer may still be sending (the rest of the frame that failed, or
  // anything after a close it never answered): closing a socket with unread
  // input sends a reset, which can cost the peer our close frame or fail
  // its send before it reads it. The connection lingers on its own instead
  // (half-closed, dropping input, bounded by its linger options), and the
  // session is done with it now: on_close follows from a loop callback.
  StreamConnection* connection = std::exchange(connection_, nullptr);
  connection->SetCallbacks(nullptr, nullptr);
  connection->CloseLingering();
  closed_timer_ =
      std::make_unique<Timer>(loop_, [this] { OnConnectionClosed(CloseReason::kLocalClose); });
  closed_timer_->Start(std::chrono::milliseconds(0));
}

void WebSocketSession::OnConnectionClosed(CloseReason reason) {
  for (Timer* timer : {start_timer_.get(), close_timer_.get(), closed_timer_.get()}) {
    if (timer != nullptr) {
      timer->Stop();
    }
  }
  connection_ = nullptr;
  WebSocketCloseInfo info;
  if (closed_by_us_) {
    info.code = local_code_;
    info.reason = close_reason_;
  } else if (peer_close_received_) {
    info.code = peer_code_;
    info.reason = close_reason_;
    info.by_peer = true;
  } else {
    info.by_peer = reason != CloseReason::kLocalClose;
  }
  info.clean = peer_close_received_ && context_ && wslay_event_get_close_sent(context_.get());
  SetState(State::kClosed);
  if (!callbacks_->on_close) {
    return;
  }
  try {
    callbacks_->on_close(*this, info);
  } catch (const std::exception& e) {
    TK_LOG_ERROR("websocket close handler threw: {}", e.what());
  } catch (...) {
    TK_LOG_ERROR("websocket close handler threw a non-standard exception");
  }
}

void WebSocketSession::OnMessage(const wslay_event_on_msg_recv_arg& message) {
  const base::ByteView payload(message.msg, message.msg_length);
  switch (message.opcode) {
    case WSLAY_TEXT_FRAME:
      // wslay has checked the UTF-8 (1007 otherwise).
      if (state_ == State::kOpen && callbacks_->on_text) {
        callbacks_->on_text(*this, base::AsString(payload));
      }
      break;
    case WSLAY_BINARY_FRAME:
      if (state_ == State::kOpen && callbacks_->on_binary) {
        callbacks_->on_binary(*this, payload);
      }
      break;
    case WSLAY_PONG:
      if (state_ == State::kOpen && callbacks_->on_pong) {
        callbacks_->on_pong(*this, payload);
      }
      break;
    case WSLAY_CONNECTION_CLOSE:
      // wslay has validated the code (1002 otherwise) and queued the echo.
      peer_close_received_ = true;
      peer_code_ = message.status_code == 0 ? WebSocketCloseCode::kNoStatus : message.status_code;
      if (payload.size() > 2 && !closed_by_us_) {
        close_reason_.assign(base::AsString(payload.subspan(2)));
      }
      if (state_ == State::kOpen) {
        SetState(State::kClosing);
      }
      break;
    default:
      break;  // pings: wslay queues the pong itself
  }
}

ssize_t WebSocketSession::RecvCallback(wslay_event_context* context, uint8_t* buffer, size_t length,
                                       int /*flags*/, void* user_data) {
  auto* self = static_cast<WebSocketSession*>(user_data);
  if (self->pending_offset_ < self->pending_.size()) {
    size_t n = std::min(length, self->pending_.size() - self->pending_offset_);
    std::memcpy(buffer, self->pending_.data() + self->pending_offset_, n);
    self->pending_offset_ += n;
    if (self->pending_offset_ == self->pending_.size()) {
      self->pending_.clear();
      self->pending_offset_ = 0;
    }
    return static_cast<ssize_t>(n);
  }
  if (!self->input_.empty()) {
    size_t n = std::min(length, self->input_.size());
    std::memcpy(buffer, self->input_.data(), n);
    self->input_ = self->input_.subspan(n);
    return static_cast<ssize_t>(n);
  }
  wslay_event_set_error(context, WSLAY_ERR_WOULDBLOCK);
  return -1;
}

ssize_t WebSocketSession::SendCallback(wslay_event_context* context, const uint8_t* data,
                                       size_t length, int /*flags*/, void* user_data) {
  auto* self = static_cast<WebSocketSession*>(user_data);
  if (self->connection_ == nullptr || !self->connection_->Write(base::ByteView(data, length))) {
    wslay_event_set_error(context, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  return static_cast<ssize_t>(length);
}

void WebSocketSession::MessageCallback(wslay_event_context* /*context*/,
                                       const wslay_event_on_msg_recv_arg* message,
                                       void* user_data) {
  auto* self = static_cast<WebSocketSession*>(user_data);
  // Nothing may unwind through wslay's C frames.
  try {
    self->OnMessage(*message);
  } catch (const std::exception& e) {
    TK_LOG_ERROR("websocket {} message handler threw: {}", self->id_, e.what());
    self->FailConnection(WebSocketCloseCode::kInternalError);
  } catch (...) {
    TK_LOG_ERROR("websocket {} message handler threw a non-standard exception", self->id_);
    self->FailConnection(WebSocketCloseCode::kInternalError);
  }
}

}  // namespace turnkey::net
