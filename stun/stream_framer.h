// StreamFramer: splits a TCP/TLS byte stream into STUN and ChannelData
// messages (RFC 8489 s6.2.2, RFC 8656 s12.5).
//
// On a stream nothing marks message boundaries, so each message's size comes
// from its own header:
//   - first two bits 00: STUN, 20 + the header length field, which must be a
//     multiple of 4, with the magic cookie in bytes 4-7 (RFC 8489 s5); a
//     stream that starts otherwise (a TLS ClientHello on the plain port) is
//     refused as soon as its first 8 bytes are in;
//   - first two bits 01: ChannelData, 4 + the length rounded up to a multiple
//     of 4 (over streams the padding is always sent). An HTTP request reads
//     as ChannelData too ("GET " is a 21 KB frame); the relay refuses
//     ChannelData on a connection without an allocation;
//   - 10 or 11: nothing we speak; the stream cannot be resynchronized, so the
//     caller closes the connection.
// The framer only sizes frames; the caller then decodes the frame with
// Message::Decode or DecodeChannelData(..., ChannelDataPadding::kRequired).
//
// Pure and stateless apart from its limit; safe to share between threads.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/bytes.h"
#include "base/status.h"

namespace turnkey::stun {

enum class FrameType : uint8_t {
  kStun,
  kChannelData,
};

enum class FramingError : uint8_t {
  kNone,
  kBadFirstBits,  // first two bits 10 or 11: not STUN, not ChannelData
  kTooLarge,      // the frame would exceed the caller's maximum
  kNotStun,       // first bits 00 but no magic cookie, or a length not a multiple of 4
};
const char* FramingErrorText(FramingError error);

struct FrameResult {
  enum class Status : uint8_t {
    kFrame,     // a whole frame of `size` bytes is at the head of the buffer
    kNeedMore,  // read more: the frame needs `size` bytes in total
    kError,     // `error` says why; close the stream
  };
  Status status = Status::kNeedMore;
  // kFrame, and kNeedMore once the first byte is in.
  FrameType type = FrameType::kStun;
  // kFrame: bytes to take off the head. kNeedMore: bytes the head must hold
  // before the next call can make progress (the frame size once the length
  // field is in, a header size before that); always > the bytes given.
  size_t size = 0;
  FramingError error = FramingError::kNone;
};

// The largest frame a stream can carry: a STUN message with the largest
// length, a multiple of 4 (RFC 8489 section 5), 20 + 65,532 bytes. The
// largest ChannelData, padded (RFC 8656 section 12.5), is 4 + 65,536.
inline constexpr size_t kMaxStreamFrame = 20 + 65532;

class StreamFramer {
 public:
  // Frames larger than `max_frame_size` bytes (header included) are errors,
  // so a peer cannot make the caller buffer 64 KiB per connection. Must be at
  // least 20 (a bare STUN header).
  explicit StreamFramer(size_t max_frame_size) : max_frame_size_(max_frame_size) {}

  // Looks at the bytes at the head of the stream buffer.
  FrameResult Next(base::ByteView head) const;

  size_t max_frame_size() const { return max_frame_size_; }

 private:
  size_t max_frame_size_;
};

// For a client reading one frame at a time (net::BlockingClient::ReceiveFrame):
// the size of the whole frame at the head of `buffered` (any STUN message or
// ChannelData), 0 while more is needed, kInvalidArgument naming
// the framing error.
base::Result<size_t> ClientFrameLength(base::ByteView buffered);

}  // namespace turnkey::stun
