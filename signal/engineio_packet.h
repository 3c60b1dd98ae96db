// Engine.IO protocol v4 packets (reference/socketio.md sections 1.2-1.4 and
// 1.6): the single-packet text form, binary messages, the HTTP long-polling
// payload, the open packet and the JSON error bodies of rejected requests.
//
// Sans-I/O: these functions never write, read the clock or log. A decoder
// reports an EngineIoError with a static description; the caller decides
// what to do (the reference closes the session on any parse error).
//
// Wire forms:
//   text packet     "<digit><data>", digit 0-6, e.g. "4hello", "2probe", "6"
//   binary message  WebSocket: the raw bytes as one binary frame (no prefix);
//                   text form (polling, or WebSocket with b64=1): "b<base64>"
//                   (written padded, read with or without the '=' padding)
//   polling payload packets in text form joined with 0x1E, e.g. "4hello\x1e2"
//
// Thread-safety: all functions are pure; values are plain data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"

namespace turnkey::signal {

enum class EngineIoPacketType : uint8_t {
  kOpen = 0,     // server -> client: handshake JSON (EncodeOpenPacket)
  kClose = 1,    // client closes; server closes a polling session
  kPing = 2,     // server heartbeat; "2probe" from the client during an upgrade
  kPong = 3,     // client heartbeat answer; "3probe" from the server
  kMessage = 4,  // a Socket.IO packet, or binary data
  kUpgrade = 5,  // client completes the upgrade to WebSocket
  kNoop = 6,     // server answers a pending poll with nothing
};

// "open", "close", "ping", "pong", "message", "upgrade", "noop".
const char* EngineIoPacketTypeName(EngineIoPacketType type);

struct EngineIoPacket {
  EngineIoPacketType type = EngineIoPacketType::kMessage;
  // True for a binary message (type is then kMessage): `data` holds raw bytes.
  bool binary = false;
  // What follows the type digit ("probe" in "2probe"; may be empty), or the
  // raw bytes of a binary message.
  std::string data;

  static EngineIoPacket Text(EngineIoPacketType type, std::string_view data = {});
  static EngineIoPacket Binary(base::ByteView bytes);
  bool operator==(const EngineIoPacket&) const = default;
};

// Why input is not an Engine.IO packet. Static descriptions: EngineIoErrorText.
enum class EngineIoError : uint8_t {
  kEmpty,        // an empty packet: no type character (also an empty polling body)
  kUnknownType,  // the first character is neither 0-6 nor 'b'
  kBadBase64,    // a 'b' packet whose data is not standard base64 (padding optional)
};

const char* EngineIoErrorText(EngineIoError error);

// The record separator between packets of a polling payload.
inline constexpr char kEngineIoRecordSeparator = '\x1e';

// Decodes one packet in text form (a WebSocket text frame, or one record of
// a polling payload). "b<base64>" yields a binary message.
std::expected<EngineIoPacket, EngineIoError> DecodeEngineIoText(std::string_view text);

// A WebSocket binary frame: always a binary message (cannot fail).
EngineIoPacket DecodeEngineIoBinary(base::ByteView frame);

// Appends the text form of `packet` to `out`: "<digit><data>", or for a
// binary message "b" + standard base64 with padding.
void AppendEngineIoText(const EngineIoPacket& packet, std::string& out);
std::string EncodeEngineIoText(const EngineIoPacket& packet);
// The length of that text form, without encoding it.
size_t EngineIoTextSize(const EngineIoPacket& packet);

// Splits a polling request body on 0x1E and decodes each record, appending
// to `out` in order. Stops at the first invalid record and returns its error;
// the packets before it stay in `out` (the reference handles those, then
// closes the session). An empty body or an empty record is kEmpty.
std::expected<void, EngineIoError> DecodePollingPayload(std::string_view body,
                                                        std::vector<EngineIoPacket>& out);

// The polling response body: the text forms joined with 0x1E. The record
// separator is assumed never to occur in text data (the protocol's own
// assumption); base64 cannot contain it.
std::string EncodePollingPayload(std::span<const EngineIoPacket> packets);

// The handshake values sent in the open packet.
struct EngineIoOpen {
  std::string sid;                    // session id (URL-safe)
  std::vector<std::string> upgrades;  // ["websocket"] over polling, [] over WebSocket
  uint64_t ping_interval_ms = 25000;  // reference default 25000
  uint64_t ping_timeout_ms = 20000;   // reference default 20000
  uint64_t max_payload = 1000000;     // bytes; reference default 1000000
};

// The open packet in text form with exactly the reference's keys in its
// order, e.g. 0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],
// "pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}.
std::string EncodeOpenPacket(const EngineIoOpen& open);

// Reasons the server refuses an HTTP request or upgrade (section 1.2), with
// the reference's numeric codes.
enum class EngineIoRequestError : uint8_t {
  kUnknownTransport = 0,            // "Transport unknown"
  kUnknownSid = 1,                  // "Session ID unknown"
  kBadHandshakeMethod = 2,          // "Bad handshake method"
  kBadRequest = 3,                  // "Bad request"
  kForbidden = 4,                   // "Forbidden" (HTTP 403)
  kUnsupportedProtocolVersion = 5,  // "Unsupported protocol version"
};

// The reference's message text, e.g. "Session ID unknown".
const char* EngineIoRequestErrorMessage(EngineIoRequestError error);
// 403 for kForbidden, 400 otherwise.
int EngineIoRequestErrorStatus(EngineIoRequestError error);
// The application/json body, e.g. {"code":1,"message":"Session ID unknown"}.
std::string EncodeEngineIoRequestError(EngineIoRequestError error);

}  // namespace turnkey::signal
