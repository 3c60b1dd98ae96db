#include "signal/engineio_packet.h"

#include <nlohmann/json.hpp>

#include "base/crypto.h"

namespace turnkey::signal {

namespace {

constexpr char kBinaryPrefix = 'b';

}  // namespace

const char* EngineIoPacketTypeName(EngineIoPacketType type) {
  switch (type) {
    case EngineIoPacketType::kOpen:
      return "open";
    case EngineIoPacketType::kClose:
      return "close";
    case EngineIoPacketType::kPing:
      return "ping";
    case EngineIoPacketType::kPong:
      return "pong";
    case EngineIoPacketType::kMessage:
      return "message";
    case EngineIoPacketType::kUpgrade:
      return "upgrade";
    case EngineIoPacketType::kNoop:
      return "noop";
  }
  return "unknown";
}

EngineIoPacket EngineIoPacket::Text(EngineIoPacketType type, std::string_view data) {
  EngineIoPacket packet;
  packet.type = type;
  packet.data.assign(data);
  return packet;
}

EngineIoPacket EngineIoPacket::Binary(base::ByteView bytes) {
  EngineIoPacket packet;
  packet.binary = true;
  packet.data.assign(base::AsString(bytes));
  return packet;
}

const char* EngineIoErrorText(EngineIoError error) {
  switch (error) {
    case EngineIoError::kEmpty:
      return "empty Engine.IO packet";
    case EngineIoError::kUnknownType:
      return "unknown Engine.IO packet type";
    case EngineIoError::kBadBase64:
      return "Engine.IO binary packet is not valid base64";
  }
  return "unknown Engine.IO error";
}

std::expected<EngineIoPacket, EngineIoError> DecodeEngineIoText(std::string_view text) {
  if (text.empty()) {
    return std::unexpected(EngineIoError::kEmpty);
  }
  const char first = text.front();
  text.remove_prefix(1);
  if (first == kBinaryPrefix) {
    // Clients pad, but the reference decodes with Buffer.from(s, "base64"),
    // which also takes unpadded text.
    auto bytes = base::Base64Decode(text, base::Base64Padding::kOptional);
    if (!bytes) {
      return std::unexpected(EngineIoError::kBadBase64);
    }
    return EngineIoPacket::Binary(*bytes);
  }
  if (first < '0' || first > '6') {
    return std::unexpected(EngineIoError::kUnknownType);
  }
  return EngineIoPacket::Text(static_cast<EngineIoPacketType>(first - '0'), text);
}

EngineIoPacket DecodeEngineIoBinary(base::ByteView frame) { return EngineIoPacket::Binary(frame); }

void AppendEngineIoText(const EngineIoPacket& packet, std::string& out) {
  if (packet.binary) {
    out.push_back(kBinaryPrefix);
    out.append(base::Base64Encode(base::AsBytes(packet.data)));
    return;
  }
  out.push_back(static_cast<char>('0' + static_cast<int>(packet.type)));
  out.append(packet.data);
}

std::string EncodeEngineIoText(const EngineIoPacket& packet) {
  std::string out;
  AppendEngineIoText(packet, out);
  return out;
}

size_t EngineIoTextSize(const EngineIoPacket& packet) {
  // "b" and padded base64, or the type digit, then the data.
  return 1 + (packet.binary ? base::Base64EncodedSize(packet.data.size()) : packet.data.size());
}

std::expected<void, EngineIoError> DecodePollingPayload(std::string_view body,
                                                        std::vector<EngineIoPacket>& out) {
  // The reference splits on every separator, so "" and a trailing separator
  // both yield an empty record, which is a parse error.
  while (true) {
    const size_t end = body.find(kEngineIoRecordSeparator);
    auto packet = DecodeEngineIoText(body.substr(0, end));
    if (!packet) {
      return std::unexpected(packet.error());
    }
    out.push_back(std::move(*packet));
    if (end == std::string_view::npos) {
      return {};
    }
    body.remove_prefix(end + 1);
  }
}

std::string EncodePollingPayload(std::span<const EngineIoPacket> packets) {
  std::string out;
  for (size_t i = 0; i < packets.size(); ++i) {
    if (i > 0) {
      out.push_back(kEngineIoRecordSeparator);
    }
    AppendEngineIoText(packets[i], out);
  }
  return out;
}

std::string EncodeOpenPacket(const EngineIoOpen& open) {
  // Insertion-ordered: clients and tests compare the exact string.
  nlohmann::ordered_json json;
  json["sid"] = open.sid;
  json["upgrades"] = nlohmann::ordered_json::array();
  for (const std::string& upgrade : open.upgrades) {
    json["upgrades"].push_back(upgrade);
  }
  json["pingInterval"] = open.ping_interval_ms;
  json["pingTimeout"] = open.ping_timeout_ms;
  json["maxPayload"] = open.max_payload;
  std::string out(1, '0');
  out.append(json.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
  return out;
}

const char* EngineIoRequestErrorMessage(EngineIoRequestError error) {
  switch (error) {
    case EngineIoRequestError::kUnknownTransport:
      return "Transport unknown";
    case EngineIoRequestError::kUnknownSid:
      return "Session ID unknown";
    case EngineIoRequestError::kBadHandshakeMethod:
      return "Bad handshake method";
    case EngineIoRequestError::kBadRequest:
      return "Bad request";
    case EngineIoRequestError::kForbidden:
      return "Forbidden";
    case EngineIoRequestError::kUnsupportedProtocolVersion:
      return "Unsupported protocol version";
  }
  return "Bad request";
}

int EngineIoRequestErrorStatus(EngineIoRequestError error) {
  return error == EngineIoRequestError::kForbidden ? 403 : 400;
}

std::string EncodeEngineIoRequestError(EngineIoRequestError error) {
  std::string out = "{\"code\":";
  out.append(std::to_string(static_cast<int>(error)));
  out.append(",\"message\":\"");
  out.append(EngineIoRequestErrorMessage(error));  // constant ASCII, nothing to escape
  out.append("\"}");
  return out;
}

}  // namespace turnkey::signal
