#include "stun/attributes.h"

namespace turnkey::stun {

using base::ByteView;
using base::LoadBe16;
using base::LoadBe32;
using base::SocketAddress;

namespace {

// RFC 8489 s14.1: byte 0 reserved (ignored on receipt), byte 1 family,
// bytes 2-3 port, then the address. The length must match the family exactly.
std::optional<SocketAddress> DecodeAddressImpl(ByteView value, const TransactionId* txid) {
  if (value.size() < 4) {
    return std::nullopt;
  }
  const uint8_t family = value[1];
  uint16_t port = LoadBe16(value.data() + 2);
  if (txid != nullptr) {
    port ^= static_cast<uint16_t>(kMagicCookie >> 16);
  }
  if (family == static_cast<uint8_t>(AddressFamily::kIpv4)) {
    if (value.size() != 8) {
      return std::nullopt;
    }
    uint32_t addr = LoadBe32(value.data() + 4);
    if (txid != nullptr) {
      addr ^= kMagicCookie;
    }
    std::array<uint8_t, 4> bytes;
    base::StoreBe32(bytes.data(), addr);
    return SocketAddress::V4(bytes, port);
  }
  if (family == static_cast<uint8_t>(AddressFamily::kIpv6)) {
    if (value.size() != 20) {
      return std::nullopt;
    }
    std::array<uint8_t, 16> bytes;
    for (size_t i = 0; i < 16; ++i) {
      bytes[i] = value[4 + i];
    }
    if (txid != nullptr) {
      // RFC 8489 s14.2: XOR with the 128-bit concatenation of the cookie and
      // the transaction id.
      std::array<uint8_t, 16> mask;
      base::StoreBe32(mask.data(), kMagicCookie);
      for (size_t i = 0; i < kTransactionIdSize; ++i) {
        mask[4 + i] = (*txid)[i];
      }
      for (size_t i = 0; i < 16; ++i) {
        bytes[i] ^= mask[i];
      }
    }
    return SocketAddress::V6(bytes, port);
  }
  return std::nullopt;
}

std::optional<std::string_view> DecodeText(ByteView value, size_t max) {
  if (value.size() > max) {
    return std::nullopt;
  }
  return base::AsString(value);
}

// Shared by ERROR-CODE and ADDRESS-ERROR-CODE: bits 21-23 class, 24-31 number.
std::optional<uint16_t> DecodeClassNumber(const uint8_t* p) {
  const uint8_t cls = p[0] & 0x07;
  const uint8_t number = p[1];
  // RFC 8489 s14.8: class 3..6, number 0..99.
  if (cls < 3 || cls > 6 || number > 99) {
    return std::nullopt;
  }
  return static_cast<uint16_t>(cls * 100 + number);
}

std::optional<AddressFamily> DecodeFamilyAttribute(ByteView value) {
  // RFC 8656 s18.6: family byte, 24 reserved bits (ignored on receipt).
  if (value.size() != 4) {
    return std::nullopt;
  }
  return static_cast<AddressFamily>(value[0]);
}

}  // namespace

std::optional<SocketAddress> DecodeAddress(ByteView value) {
  return DecodeAddressImpl(value, nullptr);
}

std::optional<SocketAddress> DecodeXorAddress(ByteView value, const TransactionId& transaction_id) {
  return DecodeAddressImpl(value, &transaction_id);
}

std::optional<std::string_view> DecodeUsername(ByteView value) {
  return DecodeText(value, kMaxUsernameSize);
}
std::optional<std::string_view> DecodeRealm(ByteView value) {
  return DecodeText(value, kMaxTextSize);
}
std::optional<std::string_view> DecodeNonce(ByteView value) {
  return DecodeText(value, kMaxTextSize);
}
std::optional<std::string_view> DecodeSoftware(ByteView value) {
  return DecodeText(value, kMaxTextSize);
}
std::optional<std::string_view> DecodeAlternateDomain(ByteView value) {
  return DecodeText(value, kMaxTextSize);
}

std::optional<ByteView> DecodeUserhash(ByteView value) {
  if (value.size() != kUserhashSize) {
    return std::nullopt;
  }
  return value;
}

std::optional<ByteView> DecodeMessageIntegrity(ByteView value) {
  if (value.size() != kMessageIntegritySize) {
    return std::nullopt;
  }
  return value;
}

std::optional<ByteView> DecodeMessageIntegritySha256(ByteView value) {
  // RFC 8489 s14.6: may be truncated to no less than 16 bytes, and the length
  // stays a multiple of 4 (so no padding follows it).
  if (value.size() < kMinMessageIntegritySha256Size || value.size() > kMessageIntegritySha256Size ||
      value.size() % 4 != 0) {
    return std::nullopt;
  }
  return value;
}

std::optional<uint32_t> DecodeFingerprint(ByteView value) {
  if (value.size() != kFingerprintSize) {
    return std::nullopt;
  }
  return LoadBe32(value.data());
}

std::optional<PasswordAlgorithm> DecodePasswordAlgorithm(ByteView value) {
  // RFC 8489 s14.12: algorithm (16), parameters length (16), parameters
  // padded to 4. The attribute holds exactly one entry.
  if (value.size() < 4) {
    return std::nullopt;
  }
  const size_t params_length = LoadBe16(value.data() + 2);
  if (Pad4(params_length) != value.size() - 4 && params_length != value.size() - 4) {
    return std::nullopt;
  }
  PasswordAlgorithm alg;
  alg.id = static_cast<PasswordAlgorithmId>(LoadBe16(value.data()));
  alg.params = value.subspan(4, params_length);
  return alg;
}

bool PasswordAlgorithmList::Contains(PasswordAlgorithmId id) const {
  for (const PasswordAlgorithm& alg : algorithms()) {
    if (alg.id == id) {
      return true;
    }
  }
  return false;
}

std::optional<PasswordAlgorithmList> DecodePasswordAlgorithms(ByteView value) {
  // RFC 8489 s14.11: a sequence of (algorithm, params length, params padded
  // to 4). Every entry's padding is inside the value, so the last one ends
  // exactly at the end.
  PasswordAlgorithmList list;
  size_t pos = 0;
  while (pos < value.size()) {
    if (value.size() - pos < 4 || list.count == kMaxPasswordAlgorithms) {
      return std::nullopt;
    }
    const size_t params_length = LoadBe16(value.data() + pos + 2);
    if (Pad4(params_length) > value.size() - pos - 4) {
      return std::nullopt;
    }
    PasswordAlgorithm& alg = list.items[list.count++];
    alg.id = static_cast<PasswordAlgorithmId>(LoadBe16(value.data() + pos));
    alg.params = value.subspan(pos + 4, params_length);
    pos += 4 + Pad4(params_length);
  }
  if (list.count == 0) {
    return std::nullopt;
  }
  return list;
}

std::optional<ErrorCodeValue> DecodeErrorCode(ByteView value) {
  // RFC 8489 s14.8: 21 reserved bits, class (3), number (8), reason phrase.
  if (value.size() < 4 || value.size() - 4 > kMaxTextSize) {
    return std::nullopt;
  }
  auto code = DecodeClassNumber(value.data() + 2);
  if (!code) {
    return std::nullopt;
  }
  return ErrorCodeValue{*code, base::AsString(value.subspan(4))};
}

bool AttributeTypeList::Contains(uint16_t type) const {
  for (size_t i = 0; i < size(); ++i) {
    if ((*this)[i] == type) {
      return true;
    }
  }
  return false;
}

std::optional<AttributeTypeList> DecodeUnknownAttributes(ByteView value) {
  if (value.size() % 2 != 0) {
    return std::nullopt;
  }
  return AttributeTypeList(value);
}

std::optional<uint32_t> DecodeLifetime(ByteView value) {
  if (value.size() != 4) {
    return std::nullopt;
  }
  return LoadBe32(value.data());
}

std::optional<uint8_t> DecodeRequestedTransport(ByteView value) {
  if (value.size() != 4) {
    return std::nullopt;
  }
  return value[0];
}

std::optional<AddressFamily> DecodeRequestedAddressFamily(ByteView value) {
  return DecodeFamilyAttribute(value);
}

std::optional<AddressFamily> DecodeAdditionalAddressFamily(ByteView value) {
  return DecodeFamilyAttribute(value);
}

std::optional<AddressErrorCodeValue> DecodeAddressErrorCode(ByteView value) {
  // RFC 8656 s18.12: family (8), reserved (13), class (3), number (8), reason.
  if (value.size() < 4 || value.size() - 4 > kMaxTextSize) {
    return std::nullopt;
  }
  auto code = DecodeClassNumber(value.data() + 2);
  if (!code) {
    return std::nullopt;
  }
  AddressErrorCodeValue out;
  out.family = static_cast<AddressFamily>(value[0]);
  out.code = *code;
  out.reason = base::AsString(value.subspan(4));
  return out;
}

std::optional<uint16_t> DecodeChannelNumber(ByteView value) {
  if (value.size() != 4) {
    return std::nullopt;
  }
  return LoadBe16(value.data());
}

std::optional<bool> DecodeEvenPort(ByteView value) {
  if (value.size() != 1) {
    return std::nullopt;
  }
  return (value[0] & 0x80) != 0;
}

std::optional<ChangeRequest> DecodeChangeRequest(ByteView value) {
  if (value.size() != 4) {
    return std::nullopt;
  }
  return ChangeRequest{.change_ip = (value[3] & 0x04) != 0, .change_port = (value[3] & 0x02) != 0};
}

std::optional<uint16_t> DecodeResponsePort(ByteView value) {
  if (value.size() != 4) {
    return std::nullopt;
  }
  return LoadBe16(value.data());
}

std::optional<uint64_t> DecodeReservationToken(ByteView value) {
  if (value.size() != kReservationTokenSize) {
    return std::nullopt;
  }
  return base::LoadBe64(value.data());
}

bool DecodeDontFragment(ByteView value) { return value.empty(); }

std::optional<IcmpValue> DecodeIcmp(ByteView value) {
  if (value.size() != 8) {
    return std::nullopt;
  }
  const uint16_t type_code = LoadBe16(value.data() + 2);
  IcmpValue out;
  out.type = static_cast<uint8_t>(type_code >> 9);
  out.code = static_cast<uint16_t>(type_code & 0x01FF);
  out.error_data = LoadBe32(value.data() + 4);
  return out;
}

}  // namespace turnkey::stun
