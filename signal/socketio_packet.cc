#include "signal/socketio_packet.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <utility>

#include "base/json_depth.h"
#include "base/json_parse.h"
#include "base/utf8.h"

namespace turnkey::signal {

namespace {

constexpr std::string_view kReservedEvents[] = {
    "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener",
};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool IsBinaryType(SocketIoPacketType type) {
  return type == SocketIoPacketType::kBinaryEvent || type == SocketIoPacketType::kBinaryAck;
}

// What comes before a packet's data: the type digit, the attachment count
// and "-" for the binary types, the namespace and "," unless it is the
// default (an empty one counts as "/", as in socket.io-parser's
// encodeAsString), then the ack id.
void AppendPacketHead(std::string& out, SocketIoPacketType type, size_t attachments,
                      std::string_view nsp, std::optional<uint64_t> id) {
  out.push_back(static_cast<char>('0' + static_cast<int>(type)));
  if (IsBinaryType(type)) {
    out.append(std::to_string(attachments));
    out.push_back('-');
  }
  if (!nsp.empty() && nsp != "/") {
    out.append(nsp);
    out.push_back(',');
  }
  if (id) {
    out.append(std::to_string(*id));
  }
}

// socket.io-parser isPayloadValid (section 1.9.2 step 5).
bool IsPayloadValid(SocketIoPacketType type, const Json& payload, bool allow_reserved) {
  switch (type) {
    case SocketIoPacketType::kConnect:
      return payload.is_object();
    case SocketIoPacketType::kDisconnect:
      return false;  // DISCONNECT carries no payload at all
    case SocketIoPacketType::kConnectError:
      return payload.is_string() || payload.is_object();
    case SocketIoPacketType::kEvent:
    case SocketIoPacketType::kBinaryEvent: {
      if (!payload.is_array() || payload.empty()) {
        return false;
      }
      const Json& name = payload.front();
      return name.is_number() ||
             (name.is_string() &&
              (allow_reserved || !IsReservedEventName(name.get_ref<const std::string&>())));
    }
    case SocketIoPacketType::kAck:
    case SocketIoPacketType::kBinaryAck:
      return payload.is_array();
  }
  return false;
}

// The attachment index a placeholder's "num" names, if it is a whole number
// in range (JS compares numbers, so 1.0 names attachment 1).
std::optional<size_t> PlaceholderIndex(const Json& num, size_t count) {
  if (num.is_number_unsigned()) {
    uint64_t k = num.get<uint64_t>();
    return k < count ? std::optional<size_t>(k) : std::nullopt;
  }
  if (num.is_number_integer()) {
    int64_t k = num.get<int64_t>();
    return k >= 0 && static_cast<uint64_t>(k) < count ? std::optional<size_t>(k) : std::nullopt;
  }
  if (num.is_number_float()) {
    double k = num.get<double>();
    if (k >= 0 && k < static_cast<double>(count) && std::floor(k) == k) {
      return static_cast<size_t>(k);
    }
  }
  return std::nullopt;
}

std::expected<void, SocketIoError> Resolve(Json& node, std::span<const base::Bytes> attachments) {
  if (node.is_object()) {
    auto flag = node.find("_placeholder");
    if (flag != node.end() && flag->is_boolean() && flag->get<bool>()) {
      auto num = node.find("num");
      std::optional<size_t> index =
          num == node.end() ? std::nullopt : PlaceholderIndex(*num, attachments.size());
      if (!index) {
        return std::unexpected(SocketIoError::kBadPlaceholder);
      }
      node = Json::binary(attachments[*index]);
      return {};
    }
  }
  if (node.is_object() || node.is_array()) {
    for (Json& child : node) {
      if (auto resolved = Resolve(child, attachments); !resolved) {
        return resolved;
      }
    }
  }
  return {};
}

// Replaces binary values with placeholders, depth first, moving their bytes
// to `attachments` (socket.io-parser deconstructPacket).
void Extract(Json& node, std::vector<base::Bytes>& attachments) {
  if (node.is_binary()) {
    const Json::binary_t& bytes = node.get_binary();
    Json placeholder;
    placeholder["_placeholder"] = true;
    placeholder["num"] = attachments.size();
    attachments.emplace_back(bytes.begin(), bytes.end());
    node = std::move(placeholder);
    return;
  }
  if (node.is_object() || node.is_array()) {
    for (Json& child : node) {
      Extract(child, attachments);
    }
  }
}

bool ContainsBinary(const Json& node) {
  if (node.is_binary()) {
    return true;
  }
  if (node.is_object() || node.is_array()) {
    for (const Json& child : node) {
      if (ContainsBinary(child)) {
        return true;
      }
    }
  }
  return false;
}

}  // namespace

const char* SocketIoPacketTypeName(SocketIoPacketType type) {
  switch (type) {
    case SocketIoPacketType::kConnect:
      return "CONNECT";
    case SocketIoPacketType::kDisconnect:
      return "DISCONNECT";
    case SocketIoPacketType::kEvent:
      return "EVENT";
    case SocketIoPacketType::kAck:
      return "ACK";
    case SocketIoPacketType::kConnectError:
      return "CONNECT_ERROR";
    case SocketIoPacketType::kBinaryEvent:
      return "BINARY_EVENT";
    case SocketIoPacketType::kBinaryAck:
      return "BINARY_ACK";
  }
  return "UNKNOWN";
}

bool IsReservedEventName(std::string_view name) {
  for (std::string_view reserved : kReservedEvents) {
    if (name == reserved) {
      return true;
    }
  }
  return false;
}

SocketIoPacket SocketIoPacket::Connect(std::string nsp, std::optional<Json> data) {
  SocketIoPacket packet;
  packet.type = SocketIoPacketType::kConnect;
  packet.nsp = std::move(nsp);
  packet.data = std::move(data);
  return packet;
}

SocketIoPacket SocketIoPacket::Disconnect(std::string nsp) {
  SocketIoPacket packet;
  packet.type = SocketIoPacketType::kDisconnect;
  packet.nsp = std::move(nsp);
  return packet;
}

SocketIoPacket SocketIoPacket::Event(std::string nsp, Json args, std::optional<uint64_t> id) {
  SocketIoPacket packet;
  packet.type = SocketIoPacketType::kEvent;
  packet.nsp = std::move(nsp);
  packet.id = id;
  packet.data = std::move(args);
  return packet;
}

SocketIoPacket SocketIoPacket::Ack(std::string nsp, uint64_t id, Json args) {
  SocketIoPacket packet;
  packet.type = SocketIoPacketType::kAck;
  packet.nsp = std::move(nsp);
  packet.id = id;
  packet.data = std::move(args);
  return packet;
}

SocketIoPacket SocketIoPacket::ConnectError(std::string nsp, std::string_view message,
                                            std::optional<Json> data) {
  Json body = Json::object();
  body["message"] = std::string(message);
  if (data) {
    body["data"] = std::move(*data);
  }
  SocketIoPacket packet;
  packet.type = SocketIoPacketType::kConnectError;
  packet.nsp = std::move(nsp);
  packet.data = std::move(body);
  return packet;
}

std::optional<std::string_view> SocketIoPacket::event_name() const {
  if (!is_event() || !data || !data->is_array() || data->empty() || !data->front().is_string()) {
    return std::nullopt;
  }
  return std::string_view(data->front().get_ref<const std::string&>());
}

const char* SocketIoErrorText(SocketIoError error) {
  switch (error) {
    case SocketIoError::kEmpty:
      return "empty Socket.IO packet";
    case SocketIoError::kUnknownType:
      return "unknown Socket.IO packet type";
    case SocketIoError::kBadAttachments:
      return "illegal attachments";
    case SocketIoError::kTooManyAttachments:
      return "too many attachments";
    case SocketIoError::kBadAckId:
      return "ack id out of range";
    case SocketIoError::kTooDeep:
      return "payload nested too deeply";
    case SocketIoError::kBadJson:
      return "payload is not JSON";
    case SocketIoError::kInvalidPayload:
      return "invalid payload";
    case SocketIoError::kUnexpectedText:
      return "got plaintext data when reconstructing a packet";
    case SocketIoError::kUnexpectedBinary:
      return "got binary data when not reconstructing a packet";
    case SocketIoError::kBadPlaceholder:
      return "illegal attachments";
  }
  return "unknown Socket.IO error";
}

std::expected<SocketIoPacket, SocketIoError> DecodeSocketIoText(
    std::string_view text, const SocketIoDecoderOptions& options) {
  if (text.empty()) {
    return std::unexpected(SocketIoError::kEmpty);
  }
  if (text[0] < '0' || text[0] > '6') {
    return std::unexpected(SocketIoError::kUnknownType);
  }
  SocketIoPacket packet;
  packet.type = static_cast<SocketIoPacketType>(text[0] - '0');
  size_t pos = 1;  // the next character to read

  // Step 2: "<count>-" for binary types.
  if (IsBinaryType(packet.type)) {
    const size_t dash = text.find('-', pos);
    if (dash == std::string_view::npos || dash == pos) {
      return std::unexpected(SocketIoError::kBadAttachments);
    }
    size_t count = 0;
    for (size_t i = pos; i < dash; ++i) {
      if (!IsDigit(text[i])) {
        return std::unexpected(SocketIoError::kBadAttachments);
      }
      count = count * 10 + static_cast<size_t>(text[i] - '0');
      if (count > options.max_attachments) {
        return std::unexpected(SocketIoError::kTooManyAttachments);
      }
    }
    packet.attachments = count;
    pos = dash + 1;
  }

  // Step 3: a namespace runs from '/' to the next ',' (consumed) or the end.
  if (pos < text.size() && text[pos] == '/') {
    const size_t comma = text.find(',', pos);
    if (comma == std::string_view::npos) {
      packet.nsp.assign(text.substr(pos));
      pos = text.size();
    } else {
      packet.nsp.assign(text.substr(pos, comma - pos));
      pos = comma + 1;
    }
  }

  // Step 4: the maximal run of digits is the ack id.
  if (pos < text.size() && IsDigit(text[pos])) {
    uint64_t id = 0;
    for (; pos < text.size() && IsDigit(text[pos]); ++pos) {
      const uint64_t digit = static_cast<uint64_t>(text[pos] - '0');
      if (id > (std::numeric_limits<uint64_t>::max() - digit) / 10) {
        return std::unexpected(SocketIoError::kBadAckId);
      }
      id = id * 10 + digit;
    }
    packet.id = id;
  }

  // Step 5: whatever remains is the JSON payload.
  if (pos < text.size()) {
    const std::string_view payload = text.substr(pos);
    if (packet.type == SocketIoPacketType::kDisconnect) {
      return std::unexpected(SocketIoError::kInvalidPayload);
    }
    if (base::JsonDepth(payload, options.max_depth) > options.max_depth) {
      return std::unexpected(SocketIoError::kTooDeep);
    }
    // The reference's test is JSON.parse: lone surrogate escapes are taken
    // (as U+FFFD), a NUL byte is not (base::ParseJson).
    std::optional<Json> read = base::ParseJson<Json>(payload);
    if (!read) {
      return std::unexpected(SocketIoError::kBadJson);
    }
    Json parsed = std::move(*read);
    if (!IsPayloadValid(packet.type, parsed, options.allow_reserved_event_names)) {
      return std::unexpected(SocketIoError::kInvalidPayload);
    }
    packet.data = std::move(parsed);
  } else if (packet.is_event()) {
    // An EVENT without payload has no name to dispatch on.
    return std::unexpected(SocketIoError::kInvalidPayload);
  }
  return packet;
}

std::expected<void, SocketIoError> ResolveSocketIoAttachments(
    SocketIoPacket& packet, std::span<const base::Bytes> attachments) {
  // Only BINARY_EVENT / BINARY_ACK carry placeholders; in any other packet an
  // object that looks like one is plain data (socketio.md, binary events).
  if (!packet.data || !IsBinaryType(packet.type)) {
    return {};
  }
  return Resolve(*packet.data, attachments);
}

SocketIoDecoder::Result SocketIoDecoder::AddText(std::string_view text) {
  if (pending_) {
    Reset();
    return std::unexpected(SocketIoError::kUnexpectedText);
  }
  auto packet = DecodeSocketIoText(text, options_);
  if (!packet) {
    return std::unexpected(packet.error());
  }
  if (!IsBinaryType(packet->type)) {
    return std::optional<SocketIoPacket>(std::move(*packet));
  }
  pending_ = std::make_unique<SocketIoPacket>(std::move(*packet));
  buffers_.clear();
  buffers_.reserve(pending_->attachments);
  if (pending_->attachments == 0) {
    return Complete();
  }
  return std::optional<SocketIoPacket>();
}

SocketIoDecoder::Result SocketIoDecoder::AddBinary(base::ByteView bytes) {
  if (!pending_) {
    return std::unexpected(SocketIoError::kUnexpectedBinary);
  }
  buffers_.emplace_back(bytes.begin(), bytes.end());
  if (buffers_.size() < pending_->attachments) {
    return std::optional<SocketIoPacket>();
  }
  return Complete();
}

void SocketIoDecoder::Reset() {
  pending_.reset();
  buffers_ = {};  // an idle connection keeps no attachment capacity
}

SocketIoDecoder::Result SocketIoDecoder::Complete() {
  SocketIoPacket packet = std::move(*pending_);
  auto resolved = ResolveSocketIoAttachments(packet, buffers_);
  Reset();
  if (!resolved) {
    return std::unexpected(resolved.error());
  }
  return std::optional<SocketIoPacket>(std::move(packet));
}

EncodedSocketIoPacket EncodeSocketIoPacket(const SocketIoPacket& packet) {
  EncodedSocketIoPacket out;
  SocketIoPacketType type = packet.type;
  // The data as written: the packet's own, or a copy with its binary values
  // swapped for placeholders (only packets that carry any pay for the copy).
  const Json* data = packet.data ? &*packet.data : nullptr;
  std::optional<Json> extracted;
  if ((packet.is_event() || packet.is_ack()) && data != nullptr && ContainsBinary(*data)) {
    extracted = *data;
    Extract(*extracted, out.attachments);
    data = &*extracted;
  }
  if (packet.is_event() || packet.is_ack()) {
    const bool binary = !out.attachments.empty();
    if (packet.is_event()) {
      type = binary ? SocketIoPacketType::kBinaryEvent : SocketIoPacketType::kEvent;
    } else {
      type = binary ? SocketIoPacketType::kBinaryAck : SocketIoPacketType::kAck;
    }
  }
  AppendPacketHead(out.text, type, out.attachments.size(), packet.nsp, packet.id);
  // JSON null is not written, as `null != obj.data` skips it in the reference.
  if (data != nullptr && !data->is_null()) {
    AppendJson(out.text, *data);
  }
  return out;
}

namespace {

void AppendStringValue(std::string& out, std::string_view text);

// AppendSocketIoEventText / AppendSocketIoAckText: the head, then the array of `event` (if any)
// and the arguments.
bool AppendArgsText(std::string& out, SocketIoPacketType type, std::string_view nsp,
                    std::optional<std::string_view> event, const Json& args,
                    std::optional<uint64_t> id) {
  if (ContainsBinary(args)) {
    return false;
  }
  AppendPacketHead(out, type, 0, nsp, id);
  out.push_back('[');
  bool first = true;
  if (event) {
    AppendStringValue(out, *event);
    first = false;
  }
  auto append = [&](const Json& arg) {
    if (!first) {
      out.push_back(',');
    }
    first = false;
    AppendJson(out, arg);
  };
  if (args.is_array()) {
    for (const Json& arg : args) {
      append(arg);
    }
  } else {
    append(args);
  }
  out.push_back(']');
  return true;
}

}  // namespace

bool AppendSocketIoEventText(std::string& out, std::string_view nsp, std::string_view event,
                             const Json& args, std::optional<uint64_t> id) {
  return AppendArgsText(out, SocketIoPacketType::kEvent, nsp, event, args, id);
}

bool AppendSocketIoAckText(std::string& out, std::string_view nsp, uint64_t id, const Json& args) {
  return AppendArgsText(out, SocketIoPacketType::kAck, nsp, std::nullopt, args, id);
}

namespace {

// nlohmann's own output for `json`, for the rare values AppendJson leaves
// to it: floating-point numbers, binary values, strings that are not UTF-8.
void AppendByNlohmann(std::string& out, const Json& json) {
  out.append(json.dump(-1, ' ', false, Json::error_handler_t::replace));
}

// Bytes a JSON string holds as they are: not '"', '\\' or a C0 control
// (JSON.stringify, and nlohmann with ensure_ascii off, escape only those).
constexpr std::array<bool, 256> kPlainJsonByte = [] {
  std::array<bool, 256> plain{};
  for (size_t c = 0x20; c < 256; ++c) {
    plain[c] = c != '"' && c != '\\';
  }
  return plain;
}();

// `text` as a JSON string. Well-formed UTF-8 is copied in runs between the
// bytes to escape; anything else is written as nlohmann writes it (each
// ill-formed sequence becomes U+FFFD by its rules).
void AppendStringValue(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  const size_t start = out.size();
  out.push_back('"');
  bool ascii = true;
  size_t run = 0;  // text[run, i) is still to copy
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (kPlainJsonByte[c]) {
      ascii = ascii && c < 0x80;
      continue;
    }
    out.append(text.substr(run, i - run));
    run = i + 1;
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default: {
        const char escape[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out.append(escape, sizeof escape);
      }
    }
  }
  if (!ascii && !base::IsValidUtf8(text)) {
    out.resize(start);
    AppendByNlohmann(out, Json(std::string(text)));
    return;
  }
  out.append(text.substr(run));
  out.push_back('"');
}

template <typename Integer>
void AppendInteger(std::string& out, Integer value) {
  char digits[24];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
  out.append(digits, end);
}

// A double as JSON.stringify writes it (ECMAScript Number::toString): the
// shortest digits that read back as the same double, then no exponent from
// 1e-6 up to below 1e21 ("1", "100000", "0.000001", never "1.0"), and
// otherwise "d.ddde+N" / "de-N" (no padded exponent: "1e-7", not "1e-07").
// What the reference server sends for a number it has parsed. Not finite
// (never from a parse): null, as JSON.stringify writes it.
void AppendJsNumber(std::string& out, double value) {
  if (!std::isfinite(value)) {
    out.append("null");
    return;
  }
  if (value == 0) {
    out.push_back('0');  // -0 too
    return;
  }
  char text[40];
  const auto [end, ec] =
      std::to_chars(text, text + sizeof text, value, std::chars_format::scientific);
  std::string_view scientific(text, static_cast<size_t>(end - text));  // "-d.ddde+XX"
  if (scientific.front() == '-') {
    out.push_back('-');
    scientific.remove_prefix(1);
  }
  const size_t e = scientific.find('e');
  std::string_view exponent_text = scientific.substr(e + 1);
  if (exponent_text.front() == '+') {
    exponent_text.remove_prefix(1);
  }
  int exponent = 0;
  std::from_chars(exponent_text.data(), exponent_text.data() + exponent_text.size(), exponent);
  char digits[24];
  size_t k = 0;
  for (char c : scientific.substr(0, e)) {
    if (c != '.') {
      digits[k++] = c;
    }
  }
  const std::string_view d(digits, k);
  // The value is 0.d * 10^n.
  const int n = exponent + 1;
  if (static_cast<int>(k) <= n && n <= 21) {
    out.append(d).append(static_cast<size_t>(n) - k, '0');
  } else if (0 < n && n <= 21) {
    out.append(d.substr(0, static_cast<size_t>(n))).push_back('.');
    out.append(d.substr(static_cast<size_t>(n)));
  } else if (-6 < n && n <= 0) {
    out.append("0.").append(static_cast<size_t>(-n), '0').append(d);
  } else {
    out.push_back(d.front());
    if (k > 1) {
      out.push_back('.');
      out.append(d.substr(1));
    }
    out.append(n - 1 < 0 ? "e-" : "e+");
    AppendInteger(out, n - 1 < 0 ? 1 - n : n - 1);
  }
}

}  // namespace

