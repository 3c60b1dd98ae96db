// ProtocolTestApp: what Engine.IO / Socket.IO conformance tools expect
// (signal.protocol_test_mode, issue 5). Never for production: no
// authentication and CORS "*". The caller (app/) refuses to enable it unless
// every signal listener is on loopback.
//
//  - "/engine.io/": a raw Engine.IO echo server; every message goes back
//    unchanged (text as text, binary as binary).
//  - "/socket.io/": a Socket.IO app. On CONNECT to "/" or "/custom" it emits
//    `auth` with the CONNECT payload ({} when none), kAuthDelay after the
//    CONNECT answer (see there); `message` comes back as
//    `message-back` with the same arguments; `message-with-ack` is acked with
//    its arguments. Any other namespace gets
//    44/<nsp>,{"message":"Invalid namespace"}. No rate limit.
//
// Threads: loop thread only. Lifetime as SocketIoServer / EngineIoServer:
// destroy it before the HttpServer it is mounted on.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>

#include "base/status.h"
#include "net/router.h"
#include "net/timer.h"
#include "signal/engineio_server.h"
#include "signal/socketio_server.h"

namespace turnkey::net {
class EventLoop;
}  // namespace turnkey::net

namespace turnkey::signal {

struct ProtocolTestAppOptions {
  // Timing and limits of both servers (config signal.engineio). The CORS
  // part is ignored: test mode always allows any origin.
  EngineIoServerOptions engineio;
  // Socket.IO connectTimeout. Default 45 s.
  std::chrono::milliseconds connect_timeout{45000};
};

class ProtocolTestApp {
 public:
  static base::Result<std::unique_ptr<ProtocolTestApp>> Create(
      net::EventLoop& loop, const ProtocolTestAppOptions& options);

  // Adds "/engine.io/*" and "/socket.io/*" (every method) to `router`. The
  // app must outlive the router's use of the handlers.
  [[nodiscard]] base::Status Mount(net::Router& router);
  // HttpServerOptions::on_body_pending for a server the app is mounted on:
  // hands requests under either prefix to that server's OnBodyPending.
  std::shared_ptr<void> OnBodyPending(const net::HttpRequest& head);

  // Closes every session of both servers with `reason` (tests use
  // kForcedClose to make clients reconnect).
  void CloseAll(EngineIoCloseReason reason = EngineIoCloseReason::kServerShutdown);

  EngineIoServer& echo() { return *echo_; }
  SocketIoServer& socketio() { return *socketio_; }

  // How long after its CONNECT answer a socket gets `auth`. The official
  // socket.io-protocol test suite reads the CONNECT answer and `auth` with
  // two awaits on ws's "message" event, and ws emits every frame of one TCP
  // read at once, so an `auth` that shares a read with the answer is lost to
  // it (the reference server, which writes them back to back, loses it in
  // about 2 runs of 5). Apart in time, they arrive in two reads. WebSocket
  // only: over long-polling `auth` follows the answer at once (one GET
  // carries both, as from the reference).
  static constexpr std::chrono::milliseconds kAuthDelay{20};

 private:
  explicit ProtocolTestApp(net::EventLoop& loop);
  void SetUpSocketIo();
  void QueueAuth(SocketIoSocket& socket);
  void SendDueAuth();

  struct PendingAuth {
    std::weak_ptr<SocketIoSocket> socket;
    std::chrono::steady_clock::time_point due;
  };

  std::unique_ptr<EngineIoServer> echo_;
  std::unique_ptr<SocketIoServer> socketio_;
  std::deque<PendingAuth> pending_auth_;  // in order of `due`
  net::Timer auth_timer_;
};

}  // namespace turnkey::signal
