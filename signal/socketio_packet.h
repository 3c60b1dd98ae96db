// Socket.IO protocol v5 packets (reference/socketio.md section 1.9), carried
// as the data of Engine.IO message packets.
//
// Wire form: <type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]
//   0                               CONNECT "/" without auth
//   0/admin,{"token":"abc"}         CONNECT "/admin" with auth
//   2["hello","world"]              EVENT on "/"
//   212["foo"]  ->  312["bar"]      EVENT with ack id 12, and its ACK
//   51-["upload",{"_placeholder":true,"num":0}] + one binary message
// (inside Engine.IO message packets these read 40, 42["hello","world"], ...).
//
// Decoding mirrors socket.io-parser's decodeString (section 1.9.2), plus
// payload validation; any error means the caller closes the Engine.IO
// connection. Binary packets (types 5 and 6) arrive as a text packet
// followed by N binary Engine.IO messages; SocketIoDecoder collects them and
// puts each attachment where its placeholder was, as a JSON binary value.
// Encoding pulls JSON binary values out of EVENT / ACK data into attachments
// and writes the placeholders, depth first. JSON is compact and keeps the
// order of object keys (Json is nlohmann::ordered_json).
//
// Deliberate differences from socket.io-parser, all for input no client sends:
// an empty packet is an error (the reference reads it as CONNECT); the
// attachment count must be decimal digits; an ack id must fit 64 bits; an
// EVENT needs a payload; JSON nesting is bounded (max_depth). A string
// escape of a lone UTF-16 surrogate ("\ud800", which JSON.parse accepts and
// JSON.stringify writes for a string cut inside an emoji) decodes as U+FFFD,
// as strings are UTF-8 here. Known output
// difference: a floating-point number with an integral value is written
// "1.0" where JSON.stringify writes "1" (integers are written the same).
//
// Sans-I/O: no writes, clock or logging. Thread-safety: functions are pure; a
// SocketIoDecoder is used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"

namespace turnkey::signal {

// Order-preserving JSON: output keys stay in insertion order, as JS's
// JSON.stringify keeps them.
using Json = nlohmann::ordered_json;

enum class SocketIoPacketType : uint8_t {
  kConnect = 0,       // join a namespace; client: optional auth object, server: {"sid":...}
  kDisconnect = 1,    // leave a namespace; no payload
  kEvent = 2,         // [name, ...args]
  kAck = 3,           // [...args] answering the EVENT with the same ack id
  kConnectError = 4,  // server refuses a CONNECT: {"message":...,"data":...}
  kBinaryEvent = 5,   // EVENT with binary attachments
  kBinaryAck = 6,     // ACK with binary attachments
};

// "CONNECT", "DISCONNECT", "EVENT", "ACK", "CONNECT_ERROR", "BINARY_EVENT", "BINARY_ACK".
const char* SocketIoPacketTypeName(SocketIoPacketType type);

// Event names a client may not send (socket.io-parser RESERVED_EVENTS).
bool IsReservedEventName(std::string_view name);

struct SocketIoPacket {
  SocketIoPacketType type = SocketIoPacketType::kEvent;
  std::string nsp = "/";       // namespace; "/" is the default and is not written
  std::optional<uint64_t> id;  // ack id
  std::optional<Json> data;    // payload; nullopt when the packet has none
  // Binary packets as decoded: the announced attachment count. The encoder
  // ignores it (it counts the binary values in `data`).
  size_t attachments = 0;

  static SocketIoPacket Connect(std::string nsp, std::optional<Json> data = std::nullopt);
  static SocketIoPacket Disconnect(std::string nsp);
  // `args` is the whole array, event name first.
  static SocketIoPacket Event(std::string nsp, Json args,
                              std::optional<uint64_t> id = std::nullopt);
  static SocketIoPacket Ack(std::string nsp, uint64_t id, Json args);
  // {"message":message} plus "data" when given.
  static SocketIoPacket ConnectError(std::string nsp, std::string_view message,
                                     std::optional<Json> data = std::nullopt);

