// MessageBuilder: encodes one STUN message by appending to a caller's buffer.
//
// Usage (a Binding success response):
//   base::Bytes out;                       // reused across packets by the caller
//   auto b = MessageBuilder::SuccessResponse(out, request);
//   b.AddXorMappedAddress(client_address);
//   b.AddFingerprint();
//   if (b.ok()) send(b.message());
//
// The message starts at out.size() at construction, so several messages can
// be built back to back in one buffer. The header length is kept correct after
// every Add, so the buffer always holds a complete message. Padding is zero
// bytes; the builder never leaves uninitialized memory in `out`.
//
// Errors are sticky: an Add that would produce an invalid message (a value or
// message longer than the 16-bit length allows, a bad error code, an address
// without a family, an attribute after MESSAGE-INTEGRITY or FINGERPRINT that
// receivers would ignore or reject) appends nothing and puts the builder in an
// error state; later Adds do nothing. Check ok() before sending.
//
// Ownership: `out` must outlive the builder; message() is invalidated by any
// other change to `out`. Values passed to Add* must not point into `out`. Not thread-safe (one
// builder per thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "base/address.h"
#include "base/bytes.h"
#include "stun/attributes.h"
#include "stun/constants.h"
#include "stun/message.h"

namespace turnkey::stun {

enum class BuildError : uint8_t {
  kNone,
  kTooLong,           // a value or the whole message exceeds 65535 bytes
  kBadValue,          // e.g. error code outside 300..699, address family kNone
  kAfterIntegrity,    // an ordinary attribute after MESSAGE-INTEGRITY(-SHA256)
  kAfterFingerprint,  // anything after FINGERPRINT
};
const char* BuildErrorText(BuildError error);

class MessageBuilder {
 public:
  // Appends a 20-byte header for (method, class, transaction_id) to `out`.
  MessageBuilder(base::Bytes& out, Method method, MessageClass cls,
                 const TransactionId& transaction_id);

  // A success response to `request`: same method and transaction id.
  static MessageBuilder SuccessResponse(base::Bytes& out, const Message& request);
  // An error response to `request` with ERROR-CODE `code` and `reason` (the
  // registry's phrase when empty). For 420 it also adds UNKNOWN-ATTRIBUTES
  // listing request.unknown_required() (RFC 8489 s6.3.1.1).
  static MessageBuilder ErrorResponse(base::Bytes& out, const Message& request, uint16_t code,
                                      std::string_view reason = {});
  // A 420 to `request` whose UNKNOWN-ATTRIBUTES lists `unknown`: for a
  // server that understands some of request.unknown_required() after all.
  static MessageBuilder UnknownAttributesResponse(base::Bytes& out, const Message& request,
                                                  std::span<const uint16_t> unknown);

  MessageBuilder(MessageBuilder&&) = default;
  MessageBuilder(const MessageBuilder&) = delete;
  MessageBuilder& operator=(const MessageBuilder&) = delete;
  MessageBuilder& operator=(MessageBuilder&&) = delete;

  // Any attribute, value as given (padding added).
  void AddAttribute(uint16_t type, base::ByteView value);
  void AddAttribute(AttributeType type, base::ByteView value) {
    AddAttribute(static_cast<uint16_t>(type), value);
  }

  // Addresses. Plain: MAPPED-ADDRESS, ALTERNATE-SERVER, RESPONSE-ORIGIN,
  // OTHER-ADDRESS. XOR: XOR-MAPPED-, XOR-PEER-, XOR-RELAYED-ADDRESS, XORed
  // with this message's transaction id (RFC 8489 s14.2).
  void AddAddress(AttributeType type, const base::SocketAddress& addr);
  void AddXorAddress(AttributeType type, const base::SocketAddress& addr);
  void AddMappedAddress(const base::SocketAddress& a) {
    AddAddress(AttributeType::kMappedAddress, a);
  }
  void AddAlternateServer(const base::SocketAddress& a) {
    AddAddress(AttributeType::kAlternateServer, a);
  }
  void AddXorMappedAddress(const base::SocketAddress& a) {
    AddXorAddress(AttributeType::kXorMappedAddress, a);
  }
  void AddXorPeerAddress(const base::SocketAddress& a) {
    AddXorAddress(AttributeType::kXorPeerAddress, a);
  }
  void AddXorRelayedAddress(const base::SocketAddress& a) {
    AddXorAddress(AttributeType::kXorRelayedAddress, a);
  }

