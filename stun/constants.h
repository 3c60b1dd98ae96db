// STUN (RFC 8489) and TURN (RFC 8656, RFC 6156) protocol constants.
//
// Wire values only: methods, classes, attribute types, error codes, and the
// fixed numbers of the header. Enums are `enum class` over the wire type, so a
// value read from the network that is not listed here is still representable
// (a caller compares, it never switches exhaustively on peer input).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace turnkey::stun {

// RFC 8489 s5: fixed value in bytes 4..7 of every RFC 5389+ message.
inline constexpr uint32_t kMagicCookie = 0x2112A442;
// RFC 8489 s5: type (2) + length (2) + cookie (4) + transaction id (12).
inline constexpr size_t kHeaderSize = 20;
inline constexpr size_t kTransactionIdSize = 12;
// RFC 8489 s14: type (2) + length (2).
inline constexpr size_t kAttributeHeaderSize = 4;
// RFC 8489 s14.7: FINGERPRINT = CRC-32 of the message XOR this value.
inline constexpr uint32_t kFingerprintXor = 0x5354554E;
// The largest body a 16-bit length field can describe.
inline constexpr size_t kMaxBodySize = 0xFFFF;
// Sizes of the integrity attributes' values.
inline constexpr size_t kMessageIntegritySize = 20;        // HMAC-SHA1, RFC 8489 s14.5
inline constexpr size_t kMessageIntegritySha256Size = 32;  // HMAC-SHA256, RFC 8489 s14.6
inline constexpr size_t kMinMessageIntegritySha256Size = 16;
inline constexpr size_t kFingerprintSize = 4;

using TransactionId = std::array<uint8_t, kTransactionIdSize>;

// Rounds an attribute value length up to the 4-byte boundary (RFC 8489 s14).
constexpr size_t Pad4(size_t n) { return (n + 3) & ~size_t{3}; }

// Message methods (12 bits on the wire).
enum class Method : uint16_t {
  kBinding = 0x001,            // RFC 8489
  kAllocate = 0x003,           // RFC 8656 s7
  kRefresh = 0x004,            // RFC 8656 s8
  kSend = 0x006,               // RFC 8656 s11 (indication only)
  kData = 0x007,               // RFC 8656 s11 (indication only)
  kCreatePermission = 0x008,   // RFC 8656 s10
  kChannelBind = 0x009,        // RFC 8656 s12
  kConnect = 0x00A,            // RFC 6062 (TCP relays; not served yet)
  kConnectionBind = 0x00B,     // RFC 6062
  kConnectionAttempt = 0x00C,  // RFC 6062
};

// Message classes (2 bits spread over the type field, RFC 8489 s5).
enum class MessageClass : uint8_t {
  kRequest = 0,
  kIndication = 1,
  kSuccessResponse = 2,
  kErrorResponse = 3,
};

// Attribute types. Values below 0x8000 are comprehension-required: a server
// that does not know one answers 420 (RFC 8489 s14).
enum class AttributeType : uint16_t {
  // Comprehension-required.
  kMappedAddress = 0x0001,           // RFC 8489 s14.1
  kChangeRequest = 0x0003,           // RFC 5780 s7.2 (see IsKnownAttribute)
  kUsername = 0x0006,                // RFC 8489 s14.3
  kMessageIntegrity = 0x0008,        // RFC 8489 s14.5
  kErrorCode = 0x0009,               // RFC 8489 s14.8
  kUnknownAttributes = 0x000A,       // RFC 8489 s14.13
  kChannelNumber = 0x000C,           // RFC 8656 s18.1
  kLifetime = 0x000D,                // RFC 8656 s18.2
  kXorPeerAddress = 0x0012,          // RFC 8656 s18.3
  kData = 0x0013,                    // RFC 8656 s18.4
  kRealm = 0x0014,                   // RFC 8489 s14.9
  kNonce = 0x0015,                   // RFC 8489 s14.10
  kXorRelayedAddress = 0x0016,       // RFC 8656 s18.5
  kRequestedAddressFamily = 0x0017,  // RFC 8656 s18.6 (RFC 6156)
  kEvenPort = 0x0018,                // RFC 8656 s18.7
  kRequestedTransport = 0x0019,      // RFC 8656 s18.8
  kDontFragment = 0x001A,            // RFC 8656 s18.9
  kMessageIntegritySha256 = 0x001C,  // RFC 8489 s14.6
  kPasswordAlgorithm = 0x001D,       // RFC 8489 s14.12
  kUserhash = 0x001E,                // RFC 8489 s14.4
  kXorMappedAddress = 0x0020,        // RFC 8489 s14.2
  kReservationToken = 0x0022,        // RFC 8656 s18.10
  kPriority = 0x0024,                // RFC 8445 (ICE); known so ICE checks are not 420'd
  kUseCandidate = 0x0025,            // RFC 8445
  kPadding = 0x0026,                 // RFC 5780 s7.6 (see IsKnownAttribute)
  kResponsePort = 0x0027,            // RFC 5780 s7.5 (see IsKnownAttribute)
  kConnectionId = 0x002A,            // RFC 6062
  // Comprehension-optional.
  kAdditionalAddressFamily = 0x8000,  // RFC 8656 s18.11
  kAddressErrorCode = 0x8001,         // RFC 8656 s18.12
  kPasswordAlgorithms = 0x8002,       // RFC 8489 s14.11
  kAlternateDomain = 0x8003,          // RFC 8489 s14.16
  kIcmp = 0x8004,                     // RFC 8656 s18.13
  kSoftware = 0x8022,                 // RFC 8489 s14.14
  kAlternateServer = 0x8023,          // RFC 8489 s14.15
  kFingerprint = 0x8028,              // RFC 8489 s14.7
  kIceControlled = 0x8029,            // RFC 8445
  kIceControlling = 0x802A,           // RFC 8445
  kResponseOrigin = 0x802B,           // RFC 5780
  kOtherAddress = 0x802C,             // RFC 5780
};