  bool is_event() const {
    return type == SocketIoPacketType::kEvent || type == SocketIoPacketType::kBinaryEvent;
  }
  bool is_ack() const {
    return type == SocketIoPacketType::kAck || type == SocketIoPacketType::kBinaryAck;
  }
  // The event name of an EVENT whose first element is a string; nullopt otherwise
  // (numeric names are valid on the wire but never a string).
  std::optional<std::string_view> event_name() const;
};

// Why a Socket.IO packet is refused. Static descriptions: SocketIoErrorText.
enum class SocketIoError : uint8_t {
  kEmpty,               // no type character
  kUnknownType,         // type is not a digit 0-6
  kBadAttachments,      // binary type without "<digits>-"
  kTooManyAttachments,  // more attachments than max_attachments
  kBadAckId,            // ack id does not fit 64 bits
  kTooDeep,             // JSON nested deeper than max_depth
  kBadJson,             // the payload is not JSON
  kInvalidPayload,      // JSON of the wrong shape for the type (section 1.9.2 step 5)
  kUnexpectedText,      // a text packet while binary attachments are still due
  kUnexpectedBinary,    // a binary message when no attachment is due
  kBadPlaceholder,      // a placeholder whose num is not an attachment index
};

const char* SocketIoErrorText(SocketIoError error);

struct SocketIoDecoderOptions {
  // Most attachments one binary packet may announce. Reference default 10.
  size_t max_attachments = 10;
  // Deepest JSON nesting accepted (arrays and objects). Default 32.
  size_t max_depth = 32;
  // An EVENT named like one of the client's own events ("connect",
  // "disconnecting", ...: IsReservedEventName) decodes instead of failing
  // with kInvalidPayload, for a server that drops it (section 1.9.2's
  // leniency note: Dart socket_io_client 2.x sends "disconnecting"). Default
  // off: the reference decoder's rule.
  bool allow_reserved_event_names = false;
};

// Decodes one text packet. Binary types come back with `attachments` set and
// the placeholders still in `data` (ResolveSocketIoAttachments fills them).
std::expected<SocketIoPacket, SocketIoError> DecodeSocketIoText(
    std::string_view text, const SocketIoDecoderOptions& options = {});

// Replaces every {"_placeholder":true,"num":k} in packet.data (depth first)
// with a JSON binary value holding attachments[k]. kBadPlaceholder if k is
// not an index of `attachments`.
std::expected<void, SocketIoError> ResolveSocketIoAttachments(
    SocketIoPacket& packet, std::span<const base::Bytes> attachments);

// Turns the Engine.IO messages of one connection into whole Socket.IO
// packets, collecting the attachments of binary packets.
class SocketIoDecoder {
 public:
  using Result = std::expected<std::optional<SocketIoPacket>, SocketIoError>;

  explicit SocketIoDecoder(SocketIoDecoderOptions options = {}) : options_(options) {}

  // The data of an Engine.IO text message. Returns the packet, or nullopt
  // when it is a binary packet whose attachments are still to come.
  Result AddText(std::string_view text);
  // The bytes of an Engine.IO binary message: the next attachment. Returns
  // the packet once its last attachment arrived, else nullopt.
  Result AddBinary(base::ByteView bytes);

  // True while a binary packet waits for attachments.
  bool awaiting_attachments() const { return pending_ != nullptr; }
  // Drops a partly received binary packet. After an error the decoder is
  // already reset.
  void Reset();

 private:
  Result Complete();

  SocketIoDecoderOptions options_;
  std::unique_ptr<SocketIoPacket> pending_;  // only while attachments are awaited
  std::vector<base::Bytes> buffers_;
};

// One packet ready to send: `text` as an Engine.IO message, then each
// attachment as an Engine.IO binary message, in order.
struct EncodedSocketIoPacket {
  std::string text;
  std::vector<base::Bytes> attachments;
};

// Encodes `packet`. For EVENT and ACK (and their binary types) every JSON
// binary value in `data` becomes an attachment and a placeholder, and the
// type becomes BINARY_EVENT / BINARY_ACK if there is at least one (EVENT /
// ACK otherwise). Other types are written as given.
EncodedSocketIoPacket EncodeSocketIoPacket(const SocketIoPacket& packet);

// The text EncodeSocketIoPacket writes for an EVENT named `event` whose
// arguments are `args` (an array holds them; any other value is the only
// one), on `nsp`, with ack id `id`: written straight from `args`, without
// the packet's array. False, and `out` as it was, when an argument holds a
// binary value (that packet needs attachments: encode it instead).
bool AppendSocketIoEventText(std::string& out, std::string_view nsp, std::string_view event,
                             const Json& args, std::optional<uint64_t> id);
// The same for an ACK of `id` with `args`.
bool AppendSocketIoAckText(std::string& out, std::string_view nsp, uint64_t id, const Json& args);

// Compact JSON text as JSON.stringify writes it (invalid UTF-8 in strings is
// replaced with U+FFFD rather than throwing). The same text as nlohmann's
// dump(-1, ' ', false, replace), written without its per-character output,
// except for numbers with a fraction or exponent, which are written as
// JavaScript writes them ("1", "100000", "1e-7", "1e+21"; nlohmann: "1.0",
// "100000.0", "1e-07", "1e+21").
std::string DumpJson(const Json& json);
// DumpJson(json) appended to `out`.
void AppendJson(std::string& out, const Json& json);

}  // namespace turnkey::signal
