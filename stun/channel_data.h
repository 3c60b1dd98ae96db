// ChannelData framing (RFC 8656 s12.4, s12.5).
//
//   0                   1                   2                   3
//   |         Channel Number        |            Length             |
//   |                       Application Data                        |
//
// The channel number's first two bits are 01, which is how the per-packet
// path tells ChannelData from STUN (00). Decoding is a view into the caller's
// bytes; encoding writes a 4-byte header (in place, so the relay can receive a
// peer datagram at offset 4 and prepend the header without a copy) or appends.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>

#include "base/bytes.h"
#include "stun/constants.h"

namespace turnkey::stun {

inline constexpr size_t kChannelDataHeaderSize = 4;

// Whether the 4-byte padding after the data is there (RFC 8656 s12.5): over
// streams (TCP, TLS) it is always sent and must be consumed; over UDP it is
// optional and the datagram boundary ends the message.
enum class ChannelDataPadding : uint8_t {
  kOptional,  // UDP, DTLS
  kRequired,  // TCP, TLS
};

enum class ChannelDataError : uint8_t {
  kTooShort,         // fewer than 4 bytes
  kNotChannelData,   // the first two bits are not 01
  kTruncated,        // the length (plus padding when required) runs past the buffer
};
const char* ChannelDataErrorText(ChannelDataError error);

struct ChannelData {
  uint16_t channel = 0;  // 0x4000..0x7FFF (see kMaxChannelNumber)
  base::ByteView data;   // the application data, `length` bytes
  size_t size = 0;       // bytes consumed: header, data and any padding present
};

// Decodes the ChannelData message at the start of `bytes`. With kOptional the
// consumed size includes whatever padding is present (up to 3 bytes); with
// kRequired the padding must be there. Bytes after that are not looked at.
// `bytes` must outlive the result.
std::expected<ChannelData, ChannelDataError> DecodeChannelData(
    base::ByteView bytes, ChannelDataPadding padding = ChannelDataPadding::kOptional);

// Writes the 4-byte header at `out` (caller guarantees 4 writable bytes).
void WriteChannelDataHeader(uint8_t* out, uint16_t channel, uint16_t data_length);

// Appends header, data and, with kRequired, zero padding to a multiple of 4.
// Precondition: data.size() <= 65535 and `data` does not point into `out`.
void AppendChannelData(base::Bytes& out, uint16_t channel, base::ByteView data,
                       ChannelDataPadding padding);

// Total bytes of a ChannelData message carrying `data_length` bytes.
constexpr size_t ChannelDataSize(size_t data_length, ChannelDataPadding padding) {
  return kChannelDataHeaderSize +
         (padding == ChannelDataPadding::kRequired ? Pad4(data_length) : data_length);
}

}  // namespace turnkey::stun
