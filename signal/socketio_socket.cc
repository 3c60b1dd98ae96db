#include "signal/socketio_socket.h"

#include <utility>

#include "signal/socketio_server.h"

namespace turnkey::signal {

bool SocketIoAck::requested() const { return state_ != nullptr && !state_->sent; }

void SocketIoAck::operator()(Json args) const {
  if (state_ == nullptr || state_->sent) {
    return;
  }
  // Section 1.9.4: each ack id is answered at most once.
  state_->sent = true;
  std::shared_ptr<SocketIoSocket> socket = state_->socket.lock();
  if (socket == nullptr || !socket->connected()) {
    return;
  }
  socket->server_->SendAck(*socket, state_->id, std::move(args));
}

SocketIoSocket::SocketIoSocket(SocketIoServer& server, EngineIoSocket& engine, std::string id,
                               std::string nsp, Json auth, SocketIoSocketData data)
    : server_(&server),
      engine_(&engine),
      id_(std::move(id)),
      nsp_(std::move(nsp)),
      auth_(std::move(auth)),
      data_(std::move(data)) {}

SocketIoSocket::~SocketIoSocket() = default;

const Json& SocketIoSocket::auth() const {
  // A dropped payload is held as null: an empty object would cost every
  // idle socket an allocation.
  static const Json kEmpty = Json::object();
  return auth_.is_null() ? kEmpty : auth_;
}

const char* SocketIoSocket::transport_name() const {
  return engine_ != nullptr ? engine_->transport_name() : "";
}

bool SocketIoSocket::Emit(std::string_view event, Json args) {
  if (!connected()) {
    return false;
  }
  return server_->SendEvent(*this, event, std::move(args), std::nullopt);
}

bool SocketIoSocket::EmitWithAck(std::string_view event, Json args,
                                 std::chrono::milliseconds timeout, SocketIoAckCallback callback) {
  if (!connected()) {
    return false;
  }
  const uint64_t id = next_ack_id_++;
  if (!server_->SendEvent(*this, event, std::move(args), id)) {
    return false;
  }
  pending_acks_.emplace(id, std::move(callback));
  if (timeout > std::chrono::milliseconds::zero()) {
    server_->ArmAckTimer(std::chrono::steady_clock::now() + timeout, weak_from_this(), id);
  }
  return true;
}

void SocketIoSocket::Disconnect(bool close_connection) {
  if (connected()) {
    server_->DisconnectSocket(*this, close_connection);
  }
}

SocketIoAckCallback SocketIoSocket::TakeAck(uint64_t id) {
  auto it = pending_acks_.find(id);
  if (it == pending_acks_.end()) {
    return nullptr;
  }
  SocketIoAckCallback callback = std::move(it->second);
  pending_acks_.erase(it);
  return callback;
}

namespace {

// A token from `bucket`, which a first call starts full.
bool TakeFrom(std::optional<TokenBucket>& bucket, base::MonoTime now, double rate, double burst) {
  if (!bucket) {
    bucket.emplace(burst, now);
  }
  return bucket->TryTake(now, rate, burst);
}

}  // namespace

bool SocketIoSocket::TakeEventToken(base::MonoTime now, double rate, double burst) {
  return rate <= 0 || TakeFrom(events_, now, rate, burst);
}

bool SocketIoSocket::TakeRefusal(base::MonoTime now, double rate, double burst) {
  return TakeFrom(refusals_, now, rate, burst);
}

}  // namespace turnkey::signal
