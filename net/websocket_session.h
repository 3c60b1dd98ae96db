// WebSocketSession: the server side of one RFC 6455 connection, running on a
// StreamConnection whose upgrade request was already answered with 101 (see
// net/websocket_handshake.h).
//
// Framing is libwslay's event API. A wslay context is about 9 KiB, so the
// session holds one only while something is in progress: it is made when
// bytes arrive (or a close starts) and released again once no frame is half
// received, no fragmented message is open and nothing waits to be sent (a
// frame scanner of our own follows the frame boundaries of the input to
// know). An idle WebSocket costs no wslay memory. A message sent while wslay
// has nothing waiting to go out is framed here and written at once (one
// final unmasked frame, as wslay would), without a context. The session reassembles fragmented
// messages and delivers whole text or binary messages; answers pings with
// pongs; fails the connection (RFC 6455 s7.1.7: close frame, then TCP close
// without waiting for the peer's close; the connection lingers, half-closed
// and dropping what the peer still sends, so the close frame is not lost to
// a reset) on an unmasked client frame or another protocol violation
// (1002), invalid UTF-8 in a text message (1007), or a message larger than
// max_message_bytes (1009, as soon as the header of the frame that takes it
// over the limit is complete); and runs the closing handshake (s7.1.2): when the
// peer closes, the session echoes the close and closes TCP; after Close() it
// waits for the peer's close frame (bounded by close_timeout) and then closes
// TCP. Idle detection and keep-alive pings are the caller's (e.g. Engine.IO
// heartbeats, StreamConnection::SetIdleTimeout).
//
// Ownership and lifetime:
//  - The caller owns the session; the StreamConnection stays owned by its
//    StreamListener. The session replaces the connection's callbacks, so the
//    HTTP handler must not touch the connection after handing it over.
//  - The connection (and so its listener) must outlive the session, or the
//    session's close callback must have run.
//  - on_close runs exactly once, when the TCP connection has ended (or, for
//    a connection the session failed or gave up waiting on, once it is left
//    to linger on its own), from a loop callback (never from inside
//    Send/Ping/Close). After it the session
//    is inert (Send returns false). The owner may destroy the session there
//    only through EventLoop::DeleteLater, never inside any of its callbacks
//    directly.
//  - Destroying a session whose connection is still open aborts the
//    connection without calling on_close.
//  - Callbacks may call SendText/SendBinary/Ping/Close on the session (what
//    they send goes out when the current input has been processed). A
//    message callback that throws fails the connection with 1011.
//
// Threads: loop thread only.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/address.h"
#include "base/bytes.h"
#include "base/status.h"
#include "net/stream_connection.h"
#include "net/timer.h"

struct wslay_event_context;
struct wslay_event_on_msg_recv_arg;

namespace turnkey::net {

class EventLoop;

// Close status codes (RFC 6455 s7.4.1) the session sends or reports.
struct WebSocketCloseCode {
  static constexpr uint16_t kNormal = 1000;
  static constexpr uint16_t kGoingAway = 1001;
  static constexpr uint16_t kProtocolError = 1002;
  static constexpr uint16_t kNoStatus = 1005;  // never sent: the close frame had no code
  static constexpr uint16_t kAbnormal = 1006;  // never sent: TCP ended without close frames
  static constexpr uint16_t kInvalidPayload = 1007;
  static constexpr uint16_t kPolicyViolation = 1008;
  static constexpr uint16_t kMessageTooBig = 1009;
  static constexpr uint16_t kInternalError = 1011;
};

struct WebSocketOptions {
  // Largest message the peer may send, counted over all its fragments (each
  // one past the 16th counts 128 bytes more: what buffering it costs); a
  // larger one fails the connection with 1009. Default 1,000,000
  // bytes (the Engine.IO maxPayload default).
  size_t max_message_bytes = 1000000;
  // After Close(), how long to wait for the peer's close frame before
  // dropping the TCP connection. Default 5 s.
  std::chrono::milliseconds close_timeout{5000};
};

// How the WebSocket ended, reported once by on_close.
struct WebSocketCloseInfo {
  // The code of the close frame that started the closing: the peer's (1005 if
  // its frame had none) when the peer closed first; ours when we did (the
  // code given to Close(), or 1002/1007/1009/1011 when the session failed the
  // connection); 1006 if the TCP connection ended without any close frame.
  uint16_t code = WebSocketCloseCode::kAbnormal;
  // The reason text of that close frame (UTF-8, at most 123 bytes).
  std::string reason;
  // True if the peer started the closing (its close frame came first, or it
  // dropped the TCP connection).
  bool by_peer = false;
  // True if close frames went both ways before TCP closed.
  bool clean = false;
};

class WebSocketSession {
 public:
  struct Callbacks {
    // A complete text message; `text` is valid UTF-8, valid only during the call.
    std::function<void(WebSocketSession& session, std::string_view text)> on_text;
    // A complete binary message; valid only during the call.
    std::function<void(WebSocketSession& session, base::ByteView data)> on_binary;
    // A pong (the answer to Ping() or unsolicited). Optional.
    std::function<void(WebSocketSession& session, base::ByteView payload)> on_pong;
    // The WebSocket and its TCP connection are gone. See the lifetime notes.
    std::function<void(WebSocketSession& session, const WebSocketCloseInfo& info)> on_close;
  };

