#include "signal/socketio_server.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <utility>

#include "base/crypto.h"
#include "base/log.h"
#include "net/event_loop.h"

namespace turnkey::signal {

namespace {

constexpr std::string_view kRateLimited = "Rate limited";
// CONNECT_ERRORs in a row (none accepted between them) one Engine.IO
// connection gets before it is closed: a client retries a refused CONNECT a
// few times at most (its Manager reconnects with a new connection), and
// each answer costs the loop, whose one POST may carry hundreds of
// thousands of CONNECTs.
constexpr uint32_t kMaxRefusedConnects = 16;
// Events refused by the rate limit (each answered) before the connection is
// closed, refilled at the event rate: a client that keeps sending at more
// than twice the limit is flooding, and one polling POST may carry 100,000
// events.
constexpr double kRefusalBurst = 1000;

// A pid's MAC (PidOf), in bytes before base64url: 128 bits.
constexpr size_t kPidMacBytes = 16;

// The reference's Client.close() reason for an invalid packet sequence.
constexpr std::string_view kForcedServerClose = "forced server close";

// The string `field` of an EVENT packet's first argument (`data` is
// [name, args...]), else null.
Json IdFieldOf(const Json& data, const std::string& field) {
  if (data.size() < 2 || !data[1].is_object()) {
    return nullptr;
  }
  auto it = data[1].find(field);
  if (it == data[1].end() || !it->is_string()) {
    return nullptr;
  }
  return *it;
}

// An empty string with room for a typical event's text, so writing one
// allocates once.
std::string PacketText() {
  std::string text;
  text.reserve(256);
  return text;
}

// An argument list: an array as is, anything else as its single element.
Json AsArgs(Json args) {
  if (args.is_array()) {
    return args;
  }
  Json array = Json::array();
  array.push_back(std::move(args));
  return array;
}

}  // namespace

// Socket.IO's state for one Engine.IO connection (the reference's Client).
// Every idle connection holds one, and nearly all join one namespace: the
// tables are vectors searched in order, not trees.
struct SocketIoServer::Connection : std::enable_shared_from_this<Connection> {
  Connection(EngineIoSocket& socket, const SocketIoDecoderOptions& options)
      : engine(&socket), decoder(options) {}

  // The socket joined to `nsp`, or sockets.end().
  auto Joined(std::string_view nsp) {
    return std::ranges::find_if(sockets,
                                [nsp](const auto& socket) { return socket->nsp() == nsp; });
  }
  bool Authorizing(std::string_view nsp) const {
    return std::ranges::find(authorizing, nsp) != authorizing.end();
  }

