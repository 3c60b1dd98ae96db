// SocketIoServer: Socket.IO protocol v5 (reference/socketio.md section 1.9)
// on top of an EngineIoServer it owns: namespaces, CONNECT with an
// asynchronous authorizer, events and acks both ways, binary attachments,
// DISCONNECT from either side, a per-socket event rate limit, and an index
// of sockets by user for fan-out and "log this user out everywhere".
//
// Usage (loop thread):
//   auto server = SocketIoServer::Create(loop, options);
//   SocketIoNamespace& root = (*server)->Of("/");
//   root.set_authorizer([](const Json& auth, const EngineIoHandshake& hs, auto done) {
//     done(SocketIoAuthResult::Accept({.user_id = "u1"}));   // now or later
//   });
//   root.On("ping", [](SocketIoSocket& s, Json args, SocketIoAck ack) { ack(args); });
//   router.Add("*", "/socket.io/*", (*server)->AsHandler());
//
// Protocol rules enforced here (section 1.9.3): a CONNECT for an unknown
// namespace gets CONNECT_ERROR {"message":"Invalid namespace"} and the
// connection stays; a CONNECT repeated while that namespace is being
// authorized is ignored (the first one's answer serves both); a CONNECT for
// a namespace already joined, any other packet for a namespace not joined, a
// CONNECT_ERROR from the client, or any decode error closes the whole
// Engine.IO connection; a connection that has joined no namespace after
// connect_timeout is closed.
//
// Lifetime: the loop must outlive the server; destroy the server before the
// HttpServer it is mounted on (see EngineIoServer). Destroying it
// disconnects every socket without running handlers; pending ack callbacks
// are dropped unrun. Call CloseAll() first for a graceful end.
// Threads: loop thread only.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "net/http_server.h"
#include "net/timer.h"
#include "signal/engineio_server.h"
#include "signal/socketio_packet.h"
#include "signal/socketio_socket.h"

namespace turnkey::net {
class EventLoop;
}  // namespace turnkey::net

namespace turnkey::signal {

// The per-socket limit on client events (token bucket). An event over the
// limit is not dispatched; the client is told instead: its ack (if it asked
// for one) gets [{"ok":false,"error":"Rate limited"}], and `error_event`
// (unless empty) is emitted with {"error":"Rate limited","event":<name>}
// (plus `error_id_field`, see there).
struct SocketIoRateLimit {
  // Sustained events per second; 0 disables the limit. Default 50.
  double events_per_second = 50;
  // Events allowed in a burst (the bucket size); >= 1. Default 100.
  double burst = 100;
  // Event emitted to the client for each refused event; "" = none.
  // Default "error".
  std::string error_event = "error";
  // When not empty, the error event also has this field, placed before
  // "event": the refused event's first argument's field of that name if it
  // is a string, else null. The call service sets "callId", so its callError
  // keeps the contract's {error, callId} shape. Default "".
  std::string error_id_field;
};

struct SocketIoServerOptions {
  // The Engine.IO transport (timing, maxPayload, CORS and origins).
  EngineIoServerOptions engineio;
  // Time a new connection has to join a namespace (CONNECT accepted).
  // > 0. Default 45 s (the reference's connectTimeout).
  std::chrono::milliseconds connect_timeout{45000};
  // Decoder limits (attachments per packet, JSON depth). The server sets
  // allow_reserved_event_names itself: an EVENT with a reserved name is
  // dropped, not a reason to close the connection.
  SocketIoDecoderOptions decoder;
  SocketIoRateLimit rate_limit;
  // Keep each socket's CONNECT payload for SocketIoSocket::auth(). Off, it is
  // dropped once the authorizer has answered: it usually holds a bearer
  // token nobody needs again, and every idle socket would carry it.
  bool keep_auth = false;
  // The rate limiter's and recovery window's clock; null =
  // base::SystemClock. Must outlive the server. (Ack and connect timeouts run
  // on the loop's real timers.)
  const base::Clock* clock = nullptr;
  // Connection-state recovery (reference/socketio.md section 1.9.3): how long
  // a socket lost to the network ("transport close", "transport error",
  // "ping timeout") may be taken over by its client's next CONNECT. Above 0,
  // every CONNECT reply carries a "pid" besides the "sid"; the JS (4.6+) and
  // Dart (2.0.3+) clients send it back in their next CONNECT's payload, and
  // the namespace's authorizer may then resume that socket (FindResumable,
  // SocketIoAuthResult::resume_sid). No packet offsets are appended to events
  // (the Dart client would hand them to the app's handlers), so no packets
  // are replayed: the application delivers what a resumed socket missed.
  // 0 = off (the default): no "pid", and a CONNECT's "pid" is ignored.
  std::chrono::milliseconds recovery_window{0};
};

// Longer pids are nobody's (a socket id, a dot and a MAC are 38 bytes).
inline constexpr size_t kSocketIoMaxPidBytes = 128;

// A socket that a CONNECT's "pid" names and that may be taken over.
struct SocketIoResumable {
  std::string sid;
  // Still connected: its client has moved to a new connection before this end
  // saw the old one fail (a phone that changed networks).
  bool live = false;
  // As the socket had it (user, device, session, the application's context).
  SocketIoSocketData data;
};

// What an authorizer decides about one CONNECT.
struct SocketIoAuthResult {
  bool accepted = false;
  // Accepted: who the socket belongs to.
  SocketIoSocketData data;
  // Rejected: the CONNECT_ERROR {"message":..., "data":...} (data omitted
  // when nullopt), e.g. "Not authorized", {"code":"E_TOKEN_EXPIRED"}.
  std::string message;
  std::optional<Json> error_data;
  // Accepted: the socket (SocketIoResumable::sid) this one takes over, "" =
  // none. The new socket keeps that socket's id and pid and is recovered();
  // a live one is disconnected first (sent DISCONNECT, without its disconnect
  // handler) and its Engine.IO connection is closed. Ignored (a new id) when that socket can
  // no longer be resumed or belongs to another namespace or user.
  std::string resume_sid;

