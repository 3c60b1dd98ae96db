// libFuzzer target for the Engine.IO packet codec: one text packet, a
// polling payload, and the open packet built from arbitrary strings. The
// decoders accept only canonical input (strict base64, one spelling per
// packet), so whatever decodes must encode back to the very same bytes;
// that and the other invariants trap when broken.
//
// Build: -DTURNKEY_FUZZ=ON with clang (tests/fuzz/CMakeLists.txt).
// Run:   ./engineio_fuzz -max_total_time=60 <scratch dir> tests/fuzz/corpus/engineio_fuzz
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "signal/engineio_packet.h"

namespace turnkey::signal {
namespace {

void Check(bool ok) {
  if (!ok) {
    __builtin_trap();
  }
}

void FuzzText(std::string_view in) {
  auto packet = DecodeEngineIoText(in);
  if (!packet) {
    Check(EngineIoErrorText(packet.error()) != nullptr);
    return;
  }
  Check(!packet->binary || packet->type == EngineIoPacketType::kMessage);
  Check(EncodeEngineIoText(*packet) == in);
}

void FuzzPolling(std::string_view in) {
  std::vector<EngineIoPacket> packets;
  auto result = DecodePollingPayload(in, packets);
  if (!result) {
    Check(EngineIoErrorText(result.error()) != nullptr);
    // Everything decoded before the bad record is a valid prefix of records.
    std::string prefix = EncodePollingPayload(packets);
    Check(in.substr(0, prefix.size()) == prefix);
    return;
  }
  Check(!packets.empty());
  Check(EncodePollingPayload(packets) == in);
  std::vector<EngineIoPacket> again;
  Check(DecodePollingPayload(EncodePollingPayload(packets), again).has_value());
  Check(again == packets);
}

void FuzzBinary(std::string_view in) {
  const EngineIoPacket frame = DecodeEngineIoBinary(base::AsBytes(in));
  Check(frame.binary && frame.data == in);
  // The text form of a binary message survives a polling round trip.
  const std::vector<EngineIoPacket> one = {frame};
  std::vector<EngineIoPacket> decoded;
  Check(DecodePollingPayload(EncodePollingPayload(one), decoded).has_value());
  Check(decoded == one);
}

void FuzzOpen(std::string_view in) {
  EngineIoOpen open;
  open.sid.assign(in);
  open.upgrades = {std::string(in)};
  const std::string text = EncodeOpenPacket(open);
  Check(text.size() >= 2 && text[0] == '0' && text[1] == '{' && text.back() == '}');
  auto packet = DecodeEngineIoText(text);
  Check(packet.has_value() && packet->type == EngineIoPacketType::kOpen);
}

}  // namespace
}  // namespace turnkey::signal

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  turnkey::signal::FuzzText(in);
  turnkey::signal::FuzzPolling(in);
  turnkey::signal::FuzzBinary(in);
  turnkey::signal::FuzzOpen(in);
  return 0;
}
