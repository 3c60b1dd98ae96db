// SioClient: one Socket.IO v5 client over Engine.IO v4 over a WebSocket
// (RFC 6455), on one non-blocking TCP socket, for the load generator.
//
// It connects straight to the WebSocket transport (`GET
// /socket.io/?EIO=4&transport=websocket`, no polling first, as
// socket.io-client does with `transports: ['websocket']`), waits for the
// Engine.IO open packet, joins the main namespace with CONNECT `40{"token":
// ...}`, answers the server's pings (`2` -> `3`) and hands the handler every
// EVENT and ACK the server sends. Only the main namespace "/" and text
// packets are spoken; binary packets are ignored.
//
// Output is buffered: Emit() appends a masked frame and puts the client on
// the owner's dirty list; the owner calls Flush() on each listed client after
// handling a batch of readiness events, so several frames for one socket go
// out in one write.
//
// Not thread-safe: one worker thread owns a client, its fd (registered in
// that worker's epoll set by the owner) and the handler calls it makes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace turnkey::bench {

class SioClient;

// Callbacks from a SioClient, on its worker thread. A handler may Emit() on
// any client from inside a callback, but must not destroy clients there.
class SioClientHandler {
 public:
  virtual ~SioClientHandler() = default;
  // The CONNECT to "/" was accepted (`40{"sid":...}`).
  virtual void OnReady(SioClient& client) = 0;
  // An EVENT `42["<event>",...]`; `packet` is the whole Socket.IO packet
  // text. Server events carry no ack id here (servers do not ask clients for
  // acks in this contract); one that does is still reported.
  virtual void OnEvent(SioClient& client, std::string_view event, std::string_view packet) = 0;
  // An ACK `43<id>[...]` for an Emit() with that ack id.
  virtual void OnAck(SioClient& client, uint64_t ack_id, std::string_view packet) = 0;
  // The connection ended (TCP error, close frame, CONNECT_ERROR, protocol
  // error). Called once; `why` is only valid during the call.
  virtual void OnClosed(SioClient& client, std::string_view why) = 0;
};

class SioClient {
 public:
  enum class State : uint8_t {
    kConnecting,  // TCP connect in progress
    kUpgrading,   // HTTP upgrade request sent, waiting for 101
    kOpening,     // WebSocket open, waiting for the Engine.IO open packet
    kJoining,     // CONNECT sent, waiting for its answer
    kReady,       // in the namespace: events flow
    kClosed,      // fd closed; nothing more happens
  };

  // `fd` is a non-blocking TCP socket whose connect() is in progress (or
  // done); the client owns it from here on. `host` goes in the Host header,
  // `path` is the Socket.IO path ("/socket.io/"), `auth_json` the CONNECT
  // payload ({"token":"..."}). `dirty` is the owner's list of clients with
  // output to flush; it and `handler` must outlive the client. `tag` is the
  // owner's (e.g. the index of the user this socket belongs to).
  SioClient(int fd, std::string_view host, std::string_view path, std::string auth_json,
            SioClientHandler& handler, std::vector<SioClient*>& dirty, uint64_t tag);
  ~SioClient();
  SioClient(const SioClient&) = delete;
  SioClient& operator=(const SioClient&) = delete;

  // epoll said the fd is readable / writable / hung up.
  void OnReadable();
  void OnWritable();
  void OnHangup();

  // Queues `42<ack_id>["<event>",<json_arg>]` (no ack id when ack_id is 0).
  // `event` must need no JSON escaping; `json_arg` must be valid JSON. Does
  // nothing unless the client is ready.
  void Emit(std::string_view event, std::string_view json_arg, uint64_t ack_id);
  // A fresh ack id for Emit (1, 2, ...).
  uint64_t NextAckId() { return ++last_ack_id_; }

  // Writes as much queued output as the socket takes. Returns true if some
  // output is still pending (the owner should wait for EPOLLOUT).
  bool Flush();
  // Closes the socket now (no close frame): the handler's OnClosed runs.
  void Close(std::string_view why);

  State state() const { return state_; }
  bool ready() const { return state_ == State::kReady; }
  // Whether the client ever became ready (also after it closed).
  bool was_ready() const { return was_ready_; }
  int fd() const { return fd_; }
  uint64_t tag() const { return tag_; }
  // Whether output is queued and the client is on the owner's dirty list
  // (Flush() comes before anything else needs to know wants_write()).
  bool flush_pending() const { return on_dirty_list_; }
  bool wants_write() const { return !out_.empty() || state_ == State::kConnecting; }
  // Whether the owner's epoll set watches this fd for EPOLLOUT (the owner's
  // bookkeeping, kept here to save a lookup).
  bool watching_out() const { return watching_out_; }
  void set_watching_out(bool on) { watching_out_ = on; }

 private:
  void SetState(State next);
  void QueueText(std::string_view text);
  void QueueFrame(uint8_t opcode, std::string_view payload);
  // Consumes what is in in_: the HTTP response, then frames.
  void Process();
  bool ProcessUpgradeResponse();
  void OnMessage(std::string_view text);
  void OnSocketIoPacket(std::string_view packet);

  int fd_;
  std::string host_;
  std::string path_;
  std::string auth_json_;
  std::string ws_key_;
  SioClientHandler& handler_;
  std::vector<SioClient*>& dirty_;
  uint64_t tag_;
  State state_ = State::kConnecting;
  bool on_dirty_list_ = false;
  bool watching_out_ = false;
  bool was_ready_ = false;
  uint64_t last_ack_id_ = 0;
  uint32_t mask_state_;
  std::string in_;
  size_t in_start_ = 0;  // consumed prefix of in_
  std::string out_;
  size_t out_start_ = 0;    // written prefix of out_
  std::string fragmented_;  // a message arriving in several frames
  bool in_fragment_ = false;
  bool fragment_text_ = false;
};

}  // namespace turnkey::bench