  static SocketIoAuthResult Accept(SocketIoSocketData data = {});
  static SocketIoAuthResult Reject(std::string message,
                                   std::optional<Json> error_data = std::nullopt);
};

// Decides a CONNECT. `auth` is the CONNECT payload ({} when absent) and
// `handshake` the Engine.IO handshake request; both are valid only during
// the call (copy what is needed). Call `done` exactly once, now or later,
// on the loop thread; calling it after the connection went away is a
// harmless no-op. Must not throw.
using SocketIoAuthorizer = std::function<void(const Json& auth, const EngineIoHandshake& handshake,
                                              std::function<void(SocketIoAuthResult result)> done)>;

// A client event: `args` are the arguments after the event name; `ack`
// answers it (a no-op unless the client asked for an ack).
using SocketIoEventHandler =
    std::function<void(SocketIoSocket& socket, Json args, SocketIoAck ack)>;
// Any event without its own handler; `event` is the name (a numeric name
// written as JSON).
using SocketIoAnyHandler =
    std::function<void(SocketIoSocket& socket, std::string_view event, Json args, SocketIoAck ack)>;

class SocketIoServer;

// One namespace's handlers. Obtained from SocketIoServer::Of; lives as long
// as the server. Set handlers before clients connect.
class SocketIoNamespace {
 public:
  SocketIoNamespace(SocketIoServer& server, std::string name)
      : server_(server), name_(std::move(name)) {}

  const std::string& name() const { return name_; }
  // Null (the default) accepts every CONNECT with empty data.
  void set_authorizer(SocketIoAuthorizer authorizer) { authorizer_ = std::move(authorizer); }
  // After the CONNECT reply went out.
  void OnConnection(std::function<void(SocketIoSocket& socket)> handler) {
    on_connection_ = std::move(handler);
  }
  // Once per socket; the socket is already disconnected. `reason` is the
  // reference's: "client namespace disconnect", "server namespace
  // disconnect", "transport close", "transport error", "ping timeout",
  // "parse error", "forced close", "server shutting down".
  void OnDisconnect(std::function<void(SocketIoSocket& socket, std::string_view reason)> handler) {
    on_disconnect_ = std::move(handler);
  }
  void On(std::string event, SocketIoEventHandler handler) {
    handlers_[std::move(event)] = std::make_shared<const SocketIoEventHandler>(std::move(handler));
  }
  void OnAny(SocketIoAnyHandler handler) {
    on_any_ = std::make_shared<const SocketIoAnyHandler>(std::move(handler));
  }

  // Connected sockets of this namespace.
  size_t socket_count() const { return socket_count_; }
  // Emits to every connected socket of this namespace; returns how many.
  size_t Emit(std::string_view event, const Json& args = Json::array());

 private:
  friend class SocketIoServer;

