// libFuzzer target for the Engine.IO packet codec: one text packet, a
// polling payload, and the open packet built from arbitrary strings. The
// decoders accept one spelling per packet, except that base64 ("b...") may
// leave out its "=" padding, so whatever decodes must encode back to the
// very same bytes once that padding is put back; that and the other
// invariants trap when broken.
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

// `record` with the "=" padding of a base64 ("b...") record put back.
std::string Padded(std::string_view record) {
  std::string out(record);
  if (!out.empty() && out[0] == 'b') {
    while ((out.size() - 1) % 4 != 0) {
      out += '=';
    }
  }
  return out;
}

// Padded() on every record of a polling payload.
std::string PaddedPayload(std::string_view payload) {
  std::string out;
  while (true) {
    const size_t end = payload.find('\x1e');
    out += Padded(payload.substr(0, end));
    if (end == std::string_view::npos) {
      return out;
    }
    out += '\x1e';
    payload.remove_prefix(end + 1);
  }
}

void FuzzText(std::string_view in) {
  auto packet = DecodeEngineIoText(in);
  if (!packet) {
    Check(EngineIoErrorText(packet.error()) != nullptr);
    return;
  }
  Check(!packet->binary || packet->type == EngineIoPacketType::kMessage);
  Check(EncodeEngineIoText(*packet) == Padded(in));
}

void FuzzPolling(std::string_view in) {
  std::vector<EngineIoPacket> packets;
  auto result = DecodePollingPayload(in, packets);
  if (!result) {
    Check(EngineIoErrorText(result.error()) != nullptr);
    // Everything decoded before the bad record is a valid prefix of records.
    std::string prefix = EncodePollingPayload(packets);
    const std::string padded = PaddedPayload(in);
    Check(padded.substr(0, prefix.size()) == prefix);
    return;
  }
  Check(!packets.empty());
  Check(EncodePollingPayload(packets) == PaddedPayload(in));
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
