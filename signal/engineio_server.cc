#include "signal/engineio_server.h"

#include <algorithm>
#include <array>
#include <optional>
#include <utility>
#include <vector>

#include "base/crypto.h"
#include "base/log.h"
#include "net/event_loop.h"
#include "net/forwarded.h"
#include "net/stream_connection.h"
#include "net/websocket_handshake.h"
#include "net/websocket_session.h"

namespace turnkey::signal {

namespace {

bool IsOpenState(EngineIoSocket::State state) {
  return state == EngineIoSocket::State::kPolling || state == EngineIoSocket::State::kUpgrading ||
         state == EngineIoSocket::State::kWebSocket;
}

}  // namespace

base::Result<std::unique_ptr<EngineIoServer>> EngineIoServer::Create(
    net::EventLoop& loop, const EngineIoServerOptions& options, Callbacks callbacks) {
  using std::chrono::milliseconds;
  if (options.ping_interval <= milliseconds::zero() ||
      options.ping_timeout <= milliseconds::zero()) {
    return base::InvalidArgument("engine.io ping_interval and ping_timeout must be > 0");
  }
  if (options.max_payload == 0) {
    return base::InvalidArgument("engine.io max_payload must be > 0");
  }
  if (options.upgrade_timeout <= milliseconds::zero() ||
      options.upgrade_noop_interval <= milliseconds::zero() ||
      options.close_linger <= milliseconds::zero()) {
    return base::InvalidArgument(
        "engine.io upgrade_timeout, upgrade_noop_interval and close_linger must be > 0");
  }
  return std::unique_ptr<EngineIoServer>(new EngineIoServer(loop, options, std::move(callbacks)));
}

EngineIoServer::EngineIoServer(net::EventLoop& loop, const EngineIoServerOptions& options,
                               Callbacks callbacks)
    : loop_(loop),
      options_(options),
      clock_(options.clock != nullptr ? *options.clock : base::SystemClock::Instance()),
      callbacks_(std::move(callbacks)),
      cors_(options.cors),
      heartbeats_(loop, [](EngineIoSocket& socket) { socket.OnHeartbeatTimer(); }) {
  // Shared by every WebSocket, which carries its link as its tag.
  net::WebSocketSession::Callbacks ws;
  ws.on_text = [this](net::WebSocketSession& session, std::string_view text) {
    OnLinkText(session.tag(), text);
  };
  ws.on_binary = [this](net::WebSocketSession& session, base::ByteView data) {
    OnLinkBinary(session.tag(), data);
  };
  ws.on_close = [this](net::WebSocketSession& session, const net::WebSocketCloseInfo& info) {
    OnLinkClosed(session.tag(), info);
  };
  ws_callbacks_ = std::make_shared<const net::WebSocketSession::Callbacks>(std::move(ws));
}

EngineIoServer::~EngineIoServer() {
  // Sessions first: they point at WebSocket sessions owned by links_.
  sockets_.clear();
  links_.clear();
}

net::HttpHandler EngineIoServer::AsHandler() {
  return [this](net::HttpRequest request, net::Responder responder) {
    HandleRequest(std::move(request), std::move(responder));
  };
}

std::shared_ptr<void> EngineIoServer::OnBodyPending(const net::HttpRequest& head) {
  if (head.method != "POST" || head.upgrade || head.QueryParam("transport") != "polling") {
    return nullptr;
  }
  auto sid = head.QueryParam("sid");
  if (!sid) {
    return nullptr;
  }
  auto it = sockets_.find(std::string(*sid));
  if (it == sockets_.end()) {
    return nullptr;
  }
  return it->second->OnPostBodyPending();
}

uint64_t EngineIoServer::BodyLimit(const net::HttpRequest& head) const {
  if (head.method != "POST" || head.QueryParam("transport") != "polling") {
    return UINT64_MAX;
  }
  if (auto sid = head.QueryParam("sid")) {
    if (auto it = sockets_.find(*sid); it != sockets_.end()) {
      return PayloadLimit(*it->second);
    }
  }
  return options_.max_payload;
}

size_t EngineIoServer::PayloadLimit(const EngineIoSocket& socket) const {
  if (socket.pending_ && options_.max_pending_payload > 0) {
    return std::min(options_.max_payload, options_.max_pending_payload);
  }
  return options_.max_payload;
}

void EngineIoServer::SetCorsOptions(const net::CorsOptions& cors) {
  options_.cors = cors;
  cors_ = net::Cors(cors);
}

net::HttpHeaders EngineIoServer::CorsHeaders(const net::HttpRequest& request) const {
  net::HttpResponse scratch;
  cors_.AddHeaders(request, scratch);
  return scratch.headers;
}

net::HttpResponse EngineIoServer::RefusalResponse(const net::HttpRequest& head, int status) const {
  net::HttpResponse response = net::HttpResponse::Error(status);
  for (const auto& [name, value] : CorsHeaders(head)) {
    response.headers.Set(name, value);
  }
  return response;
}

void EngineIoServer::Reject(const net::HttpRequest& request, net::Responder& responder,
                            EngineIoRequestError error) {
  ++stats_.rejected;
  responder.Respond(EngineIoErrorResponse(error, CorsHeaders(request)));
}

void EngineIoServer::HandleRequest(net::HttpRequest request, net::Responder responder) {
  // Section 1.2 step 1: CORS runs first and answers preflights itself. An
  // OPTIONS that is no preflight goes on like any other method (without a
  // sid it is a "Bad handshake method").
  if (net::Cors::IsPreflight(request) && !request.upgrade) {
    responder.Respond(cors_.Preflight(request));
    return;
  }
  // The Origin allow list, on polling and WebSocket alike.
  if (cors_.Check(request) == net::CorsVerdict::kDenied) {
    Reject(request, responder, EngineIoRequestError::kForbidden);
    return;
  }
  auto transport = request.QueryParam("transport");
  if (!transport || (*transport != "polling" && *transport != "websocket")) {
    Reject(request, responder, EngineIoRequestError::kUnknownTransport);
    return;
  }
  if (request.QueryParam("j")) {
    // JSONP polling is not offered (section 1.1).
    Reject(request, responder, EngineIoRequestError::kBadRequest);
    return;
  }
  if (auto sid = request.QueryParam("sid")) {
    auto it = sockets_.find(*sid);
    if (it != sockets_.end() && it->second->ExpireIfOverdue()) {
      // Section 1.5: past its pong deadline the session is gone, even if its
      // timer has yet to run; ending it may have forgotten the sid.
      it = sockets_.find(*sid);
    }
    if (it == sockets_.end() || it->second->state() == EngineIoSocket::State::kClosed) {
      Reject(request, responder, EngineIoRequestError::kUnknownSid);
      return;
    }
    EngineIoSocket& socket = *it->second;
    if (request.upgrade) {
      if (*transport != "websocket") {
        Reject(request, responder, EngineIoRequestError::kBadRequest);
        return;
      }
      Upgrade(request, std::move(responder), socket);
      return;
    }
    // Section 1.2 step 4: polling after the upgrade is a transport mismatch.
    if (*transport != socket.transport_name()) {
      Reject(request, responder, EngineIoRequestError::kBadRequest);
      return;
    }
    if (request.method == "GET") {
      socket.OnPollGet(std::move(responder), CorsHeaders(request));
    } else if (request.method == "POST") {
      socket.OnPollPost(request, std::move(responder), CorsHeaders(request));
    } else {
      Reject(request, responder, EngineIoRequestError::kBadRequest);
    }
    return;
  }
  if (request.method != "GET") {
    Reject(request, responder, EngineIoRequestError::kBadHandshakeMethod);
    return;
  }
  if (*transport == "websocket" && !request.upgrade) {
    Reject(request, responder, EngineIoRequestError::kBadRequest);
    return;
  }
  if (request.QueryParam("EIO") != "4") {
    Reject(request, responder, EngineIoRequestError::kUnsupportedProtocolVersion);
    return;
  }
  Handshake(request, std::move(responder));
}

void EngineIoServer::Handshake(const net::HttpRequest& request, net::Responder responder) {
  EngineIoHandshake handshake;
  handshake.peer = request.peer;
  handshake.local = net::IsLocalClient(request);
  if (CountsPending(handshake)) {
    auto it = pending_.find(handshake.peer.ClientBlock());
    if (it != pending_.end() && it->second >= options_.max_pending_per_address) {
      ++stats_.pending_refused;
      Reject(request, responder, EngineIoRequestError::kForbidden);
      return;
    }
  }
  handshake.tls = request.tls;
  std::string sid = NewSid();

  auto owned = std::make_unique<EngineIoSocket>(*this, sid, std::move(handshake));
  EngineIoSocket& socket = *owned;
  // Uncounted by Forget(), or below if the server never takes the session.
  BeginPending(socket);
  if (request.upgrade) {
    // A WebSocket without sid is a WebSocket-only client. Whatever its
    // transport parameter says: the Dart client on Flutter native opens a
    // WebSocket with transport=polling when the app keeps the default
    // transports (section 2.2), and a refusal would leave it unable to connect.
    uint64_t link = AcceptWebSocket(request, responder, sid);
    if (link == 0) {
      EndPending(socket);
      return;
    }
    sockets_.emplace(sid, std::move(owned));
    socket.AttachWebSocket(link, *links_.at(link).session, request.QueryParam("b64") != "1");
  } else {
    EngineIoOpen open;
    open.sid = sid;
    open.upgrades = {"websocket"};
    open.ping_interval_ms = static_cast<uint64_t>(options_.ping_interval.count());
    open.ping_timeout_ms = static_cast<uint64_t>(options_.ping_timeout.count());
    open.max_payload = options_.max_payload;
    net::HttpResponse response =
        net::HttpResponse::Text(200, EncodeOpenPacket(open), "text/plain; charset=UTF-8");
    response.headers.Set("Cache-Control", "no-store");
    for (const auto& [name, value] : CorsHeaders(request)) {
      response.headers.Set(name, value);
    }
    sockets_.emplace(sid, std::move(owned));
    socket.SetState(EngineIoSocket::State::kPolling);
    responder.Respond(std::move(response));
  }
  ++stats_.handshakes;
  socket.Start();
  if (callbacks_.on_connection) {
    callbacks_.on_connection(socket);
  }
}

void EngineIoServer::Upgrade(const net::HttpRequest& request, net::Responder responder,
                             EngineIoSocket& socket) {
  // Section 1.7: one upgrade per session. A second attempt, or one after the
  // upgrade, gets its 101 and is then closed, as the reference does: the
  // client's probe simply ends, where a refusal before the 101 is an error
  // event that a Node.js client without an error listener throws.
  if (socket.state() == EngineIoSocket::State::kUpgrading ||
      socket.state() == EngineIoSocket::State::kWebSocket) {
    ++stats_.rejected;
    if (uint64_t link = AcceptWebSocket(request, responder, std::string()); link != 0) {
      links_.at(link).session->Close(net::WebSocketCloseCode::kPolicyViolation,
                                     "session already upgraded");
    }
    return;
  }
  if (socket.state() != EngineIoSocket::State::kPolling) {
    Reject(request, responder, EngineIoRequestError::kBadRequest);
    return;
  }
  uint64_t link = AcceptWebSocket(request, responder, socket.id());
  if (link == 0) {
    return;
  }
  socket.AttachProbe(link, *links_.at(link).session, request.QueryParam("b64") != "1");
}

uint64_t EngineIoServer::AcceptWebSocket(const net::HttpRequest& request, net::Responder& responder,
                                         const std::string& sid) {
  auto handshake = net::ParseWebSocketHandshake(request.method, request.headers);
  if (!handshake) {
    if (handshake.error() == net::WebSocketHandshakeError::kBadVersion) {
      // RFC 6455 section 4.4.
      ++stats_.rejected;
      net::HttpResponse response = net::HttpResponse::Error(426);
      response.headers.Set("Sec-WebSocket-Version", "13");
      responder.Respond(std::move(response));
    } else {
      Reject(request, responder, EngineIoRequestError::kBadRequest);
    }
    return 0;
  }
  net::HttpResponse response;
  response.status = 101;
  response.headers.Set("Upgrade", "websocket");
  response.headers.Set("Connection", "Upgrade");
  response.headers.Set("Sec-WebSocket-Accept", net::WebSocketAcceptKey(handshake->key));
  // Engine.IO has no subprotocol of its own; a client that offers some (the
  // `protocols` option) gets the first, as from the reference's ws server.
  if (auto protocol = net::SelectWebSocketSubprotocol(request.headers)) {
    response.headers.Set("Sec-WebSocket-Protocol", std::string(*protocol));
  }
  // The reference adds the CORS headers to the upgrade answer too.
  for (const auto& [name, value] : CorsHeaders(request)) {
    response.headers.Set(name, value);
  }
  net::StreamConnection* connection = responder.TakeOver(response);
  if (connection == nullptr) {
    // The HTTP server is stopping (or the client left): no new sessions.
    responder.Respond(net::HttpResponse::Error(503));
    return 0;
  }
  const uint64_t link = next_link_++;
  net::WebSocketOptions ws_options;
  // Section 1.7: maxPayload bounds a WebSocket message too (1009 beyond it).
  ws_options.max_message_bytes = options_.max_payload;
  ws_options.close_timeout = options_.websocket_close_timeout;
  auto session =
      net::WebSocketSession::Create(loop_, *connection, {}, ws_options, ws_callbacks_, link);
  if (!session) {
    TK_LOG_WARN("engine.io: cannot start a WebSocket: {}", session.error().message);
    connection->Abort();
    return 0;
  }
  links_.emplace(link, Link{std::move(*session), sid});
  return link;
}

EngineIoSocket* EngineIoServer::SocketOfLink(uint64_t link) {
  auto it = links_.find(link);
  if (it == links_.end()) {
    return nullptr;
  }
  auto socket = sockets_.find(it->second.sid);
  return socket == sockets_.end() ? nullptr : socket->second.get();
}

void EngineIoServer::OnLinkText(uint64_t link, std::string_view text) {
  if (EngineIoSocket* socket = SocketOfLink(link); socket && !socket->ExpireIfOverdue()) {
    socket->OnWebSocketText(link, text);
  }
}

void EngineIoServer::OnLinkBinary(uint64_t link, base::ByteView data) {
  if (EngineIoSocket* socket = SocketOfLink(link); socket && !socket->ExpireIfOverdue()) {
    socket->OnWebSocketBinary(link, data);
  }
}

void EngineIoServer::OnLinkClosed(uint64_t link, const net::WebSocketCloseInfo& info) {
  auto it = links_.find(link);
  if (it == links_.end()) {
    return;
  }
  std::unique_ptr<net::WebSocketSession> session = std::move(it->second.session);
  std::string sid = std::move(it->second.sid);
  links_.erase(it);
  if (auto socket = sockets_.find(sid); socket != sockets_.end()) {
    socket->second->OnWebSocketClosed(link, info);
  }
  // We are inside the session's own close callback.
  loop_.DeleteLater(std::move(session));
}

EngineIoSocket* EngineIoServer::Find(std::string_view sid) {
  auto it = sockets_.find(std::string(sid));
  if (it == sockets_.end() || !it->second->is_open()) {
    return nullptr;
  }
  return it->second.get();
}

void EngineIoServer::CloseAll(EngineIoCloseReason reason) {
  std::vector<std::string> sids;
  sids.reserve(sockets_.size());
  for (const auto& [sid, socket] : sockets_) {
    if (socket->is_open()) {
      sids.push_back(sid);
    }
  }
  for (const std::string& sid : sids) {
    if (EngineIoSocket* socket = Find(sid)) {
      socket->CloseWith(reason);
    }
  }
}

size_t EngineIoServer::session_count() const { return polling_count_ + websocket_sessions_; }

size_t EngineIoServer::session_count(EngineIoTransport transport) const {
  return transport == EngineIoTransport::kWebSocket ? websocket_sessions_ : polling_count_;
}

std::string EngineIoServer::NewSid() const {
  std::string sid;
  do {
    sid = NewRandomId();
  } while (sockets_.contains(sid));
  return sid;
}

void EngineIoServer::OnStateChange(EngineIoSocket::State from, EngineIoSocket::State to) {
  auto adjust = [this](EngineIoSocket::State state, int delta) {
    if (!IsOpenState(state)) {
      return;
    }
    size_t& count =
        state == EngineIoSocket::State::kWebSocket ? websocket_sessions_ : polling_count_;
    count = delta > 0 ? count + 1 : count - 1;
  };
  adjust(from, -1);
  adjust(to, +1);
}

bool EngineIoServer::CountsPending(const EngineIoHandshake& handshake) const {
  return options_.max_pending_per_address > 0 &&
         !(options_.pending_exempt_loopback && handshake.local);
}

void EngineIoServer::EndPending(EngineIoSocket& socket) {
  if (!socket.pending_) {
    return;
  }
  socket.pending_ = false;
  socket.ApplyPayloadLimit();
  auto it = pending_.find(socket.handshake().peer.ClientBlock());
  if (it != pending_.end() && --it->second == 0) {
    pending_.erase(it);
  }
}

void EngineIoServer::BeginPending(EngineIoSocket& socket) {
  if (socket.pending_ || !CountsPending(socket.handshake())) {
    return;
  }
  socket.pending_ = true;
  socket.ApplyPayloadLimit();
  ++pending_[socket.handshake().peer.ClientBlock()];
}

void EngineIoServer::Forget(const std::string& sid) {
  auto it = sockets_.find(sid);
  if (it == sockets_.end()) {
    return;
  }
  // The socket may be running one of its own callbacks (a timer, a request).
  std::unique_ptr<EngineIoSocket> socket = std::move(it->second);
  sockets_.erase(it);
  EndPending(*socket);
  loop_.DeleteLater(std::move(socket));
}

}  // namespace turnkey::signal
