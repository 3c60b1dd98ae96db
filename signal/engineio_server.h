// EngineIoServer: the server side of Engine.IO protocol v4
// (reference/socketio.md sections 1.1-1.8) behind one HTTP path prefix such
// as "/socket.io/" or "/engine.io/".
//
// Mounting: route every method of the prefix here, e.g.
//   router.Add("*", "/socket.io/*", server->AsHandler());
// and the HttpServer's on_body_pending for that prefix to OnBodyPending().
// The server answers the polling GET/POST requests, the handshakes (polling
// GET without sid, or a WebSocket upgrade without sid), the upgrade of a
// polling session to WebSocket, CORS preflights, and the JSON errors of
// section 1.2. Set HttpServerOptions::max_body_bytes above max_payload so
// that an oversized POST reaches this server (413 with CORS headers, and the
// session closed), its body_limit to BodyLimit() so that one whose
// Content-Length says so is refused before its body comes, and its
// error_response to RefusalResponse() for the prefix so that the HTTP
// server's own 413 carries CORS headers too.
//
// Origins: `options.cors.allowed_origins` lists the exact Origin values
// allowed ("*" = any). It is enforced on every polling request and on the
// WebSocket upgrade: a request from any other cross-origin page gets 403
// {"code":4,"message":"Forbidden"} (a refused upgrade never gets its 101).
// Requests without Origin (native apps) and same-origin ones pass.
//
// Lifetime: create and use on the loop thread; the loop must outlive the
// server. Destroy the server before the HttpServer it is mounted on (its
// WebSockets are taken-over connections of that HttpServer). Destroying it
// aborts every WebSocket and drops every session without callbacks; call
// CloseAll() first for a graceful end.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "net/cors.h"
#include "net/http_request.h"
#include "net/http_server.h"
#include "net/responder.h"
#include "net/websocket_session.h"
#include "signal/engineio_packet.h"
#include "signal/engineio_socket.h"

namespace turnkey::net {
class EventLoop;
class StreamConnection;
struct WebSocketCloseInfo;
}  // namespace turnkey::net

