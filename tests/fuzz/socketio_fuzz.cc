// libFuzzer target for the Socket.IO packet codec: DecodeSocketIoText with a
// re-encode round trip (DumpJson matching nlohmann's dump where the value has
// no fraction or exponent number: those are written as JavaScript writes them,
// and must read back as the same value), and
// SocketIoDecoder fed a sequence of text and binary messages. Invariants trap
// when broken, so the fuzzer reports them like crashes.
//
// Input for the decoder sequence: records separated by 0x1E; a record that
// starts with 'b' is a binary message (the rest are its bytes), any other
// record a text message.
//
// Build: -DTURNKEY_FUZZ=ON with clang (tests/fuzz/CMakeLists.txt).
// Run:   ./socketio_fuzz -max_total_time=60 <scratch dir> tests/fuzz/corpus/socketio_fuzz
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "signal/socketio_packet.h"

namespace turnkey::signal {
namespace {

void Check(bool ok) {
  if (!ok) {
    __builtin_trap();
  }
}

// True if `json` holds a number with a fraction or exponent anywhere.
bool HasFloat(const Json& json) {
  if (json.is_number_float()) {
    return true;
  }
  if (json.is_structured()) {
    for (const Json& element : json) {
      if (HasFloat(element)) {
        return true;
      }
    }
  }
  return false;
}

bool IsBinary(SocketIoPacketType type) {
  return type == SocketIoPacketType::kBinaryEvent || type == SocketIoPacketType::kBinaryAck;
}

// A decoded, complete packet encodes to text that decodes to the same packet.
void CheckRoundTrip(const SocketIoPacket& packet) {
  EncodedSocketIoPacket encoded = EncodeSocketIoPacket(packet);
  // Repeated placeholders can leave more binary values than were announced.
  SocketIoDecoderOptions options;
  options.max_attachments = size_t{1} << 20;
  auto again = DecodeSocketIoText(encoded.text, options);
  Check(again.has_value());
  if (!again) {
    return;
  }
  Check(again->nsp == packet.nsp);
  Check(again->id == packet.id);
  Check(again->attachments == encoded.attachments.size());
  Check(ResolveSocketIoAttachments(*again, encoded.attachments).has_value());
  if (packet.data && !packet.data->is_null()) {
    Check(again->data.has_value() && *again->data == *packet.data);
    // Our writer gives nlohmann's text byte for byte, but for numbers with a
    // fraction or exponent (JSON.stringify's spelling: 1 for 1.0), which read
    // back as the same value (checked through `again` above).
    if (!HasFloat(*packet.data)) {
      Check(DumpJson(*packet.data) ==
            packet.data->dump(-1, ' ', false, Json::error_handler_t::replace));
    }
  } else {
    Check(!again->data.has_value());
  }
  if (packet.is_event()) {
    Check(again->is_event());
  } else if (packet.is_ack()) {
    Check(again->is_ack());
  } else {
    Check(again->type == packet.type);
  }
}

void FuzzText(std::string_view in) {
  auto packet = DecodeSocketIoText(in);
  if (!packet) {
    Check(SocketIoErrorText(packet.error()) != nullptr);
    return;
  }
  Check(static_cast<int>(packet->type) <= 6);
  Check(!packet->nsp.empty() && packet->nsp[0] == '/');
  Check(packet->nsp.find(',') == std::string::npos);
  Check(packet->attachments <= SocketIoDecoderOptions{}.max_attachments);
  Check(IsBinary(packet->type) || packet->attachments == 0);
  if (packet->is_event()) {
    Check(packet->data && packet->data->is_array() && !packet->data->empty());
  }
  if (IsBinary(packet->type)) {
    std::vector<base::Bytes> attachments;
    for (size_t i = 0; i < packet->attachments; ++i) {
      attachments.push_back(base::Bytes(i, static_cast<uint8_t>(i)));
    }
    if (!ResolveSocketIoAttachments(*packet, attachments).has_value()) {
      return;
    }
  }
  CheckRoundTrip(*packet);
}

void FuzzDecoder(std::string_view in) {
  SocketIoDecoder decoder;
  while (true) {
    const size_t end = in.find('\x1e');
    const std::string_view record = in.substr(0, end);
    SocketIoDecoder::Result result = (!record.empty() && record[0] == 'b')
                                         ? decoder.AddBinary(base::AsBytes(record.substr(1)))
                                         : decoder.AddText(record);
    if (!result) {
      Check(!decoder.awaiting_attachments());
    } else if (result->has_value()) {
      Check(!decoder.awaiting_attachments());
      CheckRoundTrip(**result);
    } else {
      Check(decoder.awaiting_attachments());
    }
    if (end == std::string_view::npos) {
      return;
    }
    in.remove_prefix(end + 1);
  }
}

}  // namespace
}  // namespace turnkey::signal

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  turnkey::signal::FuzzText(in);
  turnkey::signal::FuzzDecoder(in);
  return 0;
}
