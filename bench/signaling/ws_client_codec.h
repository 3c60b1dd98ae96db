// The client side of RFC 6455 WebSocket framing, for the Socket.IO load
// generator: frames a client sends (always masked, section 5.3) and frames a
// server sends (never masked, section 5.1). Pure functions over bytes; the
// caller owns every buffer.
//
// No extensions are negotiated, so the RSV bits must be zero (section 5.2).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace turnkey::bench {

// Frame opcodes (RFC 6455 section 5.2).
enum class WsOpcode : uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

// Appends one unfragmented (FIN) frame carrying `payload` to `out`, masked
// with `mask_key` (its four bytes in network order are the masking key).
void AppendClientFrame(std::string& out, WsOpcode opcode, std::string_view payload,
                       uint32_t mask_key);

enum class WsParseStatus : uint8_t {
  kFrame,     // a whole frame was found
  kNeedMore,  // `input` holds only part of a frame
  kError,     // not a valid server frame: the connection must be closed
};

struct WsServerFrame {
  WsParseStatus status = WsParseStatus::kNeedMore;
  // kFrame: bytes of `input` the frame took.
  size_t consumed = 0;
  bool fin = false;
  WsOpcode opcode = WsOpcode::kText;
  // kFrame: the payload, pointing into `input`.
  std::string_view payload;
  // kError: a static description.
  const char* error = nullptr;
};

// Parses the frame at the start of `input`. Frames whose payload is longer
// than `max_payload` are an error, as are masked frames, set RSV bits,
// unknown opcodes and control frames that are fragmented or longer than 125
// bytes (section 5.5).
WsServerFrame ParseServerFrame(std::string_view input, uint64_t max_payload);

}  // namespace turnkey::bench
