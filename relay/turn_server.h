// TurnServer: the STUN/TURN protocol core of one relay worker, sans I/O.
//
// The worker's engine feeds it every message a client sent (a UDP datagram
// or one stream frame) with the time; the core answers through a ClientSink.
// It never touches a socket, reads a clock or logs per packet, so unit tests
// drive it with a fake clock and a recording sink.
//
// Today it serves STUN Binding (RFC 8489 section 6.3); the TURN methods of
// RFC 8656 grow here. Everything a client sends that is malformed, cookie-
// less, a response, or fails its FINGERPRINT is dropped without an answer and
// counted: no state and no reply for garbage.
//
// One instance per worker thread; not thread-safe. `sink` must outlive it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/clock.h"
#include "relay/five_tuple.h"

namespace turnkey::stun {
class Message;
}

namespace turnkey::relay {

// Where the core's messages to clients go.
class ClientSink {
 public:
  virtual ~ClientSink() = default;
  // Sends `bytes` to the client of `to`. `bytes` is only valid during the call.
  virtual void SendToClient(const FiveTuple& to, base::ByteView bytes) = 0;
};

struct TurnServerOptions {
  // SOFTWARE attribute value for responses; empty = none (the default keeps
  // unauthenticated responses small, reference/security.md).
  std::string software;
};

// What the core did, for metrics and tests. Monotonic counters.
struct TurnServerCounters {
  uint64_t binding_requests = 0;     // answered with a success response
  uint64_t error_responses = 0;      // answered with an error response
  uint64_t dropped_malformed = 0;    // not a decodable STUN message
  uint64_t dropped_fingerprint = 0;  // FINGERPRINT present and wrong
  uint64_t dropped_unexpected = 0;   // responses, unknown indications, ChannelData
};

class TurnServer {
 public:
  TurnServer(TurnServerOptions options, ClientSink& sink);

  // Handles one client message: a whole UDP datagram, or one frame cut by
  // stun::StreamFramer from a TCP/TLS stream.
  void OnClientMessage(base::MonoTime now, const FiveTuple& from, base::ByteView data);

  // Applies reloadable options (SIGHUP). Takes effect for the next message.
  void SetOptions(TurnServerOptions options) { options_ = std::move(options); }

  const TurnServerCounters& counters() const { return counters_; }

 private:
  // An error response to `request`, with FINGERPRINT when it had one.
  void SendError(const FiveTuple& to, const stun::Message& request, uint16_t code,
                 std::string_view reason);

  TurnServerOptions options_;
  ClientSink& sink_;
  TurnServerCounters counters_;
  base::Bytes out_;  // reused for every response: no allocation once warm
};

}  // namespace turnkey::relay
