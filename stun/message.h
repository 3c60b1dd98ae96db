// Message: a decoded view of one STUN message (RFC 8489 s5, s14).
//
// Decoding checks the header and walks the attribute TLVs with bounds checks;
// it neither allocates nor copies attribute values. A Message holds views into
// the caller's bytes: those bytes must outlive the Message and stay unchanged.
// The decoder reports what it found; the caller decides whether to answer,
// drop or close:
//   - a malformed message is a DecodeError (drop it, or answer 400 if it is a
//     request whose header could be read);
//   - well-formed messages may still carry findings: duplicate attributes,
//     attributes after MESSAGE-INTEGRITY that must be ignored, and unknown
//     comprehension-required attributes (answer 420, see MessageBuilder).
//
// Typed values are read with the decoders in stun/attributes.h, integrity and
// FINGERPRINT are checked with stun/integrity.h.
//
// Thread-safety: a Message is an immutable value once decoded.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <span>

#include "base/bytes.h"
#include "stun/constants.h"

namespace turnkey::stun {

// Why a buffer is not a STUN message we can process. Every value has a static
// description (DecodeErrorText).
enum class DecodeError : uint8_t {
  kTooShort,                   // fewer than 20 bytes: no complete header
  kNotStun,                    // the first two bits are not 00 (RFC 8489 s5)
  kNoMagicCookie,              // RFC 3489-style message without the magic cookie (the relay
                               // answers a Binding one, TurnServer::HandleClassicBinding)
  kBadLength,                  // header length is not a multiple of 4
  kTruncated,                  // header length runs past the end of the buffer
  kAttributeTruncated,         // an attribute header, value or padding runs past the message end
  kTooManyAttributes,          // more than Message::kMaxAttributes attributes
  kAttributeAfterFingerprint,  // FINGERPRINT is not the last attribute (RFC 8489 s14.7)
};

// A static, human-readable description of `error`.
const char* DecodeErrorText(DecodeError error);

// One attribute as found in the message.
struct Attribute {
  uint16_t type = 0;     // wire type; compare with Is()
  size_t offset = 0;     // where the attribute header starts, from the message start
  base::ByteView value;  // the value without padding (padding content is ignored)
  // True if the attribute follows MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256
  // and is not one allowed there (MESSAGE-INTEGRITY-SHA256 after
  // MESSAGE-INTEGRITY, FINGERPRINT). It is not covered by integrity and the
  // receiver must ignore it (RFC 8489 s14.5, s14.6).
  bool ignored = false;
  // True if an earlier attribute has the same type. Only the first occurrence
  // is processed (RFC 8489 s14); Message::Find returns that one.
  bool duplicate = false;

  bool Is(AttributeType t) const { return type == static_cast<uint16_t>(t); }
  // False for attributes after the integrity attributes (see `ignored`). True
  // otherwise; whether the message carries integrity at all, and whether it
  // verifies, is for stun/integrity.h to say.
  bool covered_by_integrity() const { return !ignored; }
};

class Message {
 public:
  // Fixed capacity so decoding does not allocate. A message with more
  // attributes is rejected (kTooManyAttributes). Real clients send fewer
  // than 15, but RFC 8656 section 9.1 lets one CreatePermission name many
  // peers: room for the default turn.quotas.permissions_per_allocation (64)
  // and every other attribute a request may carry, twice over.
  static constexpr size_t kMaxAttributes = 128;

  // Decodes the STUN message at the start of `bytes`. The message occupies
  // size() == 20 + header length bytes; bytes after that are not part of it
  // and are not looked at (a datagram caller that wants exact framing compares
  // size() with the datagram size). `bytes` must outlive the result.
  static std::expected<Message, DecodeError> Decode(base::ByteView bytes);

  uint16_t type() const { return type_; }  // the 14-bit message type
  Method method() const { return MethodOf(type_); }
  MessageClass message_class() const { return ClassOf(type_); }
  bool IsRequest() const { return message_class() == MessageClass::kRequest; }
  bool IsIndication() const { return message_class() == MessageClass::kIndication; }
  const TransactionId& transaction_id() const { return transaction_id_; }

  // The whole message, header included.
  base::ByteView bytes() const { return bytes_; }
  size_t size() const { return bytes_.size(); }

  // All attributes in wire order, including ignored and duplicate ones.
  size_t attribute_count() const { return count_; }
  // Precondition: i < attribute_count().
  Attribute attribute(size_t i) const;

  // The first occurrence of `type` that is not ignored (i.e. not after
  // MESSAGE-INTEGRITY), or nullopt. This is the occurrence to act on.
  std::optional<Attribute> Find(AttributeType type) const;
  std::optional<base::ByteView> FindValue(AttributeType type) const;
  bool Has(AttributeType type) const { return Find(type).has_value(); }

  // Findings.
  // Some attribute type occurs more than once.
  bool has_duplicates() const { return has_duplicates_; }
  // Some attribute follows the integrity attributes and must be ignored.
  bool has_ignored() const { return has_ignored_; }
  // Comprehension-required types (< 0x8000) this codec does not know, each
  // listed once, in wire order, ignored attributes excluded. Non-empty means
  // a request must be answered with 420 and UNKNOWN-ATTRIBUTES (RFC 8489 s6.3.1).
  std::span<const uint16_t> unknown_required() const {
    return std::span<const uint16_t>(unknown_.data(), unknown_count_);
  }
  bool has_fingerprint() const { return has_fingerprint_; }

  // Range-for support over all attributes.
  class Iterator {
   public:
    Iterator(const Message* msg, size_t i) : msg_(msg), i_(i) {}
    Attribute operator*() const { return msg_->attribute(i_); }
    Iterator& operator++() {
      ++i_;
      return *this;
    }
    bool operator==(const Iterator& o) const { return i_ == o.i_; }

   private:
    const Message* msg_;
    size_t i_;
  };
  Iterator begin() const { return Iterator(this, 0); }
  Iterator end() const { return Iterator(this, count_); }

 private:
  // Compact per-attribute record; the value view is rebuilt from bytes_.
  struct Entry {
    uint32_t offset;  // of the attribute header
    uint16_t type;
    uint16_t length;
    bool ignored;
    bool duplicate;
  };

  Message() = default;

  base::ByteView bytes_;
  TransactionId transaction_id_{};
  uint16_t type_ = 0;
  uint8_t count_ = 0;
  uint8_t unknown_count_ = 0;
  bool has_duplicates_ = false;
  bool has_ignored_ = false;
  bool has_fingerprint_ = false;
  std::array<Entry, kMaxAttributes> entries_{};
  std::array<uint16_t, kMaxAttributes> unknown_{};
};

// Cheap check for demultiplexing (RFC 7983 style): the buffer starts like a
// STUN message (first two bits 00, magic cookie present, at least a header).
bool LooksLikeStun(base::ByteView bytes);

}  // namespace turnkey::stun
