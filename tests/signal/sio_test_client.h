// SioTestClient: a blocking Socket.IO v5 client over one WebSocket-only
// Engine.IO session (RawClient), for tests of applications mounted on the
// Socket.IO server: CONNECT with an auth payload, events with acks, and the
// server's events, buffered until the test asks for them. Answers pings.
// Never use it on the server's loop thread. Not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "signal/socketio_packet.h"
#include "tests/signal/raw_client.h"

namespace turnkey::signal::testing {

class SioTestClient {
 public:
  // Opens /socket.io/?EIO=4&transport=websocket on 127.0.0.1:`port` and
  // reads the open packet; null on failure.
  static std::unique_ptr<SioTestClient> Open(uint16_t port);

  // Sends CONNECT to "/" with `auth` and returns the answer: "40{...}" or
  // "44{...}" (nullopt on timeout or close).
  std::optional<std::string> Connect(const Json& auth, std::chrono::milliseconds timeout = 5s);
  // Emits `event` with `payload` and an ack id; returns the id.
  uint64_t Emit(std::string_view event, const Json& payload);
  // The ack's first argument; nullopt on timeout or close.
  std::optional<Json> WaitAck(uint64_t id, std::chrono::milliseconds timeout = 5s);
  // Emit + WaitAck.
  std::optional<Json> Call(std::string_view event, const Json& payload) {
    return WaitAck(Emit(event, payload));
  }
  // The first argument of the next `event` not yet taken.
  std::optional<Json> WaitEvent(std::string_view event, std::chrono::milliseconds timeout = 5s);
  // True if `event` was received and not taken (reads nothing new).
  bool HasEvent(std::string_view event) const;
  // True once the server sent DISCONNECT or closed the connection.
  bool WaitDisconnected(std::chrono::milliseconds timeout = 5s);
  // Sends a raw text frame.
  bool SendText(std::string_view text) { return raw_->SendText(text); }

 private:
  explicit SioTestClient(std::unique_ptr<RawClient> raw) : raw_(std::move(raw)) {}
  // Reads and files one message; false on timeout or close.
  bool Pump(std::chrono::steady_clock::time_point deadline);

  std::unique_ptr<RawClient> raw_;
  std::deque<std::pair<std::string, Json>> events_;
  std::map<uint64_t, Json> acks_;
  std::deque<std::string> connect_answers_;
  uint64_t next_ack_ = 1;
  bool disconnected_ = false;
};

}  // namespace turnkey::signal::testing