  // Takes over `connection` (installs its callbacks; may be called from inside
  // the connection's data callback). `already_read` holds bytes that followed
  // the upgrade request and were consumed by the HTTP layer; they are copied
  // and processed first, from a later loop callback. Bytes still buffered in
  // the connection reach the session through its data callback. `loop` must
  // be the connection's loop. Fails if the connection is no longer open or
  // wslay cannot allocate.
  static base::Result<std::unique_ptr<WebSocketSession>> Create(EventLoop& loop,
                                                                StreamConnection& connection,
                                                                base::ByteView already_read,
                                                                const WebSocketOptions& options,
                                                                Callbacks callbacks);
  // The same with callbacks shared by many sessions, which tell them apart by
  // tag(): a server with thousands of idle sessions keeps one set of
  // callbacks, not one each. `callbacks` must not be null.
  static base::Result<std::unique_ptr<WebSocketSession>> Create(
      EventLoop& loop, StreamConnection& connection, base::ByteView already_read,
      const WebSocketOptions& options, std::shared_ptr<const Callbacks> callbacks, uint64_t tag);
  ~WebSocketSession();
  WebSocketSession(const WebSocketSession&) = delete;
  WebSocketSession& operator=(const WebSocketSession&) = delete;

  // Queues one message and starts sending it. `text` must be valid UTF-8 (it
  // is not checked). Returns false once the session is closing or closed, or
  // if the connection refused the bytes (it is then closing).
  bool SendText(std::string_view text);
  // SendText of `head` followed by `text`, without joining them first.
  bool SendText(std::string_view head, std::string_view text);
  bool SendBinary(base::ByteView data);
  // Sends a ping with up to 125 bytes of payload. False if too long or not open.
  bool Ping(base::ByteView payload = {});
  // Starts the closing handshake with `code` (1000, 1001, 1008, 3000-4999 ...;
  // 1005 sends a close frame without a code) and `reason` (cut to 123 bytes at
  // a UTF-8 character boundary). Messages that arrive afterwards are dropped.
  // No-op unless open. on_close follows once TCP has closed.
  void Close(uint16_t code = WebSocketCloseCode::kNormal, std::string_view reason = {});

  // Changes WebSocketOptions::max_message_bytes from the next frame header
  // on (a message already open that is over a lowered limit fails with 1009
  // at its next frame).
  void SetMaxMessageBytes(size_t bytes);
  // True until Close() is called, the peer starts closing, or the connection ends.
  bool is_open() const { return state_ == State::kOpen; }
  // Bytes queued in the connection and not yet sent (0 once closed).
  size_t buffered_amount() const;
  const base::SocketAddress& peer_address() const { return peer_address_; }
  // The connection's listener-unique id.
  uint64_t id() const { return id_; }
  // The tag given to Create() (0 when none was).
  uint64_t tag() const { return tag_; }

 private:
  enum class State {
    kOpen,     // messages flow both ways
    kClosing,  // a close frame was sent or received; waiting for the handshake or TCP
    kClosed,   // the TCP connection ended and on_close ran (or is running)
  };
  struct ContextDeleter {
    void operator()(wslay_event_context* context) const;
  };
  // Follows RFC 6455 frame boundaries (s5.2) over the input given to wslay,
  // and finds the frame headers wslay would refuse with a close frame
  // without a status code: a length not in its shortest form or with the
  // top bit set (s5.2), a control frame that is fragmented or longer than
  // 125 bytes (s5.5), a close frame of 1 byte (s5.5.1). The session fails
  // those with 1002 itself, as s7.4.1 asks. It also finds the header of a
  // data frame that takes its message over max_message_bytes, which wslay
  // notices only once a payload byte follows; the session fails it with
  // 1009 at once.
  struct FrameScanner {
    uint8_t header[14] = {};
    uint8_t header_length = 0;
    uint64_t payload_left = 0;
    uint64_t max_message_bytes = 0;  // WebSocketOptions::max_message_bytes
    uint64_t message_bytes = 0;      // the open message's frames so far (payload and cost)
    uint64_t message_frames = 0;     // data frames of the open (or last) message
    bool in_message = false;         // a data frame without FIN was seen
    // The close code for the bad header found (1002 or 1009); 0 while none
    // was. Once set, Scan takes no more.
    uint16_t failure = 0;
    // Returns how many bytes of `data` come before the first bad frame
    // header (data.size() if none); the bytes of that header before `data`
    // were counted in an earlier call.
    size_t Scan(base::ByteView data);
    // Between frames and outside any fragmented message.
    bool at_rest() const { return header_length == 0 && payload_left == 0 && !in_message; }
  };

