#include "stun/message_builder.h"

#include <algorithm>
#include <array>

#include "base/crypto.h"
#include "stun/integrity.h"

namespace turnkey::stun {

using base::AppendBe16;
using base::AppendBe32;
using base::ByteView;

namespace {

// Room reserved up front so typical responses are built without growing the
// buffer; only applied when the caller's buffer is short of it, and doubled so
// a caller building many messages back to back keeps amortized growth.
constexpr size_t kInitialReserve = 256;

bool IsErrorCode(uint16_t code) { return code >= 300 && code <= 699; }

}  // namespace

const char* BuildErrorText(BuildError error) {
  switch (error) {
    case BuildError::kNone: return "ok";
    case BuildError::kTooLong: return "value or message too long";
    case BuildError::kBadValue: return "invalid attribute value";
    case BuildError::kAfterIntegrity: return "attribute after MESSAGE-INTEGRITY";
    case BuildError::kAfterFingerprint: return "attribute after FINGERPRINT";
  }
  return "unknown build error";
}

MessageBuilder::MessageBuilder(base::Bytes& out, Method method, MessageClass cls,
                               const TransactionId& transaction_id)
    : out_(out), start_(out.size()), transaction_id_(transaction_id) {
  if (out_.capacity() - out_.size() < kInitialReserve) {
    out_.reserve(std::max(out_.size() + kInitialReserve, out_.capacity() * 2));
  }
  AppendBe16(out_, MessageType(method, cls));
  AppendBe16(out_, 0);
  AppendBe32(out_, kMagicCookie);
  out_.insert(out_.end(), transaction_id_.begin(), transaction_id_.end());
}

MessageBuilder MessageBuilder::SuccessResponse(base::Bytes& out, const Message& request) {
  return MessageBuilder(out, request.method(), MessageClass::kSuccessResponse,
                        request.transaction_id());
}

MessageBuilder MessageBuilder::ErrorResponse(base::Bytes& out, const Message& request,
                                             uint16_t code, std::string_view reason) {
  MessageBuilder b(out, request.method(), MessageClass::kErrorResponse, request.transaction_id());
  b.AddErrorCode(code, reason);
  if (code == error_code::kUnknownAttribute && !request.unknown_required().empty()) {
    b.AddUnknownAttributes(request.unknown_required());
  }
  return b;
}

MessageBuilder MessageBuilder::UnknownAttributesResponse(base::Bytes& out, const Message& request,
                                                         std::span<const uint16_t> unknown) {
  MessageBuilder b(out, request.method(), MessageClass::kErrorResponse, request.transaction_id());
  b.AddErrorCode(error_code::kUnknownAttribute);
  b.AddUnknownAttributes(unknown);
  return b;
}

void MessageBuilder::SetLength(size_t body_length) {
  base::StoreBe16(out_.data() + start_ + 2, static_cast<uint16_t>(body_length));
}

bool MessageBuilder::Begin(uint16_t type, size_t value_length) {
  if (!ok()) {
    return false;
  }
  const bool is_fingerprint = type == static_cast<uint16_t>(AttributeType::kFingerprint);
  const bool is_mi_sha256 = type == static_cast<uint16_t>(AttributeType::kMessageIntegritySha256);
  // RFC 8489 s14.5-14.7: receivers ignore what follows the integrity
  // attributes (except the ones allowed there) and reject anything after
  // FINGERPRINT, so adding it would be our bug.
  switch (stage_) {
    case Stage::kOpen: break;
    case Stage::kAfterIntegrity:
      if (!is_fingerprint && !is_mi_sha256) {
        Fail(BuildError::kAfterIntegrity);
        return false;
      }
      break;
    case Stage::kAfterIntegritySha256:
      if (!is_fingerprint) {
        Fail(BuildError::kAfterIntegrity);
        return false;
      }
      break;
    case Stage::kSealed: Fail(BuildError::kAfterFingerprint); return false;
  }
  const size_t body = size() - kHeaderSize;
  if (value_length > kMaxBodySize ||
      body + kAttributeHeaderSize + Pad4(value_length) > kMaxBodySize) {
    Fail(BuildError::kTooLong);
    return false;
  }
  return true;
}

void MessageBuilder::Finish(size_t value_length) {
  out_.insert(out_.end(), Pad4(value_length) - value_length, uint8_t{0});
  SetLength(size() - kHeaderSize);
}

void MessageBuilder::AddAttribute(uint16_t type, ByteView value) {
  if (!Begin(type, value.size())) {
    return;
  }
  AppendBe16(out_, type);
  AppendBe16(out_, static_cast<uint16_t>(value.size()));
  out_.insert(out_.end(), value.begin(), value.end());
  Finish(value.size());
}

void MessageBuilder::AddAddressImpl(AttributeType type, const base::SocketAddress& addr,
                                    bool xor_mask) {
  // RFC 8489 s14.1/14.2: reserved byte, family, port, address.
  std::array<uint8_t, 20> v{};
  size_t n = 0;
  uint16_t port = addr.port();
  if (xor_mask) {
    port ^= static_cast<uint16_t>(kMagicCookie >> 16);
  }
  base::StoreBe16(v.data() + 2, port);
  std::array<uint8_t, 16> mask{};
  if (xor_mask) {
    base::StoreBe32(mask.data(), kMagicCookie);
    std::copy(transaction_id_.begin(), transaction_id_.end(), mask.begin() + 4);
  }
  if (addr.is_v4()) {
    v[1] = static_cast<uint8_t>(AddressFamily::kIpv4);
    n = 8;
  } else if (addr.is_v6()) {
    v[1] = static_cast<uint8_t>(AddressFamily::kIpv6);
    n = 20;
  } else {
    Fail(BuildError::kBadValue);
    return;
  }
  for (size_t i = 0; i < addr.size(); ++i) {
    v[4 + i] = addr.bytes()[i] ^ mask[i];
  }
  AddAttribute(type, ByteView(v.data(), n));
}

void MessageBuilder::AddAddress(AttributeType type, const base::SocketAddress& addr) {
  AddAddressImpl(type, addr, false);
}

void MessageBuilder::AddXorAddress(AttributeType type, const base::SocketAddress& addr) {
  AddAddressImpl(type, addr, true);
}

void MessageBuilder::AddUserhash(ByteView hash) {
  if (hash.size() != kUserhashSize) {
    Fail(BuildError::kBadValue);
    return;
  }
  AddAttribute(AttributeType::kUserhash, hash);
}

void MessageBuilder::AddPasswordAlgorithm(PasswordAlgorithmId id, ByteView params) {
  // RFC 8489 s14.12: algorithm, parameter length, parameters padded to 4.
  const size_t n = 4 + Pad4(params.size());
  if (!Begin(static_cast<uint16_t>(AttributeType::kPasswordAlgorithm), n)) {
    return;
  }
  AppendBe16(out_, static_cast<uint16_t>(AttributeType::kPasswordAlgorithm));
  AppendBe16(out_, static_cast<uint16_t>(n));
  AppendBe16(out_, static_cast<uint16_t>(id));
  AppendBe16(out_, static_cast<uint16_t>(params.size()));
  out_.insert(out_.end(), params.begin(), params.end());
  out_.insert(out_.end(), Pad4(params.size()) - params.size(), uint8_t{0});
  Finish(n);
}

void MessageBuilder::AddPasswordAlgorithms(std::span<const PasswordAlgorithm> algorithms) {
  // RFC 8489 s14.11: the entries of s14.12 back to back, each padded.
  size_t n = 0;
  for (const PasswordAlgorithm& alg : algorithms) {
    n += 4 + Pad4(alg.params.size());
  }
  if (!Begin(static_cast<uint16_t>(AttributeType::kPasswordAlgorithms), n)) {
    return;
  }
  AppendBe16(out_, static_cast<uint16_t>(AttributeType::kPasswordAlgorithms));
  AppendBe16(out_, static_cast<uint16_t>(n));
  for (const PasswordAlgorithm& alg : algorithms) {
    AppendBe16(out_, static_cast<uint16_t>(alg.id));
    AppendBe16(out_, static_cast<uint16_t>(alg.params.size()));
    out_.insert(out_.end(), alg.params.begin(), alg.params.end());
    out_.insert(out_.end(), Pad4(alg.params.size()) - alg.params.size(), uint8_t{0});
  }
  Finish(n);
}

void MessageBuilder::AddErrorCode(uint16_t code, std::string_view reason) {
  // RFC 8489 s14.8: 21 reserved zero bits, class (hundreds), number (rest).
  AddCodeAttribute(AttributeType::kErrorCode, 0, code, reason);
}

void MessageBuilder::AddCodeAttribute(AttributeType type, uint8_t first_byte, uint16_t code,
                                      std::string_view reason) {
  if (!IsErrorCode(code)) {
    Fail(BuildError::kBadValue);
    return;
  }
  if (reason.empty()) {
    reason = DefaultReasonPhrase(code);
  }
  if (reason.size() > kMaxTextSize) {
    Fail(BuildError::kTooLong);
    return;
  }
  const size_t n = 4 + reason.size();
  if (!Begin(static_cast<uint16_t>(type), n)) {
    return;
  }
  AppendBe16(out_, static_cast<uint16_t>(type));
  AppendBe16(out_, static_cast<uint16_t>(n));
  out_.push_back(first_byte);
  out_.push_back(0);
  out_.push_back(static_cast<uint8_t>(code / 100));
  out_.push_back(static_cast<uint8_t>(code % 100));
  out_.insert(out_.end(), reason.begin(), reason.end());
  Finish(n);
}

void MessageBuilder::AddUnknownAttributes(std::span<const uint16_t> types) {
  const size_t n = types.size() * 2;
  if (!Begin(static_cast<uint16_t>(AttributeType::kUnknownAttributes), n)) {
    return;
  }
  AppendBe16(out_, static_cast<uint16_t>(AttributeType::kUnknownAttributes));
  AppendBe16(out_, static_cast<uint16_t>(n));
  for (uint16_t t : types) {
    AppendBe16(out_, t);
  }
  Finish(n);
}

void MessageBuilder::AddLifetime(uint32_t seconds) {
  std::array<uint8_t, 4> v;
  base::StoreBe32(v.data(), seconds);
  AddAttribute(AttributeType::kLifetime, v);
}

void MessageBuilder::AddRequestedTransport(uint8_t protocol) {
  // RFC 8656 s18.8: protocol, then 24 RFFU bits sent as zero.
  const std::array<uint8_t, 4> v{protocol, 0, 0, 0};
  AddAttribute(AttributeType::kRequestedTransport, v);
}

void MessageBuilder::AddFamilyAttribute(AttributeType type, AddressFamily family) {
  const std::array<uint8_t, 4> v{static_cast<uint8_t>(family), 0, 0, 0};
  AddAttribute(type, v);
}

void MessageBuilder::AddRequestedAddressFamily(AddressFamily family) {
  AddFamilyAttribute(AttributeType::kRequestedAddressFamily, family);
}

void MessageBuilder::AddAdditionalAddressFamily(AddressFamily family) {
  AddFamilyAttribute(AttributeType::kAdditionalAddressFamily, family);
}

void MessageBuilder::AddAddressErrorCode(AddressFamily family, uint16_t code,
                                         std::string_view reason) {
  // RFC 8656 s18.12: family, 13 reserved bits, class, number, reason.
  AddCodeAttribute(AttributeType::kAddressErrorCode, static_cast<uint8_t>(family), code, reason);
}

void MessageBuilder::AddChannelNumber(uint16_t channel) {
  // RFC 8656 s18.1: number, then 16 RFFU bits sent as zero.
  std::array<uint8_t, 4> v{};
  base::StoreBe16(v.data(), channel);
  AddAttribute(AttributeType::kChannelNumber, v);
}

void MessageBuilder::AddEvenPort(bool reserve_next) {
  // RFC 8656 s18.7: one byte, R in the top bit; the attribute is padded.
  const std::array<uint8_t, 1> v{static_cast<uint8_t>(reserve_next ? 0x80 : 0x00)};
  AddAttribute(AttributeType::kEvenPort, v);
}

void MessageBuilder::AddChangeRequest(bool change_ip, bool change_port) {
  // RFC 5780 s7.2: 32 bits, A (change IP) = 0x4 and B (change port) = 0x2 of
  // the last byte.
  const std::array<uint8_t, 4> v{
      0, 0, 0, static_cast<uint8_t>((change_ip ? 0x04 : 0) | (change_port ? 0x02 : 0))};
  AddAttribute(AttributeType::kChangeRequest, v);
}

void MessageBuilder::AddResponsePort(uint16_t port) {
  // RFC 5780 s7.5: the port, then 2 bytes of padding.
  std::array<uint8_t, 4> v{};
  base::StoreBe16(v.data(), port);
  AddAttribute(AttributeType::kResponsePort, v);
}

void MessageBuilder::AddReservationToken(uint64_t token) {
  std::array<uint8_t, kReservationTokenSize> v;
  base::StoreBe64(v.data(), token);
  AddAttribute(AttributeType::kReservationToken, v);
}

void MessageBuilder::AddIcmp(uint8_t type, uint16_t code, uint32_t error_data) {
  // RFC 8656 s18.13: 16 reserved bits, 7-bit type, 9-bit code, error data.
  if (type > 0x7F || code > 0x1FF) {
    Fail(BuildError::kBadValue);
    return;
  }
  std::array<uint8_t, 8> v{};
  base::StoreBe16(v.data() + 2, static_cast<uint16_t>((uint16_t{type} << 9) | code));
  base::StoreBe32(v.data() + 4, error_data);
  AddAttribute(AttributeType::kIcmp, v);
}

void MessageBuilder::AddMessageIntegrity(ByteView key) {
  constexpr uint16_t kType = static_cast<uint16_t>(AttributeType::kMessageIntegrity);
  // Only one MESSAGE-INTEGRITY, and never after MESSAGE-INTEGRITY-SHA256
  // (RFC 8489 s14.6 lets only FINGERPRINT follow that).
  if (stage_ == Stage::kAfterIntegrity || stage_ == Stage::kAfterIntegritySha256) {
    Fail(BuildError::kAfterIntegrity);
    return;
  }
  if (!Begin(kType, kMessageIntegritySize)) {
    return;
  }
  // RFC 8489 s14.5: the HMAC covers the message so far, with the header
  // length already counting the MESSAGE-INTEGRITY attribute.
  SetLength(size() - kHeaderSize + kAttributeHeaderSize + kMessageIntegritySize);
  const base::Sha1Digest mac = base::HmacSha1(key, message());
  AppendBe16(out_, kType);
  AppendBe16(out_, static_cast<uint16_t>(kMessageIntegritySize));
  out_.insert(out_.end(), mac.begin(), mac.end());
  Finish(kMessageIntegritySize);
  stage_ = Stage::kAfterIntegrity;
}

void MessageBuilder::AddMessageIntegritySha256(ByteView key, size_t length) {
  constexpr uint16_t kType = static_cast<uint16_t>(AttributeType::kMessageIntegritySha256);
  if (length < kMinMessageIntegritySha256Size || length > kMessageIntegritySha256Size ||
      length % 4 != 0) {
    Fail(BuildError::kBadValue);
    return;
  }
  if (stage_ == Stage::kAfterIntegritySha256) {
    Fail(BuildError::kAfterIntegrity);
    return;
  }
  if (!Begin(kType, length)) {
    return;
  }
  // RFC 8489 s14.6: as s14.5, with HMAC-SHA256 truncated to `length`.
  SetLength(size() - kHeaderSize + kAttributeHeaderSize + length);
  const base::Sha256Digest mac = base::HmacSha256(key, message());
  AppendBe16(out_, kType);
  AppendBe16(out_, static_cast<uint16_t>(length));
  out_.insert(out_.end(), mac.begin(), mac.begin() + static_cast<std::ptrdiff_t>(length));
  Finish(length);
  stage_ = Stage::kAfterIntegritySha256;
}

void MessageBuilder::AddFingerprint() {
  constexpr uint16_t kType = static_cast<uint16_t>(AttributeType::kFingerprint);
  if (!Begin(kType, kFingerprintSize)) {
    return;
  }
  // RFC 8489 s14.7: CRC over the message so far, length counting FINGERPRINT.
  SetLength(size() - kHeaderSize + kAttributeHeaderSize + kFingerprintSize);
  const uint32_t fp = ComputeFingerprint(message());
  AppendBe16(out_, kType);
  AppendBe16(out_, static_cast<uint16_t>(kFingerprintSize));
  AppendBe32(out_, fp);
  Finish(kFingerprintSize);
  stage_ = Stage::kSealed;
}

}  // namespace turnkey::stun
