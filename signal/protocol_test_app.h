// ProtocolTestApp: what Engine.IO / Socket.IO conformance tools expect
// (signal.protocol_test_mode, issue 5). Never for production: no
// authentication and CORS "*". The caller (app/) refuses to enable it unless
// every signal listener is on loopback.
//
//  - "/engine.io/": a raw Engine.IO echo server; every message goes back
//    unchanged (text as text, binary as binary).
//  - "/socket.io/": a Socket.IO app. On CONNECT to "/" or "/custom" it emits
//    `auth` with the CONNECT payload ({} when none); `message` comes back as
//    `message-back` with the same arguments; `message-with-ack` is acked with
//    its arguments. Any other namespace gets
//    44/<nsp>,{"message":"Invalid namespace"}. No rate limit.
//
// Threads: loop thread only. Lifetime as SocketIoServer / EngineIoServer:
// destroy it before the HttpServer it is mounted on.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include "base/status.h"
#include "net/router.h"
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

 private:
  ProtocolTestApp() = default;
  void SetUpSocketIo();

  std::unique_ptr<EngineIoServer> echo_;
  std::unique_ptr<SocketIoServer> socketio_;
};

}  // namespace turnkey::signal
