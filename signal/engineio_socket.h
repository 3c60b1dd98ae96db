// EngineIoSocket: one Engine.IO v4 session (reference/socketio.md sections
// 1.3-1.8) on the server side, over HTTP long-polling, WebSocket, or polling
// upgraded to WebSocket.
//
// Created and owned by EngineIoServer, which routes the session's HTTP
// requests and WebSocket messages here. The application sees a socket from
// EngineIoServer's on_connection callback until its on_close callback has
// returned; after that the server destroys it (EventLoop::DeleteLater), so
// the application must not keep pointers to it past on_close.
//
// Threads: the server's loop thread only.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/address.h"
#include "base/bytes.h"
#include "base/clock.h"
#include "net/deadline_queue.h"
#include "net/http_headers.h"
#include "net/http_request.h"
#include "net/http_response.h"
#include "net/responder.h"
#include "net/timer.h"
#include "signal/engineio_packet.h"

namespace turnkey::net {
class EventLoop;
class WebSocketSession;
struct WebSocketCloseInfo;
}  // namespace turnkey::net

namespace turnkey::signal {

class EngineIoServer;

// The transport a session currently uses.
enum class EngineIoTransport : uint8_t {
  kPolling,    // HTTP long-polling (also while an upgrade is being probed)
  kWebSocket,  // WebSocket, direct or after the upgrade
};

// "polling" / "websocket": the query parameter value and the metrics label.
const char* EngineIoTransportName(EngineIoTransport transport);

// Why a session ended. The names are the reference's disconnect reasons.
enum class EngineIoCloseReason : uint8_t {
  kForcedClose,     // "forced close": EngineIoSocket::Close() by the application
  kServerShutdown,  // "server shutting down": EngineIoServer::CloseAll()
  kTransportClose,  // "transport close": the client sent "1" or closed its WebSocket
  kTransportError,  // "transport error": duplicate GET or POST, oversized or binary POST,
                    // a WebSocket failed by the server (1002/1007/1009)
  kPingTimeout,     // "ping timeout": no "3" within pingTimeout after a "2"
  kParseError,      // "parse error": an undecodable packet, or "2" from the client
};

const char* EngineIoCloseReasonName(EngineIoCloseReason reason);

// A new random id for an Engine.IO session (sid) or a Socket.IO socket.
// Section 1.3 asks only for an unguessable, URL-safe id: 11 random bytes
// (88 bits) in URL-safe base64, 15 characters, the longest string that
// std::string keeps inline, so the id and every table key copied from it
// cost no allocation on an idle session (the reference's 20 characters cost
// one each). Aborts if the random number generator fails, as
// base::RandomHex does: no session ids without one.
std::string NewRandomId();

// What a session keeps of its handshake request: the client's address (for
// its count of sessions not joined yet, and for the authorizer) and whether
// it came over TLS. Nothing else: every idle session holds this, and the
// headers and the URL (kept once, for a socket.handshake nobody read) cost
// a few hundred bytes per connection with a browser's User-Agent.
struct EngineIoHandshake {
  base::SocketAddress peer;
  bool tls = false;
  // A program on this host (net::IsLocalClient).
  bool local = false;
};

// The JSON error answer of section 1.2 (400, or 403 for kForbidden) with
// `extra` headers (CORS) added.
net::HttpResponse EngineIoErrorResponse(EngineIoRequestError error, const net::HttpHeaders& extra);

class EngineIoSocket {
 public:
  // The most packets one long-polling GET is answered with; what is queued
  // beyond goes out on the next GET. The protocol sets no limit and the
  // reference server sends everything at once, but python-engineio clients
  // (python-socketio, 3.10 and later) end the connection when an answer
  // holds more than 16 (their Payload.max_decode_packets), which a burst of
  // ICE candidates to a polling client reaches. An answer also stops before
  // the packet that would take its body over maxPayload bytes (a first
  // packet goes out whatever its size), the bound engine.io-client puts on
  // its own POSTs: one answer never copies an unbounded queue.
  static constexpr size_t kMaxPacketsPerPoll = 16;
  // Packets waiting for a GET may hold at most this many bytes, or twice
  // maxPayload if that is more (a packet's text plus kQueuedPacketOverhead);
  // beyond it the client is not fetching what it is sent, and the session
  // ends with a transport error, as a WebSocket does at its output limit.
  static constexpr uint64_t kMaxQueuedBytes = 4 * 1024 * 1024;
  static constexpr uint64_t kQueuedPacketOverhead = 64;