// Address family byte of the address attributes (RFC 8489 s14.1) and of
// REQUESTED-ADDRESS-FAMILY / ADDITIONAL-ADDRESS-FAMILY (RFC 8656 s18.6).
// Unlisted values can appear in peer input.
enum class AddressFamily : uint8_t {
  kIpv4 = 0x01,
  kIpv6 = 0x02,
};

// PASSWORD-ALGORITHM numbers (RFC 8489 s18.5).
enum class PasswordAlgorithmId : uint16_t {
  kMd5 = 0x0001,
  kSha256 = 0x0002,
};

// REQUESTED-TRANSPORT protocol numbers (IANA protocol numbers).
inline constexpr uint8_t kTransportUdp = 17;
inline constexpr uint8_t kTransportTcp = 6;  // RFC 6062

// ERROR-CODE values used by STUN (RFC 8489 s14.8) and TURN (RFC 8656).
namespace error_code {
inline constexpr uint16_t kTryAlternate = 300;
inline constexpr uint16_t kBadRequest = 400;
inline constexpr uint16_t kUnauthenticated = 401;
inline constexpr uint16_t kForbidden = 403;
inline constexpr uint16_t kUnknownAttribute = 420;
inline constexpr uint16_t kAllocationMismatch = 437;
inline constexpr uint16_t kStaleNonce = 438;
inline constexpr uint16_t kAddressFamilyNotSupported = 440;
inline constexpr uint16_t kWrongCredentials = 441;
inline constexpr uint16_t kUnsupportedTransportProtocol = 442;
inline constexpr uint16_t kPeerAddressFamilyMismatch = 443;
inline constexpr uint16_t kConnectionAlreadyExists = 446;     // RFC 6062
inline constexpr uint16_t kConnectionTimeoutOrFailure = 447;  // RFC 6062
inline constexpr uint16_t kAllocationQuotaReached = 486;
inline constexpr uint16_t kRoleConflict = 487;  // RFC 8445
inline constexpr uint16_t kServerError = 500;
inline constexpr uint16_t kInsufficientCapacity = 508;
}  // namespace error_code

// ChannelData channel numbers. RFC 8656 s12 narrowed them to 0x4000..0x4FFF,
// but RFC 5766 (s11) allowed 0x4000..0x7FFF and its clients still use the
// whole range (coturn's turnutils_uclient binds 0x7xxx), so every number whose
// first two bits are 01 is accepted: RFC 5766 clients keep working.
inline constexpr uint16_t kMinChannelNumber = 0x4000;
inline constexpr uint16_t kMaxChannelNumber = 0x7FFF;
constexpr bool IsValidChannelNumber(uint16_t n) {
  return n >= kMinChannelNumber && n <= kMaxChannelNumber;
}

// RFC 8489 s14: types 0x0000-0x7FFF must be understood by the receiver.
constexpr bool IsComprehensionRequired(uint16_t type) { return type < 0x8000; }

// True for the attribute types listed in AttributeType, except the three
// comprehension-required ones of RFC 5780 (CHANGE-REQUEST, PADDING,
// RESPONSE-PORT): only a server doing NAT behavior discovery understands
// them, which is the TURN core's decision per listener (IsDiscoveryAttribute),
// so the decoder reports them like every other type outside this set
// (RFC 8489 s6.3.1: 420).
bool IsKnownAttribute(uint16_t type);
// CHANGE-REQUEST, PADDING or RESPONSE-PORT (RFC 5780 s7).
constexpr bool IsDiscoveryAttribute(uint16_t type) {
  return type == static_cast<uint16_t>(AttributeType::kChangeRequest) ||
         type == static_cast<uint16_t>(AttributeType::kPadding) ||
         type == static_cast<uint16_t>(AttributeType::kResponsePort);
}

// Packs a method and class into the 14-bit message type (RFC 8489 s5, figure 3):
// M11..M7 C1 M6..M4 C0 M3..M0.
constexpr uint16_t MessageType(Method method, MessageClass cls) {
  const uint16_t m = static_cast<uint16_t>(method) & 0x0FFF;
  const uint16_t c = static_cast<uint16_t>(cls) & 0x3;
  return static_cast<uint16_t>((m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) |
                               ((c & 0x1) << 4) | ((c & 0x2) << 7));
}
constexpr Method MethodOf(uint16_t type) {
  return static_cast<Method>((type & 0x000F) | ((type & 0x00E0) >> 1) | ((type & 0x3E00) >> 2));
}
constexpr MessageClass ClassOf(uint16_t type) {
  return static_cast<MessageClass>(((type >> 4) & 0x1) | ((type >> 7) & 0x2));
}

// Static names for logs and tests; "unknown" for unlisted values.
const char* MethodName(Method method);
const char* ClassName(MessageClass cls);
const char* AttributeName(uint16_t type);
// The reason phrase RFC 8489 / RFC 8656 recommend for `code`, or "Error".
const char* DefaultReasonPhrase(uint16_t code);

}  // namespace turnkey::stun
