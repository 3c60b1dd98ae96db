#include "bench/signaling/ws_client_codec.h"

#include <cstring>

namespace turnkey::bench {
namespace {

bool KnownOpcode(uint8_t op) { return op <= 0x2 || (op >= 0x8 && op <= 0xA); }

}  // namespace

void AppendClientFrame(std::string& out, WsOpcode opcode, std::string_view payload,
                       uint32_t mask_key) {
  const size_t size = payload.size();
  uint8_t header[14];
  size_t n = 0;
  header[n++] = static_cast<uint8_t>(0x80 | static_cast<uint8_t>(opcode));
  // Section 5.2: 7-bit length, or 126 + 16 bits, or 127 + 64 bits, always
  // the shortest form; the MASK bit is set on every client frame.
  if (size < 126) {
    header[n++] = static_cast<uint8_t>(0x80 | size);
  } else if (size <= 0xFFFF) {
    header[n++] = 0x80 | 126;
    header[n++] = static_cast<uint8_t>(size >> 8);
    header[n++] = static_cast<uint8_t>(size);
  } else {
    header[n++] = 0x80 | 127;
    for (int shift = 56; shift >= 0; shift -= 8) {
      header[n++] = static_cast<uint8_t>(static_cast<uint64_t>(size) >> shift);
    }
  }
  const uint8_t key[4] = {static_cast<uint8_t>(mask_key >> 24),
                          static_cast<uint8_t>(mask_key >> 16), static_cast<uint8_t>(mask_key >> 8),
                          static_cast<uint8_t>(mask_key)};
  std::memcpy(header + n, key, 4);
  n += 4;
  const size_t start = out.size();
  out.append(reinterpret_cast<const char*>(header), n);
  out.append(payload);
  // Section 5.3: octet i of the payload is XORed with octet i % 4 of the key.
  // Eight bytes at a time: the key repeated twice, in memory order.
  char* data = out.data() + start + n;
  uint8_t key8[8];
  for (int i = 0; i < 8; ++i) {
    key8[i] = key[i % 4];
  }
  uint64_t wide_key;
  std::memcpy(&wide_key, key8, 8);
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t chunk;
    std::memcpy(&chunk, data + i, 8);
    chunk ^= wide_key;
    std::memcpy(data + i, &chunk, 8);
  }
  for (; i < size; ++i) {
    data[i] = static_cast<char>(data[i] ^ key[i % 4]);
  }
}

WsServerFrame ParseServerFrame(std::string_view input, uint64_t max_payload) {
  WsServerFrame frame;
  if (input.size() < 2) {
    return frame;
  }
  const auto* bytes = reinterpret_cast<const uint8_t*>(input.data());
  auto error = [&frame](const char* why) {
    frame.status = WsParseStatus::kError;
    frame.error = why;
    return frame;
  };
  if ((bytes[0] & 0x70) != 0) {
    return error("RSV bits set without an extension");
  }
  const uint8_t op = bytes[0] & 0x0F;
  if (!KnownOpcode(op)) {
    return error("unknown opcode");
  }
  if ((bytes[1] & 0x80) != 0) {
    return error("masked frame from the server");
  }
  frame.fin = (bytes[0] & 0x80) != 0;
  frame.opcode = static_cast<WsOpcode>(op);
  uint64_t length = bytes[1] & 0x7F;
  size_t header = 2;
  if (length == 126) {
    if (input.size() < 4) {
      return frame;
    }
    length = (uint64_t{bytes[2]} << 8) | bytes[3];
    header = 4;
  } else if (length == 127) {
    if (input.size() < 10) {
      return frame;
    }
    length = 0;
    for (int i = 2; i < 10; ++i) {
      length = (length << 8) | bytes[i];
    }
    if ((length >> 63) != 0) {
      return error("64-bit length with the top bit set");
    }
    header = 10;
  }
  if (op >= 0x8 && (length > 125 || !frame.fin)) {
    return error("control frame fragmented or longer than 125 bytes");
  }
  if (length > max_payload) {
    return error("frame larger than the limit");
  }
  if (input.size() - header < length) {
    return frame;
  }
  frame.status = WsParseStatus::kFrame;
  frame.consumed = header + static_cast<size_t>(length);
  frame.payload = input.substr(header, static_cast<size_t>(length));
  return frame;
}

}  // namespace turnkey::bench