  // The session state; every change goes through SetState.
  enum class State {
    kNew,        // created; the handshake is being answered
    kPolling,    // open over long-polling
    kUpgrading,  // open over long-polling, a probe WebSocket attached, awaiting "5"
    kWebSocket,  // open over WebSocket
    kClosing,    // Close()d over polling with no GET held: the next GET gets
                 // "1", or the probe its close after the client's "5"
    kClosed,     // ended; the sid is unknown from now on
  };

  // Created by EngineIoServer only (public for make_unique).
  EngineIoSocket(EngineIoServer& server, std::string id, EngineIoHandshake handshake);
  ~EngineIoSocket();
  EngineIoSocket(const EngineIoSocket&) = delete;
  EngineIoSocket& operator=(const EngineIoSocket&) = delete;

  // The Engine.IO session id (a secret: whoever knows it can poll).
  const std::string& id() const { return id_; }
  const EngineIoHandshake& handshake() const { return handshake_; }
  State state() const { return state_; }
  // True while messages can be sent (polling, upgrading or WebSocket).
  bool is_open() const;
  // The current transport (polling until an upgrade completes).
  EngineIoTransport transport() const;
  const char* transport_name() const { return EngineIoTransportName(transport()); }

  // Sends one message: a text frame / "4<text>", or a binary frame /
  // "b<base64>" (polling, or a WebSocket opened with b64=1). Over polling it
  // is queued until a GET takes it. False once the session is not open.
  bool SendText(std::string_view text);
  bool SendBinary(base::ByteView data);
  // Ends the session from the server side (reason kForcedClose): over
  // WebSocket the socket is closed; over polling a held GET gets "1", or
  // the next GET gets what is queued and then "1" (section 1.6); while the
  // client moves to a probe answered "3probe", the probe takes what is
  // queued after the client's "5", then closes. on_close runs before this
  // returns. No-op unless open.
  void Close();

  // The application took the session on (Socket.IO: it joined a
  // namespace): it no longer counts against the server's
  // max_pending_per_address. Idempotent.
  void MarkAccepted();
  // The application let it go again (Socket.IO: its last namespace left):
  // it counts against max_pending_per_address again (without being refused
  // for it). Idempotent; no-op unless open.
  void MarkPending();

 private:
  friend class EngineIoServer;

  struct HeldPoll {
    net::Responder responder;
    net::HttpHeaders cors;  // the CORS headers for that GET's origin
  };

  void SetState(State next);
  // Starts the heartbeat; the server has just sent the open packet.
  void Start();
  // Ends the session for a ping timeout if its pong deadline has passed,
  // whether or not the heartbeat timer has run yet. True if the session was
  // open and has ended now.
  bool ExpireIfOverdue();
  // A "3" came: the next ping is due pingInterval from now.
  void RestartHeartbeat();
  bool Send(EngineIoPacket packet);
  void CloseWith(EngineIoCloseReason reason);
  // Leaves kClosing: the final GET came, or the linger time passed.
  void Finish();

  // Polling requests (already validated by the server; `cors` holds the
  // CORS headers for the request's origin).
  void OnPollGet(net::Responder responder, net::HttpHeaders cors);
  void OnPollPost(const net::HttpRequest& request, net::Responder responder, net::HttpHeaders cors);
  // A polling POST's head arrived and its body is still coming: returns the
  // token that marks the POST in flight until the HTTP server releases it.
  // With another POST already in flight the session ends instead (section
  // 1.6: one POST at a time) and the result is null.
  std::shared_ptr<void> OnPostBodyPending();
  // A polling request that breaks section 1.6's rules (a second GET or POST,
  // an oversized or binary POST): answered `response`, and the session ends
  // with a transport error. Nothing may use the session after it.
  void RejectAndClose(net::Responder& responder, net::HttpResponse response);
  // The connection of the held GET closed before it was answered.
  void OnPollLost();
  // queue_ with queued_bytes_ kept in step.
  void Enqueue(EngineIoPacket packet);
  void DropQueued(size_t count);
  void ClearQueue();
  // How many packets from the front of queue_ one GET answer takes.
  size_t PollBatchSize() const;
  // Answers the held GET with that many queued packets, if both exist.
  void FlushPoll();
  // Answers the held GET of a closing session with queue_ and "1" if they
  // fit in one answer (true, queue_ emptied), else with a batch of queue_
  // (false; "1" is for a later GET). False, nothing sent, without a GET.
  bool AnswerPollWithClose();
  // Answers the held GET with `packets` if one is held and still pending;
  // false otherwise (the packets are then not sent).
  bool AnswerPoll(std::span<const EngineIoPacket> packets);
  // While upgrading after "3probe": a held GET with nothing queued gets a noop.
  void SendUpgradeNoop();
  // Writes one packet as a WebSocket message.
  static bool WriteWebSocket(net::WebSocketSession& session, bool binary_frames,
                             const EngineIoPacket& packet);

