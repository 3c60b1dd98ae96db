#include "signal/protocol_test_app.h"

#include <string_view>
#include <utility>

namespace turnkey::signal {

base::Result<std::unique_ptr<ProtocolTestApp>> ProtocolTestApp::Create(
    net::EventLoop& loop, const ProtocolTestAppOptions& options) {
  EngineIoServerOptions engineio = options.engineio;
  engineio.cors.allowed_origins = {"*"};
  engineio.cors.allow_credentials = false;

  std::unique_ptr<ProtocolTestApp> app(new ProtocolTestApp(loop));
  EngineIoServer::Callbacks echo;
  echo.on_message = [](EngineIoSocket& socket, const EngineIoPacket& message) {
    if (message.binary) {
      socket.SendBinary(base::AsBytes(message.data));
    } else {
      socket.SendText(message.data);
    }
  };
  auto echo_server = EngineIoServer::Create(loop, engineio, std::move(echo));
  if (!echo_server) {
    return std::unexpected(echo_server.error());
  }
  app->echo_ = std::move(*echo_server);

  SocketIoServerOptions socketio;
  socketio.engineio = engineio;
  socketio.connect_timeout = options.connect_timeout;
  socketio.keep_auth = true;  // the "auth" event echoes it
  // Conformance tools send bursts; they test the protocol, not our limits.
  socketio.rate_limit.events_per_second = 0;
  auto socketio_server = SocketIoServer::Create(loop, socketio);
  if (!socketio_server) {
    return std::unexpected(socketio_server.error());
  }
  app->socketio_ = std::move(*socketio_server);
  app->SetUpSocketIo();
  return app;
}

ProtocolTestApp::ProtocolTestApp(net::EventLoop& loop)
    : auth_timer_(loop, [this] { SendDueAuth(); }) {}

void ProtocolTestApp::SetUpSocketIo() {
  for (const char* name : {"/", "/custom"}) {
    SocketIoNamespace& ns = socketio_->Of(name);
    ns.OnConnection([this](SocketIoSocket& socket) { QueueAuth(socket); });
    ns.On("message", [](SocketIoSocket& socket, Json args, const SocketIoAck&) {
      socket.Emit("message-back", std::move(args));
    });
    ns.On("message-with-ack",
          [](SocketIoSocket&, Json args, const SocketIoAck& ack) { ack(std::move(args)); });
  }
}

void ProtocolTestApp::QueueAuth(SocketIoSocket& socket) {
  if (std::string_view(socket.transport_name()) == "polling") {
    // Long-polling has no frame boundaries to lose it to: sent with the
    // CONNECT answer, as the reference does, the next GET carries both.
    socket.Emit("auth", Json::array({socket.auth()}));
    return;
  }
  pending_auth_.push_back({socket.weak_from_this(), std::chrono::steady_clock::now() + kAuthDelay});
  if (!auth_timer_.IsRunning()) {
    auth_timer_.Start(kAuthDelay);
  }
}

void ProtocolTestApp::SendDueAuth() {
  const auto now = std::chrono::steady_clock::now();
  while (!pending_auth_.empty() && pending_auth_.front().due <= now) {
    std::shared_ptr<SocketIoSocket> socket = pending_auth_.front().socket.lock();
    pending_auth_.pop_front();
    if (socket != nullptr && socket->connected()) {
      socket->Emit("auth", Json::array({socket->auth()}));
    }
  }
  if (!pending_auth_.empty()) {
    auth_timer_.Start(pending_auth_.front().due - now);
  }
}

base::Status ProtocolTestApp::Mount(net::Router& router) {
  if (auto status = router.Add("*", "/engine.io/*", echo_->AsHandler()); !status) {
    return status;
  }
  return router.Add("*", "/socket.io/*", socketio_->AsHandler());
}

std::shared_ptr<void> ProtocolTestApp::OnBodyPending(const net::HttpRequest& head) {
  if (head.path.starts_with("/engine.io/")) {
    return echo_->OnBodyPending(head);
  }
  if (head.path.starts_with("/socket.io/")) {
    return socketio_->engine().OnBodyPending(head);
  }
  return nullptr;
}

void ProtocolTestApp::CloseAll(EngineIoCloseReason reason) {
  echo_->CloseAll(reason);
  socketio_->engine().CloseAll(reason);
}

}  // namespace turnkey::signal