  WebSocketSession(EventLoop& loop, StreamConnection& connection, const WebSocketOptions& options,
                   std::shared_ptr<const Callbacks> callbacks, uint64_t tag);
  void SetState(State next);
  // Makes the wslay context if there is none; false when out of memory.
  bool EnsureContext();
  // Frees the context when nothing is in progress (see the header comment).
  void ReleaseContextIfIdle();
  // Sends one unfragmented message or ping (a wslay opcode) whose payload
  // is `head` (often empty) followed by `rest`.
  bool SendMessage(uint8_t opcode, base::ByteView head, base::ByteView rest);
  // Writes one final, unmasked frame straight to the connection.
  bool WriteFrame(uint8_t opcode, base::ByteView head, base::ByteView rest);
  size_t OnData(base::ByteView data);
  void OnConnectionClosed(CloseReason reason);
  void Receive(base::ByteView data);
  // Delivers the whole, final, masked data frames at the start of `data`
  // without a wslay context (the session must have none and be between
  // frames); returns the bytes used. Stops at the first frame it leaves to
  // wslay, or once a handler closed the session or made a context.
  size_t ReceiveWholeFrames(base::ByteView data);
  void OnMessage(const wslay_event_on_msg_recv_arg& message);
  // Sends what wslay has queued (unless a receive is running; it flushes at its end).
  void Flush();
  // Closes TCP once the closing handshake is done or the connection failed;
  // `receive_result` is what wslay_event_recv returned (0 if not called).
  void AfterIo(int receive_result);
  // Fails the connection from our side (close frame with `code`, stop reading).
  void FailConnection(uint16_t code);
  // Closes TCP: at once when the peer has closed (or cannot be reached);
  // lingering when `peer_may_send` (see the header comment).
  void CloseTcp(bool peer_may_send = false);

  static ssize_t RecvCallback(wslay_event_context* context, uint8_t* buffer, size_t length,
                              int flags, void* user_data);
  static ssize_t SendCallback(wslay_event_context* context, const uint8_t* data, size_t length,
                              int flags, void* user_data);
  static void MessageCallback(wslay_event_context* context,
                              const wslay_event_on_msg_recv_arg* message, void* user_data);

  EventLoop& loop_;
  StreamConnection* connection_;  // null once its close callback ran
  WebSocketOptions options_;
  std::shared_ptr<const Callbacks> callbacks_;  // never null
  uint64_t tag_;
  base::SocketAddress peer_address_;
  uint64_t id_;
  std::unique_ptr<wslay_event_context, ContextDeleter> context_;  // see the header comment
  FrameScanner scanner_;
  State state_ = State::kOpen;
  // Input being fed to wslay: `pending_` (bytes handed over at Create), then
  // the connection's current view.
  base::Bytes pending_;
  size_t pending_offset_ = 0;
  base::ByteView input_;
  bool in_receive_ = false;
  // Set when we started the closing (Close() or failing the connection).
  bool closed_by_us_ = false;
  uint16_t local_code_ = WebSocketCloseCode::kAbnormal;
  // The peer's close frame, once received.
  bool peer_close_received_ = false;
  uint16_t peer_code_ = WebSocketCloseCode::kNoStatus;
  // The reason of whichever close came first, ours or the peer's: the one
  // CloseInfo reports (a later one is not kept).
  std::string close_reason_;
  bool tcp_closing_ = false;
  // Made when first needed (most sessions never use them).
  std::unique_ptr<Timer> start_timer_;   // feeds `pending_` from a loop callback after Create
  std::unique_ptr<Timer> close_timer_;   // bounds the wait for the peer's close frame
  std::unique_ptr<Timer> closed_timer_;  // runs on_close once a lingering connection is let go
};

}  // namespace turnkey::net
