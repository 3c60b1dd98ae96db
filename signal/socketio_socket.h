// SocketIoSocket: one client's membership of one Socket.IO namespace
// (reference/socketio.md section 1.9), and SocketIoAck, the handle that
// answers one client event's ack.
//
// Created by SocketIoServer when it accepts a CONNECT; disconnected when
// either side sends DISCONNECT or the Engine.IO connection ends. Owned by a
// shared_ptr (the server's tables, and any SocketIoAck or caller that keeps
// one): work that finishes later (a database call) can hold the socket and
// find it disconnected, instead of a dangling pointer. After the disconnect
// every send is a no-op returning false.
//
// Threads: the server's loop thread only, including the destructor of the
// last shared_ptr and every SocketIoAck call.
#pragma once

#include <any>
#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/clock.h"
#include "signal/engineio_socket.h"
#include "signal/socketio_packet.h"
#include "signal/token_bucket.h"

namespace turnkey::signal {

class SocketIoServer;
class SocketIoSocket;

// Who the socket belongs to, set from the authorizer's result at CONNECT and
// fixed afterwards (the server indexes sockets by user_id).
struct SocketIoSocketData {
  // The account; "" = anonymous (not indexed). Sockets of one user across
  // devices and namespaces are found with SocketIoServer::SocketsOfUser.
  std::string user_id;
  // The device or session the client says it is; free-form.
  std::string device_id;
  // The login the socket authenticated with, as a digest the application
  // makes of it (CallService: of the access token's "sid"), so a login that
  // ends closes its own sockets only; 0 = none. Eight bytes rather than the
  // id itself: every idle connection carries it.
  uint64_t session = 0;
  // Anything the application wants to keep with the socket.
  std::any context;
};

// Why an EmitWithAck callback got no answer.
enum class SocketIoAckError : uint8_t {
  kTimeout,       // the client did not ack within the timeout
  kDisconnected,  // the socket disconnected first
};

// The answer to an EmitWithAck: the ACK's argument array, or why there is none.
using SocketIoAckResult = std::expected<Json, SocketIoAckError>;
using SocketIoAckCallback = std::function<void(SocketIoAckResult result)>;

// Answers the ack of one client event. Copyable; all copies share one
// "sent" flag, so the ACK goes out at most once (section 1.9.4). A default
// constructed SocketIoAck (the event asked for no ack) ignores calls.
class SocketIoAck {
 public:
  SocketIoAck() = default;

  // True if the client asked for an ack and none has been sent yet.
  bool requested() const;
  // Sends ACK with `args`: a JSON array holds the arguments; any other value
  // is sent as the single argument. Binary values become attachments. A
  // no-op after the first call, or when the socket has disconnected.
  void operator()(Json args = Json::array()) const;

 private:
  friend class SocketIoServer;
  struct State {
    std::weak_ptr<SocketIoSocket> socket;
    uint64_t id = 0;
    bool sent = false;
  };
  explicit SocketIoAck(std::shared_ptr<State> state) : state_(std::move(state)) {}

  std::shared_ptr<State> state_;
};

class SocketIoSocket : public std::enable_shared_from_this<SocketIoSocket> {
 public:
  // Created by SocketIoServer only (public for make_shared).
  SocketIoSocket(SocketIoServer& server, EngineIoSocket& engine, std::string id, std::string nsp,
                 Json auth, SocketIoSocketData data);
  ~SocketIoSocket();
  SocketIoSocket(const SocketIoSocket&) = delete;
  SocketIoSocket& operator=(const SocketIoSocket&) = delete;

  // The socket id sent in the CONNECT reply (new per namespace and
  // connection; never the Engine.IO sid).
  const std::string& id() const { return id_; }
  const std::string& nsp() const { return nsp_; }
  // The CONNECT payload ({} when the client sent none, or when the server
  // does not keep it: SocketIoServerOptions::keep_auth).
  const Json& auth() const;
  const SocketIoSocketData& data() const { return data_; }
  // The application's context (SocketIoSocketData::context), mutable.
  std::any& context() { return data_.context; }
  // True from the CONNECT reply until the disconnect.
  bool connected() const { return engine_ != nullptr; }
  // True if this socket resumed a lost or replaced one (connection-state
  // recovery), whose id it keeps.
  bool recovered() const { return recovered_; }
  // "polling" or "websocket"; "" once disconnected.
  const char* transport_name() const;

  // Sends EVENT [event, ...args]; `args` is an array of arguments (any other
  // value is sent as the single argument). Binary values become attachments.
  // False when disconnected.
  bool Emit(std::string_view event, Json args = Json::array());
  // Emit with an ack id. `callback` runs once on the loop thread: with the
  // client's ACK arguments, with kTimeout after `timeout` (0 = no timeout),
  // or with kDisconnected. Returns false, never calling `callback`, when
  // disconnected.
  bool EmitWithAck(std::string_view event, Json args, std::chrono::milliseconds timeout,
                   SocketIoAckCallback callback);
  // Leaves the namespace from the server side: sends DISCONNECT (the client
  // will not reconnect on its own, "io server disconnect") and runs the
  // namespace's disconnect handler with "server namespace disconnect". With
  // `close_connection`, every namespace of the connection is disconnected
  // that way and the Engine.IO connection is closed too.
  void Disconnect(bool close_connection = false);

 private:
  friend class SocketIoServer;
  friend class SocketIoAck;

  // Takes the pending ack `id`; null if unknown (answered, timed out).
  SocketIoAckCallback TakeAck(uint64_t id);
  // Token bucket (SocketIoRateLimit); false when the event is over the limit.
  bool TakeEventToken(base::MonoTime now, double rate, double burst);
  // After a refusal: false once `burst` refusals have come faster than
  // `rate` (the event rate) refills them, i.e. the client sends at more
  // than twice the limit for long.
  bool TakeRefusal(base::MonoTime now, double rate, double burst);

  SocketIoServer* server_;
  EngineIoSocket* engine_;  // null once disconnected
  std::string id_;
  std::string nsp_;
  Json auth_;
  SocketIoSocketData data_;
  bool recovered_ = false;
  uint64_t next_ack_id_ = 0;
  std::unordered_map<uint64_t, SocketIoAckCallback> pending_acks_;
  std::optional<TokenBucket> events_;  // started by the first event
  // Refusals of events_ this socket may still get (TakeRefusal); started by
  // the first refusal.
  std::optional<TokenBucket> refusals_;
};

}  // namespace turnkey::signal
