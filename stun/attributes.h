// Typed decoders for STUN/TURN attribute values.
//
// Each function takes the value of one attribute (Attribute::value, padding
// excluded), checks its length and format, and returns the decoded value or
// nullopt when the value is malformed. None allocates; string and byte results
// are views into the same bytes as the input and share their lifetime.
//
// Absent vs malformed is the caller's distinction: Message::Find says whether
// the attribute is there, the decoder whether it is well formed (a server
// answers 400 to a malformed one). Range checks that are policy rather than
// format (is this channel number usable, is this transport supported) are
// left to the caller, so it can pick the right error code.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "base/address.h"
#include "base/bytes.h"
#include "stun/constants.h"

namespace turnkey::stun {

// Length limits on decoding (RFC 8489 s14.3, s14.8-14.10, s14.14-14.16).
// USERNAME: RFC 8489 says fewer than 509 bytes, RFC 5389 fewer than 513; we
// accept the older bound so RFC 5389 clients keep working.
inline constexpr size_t kMaxUsernameSize = 512;
// REALM, NONCE, SOFTWARE, reason phrases, ALTERNATE-DOMAIN: fewer than 128
// characters, up to 763 bytes when decoding.
inline constexpr size_t kMaxTextSize = 763;
inline constexpr size_t kUserhashSize = 32;
inline constexpr size_t kReservationTokenSize = 8;

// MAPPED-ADDRESS, ALTERNATE-SERVER, RESPONSE-ORIGIN, OTHER-ADDRESS
// (RFC 8489 s14.1): reserved byte, family, port, 4 or 16 address bytes.
std::optional<base::SocketAddress> DecodeAddress(base::ByteView value);

// XOR-MAPPED-ADDRESS, XOR-PEER-ADDRESS, XOR-RELAYED-ADDRESS (RFC 8489 s14.2):
// the port is XORed with the cookie's top 16 bits, an IPv4 address with the
// cookie, an IPv6 address with the cookie followed by the transaction id.
std::optional<base::SocketAddress> DecodeXorAddress(base::ByteView value,
                                                    const TransactionId& transaction_id);

// USERNAME (at most kMaxUsernameSize bytes). Bytes are passed through: no
// SASLprep / OpaqueString processing.
std::optional<std::string_view> DecodeUsername(base::ByteView value);
// REALM, NONCE, SOFTWARE, ALTERNATE-DOMAIN (at most kMaxTextSize bytes).
std::optional<std::string_view> DecodeRealm(base::ByteView value);
std::optional<std::string_view> DecodeNonce(base::ByteView value);
std::optional<std::string_view> DecodeSoftware(base::ByteView value);
std::optional<std::string_view> DecodeAlternateDomain(base::ByteView value);

// USERHASH (RFC 8489 s14.4): exactly 32 bytes.
std::optional<base::ByteView> DecodeUserhash(base::ByteView value);
// MESSAGE-INTEGRITY (RFC 8489 s14.5): exactly 20 bytes.
std::optional<base::ByteView> DecodeMessageIntegrity(base::ByteView value);
// MESSAGE-INTEGRITY-SHA256 (RFC 8489 s14.6): 16 to 32 bytes, a multiple of 4.
std::optional<base::ByteView> DecodeMessageIntegritySha256(base::ByteView value);
// FINGERPRINT (RFC 8489 s14.7): the 32-bit value as sent (CRC-32 XOR 0x5354554e).
std::optional<uint32_t> DecodeFingerprint(base::ByteView value);

// PASSWORD-ALGORITHM (RFC 8489 s14.12). `params` excludes padding.
struct PasswordAlgorithm {
  PasswordAlgorithmId id = PasswordAlgorithmId::kMd5;  // may hold an unlisted value
  base::ByteView params;
};
std::optional<PasswordAlgorithm> DecodePasswordAlgorithm(base::ByteView value);

// PASSWORD-ALGORITHMS (RFC 8489 s14.11): a list of the above, each padded to 4.
// Holds up to kMaxPasswordAlgorithms entries; a longer list is treated as
// malformed (two algorithms are defined).
inline constexpr size_t kMaxPasswordAlgorithms = 8;
struct PasswordAlgorithmList {
  std::array<PasswordAlgorithm, kMaxPasswordAlgorithms> items{};
  size_t count = 0;
  std::span<const PasswordAlgorithm> algorithms() const {
    return std::span<const PasswordAlgorithm>(items.data(), count);
  }
  bool Contains(PasswordAlgorithmId id) const;
};
std::optional<PasswordAlgorithmList> DecodePasswordAlgorithms(base::ByteView value);

// ERROR-CODE (RFC 8489 s14.8): class 3..6 and number 0..99 give code
// class * 100 + number; the reason phrase is at most kMaxTextSize bytes.
struct ErrorCodeValue {
  uint16_t code = 0;
  std::string_view reason;
};
std::optional<ErrorCodeValue> DecodeErrorCode(base::ByteView value);

// UNKNOWN-ATTRIBUTES (RFC 8489 s14.13): a list of 16-bit types (even length).
class AttributeTypeList {
 public:
  explicit AttributeTypeList(base::ByteView raw) : raw_(raw) {}
  size_t size() const { return raw_.size() / 2; }
  // Precondition: i < size().
  uint16_t operator[](size_t i) const { return base::LoadBe16(raw_.data() + 2 * i); }
  bool Contains(uint16_t type) const;