namespace turnkey::signal {

struct EngineIoServerOptions {
  // Server ping period, sent as pingInterval. > 0. Default 25 s.
  std::chrono::milliseconds ping_interval{25000};
  // Wait for the pong after each ping, sent as pingTimeout. > 0. Default 20 s.
  std::chrono::milliseconds ping_timeout{20000};
  // Largest message and polling POST body, bytes, sent as maxPayload. A
  // larger POST gets 413; a larger WebSocket message closes with 1009.
  // > 0. Default 1000000.
  uint64_t max_payload = 1000000;
  // Time from the upgrade's 101 until the client's "5"; then the probe is
  // closed and polling goes on. > 0. Default 10 s (the reference's).
  std::chrono::milliseconds upgrade_timeout{10000};
  // While upgrading, a held GET is answered with a noop this often. > 0.
  // Default 100 ms (the reference's).
  std::chrono::milliseconds upgrade_noop_interval{100};
  // After Close() on a polling session with no GET held, how long to keep
  // the sid for the client's last GET ("6\x1e1"). > 0. Default 30 s.
  std::chrono::milliseconds close_linger{30000};
  // After a WebSocket close frame, how long to wait for the client's.
  // Default 5 s.
  std::chrono::milliseconds websocket_close_timeout{5000};
  // Allowed origins and the headers of CORS answers; see the header
  // comment. Default: same-origin only.
  net::CorsOptions cors;
  // Sessions from one client (SocketAddress::ClientBlock: an IPv4 address,
  // an IPv6 /64) that the application has not accepted yet (MarkAccepted;
  // Socket.IO: no namespace joined). A handshake beyond it is answered 403
  // Forbidden, so clients that never CONNECT cannot pile up sessions, each
  // of which lives until the application's own timeout. 0 = no limit.
  // Default 0.
  uint32_t max_pending_per_address = 0;
  // Programs on this host (net::IsLocalClient: loopback, not forwarded by a
  // proxy) are not counted against max_pending_per_address (nor held to
  // max_pending_payload): an operator's own load tests and scripts.
  // Default false.
  bool pending_exempt_loopback = false;
  // With max_pending_per_address: until the application accepts a session,
  // its messages (WebSocket) and polling POST bodies may be at most this
  // many bytes (a Socket.IO CONNECT with its token is a few hundred), so
  // clients that never join cannot have the server hold max_payload for
  // each connection. 0 = max_payload throughout. Default 0.
  size_t max_pending_payload = 0;
  // The clock of the heartbeat deadlines; null = base::SystemClock. Must
  // outlive the server. Timers still run on the loop's own time.
  const base::Clock* clock = nullptr;
};

// Counters since creation, for metrics.
struct EngineIoServerStats {
  uint64_t handshakes = 0;       // sessions opened (both transports)
  uint64_t upgrades = 0;         // polling sessions moved to WebSocket
  uint64_t failed_upgrades = 0;  // probes closed before "5"
  uint64_t rejected = 0;         // requests answered with a section 1.2 error or 413, and
                                 // upgrades of an upgrading or upgraded session (101, closed)
  uint64_t ping_timeouts = 0;    // sessions closed for a missing pong
  uint64_t parse_errors = 0;     // sessions closed for an undecodable packet
  uint64_t pending_refused = 0;  // handshakes refused (403): max_pending_per_address
  uint64_t queue_overflows = 0;  // polling sessions closed: packets not fetched (kMaxQueuedBytes)
  // Sessions ended, by EngineIoCloseReason (its numeric value).
  std::array<uint64_t, 6> closed{};
};

class EngineIoServer {
 public:
  // Callbacks run on the loop thread. Each may Send or Close on the socket
  // it gets (and on others).
  struct Callbacks {
    // A new session; the open packet has been sent.
    std::function<void(EngineIoSocket& socket)> on_connection;
    // One message from the client: text (packet.binary false, packet.data
    // the text after the "4") or binary (packet.binary true, packet.data the
    // raw bytes).
    std::function<void(EngineIoSocket& socket, const EngineIoPacket& message)> on_message;
    // The session ended; runs exactly once per on_connection. The socket is
    // destroyed after this returns.
    std::function<void(EngineIoSocket& socket, EngineIoCloseReason reason)> on_close;
  };

  // Fails on options out of range.
  static base::Result<std::unique_ptr<EngineIoServer>> Create(net::EventLoop& loop,
                                                              const EngineIoServerOptions& options,
                                                              Callbacks callbacks);
  ~EngineIoServer();
  EngineIoServer(const EngineIoServer&) = delete;
  EngineIoServer& operator=(const EngineIoServer&) = delete;

  // Handles one request under the mounted prefix (any method).
  void HandleRequest(net::HttpRequest request, net::Responder responder);
  // A handler calling HandleRequest; the server must outlive the HttpServer's
  // use of it.
  net::HttpHandler AsHandler();
  // For HttpServerOptions::on_body_pending, given the requests under the
  // mounted prefix: tracks the polling POSTs whose bodies are still
  // arriving, so that a second POST of a session is refused (section 1.6)
  // even while the first has not reached HandleRequest. Null for anything
  // else. Safe to keep the token after the server is gone.
  std::shared_ptr<void> OnBodyPending(const net::HttpRequest& head);
  // For HttpServerOptions::body_limit: a polling POST takes its session's
  // PayloadLimit (max_payload; section 1.6: a larger one is answered 413 at
  // once), anything else has no limit of its own (UINT64_MAX).
  uint64_t BodyLimit(const net::HttpRequest& head) const;
  // The largest message or polling POST body `socket` may send now:
  // max_payload, or max_pending_payload while it is pending.
  size_t PayloadLimit(const EngineIoSocket& socket) const;

  // For the HttpServer's error_response, given the requests under the
  // mounted prefix that it refuses itself (413 for a body over its
  // max_body_bytes or a Content-Length over BodyLimit(), 417): the plain status page with the CORS
  // headers of `head`'s origin, so that a page on an allowed origin can read the answer
  // (section 1.11). The session, if any, is left alone: its client reconnects after the failed POST
  // or its pings time out.
  net::HttpResponse RefusalResponse(const net::HttpRequest& head, int status) const;

