#include "stun/channel_data.h"

#include <algorithm>

namespace turnkey::stun {

using base::ByteView;

const char* ChannelDataErrorText(ChannelDataError error) {
  switch (error) {
    case ChannelDataError::kTooShort: return "shorter than a ChannelData header";
    case ChannelDataError::kNotChannelData: return "first two bits are not 01";
    case ChannelDataError::kTruncated: return "ChannelData length runs past the buffer";
  }
  return "unknown ChannelData error";
}

std::expected<ChannelData, ChannelDataError> DecodeChannelData(ByteView bytes,
                                                               ChannelDataPadding padding) {
  if (bytes.size() < kChannelDataHeaderSize) {
    return std::unexpected(ChannelDataError::kTooShort);
  }
  const uint16_t channel = base::LoadBe16(bytes.data());
  if ((channel & 0xC000) != 0x4000) {
    return std::unexpected(ChannelDataError::kNotChannelData);
  }
  const size_t length = base::LoadBe16(bytes.data() + 2);
  const size_t available = bytes.size() - kChannelDataHeaderSize;
  // RFC 8656 s12.5: over streams the padding is always present; over UDP a
  // datagram may stop right after the data.
  const size_t needed = padding == ChannelDataPadding::kRequired ? Pad4(length) : length;
  if (needed > available) {
    return std::unexpected(ChannelDataError::kTruncated);
  }
  ChannelData out;
  out.channel = channel;
  out.data = bytes.subspan(kChannelDataHeaderSize, length);
  out.size = kChannelDataHeaderSize + std::min(Pad4(length), available);
  return out;
}

void WriteChannelDataHeader(uint8_t* out, uint16_t channel, uint16_t data_length) {
  base::StoreBe16(out, channel);
  base::StoreBe16(out + 2, data_length);
}

void AppendChannelData(base::Bytes& out, uint16_t channel, ByteView data,
                       ChannelDataPadding padding) {
  base::AppendBe16(out, channel);
  base::AppendBe16(out, static_cast<uint16_t>(data.size()));
  out.insert(out.end(), data.begin(), data.end());
  if (padding == ChannelDataPadding::kRequired) {
    out.insert(out.end(), Pad4(data.size()) - data.size(), uint8_t{0});
  }
}

}  // namespace turnkey::stun