  // Text and opaque values, bytes as given.
  void AddUsername(std::string_view v) { AddText(AttributeType::kUsername, v); }
  void AddRealm(std::string_view v) { AddText(AttributeType::kRealm, v); }
  void AddNonce(std::string_view v) { AddText(AttributeType::kNonce, v); }
  void AddSoftware(std::string_view v) { AddText(AttributeType::kSoftware, v); }
  void AddAlternateDomain(std::string_view v) { AddText(AttributeType::kAlternateDomain, v); }
  // USERHASH: must be 32 bytes (kBadValue otherwise).
  void AddUserhash(base::ByteView hash);
  void AddData(base::ByteView data) { AddAttribute(AttributeType::kData, data); }

  void AddPasswordAlgorithm(PasswordAlgorithmId id, base::ByteView params = {});
  void AddPasswordAlgorithms(std::span<const PasswordAlgorithm> algorithms);

  // ERROR-CODE: `code` in 300..699; empty `reason` means the registry phrase.
  void AddErrorCode(uint16_t code, std::string_view reason = {});
  void AddUnknownAttributes(std::span<const uint16_t> types);

  // TURN (RFC 8656 s18).
  void AddLifetime(uint32_t seconds);
  void AddRequestedTransport(uint8_t protocol);
  void AddRequestedAddressFamily(AddressFamily family);
  void AddAdditionalAddressFamily(AddressFamily family);
  void AddAddressErrorCode(AddressFamily family, uint16_t code, std::string_view reason = {});
  void AddChannelNumber(uint16_t channel);
  void AddEvenPort(bool reserve_next);
  void AddReservationToken(uint64_t token);
  void AddDontFragment() { AddAttribute(AttributeType::kDontFragment, {}); }

  // NAT behavior discovery (RFC 5780 s7).
  void AddChangeRequest(bool change_ip, bool change_port);
  void AddResponsePort(uint16_t port);
  void AddResponseOrigin(const base::SocketAddress& a) {
    AddAddress(AttributeType::kResponseOrigin, a);
  }
  void AddOtherAddress(const base::SocketAddress& a) {
    AddAddress(AttributeType::kOtherAddress, a);
  }
  // `type` is 7 bits and `code` 9 bits on the wire (kBadValue if larger).
  void AddIcmp(uint8_t type, uint16_t code, uint32_t error_data);

  // MESSAGE-INTEGRITY over everything added so far (RFC 8489 s14.5). After it
  // only MESSAGE-INTEGRITY-SHA256 and FINGERPRINT may be added.
  void AddMessageIntegrity(base::ByteView key);
  // MESSAGE-INTEGRITY-SHA256 (RFC 8489 s14.6), truncated to `length` bytes
  // (16..32, multiple of 4; kBadValue otherwise). After it only FINGERPRINT.
  void AddMessageIntegritySha256(base::ByteView key, size_t length = kMessageIntegritySha256Size);
  // FINGERPRINT (RFC 8489 s14.7); must be last.
  void AddFingerprint();

  bool ok() const { return error_ == BuildError::kNone; }
  BuildError error() const { return error_; }
  // The message built so far (header included).
  base::ByteView message() const {
    return base::ByteView(out_.data() + start_, out_.size() - start_);
  }
  size_t size() const { return out_.size() - start_; }
  const TransactionId& transaction_id() const { return transaction_id_; }

 private:
  enum class Stage : uint8_t { kOpen, kAfterIntegrity, kAfterIntegritySha256, kSealed };

  void AddText(AttributeType type, std::string_view v) { AddAttribute(type, base::AsBytes(v)); }
  // Checks state and room; appends the attribute header and reserves the
  // value; returns false (and sets error_) if the attribute may not be added.
  bool Begin(uint16_t type, size_t value_length);
  // Pads to 4 with zeros and rewrites the header length.
  void Finish(size_t value_length);
  void Fail(BuildError e) {
    if (error_ == BuildError::kNone) {
      error_ = e;
    }
  }
  void SetLength(size_t body_length);
  void AddFamilyAttribute(AttributeType type, AddressFamily family);
  // ERROR-CODE and ADDRESS-ERROR-CODE share a layout: one leading byte (0 or
  // the family), a reserved byte, class, number, then the reason phrase.
  void AddCodeAttribute(AttributeType type, uint8_t first_byte, uint16_t code,
                        std::string_view reason);
  void AddAddressImpl(AttributeType type, const base::SocketAddress& addr, bool xor_mask);

  base::Bytes& out_;
  size_t start_;
  TransactionId transaction_id_;
  Stage stage_ = Stage::kOpen;
  BuildError error_ = BuildError::kNone;
};

}  // namespace turnkey::stun