  SocketIoServer& server_;
  std::string name_;
  SocketIoAuthorizer authorizer_;
  std::function<void(SocketIoSocket&)> on_connection_;
  std::function<void(SocketIoSocket&, std::string_view)> on_disconnect_;
  // Shared, so an event holds on to its handler (which may replace itself)
  // without copying it.
  std::unordered_map<std::string, std::shared_ptr<const SocketIoEventHandler>> handlers_;
  std::shared_ptr<const SocketIoAnyHandler> on_any_;
  // The sockets themselves are in the server's table, which Emit() filters:
  // a second table here would cost every idle socket another entry.
  size_t socket_count_ = 0;
};

// Counters since creation, for metrics.
struct SocketIoServerStats {
  uint64_t connects = 0;           // CONNECTs accepted
  uint64_t connect_errors = 0;     // CONNECT_ERRORs sent (refused, unknown namespace)
  uint64_t repeated_connects = 0;  // CONNECTs for a namespace being joined, ignored
  uint64_t events = 0;             // client events dispatched
  uint64_t rate_limited = 0;       // client events refused by the rate limit
  uint64_t reserved_dropped = 0;   // client EVENTs with a reserved name, dropped
  uint64_t ack_timeouts = 0;       // EmitWithAck callbacks that timed out
  uint64_t protocol_errors = 0;    // connections closed for a bad packet or state
  uint64_t connect_timeouts = 0;   // connections closed for joining no namespace
};

class SocketIoServer {
 public:
  // Fails on options out of range (see EngineIoServer::Create too).
  static base::Result<std::unique_ptr<SocketIoServer>> Create(net::EventLoop& loop,
                                                              const SocketIoServerOptions& options);
  ~SocketIoServer();
  SocketIoServer(const SocketIoServer&) = delete;
  SocketIoServer& operator=(const SocketIoServer&) = delete;

  // The HTTP handler for the mount prefix ("/socket.io/*").
  net::HttpHandler AsHandler() { return engine_->AsHandler(); }
  EngineIoServer& engine() { return *engine_; }

  // The namespace called `name` ("/", "/admin"), created on first use.
  // `name` must start with '/'.
  SocketIoNamespace& Of(std::string_view name);

  // A connected socket by its socket id; null if none.
  std::shared_ptr<SocketIoSocket> FindSocket(std::string_view socket_id) const;
  // The connected sockets of `user_id`, every namespace (empty id: none).
  std::vector<std::shared_ptr<SocketIoSocket>> SocketsOfUser(std::string_view user_id) const;
  // True if the user has at least one connected socket.
  bool IsUserConnected(std::string_view user_id) const;

  // Connection-state recovery: the socket of namespace `nsp` that `pid` (a
  // CONNECT payload's "pid") names, if it can be resumed: still connected,
  // or lost to the network within the recovery window. nullopt when
  // recovery is off, or the pid is malformed, forged, unknown or expired. The
  // authorizer checks that it belongs to the CONNECT's user.
  std::optional<SocketIoResumable> FindResumable(std::string_view nsp, std::string_view pid) const;
  // Changes the recovery window (SocketIoServerOptions::recovery_window);
  // sockets already lost keep theirs.
  void SetRecoveryWindow(std::chrono::milliseconds window);
  // Lost sockets that may still be resumed (some may have expired since the
  // last CONNECT or loss).
  size_t resumable_count() const { return lost_.size(); }

  // socket.Emit(event, args).
  bool Emit(SocketIoSocket& socket, std::string_view event, Json args = Json::array());
  // Emits to every socket of `user_id` in namespace `nsp`; returns how many.
  size_t EmitToUser(std::string_view user_id, std::string_view nsp, std::string_view event,
                    const Json& args = Json::array());
  // Disconnect(close_connection) on every socket of `user_id` (logout,
  // password change), or only on those whose data().session is `session`
  // when that is not 0 (one login ended); returns how many. The same lost
  // sockets are no longer resumable.
  size_t DisconnectUser(std::string_view user_id, bool close_connection = true,
                        uint64_t session = 0);
  // Closes every Engine.IO connection ("server shutting down").
  void CloseAll();

  // Engine.IO connections with Socket.IO state, and connected sockets.
  size_t connection_count() const { return connections_.size(); }
  size_t socket_count() const { return sockets_.size(); }
  const SocketIoServerStats& stats() const { return stats_; }

