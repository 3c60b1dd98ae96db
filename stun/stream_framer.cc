#include "stun/stream_framer.h"

#include <string>

#include "stun/channel_data.h"
#include "stun/constants.h"

namespace turnkey::stun {

namespace {

// Both headers carry their 16-bit length in bytes 2-3, so 4 bytes are enough
// to size any frame.
constexpr size_t kLengthPrefixSize = 4;
// A STUN header's magic cookie ends at byte 8.
constexpr size_t kCookieEnd = 8;

FrameResult MakeError(FramingError e) {
  FrameResult r;
  r.status = FrameResult::Status::kError;
  r.error = e;
  return r;
}

}  // namespace

const char* FramingErrorText(FramingError error) {
  switch (error) {
    case FramingError::kNone:
      return "ok";
    case FramingError::kBadFirstBits:
      return "neither STUN nor ChannelData";
    case FramingError::kTooLarge:
      return "frame larger than allowed";
    case FramingError::kNotStun:
      return "no STUN magic cookie, or a length not a multiple of 4";
  }
  return "unknown framing error";
}

FrameResult StreamFramer::Next(base::ByteView head) const {
  FrameResult r;
  if (head.empty()) {
    r.size = kLengthPrefixSize;
    return r;
  }
  switch (head[0] & 0xC0) {
    case 0x00:
      r.type = FrameType::kStun;
      break;
    case 0x40:
      r.type = FrameType::kChannelData;
      break;
    default:
      return MakeError(FramingError::kBadFirstBits);
  }
  if (head.size() < kLengthPrefixSize) {
    r.size = kLengthPrefixSize;
    return r;
  }
  const size_t length = base::LoadBe16(head.data() + 2);
  if (r.type == FrameType::kStun &&
      (length % 4 != 0 ||
       (head.size() >= kCookieEnd && base::LoadBe32(head.data() + 4) != kMagicCookie))) {
    return MakeError(FramingError::kNotStun);
  }
  // RFC 8656 s12.5: over TCP/TLS, ChannelData is padded to 4 so the next
  // message starts aligned; the padding is part of this frame.
  const size_t frame =
      r.type == FrameType::kStun ? kHeaderSize + length : kChannelDataHeaderSize + Pad4(length);
  if (frame > max_frame_size_) {
    return MakeError(FramingError::kTooLarge);
  }
  r.size = frame;
  r.status = head.size() >= frame ? FrameResult::Status::kFrame : FrameResult::Status::kNeedMore;
  return r;
}

base::Result<size_t> ClientFrameLength(base::ByteView buffered) {
  const StreamFramer framer(kMaxStreamFrame);
  const FrameResult r = framer.Next(buffered);
  switch (r.status) {
    case FrameResult::Status::kFrame:
      return r.size;
    case FrameResult::Status::kNeedMore:
      return size_t{0};
    case FrameResult::Status::kError:
      break;
  }
  return base::InvalidArgument(std::string("server sent a bad frame: ") +
                               FramingErrorText(r.error));
}

}  // namespace turnkey::stun
