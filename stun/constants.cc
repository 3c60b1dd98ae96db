#include "stun/constants.h"

namespace turnkey::stun {

bool IsKnownAttribute(uint16_t type) {
  // Kept as a switch so the compiler builds a jump table; this runs once per
  // attribute on the per-packet path.
  switch (static_cast<AttributeType>(type)) {
    case AttributeType::kMappedAddress:
    case AttributeType::kUsername:
    case AttributeType::kMessageIntegrity:
    case AttributeType::kErrorCode:
    case AttributeType::kUnknownAttributes:
    case AttributeType::kChannelNumber:
    case AttributeType::kLifetime:
    case AttributeType::kXorPeerAddress:
    case AttributeType::kData:
    case AttributeType::kRealm:
    case AttributeType::kNonce:
    case AttributeType::kXorRelayedAddress:
    case AttributeType::kRequestedAddressFamily:
    case AttributeType::kEvenPort:
    case AttributeType::kRequestedTransport:
    case AttributeType::kDontFragment:
    case AttributeType::kMessageIntegritySha256:
    case AttributeType::kPasswordAlgorithm:
    case AttributeType::kUserhash:
    case AttributeType::kXorMappedAddress:
    case AttributeType::kReservationToken:
    case AttributeType::kPriority:
    case AttributeType::kUseCandidate:
    case AttributeType::kConnectionId:
    case AttributeType::kAdditionalAddressFamily:
    case AttributeType::kAddressErrorCode:
    case AttributeType::kPasswordAlgorithms:
    case AttributeType::kAlternateDomain:
    case AttributeType::kIcmp:
    case AttributeType::kSoftware:
    case AttributeType::kAlternateServer:
    case AttributeType::kFingerprint:
    case AttributeType::kIceControlled:
    case AttributeType::kIceControlling:
    case AttributeType::kResponseOrigin:
    case AttributeType::kOtherAddress: return true;
    case AttributeType::kChangeRequest:
    case AttributeType::kPadding:
    case AttributeType::kResponsePort: return false;
  }
  return false;
}

const char* MethodName(Method method) {
  switch (method) {
    case Method::kBinding: return "Binding";
    case Method::kAllocate: return "Allocate";
    case Method::kRefresh: return "Refresh";
    case Method::kSend: return "Send";
    case Method::kData: return "Data";
    case Method::kCreatePermission: return "CreatePermission";
    case Method::kChannelBind: return "ChannelBind";
    case Method::kConnect: return "Connect";
    case Method::kConnectionBind: return "ConnectionBind";
    case Method::kConnectionAttempt: return "ConnectionAttempt";
  }
  return "unknown";
}

const char* ClassName(MessageClass cls) {
  switch (cls) {
    case MessageClass::kRequest: return "request";
    case MessageClass::kIndication: return "indication";
    case MessageClass::kSuccessResponse: return "success";
    case MessageClass::kErrorResponse: return "error";
  }
  return "unknown";
}

const char* AttributeName(uint16_t type) {
  switch (static_cast<AttributeType>(type)) {
    case AttributeType::kMappedAddress: return "MAPPED-ADDRESS";
    case AttributeType::kChangeRequest: return "CHANGE-REQUEST";
    case AttributeType::kPadding: return "PADDING";
    case AttributeType::kResponsePort: return "RESPONSE-PORT";
    case AttributeType::kUsername: return "USERNAME";
    case AttributeType::kMessageIntegrity: return "MESSAGE-INTEGRITY";
    case AttributeType::kErrorCode: return "ERROR-CODE";
    case AttributeType::kUnknownAttributes: return "UNKNOWN-ATTRIBUTES";
    case AttributeType::kChannelNumber: return "CHANNEL-NUMBER";
    case AttributeType::kLifetime: return "LIFETIME";
    case AttributeType::kXorPeerAddress: return "XOR-PEER-ADDRESS";
    case AttributeType::kData: return "DATA";
    case AttributeType::kRealm: return "REALM";
    case AttributeType::kNonce: return "NONCE";
    case AttributeType::kXorRelayedAddress: return "XOR-RELAYED-ADDRESS";
    case AttributeType::kRequestedAddressFamily: return "REQUESTED-ADDRESS-FAMILY";
    case AttributeType::kEvenPort: return "EVEN-PORT";
    case AttributeType::kRequestedTransport: return "REQUESTED-TRANSPORT";
    case AttributeType::kDontFragment: return "DONT-FRAGMENT";
    case AttributeType::kMessageIntegritySha256: return "MESSAGE-INTEGRITY-SHA256";
    case AttributeType::kPasswordAlgorithm: return "PASSWORD-ALGORITHM";
    case AttributeType::kUserhash: return "USERHASH";
    case AttributeType::kXorMappedAddress: return "XOR-MAPPED-ADDRESS";
    case AttributeType::kReservationToken: return "RESERVATION-TOKEN";
    case AttributeType::kPriority: return "PRIORITY";
    case AttributeType::kUseCandidate: return "USE-CANDIDATE";
    case AttributeType::kConnectionId: return "CONNECTION-ID";
    case AttributeType::kAdditionalAddressFamily: return "ADDITIONAL-ADDRESS-FAMILY";
    case AttributeType::kAddressErrorCode: return "ADDRESS-ERROR-CODE";
    case AttributeType::kPasswordAlgorithms: return "PASSWORD-ALGORITHMS";
    case AttributeType::kAlternateDomain: return "ALTERNATE-DOMAIN";
    case AttributeType::kIcmp: return "ICMP";
    case AttributeType::kSoftware: return "SOFTWARE";
    case AttributeType::kAlternateServer: return "ALTERNATE-SERVER";
    case AttributeType::kFingerprint: return "FINGERPRINT";
    case AttributeType::kIceControlled: return "ICE-CONTROLLED";
    case AttributeType::kIceControlling: return "ICE-CONTROLLING";
    case AttributeType::kResponseOrigin: return "RESPONSE-ORIGIN";
    case AttributeType::kOtherAddress: return "OTHER-ADDRESS";
  }
  return "unknown";
}

const char* DefaultReasonPhrase(uint16_t code) {
  // Phrases from the IANA "STUN Error Codes" registry (RFC 8489 s14.8,
  // RFC 8656, RFC 6062, RFC 8445).
  switch (code) {
    case error_code::kTryAlternate: return "Try Alternate";
    case error_code::kBadRequest: return "Bad Request";
    case error_code::kUnauthenticated: return "Unauthenticated";
    case error_code::kForbidden: return "Forbidden";
    case error_code::kUnknownAttribute: return "Unknown Attribute";
    case error_code::kAllocationMismatch: return "Allocation Mismatch";
    case error_code::kStaleNonce: return "Stale Nonce";
    case error_code::kAddressFamilyNotSupported: return "Address Family not Supported";
    case error_code::kWrongCredentials: return "Wrong Credentials";
    case error_code::kUnsupportedTransportProtocol: return "Unsupported Transport Protocol";
    case error_code::kPeerAddressFamilyMismatch: return "Peer Address Family Mismatch";
    case error_code::kConnectionAlreadyExists: return "Connection Already Exists";
    case error_code::kConnectionTimeoutOrFailure: return "Connection Timeout or Failure";
    case error_code::kAllocationQuotaReached: return "Allocation Quota Reached";
    case error_code::kRoleConflict: return "Role Conflict";
    case error_code::kServerError: return "Server Error";
    case error_code::kInsufficientCapacity: return "Insufficient Capacity";
  }
  return "Error";
}

}  // namespace turnkey::stun