 private:
  base::ByteView raw_;
};
std::optional<AttributeTypeList> DecodeUnknownAttributes(base::ByteView value);

// LIFETIME (RFC 8656 s18.2): seconds, 4 bytes.
std::optional<uint32_t> DecodeLifetime(base::ByteView value);

// REQUESTED-TRANSPORT (RFC 8656 s18.8): the IANA protocol number (17 = UDP).
// The 24 RFFU bits are ignored.
std::optional<uint8_t> DecodeRequestedTransport(base::ByteView value);

// REQUESTED-ADDRESS-FAMILY and ADDITIONAL-ADDRESS-FAMILY (RFC 8656 s18.6,
// s18.11): family byte and 3 reserved bytes. Any family byte is returned;
// the caller answers 440 for one it does not support.
std::optional<AddressFamily> DecodeRequestedAddressFamily(base::ByteView value);
std::optional<AddressFamily> DecodeAdditionalAddressFamily(base::ByteView value);

// ADDRESS-ERROR-CODE (RFC 8656 s18.12): family, reserved, class, number, reason.
struct AddressErrorCodeValue {
  AddressFamily family = AddressFamily::kIpv4;
  uint16_t code = 0;
  std::string_view reason;
};
std::optional<AddressErrorCodeValue> DecodeAddressErrorCode(base::ByteView value);

// DATA (RFC 8656 s18.4): any bytes, including none.
inline base::ByteView DecodeData(base::ByteView value) { return value; }

// CHANNEL-NUMBER (RFC 8656 s18.1): 16-bit number and 16 RFFU bits. Whether the
// number is usable is IsValidChannelNumber() (a 400 otherwise).
std::optional<uint16_t> DecodeChannelNumber(base::ByteView value);

// EVEN-PORT (RFC 8656 s18.7): one byte; returns the R (reserve next port) bit.
std::optional<bool> DecodeEvenPort(base::ByteView value);

// CHANGE-REQUEST (RFC 5780 s7.2): 4 bytes; the "change IP" (A, 0x4) and
// "change port" (B, 0x2) flags of the last byte. Other bits are ignored.
struct ChangeRequest {
  bool change_ip = false;
  bool change_port = false;
};
std::optional<ChangeRequest> DecodeChangeRequest(base::ByteView value);
// RESPONSE-PORT (RFC 5780 s7.5): a 16-bit port and 2 bytes of padding.
std::optional<uint16_t> DecodeResponsePort(base::ByteView value);
// RESERVATION-TOKEN (RFC 8656 s18.10): 8 opaque bytes, as a big-endian number.
std::optional<uint64_t> DecodeReservationToken(base::ByteView value);

// DONT-FRAGMENT (RFC 8656 s18.9): no value. True if well formed (empty).
bool DecodeDontFragment(base::ByteView value);

// ICMP (RFC 8656 s18.13): 16 reserved bits, 7-bit ICMP type, 9-bit ICMP code,
// 32 bits of error data.
struct IcmpValue {
  uint8_t type = 0;
  uint16_t code = 0;
  uint32_t error_data = 0;
};
std::optional<IcmpValue> DecodeIcmp(base::ByteView value);

}  // namespace turnkey::stun