void AppendJson(std::string& out, const Json& json) {
  switch (json.type()) {
    case Json::value_t::null:
      out.append("null");
      return;
    case Json::value_t::boolean:
      out.append(json.get<bool>() ? "true" : "false");
      return;
    case Json::value_t::number_integer:
      AppendInteger(out, json.get<int64_t>());
      return;
    case Json::value_t::number_unsigned:
      AppendInteger(out, json.get<uint64_t>());
      return;
    case Json::value_t::string:
      AppendStringValue(out, json.get_ref<const std::string&>());
      return;
    case Json::value_t::array: {
      out.push_back('[');
      bool first = true;
      for (const Json& element : json) {
        if (!first) {
          out.push_back(',');
        }
        first = false;
        AppendJson(out, element);
      }
      out.push_back(']');
      return;
    }
    case Json::value_t::object: {
      out.push_back('{');
      bool first = true;
      for (const auto& [key, value] : json.get_ref<const Json::object_t&>()) {
        if (!first) {
          out.push_back(',');
        }
        first = false;
        AppendStringValue(out, key);
        out.push_back(':');
        AppendJson(out, value);
      }
      out.push_back('}');
      return;
    }
    case Json::value_t::number_float:
      AppendJsNumber(out, json.get<double>());
      return;
    case Json::value_t::binary:
    case Json::value_t::discarded:
      AppendByNlohmann(out, json);
      return;
  }
}

std::string DumpJson(const Json& json) {
  std::string out;
  AppendJson(out, json);
  return out;
}

}  // namespace turnkey::signal