  // Replaces the allowed origins and CORS answers (config reload); applies
  // to requests from now on, open sessions keep going.
  void SetCorsOptions(const net::CorsOptions& cors);

  // The open session with that sid, or null.
  EngineIoSocket* Find(std::string_view sid);
  // Closes every open session with `reason` (kForcedClose or
  // kServerShutdown). WebSockets finish their closing handshake afterwards.
  void CloseAll(EngineIoCloseReason reason = EngineIoCloseReason::kServerShutdown);

  // Open sessions (polling, upgrading or WebSocket).
  size_t session_count() const;
  // Open sessions on `transport` (an upgrading session counts as polling).
  size_t session_count(EngineIoTransport transport) const;
  // Sessions still known: the open ones and those closed over polling whose
  // client has yet to fetch the last packets (State::kClosing).
  size_t known_session_count() const { return sockets_.size(); }
  // Taken-over connections not yet closed (open or closing WebSockets and probes).
  size_t websocket_count() const { return links_.size(); }
  const EngineIoServerStats& stats() const { return stats_; }
  const EngineIoServerOptions& options() const { return options_; }

 private:
  friend class EngineIoSocket;

  // One taken-over connection speaking WebSocket, and the session it serves
  // (an empty sid for one that serves none: a surplus upgrade being closed).
  struct Link {
    std::unique_ptr<net::WebSocketSession> session;
    std::string sid;
  };

  EngineIoServer(net::EventLoop& loop, const EngineIoServerOptions& options, Callbacks callbacks);
  void Reject(const net::HttpRequest& request, net::Responder& responder,
              EngineIoRequestError error);
  net::HttpHeaders CorsHeaders(const net::HttpRequest& request) const;
  void Handshake(const net::HttpRequest& request, net::Responder responder);
  void Upgrade(const net::HttpRequest& request, net::Responder responder, EngineIoSocket& socket);
  // Answers 101 and wraps the connection in a WebSocket link; 0 on failure
  // (already answered or aborted).
  uint64_t AcceptWebSocket(const net::HttpRequest& request, net::Responder& responder,
                           const std::string& sid);
  void OnLinkText(uint64_t link, std::string_view text);
  void OnLinkBinary(uint64_t link, base::ByteView data);
  void OnLinkClosed(uint64_t link, const net::WebSocketCloseInfo& info);
  EngineIoSocket* SocketOfLink(uint64_t link);
  std::string NewSid() const;
  // Called by EngineIoSocket::SetState to keep the per-transport counts.
  void OnStateChange(EngineIoSocket::State from, EngineIoSocket::State to);
  // Called by EngineIoSocket once closed: forgets the sid, frees it later.
  void Forget(const std::string& sid);
  // Whether a session of `handshake` counts against max_pending_per_address.
  bool CountsPending(const EngineIoHandshake& handshake) const;
  // Stops counting `socket` against max_pending_per_address.
  void EndPending(EngineIoSocket& socket);
  // Counts `socket` against it again (MarkPending).
  void BeginPending(EngineIoSocket& socket);

  net::EventLoop& loop_;
  EngineIoServerOptions options_;
  const base::Clock& clock_;
  Callbacks callbacks_;
  net::Cors cors_;
  std::shared_ptr<const net::WebSocketSession::Callbacks> ws_callbacks_;
  // Every session's heartbeat; declared before sockets_, which it outlives.
  net::DeadlineQueue<EngineIoSocket> heartbeats_;
  std::unordered_map<std::string, std::unique_ptr<EngineIoSocket>> sockets_;
  std::unordered_map<uint64_t, Link> links_;
  uint64_t next_link_ = 1;
  size_t polling_count_ = 0;
  size_t websocket_sessions_ = 0;
  EngineIoServerStats stats_;
  // Sessions not accepted yet, per client block.
  std::map<std::string, uint32_t> pending_;
};

}  // namespace turnkey::signal