 private:
  friend class SocketIoNamespace;  // Emit() walks sockets_
  friend class SocketIoSocket;
  friend class SocketIoAck;
  struct Connection;
  // Recovery: a socket lost to the network, until it expires.
  struct LostSocket {
    std::string nsp;
    SocketIoSocketData data;
    base::MonoTime expires;
  };
  using LostSockets = std::unordered_map<std::string, LostSocket>;  // by socket id
  // The socket `sid` of a namespace: connected (`live`), or lost and not yet
  // expired (`lost`, else lost_.end()).
  struct Resumable {
    std::shared_ptr<SocketIoSocket> live;
    LostSockets::const_iterator lost;
  };

  SocketIoServer(net::EventLoop& loop, const SocketIoServerOptions& options);

  // Engine.IO callbacks.
  void OnEngineConnection(EngineIoSocket& engine);
  void OnEngineMessage(EngineIoSocket& engine, const EngineIoPacket& message);
  void OnEngineClose(EngineIoSocket& engine, EngineIoCloseReason reason);

  void OnPacket(Connection& connection, SocketIoPacket packet);
  void OnConnect(Connection& connection, SocketIoPacket packet);
  void FinishConnect(Connection& connection, const std::string& nsp, Json auth,
                     SocketIoAuthResult result);
  void OnEvent(SocketIoSocket& socket, SocketIoPacket packet);
  void OnAck(SocketIoSocket& socket, SocketIoPacket packet);
  // Closes the connection for a protocol violation.
  void ProtocolError(Connection& connection, std::string_view what);
  // After a CONNECT_ERROR: closes a connection that had too many of them.
  void CountRefusedConnect(Connection& connection);

  // Removes a connected socket from every table, fails its pending acks
  // and runs the disconnect handler; sends DISCONNECT first if `notify`. A
  // socket `taken_over` by a resumed one gets no handler and is not kept
  // resumable.
  void RemoveSocket(SocketIoSocket& socket, std::string_view reason, bool notify,
                    bool taken_over = false);
  // Recovery: keeps a socket lost for `reason` resumable if that reason
  // allows it; PruneLost drops the expired ones.
  void KeepLost(const SocketIoSocket& socket, std::string_view reason);
  void PruneLost(base::MonoTime now);
  // The socket id `sid` of namespace `nsp` for a resumed socket of `user`,
  // taken from a live socket (disconnected, its connection closed) or a lost
  // one; "" when neither can be resumed.
  std::string TakeOver(const std::string& nsp, const std::string& sid, const std::string& user);
  // The socket `sid` of namespace `nsp`, if it may be resumed.
  Resumable FindBySid(std::string_view nsp, const std::string& sid) const;
  std::string PidOf(std::string_view nsp, std::string_view sid) const;
  // Starts the timer that closes `connection` unless it joins a namespace
  // within connect_timeout.
  void AwaitJoin(Connection& connection);
  void DisconnectSocket(SocketIoSocket& socket, bool close_connection);
  static bool Send(EngineIoSocket& engine, const SocketIoPacket& packet);
  bool SendEvent(SocketIoSocket& socket, std::string_view event, Json args,
                 std::optional<uint64_t> ack_id);
  void SendAck(SocketIoSocket& socket, uint64_t id, Json args);
  void ArmAckTimer(std::chrono::steady_clock::time_point deadline,
                   std::weak_ptr<SocketIoSocket> socket, uint64_t id);
  void OnAckTimer();
  std::string NewSocketId() const;

  net::EventLoop& loop_;
  SocketIoServerOptions options_;
  const base::Clock& clock_;
  std::unique_ptr<EngineIoServer> engine_;
  std::map<std::string, std::unique_ptr<SocketIoNamespace>, std::less<>> namespaces_;
  std::unordered_map<EngineIoSocket*, std::shared_ptr<Connection>> connections_;
  std::unordered_map<std::string, std::shared_ptr<SocketIoSocket>> sockets_;  // by socket id
  std::unordered_map<std::string, std::vector<SocketIoSocket*>> users_;       // user id -> sockets
  // Deadlines of EmitWithAck calls (stale entries are skipped when due).
  std::multimap<std::chrono::steady_clock::time_point,
                std::pair<std::weak_ptr<SocketIoSocket>, uint64_t>>
      ack_deadlines_;
  net::Timer ack_timer_;
  SocketIoServerStats stats_;
  // Recovery: the lost sockets (expiry order in lost_order_; an entry there
  // whose socket was resumed or re-lost is skipped). A pid is the socket id
  // and a MAC of it under pid_key_, so connected sockets need no table.
  LostSockets lost_;
  std::deque<std::pair<base::MonoTime, std::string>> lost_order_;
  std::array<uint8_t, 32> pid_key_{};
};

}  // namespace turnkey::signal