  // WebSockets. `link` names the server's WebSocket entry.
  // Gives the WebSocket (and the probe) the server's PayloadLimit for this
  // session, which changes when it is accepted or pending again.
  void ApplyPayloadLimit();
  void AttachWebSocket(uint64_t link, net::WebSocketSession& session, bool supports_binary);
  void AttachProbe(uint64_t link, net::WebSocketSession& session, bool supports_binary);
  void OnWebSocketText(uint64_t link, std::string_view text);
  void OnWebSocketBinary(uint64_t link, base::ByteView data);
  void OnWebSocketClosed(uint64_t link, const net::WebSocketCloseInfo& info);
  void OnProbeMessage(const EngineIoPacket& packet);
  // Closes the probe WebSocket, if any, and forgets it.
  void DropProbe();
  void AbortUpgrade();
  void CompleteUpgrade();

  void OnPacket(const EngineIoPacket& packet);
  void OnHeartbeatTimer();
  void OnUpgradeTimer();
  void StopUpgradeTimer();

  EngineIoServer& server_;
  std::string id_;
  const EngineIoHandshake handshake_;
  State state_ = State::kNew;
  // Packets waiting for a GET (polling and upgrading only), and their cost
  // against kMaxQueuedBytes.
  std::vector<EngineIoPacket> queue_;
  uint64_t queued_bytes_ = 0;
  std::unique_ptr<HeldPoll> poll_;  // a GET held open (polling only)
  // The token of a POST whose body is still arriving (OnPostBodyPending).
  std::weak_ptr<void> post_in_flight_;
  // The active WebSocket (kWebSocket) and the probe (kUpgrading); the
  // sessions are owned by the server's link table and cleared here from
  // OnWebSocketClosed before the server drops them.
  uint64_t ws_link_ = 0;
  net::WebSocketSession* ws_ = nullptr;
  bool ws_binary_ = true;
  uint64_t probe_link_ = 0;
  net::WebSocketSession* probe_ = nullptr;
  bool probe_binary_ = true;
  // Probe answered "3probe": held GETs get noops until "5".
  bool probed_ = false;
  // The queue went over its bound: nothing more is taken, and the heartbeat
  // timer closes the session from a later loop callback (not from inside
  // the Send that overflowed, whose caller may be iterating sockets).
  bool overflowed_ = false;
  // Counted in the server's pending_ (its block is handshake_.peer's).
  bool pending_ = false;
  std::chrono::steady_clock::time_point upgrade_deadline_;
  // Heartbeat (section 1.5): pingInterval until the next "2", then
  // pingTimeout waiting for "3". In kClosing it bounds the wait for the
  // last GET.
  bool awaiting_pong_ = false;
  // In the server's heartbeat queue: the next ping, the pong deadline, or
  // the end of a closing session's linger.
  net::DeadlineQueue<EngineIoSocket>::Entry heartbeat_{this};
  // When the session ends unless a "3" comes first: pingInterval +
  // pingTimeout after the open or the last pong, by the server's clock.
  // Kept as a time, not only as a timer, so that the session's end does not
  // drift with timer dispatch (libevent's default clock ticks in
  // milliseconds, and the I/O callbacks of a loop iteration run before its
  // timers): a request that arrives after it finds the session gone.
  base::MonoTime pong_deadline_{};
  // Periodic while upgrading: noops to held GETs, upgrade timeout. Made by
  // the first upgrade (a WebSocket-only client never needs it).
  std::unique_ptr<net::Timer> upgrade_timer_;
};

}  // namespace turnkey::signal