  EngineIoSocket* engine;  // null once the Engine.IO session ended
  SocketIoDecoder decoder;
  // One socket per joined namespace.
  std::vector<std::shared_ptr<SocketIoSocket>> sockets;
  // Namespaces whose CONNECT is with the authorizer.
  std::vector<std::string> authorizing;
  // Disconnect reason for the sockets when we close the connection ourselves
  // (a constant); empty otherwise.
  std::string_view close_reason;
  // Until the first namespace is joined.
  std::unique_ptr<net::Timer> connect_timer;
  // CONNECTs answered CONNECT_ERROR on this connection since its last
  // accepted one (kMaxRefusedConnects).
  uint32_t refused_connects = 0;
};

SocketIoAuthResult SocketIoAuthResult::Accept(SocketIoSocketData data) {
  SocketIoAuthResult result;
  result.accepted = true;
  result.data = std::move(data);
  return result;
}

SocketIoAuthResult SocketIoAuthResult::Reject(std::string message, std::optional<Json> error_data) {
  SocketIoAuthResult result;
  result.message = std::move(message);
  result.error_data = std::move(error_data);
  return result;
}

size_t SocketIoNamespace::Emit(std::string_view event, const Json& args) {
  std::vector<std::shared_ptr<SocketIoSocket>> targets;
  targets.reserve(socket_count_);
  for (const auto& [id, socket] : server_.sockets_) {
    if (socket->nsp() == name_) {
      targets.push_back(socket);
    }
  }
  size_t sent = 0;
  for (const auto& socket : targets) {
    sent += socket->Emit(event, args) ? 1 : 0;
  }
  return sent;
}

base::Result<std::unique_ptr<SocketIoServer>> SocketIoServer::Create(
    net::EventLoop& loop, const SocketIoServerOptions& options) {
  if (options.connect_timeout <= std::chrono::milliseconds::zero()) {
    return base::InvalidArgument("socket.io connect_timeout must be > 0");
  }
  if (options.rate_limit.events_per_second < 0 ||
      (options.rate_limit.events_per_second > 0 && options.rate_limit.burst < 1)) {
    return base::InvalidArgument("socket.io rate limit: events_per_second >= 0 and burst >= 1");
  }
  if (options.recovery_window < std::chrono::milliseconds::zero()) {
    return base::InvalidArgument("socket.io recovery_window must be >= 0");
  }
  std::unique_ptr<SocketIoServer> server(new SocketIoServer(loop, options));
  EngineIoServer::Callbacks callbacks;
  SocketIoServer* self = server.get();
  callbacks.on_connection = [self](EngineIoSocket& engine) { self->OnEngineConnection(engine); };
  callbacks.on_message = [self](EngineIoSocket& engine, const EngineIoPacket& message) {
    self->OnEngineMessage(engine, message);
  };
  callbacks.on_close = [self](EngineIoSocket& engine, EngineIoCloseReason reason) {
    self->OnEngineClose(engine, reason);
  };
  auto engine = EngineIoServer::Create(loop, options.engineio, std::move(callbacks));
  if (!engine) {
    return std::unexpected(engine.error());
  }
  server->engine_ = std::move(*engine);
  return server;
}

SocketIoServer::SocketIoServer(net::EventLoop& loop, const SocketIoServerOptions& options)
    : loop_(loop),
      options_(options),
      clock_(options.clock != nullptr ? *options.clock : base::SystemClock::Instance()),
      ack_timer_(loop, [this] { OnAckTimer(); }) {
  if (!base::RandomBytes(pid_key_)) {
    TK_LOG_ERROR("socket.io: the random number generator failed");
    std::abort();
  }
}

SocketIoServer::~SocketIoServer() {
  // No handlers run from here on: sockets someone still holds just become
  // disconnected, and their pending ack callbacks are dropped unrun.
  for (auto& [id, socket] : sockets_) {
    socket->engine_ = nullptr;
    socket->pending_acks_.clear();
  }
  engine_.reset();
  connections_.clear();
  sockets_.clear();
  users_.clear();
  namespaces_.clear();
}

SocketIoNamespace& SocketIoServer::Of(std::string_view name) {
  auto it = namespaces_.find(name);
  if (it == namespaces_.end()) {
    it = namespaces_
             .emplace(std::string(name),
                      std::make_unique<SocketIoNamespace>(*this, std::string(name)))
             .first;
  }
  return *it->second;
}

std::shared_ptr<SocketIoSocket> SocketIoServer::FindSocket(std::string_view socket_id) const {
  auto it = sockets_.find(std::string(socket_id));
  return it == sockets_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<SocketIoSocket>> SocketIoServer::SocketsOfUser(
    std::string_view user_id) const {
  std::vector<std::shared_ptr<SocketIoSocket>> out;
  if (user_id.empty()) {
    return out;
  }
  auto it = users_.find(std::string(user_id));
  if (it == users_.end()) {
    return out;
  }
  out.reserve(it->second.size());
  for (SocketIoSocket* socket : it->second) {
    out.push_back(socket->shared_from_this());
  }
  return out;
}

bool SocketIoServer::IsUserConnected(std::string_view user_id) const {
  return !user_id.empty() && users_.contains(std::string(user_id));
}

bool SocketIoServer::Emit(SocketIoSocket& socket, std::string_view event, Json args) {
  return socket.Emit(event, std::move(args));
}

size_t SocketIoServer::EmitToUser(std::string_view user_id, std::string_view nsp,
                                  std::string_view event, const Json& args) {
  size_t sent = 0;
  for (const auto& socket : SocketsOfUser(user_id)) {
    if (socket->nsp() == nsp && socket->Emit(event, args)) {
      ++sent;
    }
  }
  return sent;
}

size_t SocketIoServer::DisconnectUser(std::string_view user_id, bool close_connection,
                                      uint64_t session) {
  size_t count = 0;
  for (const auto& socket : SocketsOfUser(user_id)) {
    if (socket->connected() && (session == 0 || socket->data().session == session)) {
      socket->Disconnect(close_connection);
      ++count;
    }
  }
  // A lost socket of the same logins must not come back by recovery.
  std::erase_if(lost_, [&](const auto& entry) {
    const SocketIoSocketData& data = entry.second.data;
    return data.user_id == user_id && (session == 0 || data.session == session);
  });
  return count;
}

void SocketIoServer::CloseAll() { engine_->CloseAll(EngineIoCloseReason::kServerShutdown); }

void SocketIoServer::OnEngineConnection(EngineIoSocket& engine) {
  SocketIoDecoderOptions decoder = options_.decoder;
  decoder.allow_reserved_event_names = true;  // dropped in OnEvent
  auto connection = std::make_shared<Connection>(engine, decoder);
  Connection* raw = connection.get();
  connections_.emplace(&engine, std::move(connection));
  AwaitJoin(*raw);
}

void SocketIoServer::OnEngineMessage(EngineIoSocket& engine, const EngineIoPacket& message) {
  auto it = connections_.find(&engine);
  if (it == connections_.end()) {
    return;
  }
  // Handlers may close this connection; keep it alive until we return.
  std::shared_ptr<Connection> connection = it->second;
  auto result = message.binary ? connection->decoder.AddBinary(base::AsBytes(message.data))
                               : connection->decoder.AddText(message.data);
  if (!result) {
    // Section 1.9.2: any decode error closes the whole connection.
    connection->close_reason = "parse error";
    ProtocolError(*connection, SocketIoErrorText(result.error()));
    return;
  }
  if (*result) {
    OnPacket(*connection, std::move(**result));
  }
}

void SocketIoServer::AwaitJoin(Connection& connection) {
  // Section 1.9.3: a client must join a namespace within connectTimeout.
  Connection* raw = &connection;
  connection.connect_timer = std::make_unique<net::Timer>(loop_, [this, raw] {
    if (raw->engine != nullptr && raw->sockets.empty()) {
      ++stats_.connect_timeouts;
      raw->engine->Close();
    }
  });
  connection.connect_timer->Start(options_.connect_timeout);
}

void SocketIoServer::OnEngineClose(EngineIoSocket& engine, EngineIoCloseReason reason) {
  auto it = connections_.find(&engine);
  if (it == connections_.end()) {
    return;
  }
  std::shared_ptr<Connection> connection = it->second;
  std::string_view why = connection->close_reason.empty()
                             ? std::string_view(EngineIoCloseReasonName(reason))
                             : connection->close_reason;
  // First: RemoveSocket must not start waiting for a new join on a
  // connection that is going.
  connection->engine = nullptr;
  std::vector<std::shared_ptr<SocketIoSocket>> sockets = connection->sockets;
  for (const auto& socket : sockets) {
    RemoveSocket(*socket, why, false);
  }
  connections_.erase(&engine);
  connection->sockets.clear();
  connection->authorizing.clear();
  if (connection->connect_timer != nullptr) {
    connection->connect_timer->Stop();
  }
  // We may be inside the connection's own connect timer.
  loop_.DeleteLater(std::make_unique<std::shared_ptr<Connection>>(std::move(connection)));
}

void SocketIoServer::ProtocolError(Connection& connection, std::string_view what) {
  if (connection.engine == nullptr) {
    return;
  }
  TK_LOG_DEBUG("socket.io: closing connection: {}", what);
  ++stats_.protocol_errors;
  if (connection.close_reason.empty()) {
    connection.close_reason = kForcedServerClose;
  }
  connection.engine->Close();
}

void SocketIoServer::CountRefusedConnect(Connection& connection) {
  if (++connection.refused_connects > kMaxRefusedConnects) {
    ProtocolError(connection, "too many refused CONNECTs");
  }
}

void SocketIoServer::OnPacket(Connection& connection, SocketIoPacket packet) {
  if (connection.engine == nullptr) {
    return;
  }
  if (packet.type == SocketIoPacketType::kConnect) {
    OnConnect(connection, std::move(packet));
    return;
  }
  auto it = connection.Joined(packet.nsp);
  if (packet.type == SocketIoPacketType::kConnectError || it == connection.sockets.end()) {
    // Section 1.9.3: "invalid state".
    ProtocolError(connection, "packet for a namespace not joined");
    return;
  }
  std::shared_ptr<SocketIoSocket> socket = *it;
  switch (packet.type) {
    case SocketIoPacketType::kDisconnect:
      RemoveSocket(*socket, "client namespace disconnect", false);
      return;
    case SocketIoPacketType::kEvent:
    case SocketIoPacketType::kBinaryEvent:
      OnEvent(*socket, std::move(packet));
      return;
    case SocketIoPacketType::kAck:
    case SocketIoPacketType::kBinaryAck:
      OnAck(*socket, std::move(packet));
      return;
    case SocketIoPacketType::kConnect:
    case SocketIoPacketType::kConnectError:
      return;
  }
}

void SocketIoServer::OnConnect(Connection& connection, SocketIoPacket packet) {
  const std::string& nsp = packet.nsp;
  if (connection.Joined(nsp) != connection.sockets.end()) {
    ProtocolError(connection, "CONNECT for a namespace already joined");
    return;
  }
  if (connection.Authorizing(nsp)) {
    // socket.io-client sends its CONNECT again when connect() is called
    // before the answer; the reference takes it as another join, and the
    // client needs one answer: the first CONNECT's.
    ++stats_.repeated_connects;
    return;
  }
  auto ns = namespaces_.find(nsp);
  if (ns == namespaces_.end()) {
    // Section 1.9.3: the exact message; the connection stays open.
    ++stats_.connect_errors;
    Send(*connection.engine, SocketIoPacket::ConnectError(nsp, "Invalid namespace"));
    CountRefusedConnect(connection);
    return;
  }
  Json auth = packet.data ? std::move(*packet.data) : Json::object();
  if (!ns->second->authorizer_) {
    FinishConnect(connection, nsp, std::move(auth), SocketIoAuthResult::Accept());
    return;
  }
  connection.authorizing.push_back(nsp);
  std::weak_ptr<Connection> weak = connection.weak_from_this();
  auto done = [this, weak, nsp, auth](SocketIoAuthResult result) mutable {
    std::shared_ptr<Connection> alive = weak.lock();
    // Gone, or answered before: nothing to do.
    if (alive == nullptr || alive->engine == nullptr || std::erase(alive->authorizing, nsp) == 0) {
      return;
    }
    FinishConnect(*alive, nsp, std::move(auth), std::move(result));
  };
  // The authorizer may answer, and the session close, inside this call: the
  // handshake stays valid, as a closed session is freed from a later loop
  // callback (EngineIoServer::Forget).
  ns->second->authorizer_(auth, connection.engine->handshake(), std::move(done));
}

void SocketIoServer::FinishConnect(Connection& connection, const std::string& nsp, Json auth,
                                   SocketIoAuthResult result) {
  EngineIoSocket& engine = *connection.engine;
  if (!result.accepted) {
    ++stats_.connect_errors;
    std::string message = result.message.empty() ? "Not authorized" : std::move(result.message);
    Send(engine, SocketIoPacket::ConnectError(nsp, message, std::move(result.error_data)));
    CountRefusedConnect(connection);
    return;
  }
  SocketIoNamespace& ns = *namespaces_.at(nsp);
  if (!options_.keep_auth) {
    auth = Json();  // SocketIoSocket::auth() then answers {}
  }
  PruneLost(clock_.Now());
  std::string id;
  if (!result.resume_sid.empty()) {
    id = TakeOver(nsp, result.resume_sid, result.data.user_id);
  }
  const bool recovered = !id.empty();
  if (!recovered) {
    id = NewSocketId();
  }
  auto socket = std::make_shared<SocketIoSocket>(*this, engine, std::move(id), nsp, std::move(auth),
                                                 std::move(result.data));
  socket->recovered_ = recovered;
  connection.sockets.push_back(socket);
  connection.refused_connects = 0;
  // Joined: the connect timeout has nothing left to check, and an idle
  // connection need not keep the timer; nor is it pending any more.
  connection.connect_timer.reset();
  engine.MarkAccepted();
  sockets_[socket->id()] = socket;
  ++ns.socket_count_;
  if (!socket->data().user_id.empty()) {
    users_[socket->data().user_id].push_back(socket.get());
  }
  ++stats_.connects;
  Json reply = Json::object({{"sid", socket->id()}});
  if (options_.recovery_window > std::chrono::milliseconds::zero()) {
    reply["pid"] = PidOf(nsp, socket->id());
  }
  Send(engine, SocketIoPacket::Connect(nsp, std::move(reply)));
  if (ns.on_connection_) {
    ns.on_connection_(*socket);
  }
}

void SocketIoServer::OnEvent(SocketIoSocket& socket, SocketIoPacket packet) {
  Json& data = *packet.data;  // the decoder guarantees a non-empty array
  std::string name = data[0].is_string() ? data[0].get<std::string>() : DumpJson(data[0]);
  if (data[0].is_string() && IsReservedEventName(name)) {
    // A client's own event name on the wire (Dart socket_io_client 2.x
    // flushes a buffered "disconnecting" after its next CONNECT): no
    // handler may see it, and closing would cost that client its new
    // connection.
    // No client emits one with an ack (socket.io-client refuses to).
    ++stats_.reserved_dropped;
    return;
  }
  const SocketIoRateLimit& limit = options_.rate_limit;
  if (!socket.TakeEventToken(clock_.Now(), limit.events_per_second, limit.burst)) {
    // Refused, and said so: a client that waits for its ack must not stall.
    ++stats_.rate_limited;
    if (packet.id) {
      SendAck(socket, *packet.id,
              Json::array({Json::object({{"ok", false}, {"error", kRateLimited}})}));
    }
    if (!limit.error_event.empty()) {
      Json told = Json::object({{"error", kRateLimited}});
      if (!limit.error_id_field.empty()) {
        told[limit.error_id_field] = IdFieldOf(data, limit.error_id_field);
      }
      told["event"] = name;
      socket.Emit(limit.error_event, Json::array({std::move(told)}));
    }
    if (!socket.TakeRefusal(clock_.Now(), limit.events_per_second, kRefusalBurst)) {
      if (auto it = connections_.find(socket.engine_); it != connections_.end()) {
        ProtocolError(*it->second, "events go on far over the rate limit");
      }
    }
    return;
  }
  Json args = Json::array();
  args.get_ref<Json::array_t&>().reserve(data.size() - 1);
  for (size_t i = 1; i < data.size(); ++i) {
    args.push_back(std::move(data[i]));
  }
  SocketIoAck ack;
  if (packet.id) {
    auto state = std::make_shared<SocketIoAck::State>();
    state->socket = socket.weak_from_this();
    state->id = *packet.id;
    ack = SocketIoAck(std::move(state));
  }
  ++stats_.events;
  SocketIoNamespace& ns = *namespaces_.at(socket.nsp());
  if (auto handler = ns.handlers_.find(name); handler != ns.handlers_.end()) {
    // Held: the handler may replace itself.
    const std::shared_ptr<const SocketIoEventHandler> call = handler->second;
    (*call)(socket, std::move(args), std::move(ack));
  } else if (ns.on_any_) {
    const std::shared_ptr<const SocketIoAnyHandler> call = ns.on_any_;
    (*call)(socket, name, std::move(args), std::move(ack));
  } else {
    TK_LOG_DEBUG("socket.io: no handler for event '{}' on {}", name, socket.nsp());
  }
}

void SocketIoServer::OnAck(SocketIoSocket& socket, SocketIoPacket packet) {
  // Section 1.9.4: an ACK for an unknown id is ignored.
  if (!packet.id) {
    return;
  }
  if (SocketIoAckCallback callback = socket.TakeAck(*packet.id)) {
    callback(packet.data ? std::move(*packet.data) : Json::array());
  }
}

void SocketIoServer::RemoveSocket(SocketIoSocket& socket, std::string_view reason, bool notify,
                                  bool taken_over) {
  if (!socket.connected()) {
    return;
  }
  std::shared_ptr<SocketIoSocket> keep = socket.shared_from_this();
  EngineIoSocket* engine = socket.engine_;
  if (notify) {
    Send(*engine, SocketIoPacket::Disconnect(socket.nsp()));
  }
  if (auto it = connections_.find(engine); it != connections_.end()) {
    Connection& connection = *it->second;
    if (auto joined = connection.Joined(socket.nsp()); joined != connection.sockets.end()) {
      connection.sockets.erase(joined);
    }
    if (connection.sockets.empty() && connection.engine != nullptr) {
      // The last namespace left (the client's 41, a sign-out): the
      // connection is as one that never joined. The reference keeps it with
      // no limit; a public host gives it connectTimeout to join again and
      // counts it against max_pending_per_address meanwhile.
      connection.engine->MarkPending();
      AwaitJoin(connection);
    }
  }
  sockets_.erase(socket.id());
  SocketIoNamespace& ns = *namespaces_.at(socket.nsp());
  --ns.socket_count_;
  if (const std::string& user = socket.data().user_id; !user.empty()) {
    if (auto it = users_.find(user); it != users_.end()) {
      std::erase(it->second, &socket);
      if (it->second.empty()) {
        users_.erase(it);
      }
    }
  }
  socket.engine_ = nullptr;
  if (!taken_over) {
    KeepLost(socket, reason);
  }
  std::unordered_map<uint64_t, SocketIoAckCallback> acks = std::move(socket.pending_acks_);
  socket.pending_acks_.clear();
  for (auto& [id, callback] : acks) {
    if (callback) {
      callback(std::unexpected(SocketIoAckError::kDisconnected));
    }
  }
  if (ns.on_disconnect_ && !taken_over) {
    auto handler = ns.on_disconnect_;
    handler(socket, reason);
  }
}

void SocketIoServer::DisconnectSocket(SocketIoSocket& socket, bool close_connection) {
  if (!socket.connected()) {
    return;
  }
  EngineIoSocket* engine = socket.engine_;
  if (!close_connection) {
    RemoveSocket(socket, "server namespace disconnect", true);
    return;
  }
  auto it = connections_.find(engine);
  if (it == connections_.end()) {
    RemoveSocket(socket, "server namespace disconnect", true);
    return;
  }
  std::shared_ptr<Connection> connection = it->second;
  std::vector<std::shared_ptr<SocketIoSocket>> sockets = connection->sockets;
  // As the reference's disconnect(true): every namespace gets DISCONNECT
  // (so the client does not reconnect), then the connection closes.
  for (const auto& member : sockets) {
    RemoveSocket(*member, "server namespace disconnect", true);
  }
  if (connection->engine != nullptr) {
    connection->engine->Close();
  }
}

bool SocketIoServer::Send(EngineIoSocket& engine, const SocketIoPacket& packet) {
  EncodedSocketIoPacket encoded = EncodeSocketIoPacket(packet);
  bool sent = engine.SendText(encoded.text);
  for (const base::Bytes& attachment : encoded.attachments) {
    sent = engine.SendBinary(attachment) && sent;
  }
  return sent;
}

bool SocketIoServer::SendEvent(SocketIoSocket& socket, std::string_view event, Json args,
                               std::optional<uint64_t> ack_id) {
  if (!socket.connected()) {
    return false;
  }
  if (std::string text = PacketText();
      AppendSocketIoEventText(text, socket.nsp(), event, args, ack_id)) {
    return socket.engine_->SendText(text);
  }
  Json data = Json::array();
  data.push_back(std::string(event));
  for (Json& arg : AsArgs(std::move(args))) {
    data.push_back(std::move(arg));
  }
  return Send(*socket.engine_, SocketIoPacket::Event(socket.nsp(), std::move(data), ack_id));
}

void SocketIoServer::SendAck(SocketIoSocket& socket, uint64_t id, Json args) {
  if (!socket.connected()) {
    return;
  }
  if (std::string text = PacketText(); AppendSocketIoAckText(text, socket.nsp(), id, args)) {
    socket.engine_->SendText(text);
    return;
  }
  Send(*socket.engine_, SocketIoPacket::Ack(socket.nsp(), id, AsArgs(std::move(args))));
}

void SocketIoServer::ArmAckTimer(std::chrono::steady_clock::time_point deadline,
                                 std::weak_ptr<SocketIoSocket> socket, uint64_t id) {
  auto it = ack_deadlines_.emplace(deadline, std::make_pair(std::move(socket), id));
  if (it == ack_deadlines_.begin()) {
    ack_timer_.Start(deadline - std::chrono::steady_clock::now());
  }
}

void SocketIoServer::OnAckTimer() {
  const auto now = std::chrono::steady_clock::now();
  while (!ack_deadlines_.empty() && ack_deadlines_.begin()->first <= now) {
    auto [socket_weak, id] = std::move(ack_deadlines_.begin()->second);
    ack_deadlines_.erase(ack_deadlines_.begin());
    std::shared_ptr<SocketIoSocket> socket = socket_weak.lock();
    if (socket == nullptr) {
      continue;
    }
    if (SocketIoAckCallback callback = socket->TakeAck(id)) {
      ++stats_.ack_timeouts;
      callback(std::unexpected(SocketIoAckError::kTimeout));
    }
  }
  if (!ack_deadlines_.empty()) {
    ack_timer_.Start(ack_deadlines_.begin()->first - std::chrono::steady_clock::now());
  }
}

std::string SocketIoServer::NewSocketId() const {
  std::string id;
  do {
    id = NewRandomId();
  } while (sockets_.contains(id) || lost_.contains(id));
  return id;
}

// ---- Connection-state recovery ----------------------------------------------------

std::string SocketIoServer::PidOf(std::string_view nsp, std::string_view sid) const {
  std::string signed_text;
  signed_text.reserve(nsp.size() + 1 + sid.size());
  signed_text.append(nsp).push_back('\n');
  signed_text.append(sid);
  const base::Sha256Digest mac = base::HmacSha256(pid_key_, base::AsBytes(signed_text));
  std::string pid(sid);
  pid.push_back('.');
  pid += base::Base64UrlEncode(base::ByteView(mac.data(), kPidMacBytes));
  return pid;
}

std::optional<SocketIoResumable> SocketIoServer::FindResumable(std::string_view nsp,
                                                               std::string_view pid) const {
  if (options_.recovery_window <= std::chrono::milliseconds::zero()) {
    return std::nullopt;
  }
  const size_t dot = pid.rfind('.');
  if (dot == std::string_view::npos || pid.size() > kSocketIoMaxPidBytes) {
    return std::nullopt;
  }
  const std::string_view sid = pid.substr(0, dot);
  const std::string expected = PidOf(nsp, sid);
  if (!base::ConstantTimeEqual(base::AsBytes(expected), base::AsBytes(pid))) {
    return std::nullopt;
  }
  const Resumable found = FindBySid(nsp, std::string(sid));
  if (found.live != nullptr) {
    return SocketIoResumable{.sid = std::string(sid), .live = true, .data = found.live->data()};
  }
  if (found.lost != lost_.end()) {
    return SocketIoResumable{
        .sid = std::string(sid), .live = false, .data = found.lost->second.data};
  }
  return std::nullopt;
}

SocketIoServer::Resumable SocketIoServer::FindBySid(std::string_view nsp,
                                                    const std::string& sid) const {
  if (auto live = sockets_.find(sid); live != sockets_.end()) {
    return {.live = live->second->nsp() == nsp ? live->second : nullptr, .lost = lost_.end()};
  }
  auto lost = lost_.find(sid);
  if (lost != lost_.end() && (lost->second.nsp != nsp || lost->second.expires <= clock_.Now())) {
    lost = lost_.end();
  }
  return {.live = nullptr, .lost = lost};
}

void SocketIoServer::SetRecoveryWindow(std::chrono::milliseconds window) {
  options_.recovery_window = std::max(window, std::chrono::milliseconds::zero());
}

void SocketIoServer::KeepLost(const SocketIoSocket& socket, std::string_view reason) {
  // The reference's recoverable reasons, less the server's own closes: a
  // socket the server ended (sign-out, protocol error, shutdown) stays ended.
  const bool network = reason == EngineIoCloseReasonName(EngineIoCloseReason::kTransportClose) ||
                       reason == EngineIoCloseReasonName(EngineIoCloseReason::kTransportError) ||
                       reason == EngineIoCloseReasonName(EngineIoCloseReason::kPingTimeout);
  // Anonymous sockets are not kept: the CONNECT's user is what proves a
  // resumer is the socket's client.
  if (!network || options_.recovery_window <= std::chrono::milliseconds::zero() ||
      socket.data().user_id.empty()) {
    return;
  }
  const base::MonoTime now = clock_.Now();
  PruneLost(now);
  const base::MonoTime expires = now + options_.recovery_window;
  lost_[socket.id()] = LostSocket{socket.nsp(), socket.data(), expires};
  lost_order_.emplace_back(expires, socket.id());
}

void SocketIoServer::PruneLost(base::MonoTime now) {
  while (!lost_order_.empty() && lost_order_.front().first <= now) {
    auto it = lost_.find(lost_order_.front().second);
    if (it != lost_.end() && it->second.expires <= now) {
      lost_.erase(it);
    }
    lost_order_.pop_front();
  }
}

std::string SocketIoServer::TakeOver(const std::string& nsp, const std::string& sid,
                                     const std::string& user) {
  if (options_.recovery_window <= std::chrono::milliseconds::zero() || user.empty()) {
    return {};
  }
  const Resumable found = FindBySid(nsp, sid);
  if (found.live != nullptr) {
    std::shared_ptr<SocketIoSocket> old = found.live;
    if (old->data().user_id != user) {
      return {};
    }
    EngineIoSocket* engine = old->engine_;
    // DISCONNECT first: a dead link never gets it, but a client that still
    // holds this socket (its state cloned to a second one) does not take it
    // back, as it would after a bare close.
    RemoveSocket(*old, "", true, /*taken_over=*/true);
    // That connection is the client's past one (its Manager has one at a
    // time): its other namespaces reconnect, and resume, on the new one.
    if (auto it = connections_.find(engine); it != connections_.end()) {
      Connection& connection = *it->second;
      if (connection.engine != nullptr) {
        connection.close_reason = EngineIoCloseReasonName(EngineIoCloseReason::kTransportClose);
        connection.engine->Close();
      }
    }
    return sid;
  }
  if (found.lost == lost_.end() || found.lost->second.data.user_id != user) {
    return {};
  }
  lost_.erase(found.lost);
  return sid;
}

}  // namespace turnkey::signal
