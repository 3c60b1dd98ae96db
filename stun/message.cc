#include "stun/message.h"

#include <cstring>

namespace turnkey::stun {

using base::ByteView;
using base::LoadBe16;
using base::LoadBe32;

const char* DecodeErrorText(DecodeError error) {
  switch (error) {
    case DecodeError::kTooShort: return "shorter than a STUN header";
    case DecodeError::kNotStun: return "first two bits are not 00";
    case DecodeError::kNoMagicCookie: return "no magic cookie (RFC 3489 message)";
    case DecodeError::kBadLength: return "message length is not a multiple of 4";
    case DecodeError::kTruncated: return "message length runs past the buffer";
    case DecodeError::kAttributeTruncated: return "attribute runs past the message end";
    case DecodeError::kTooManyAttributes: return "too many attributes";
    case DecodeError::kAttributeAfterFingerprint: return "attribute after FINGERPRINT";
  }
  return "unknown decode error";
}

std::expected<Message, DecodeError> Message::Decode(ByteView bytes) {
  if (bytes.size() < kHeaderSize) {
    return std::unexpected(DecodeError::kTooShort);
  }
  const uint8_t* p = bytes.data();
  // RFC 8489 s5: the two most significant bits are zero; this separates STUN
  // from ChannelData (01) and from DTLS/RTP on a multiplexed port.
  if ((p[0] & 0xC0) != 0) {
    return std::unexpected(DecodeError::kNotStun);
  }
  // RFC 8489 s6.3: without the cookie the sender speaks RFC 3489, which lacks
  // XOR-MAPPED-ADDRESS and the integrity rules we rely on. Reported apart so
  // the caller can count it.
  if (LoadBe32(p + 4) != kMagicCookie) {
    return std::unexpected(DecodeError::kNoMagicCookie);
  }
  const size_t length = LoadBe16(p + 2);
  // RFC 8489 s5: attributes are padded to 4 bytes, so the body length is a
  // multiple of 4.
  if (length % 4 != 0) {
    return std::unexpected(DecodeError::kBadLength);
  }
  if (length > bytes.size() - kHeaderSize) {
    return std::unexpected(DecodeError::kTruncated);
  }

  Message msg;
  msg.bytes_ = bytes.first(kHeaderSize + length);
  msg.type_ = LoadBe16(p);
  std::memcpy(msg.transaction_id_.data(), p + 8, kTransactionIdSize);

  const size_t end = kHeaderSize + length;
  size_t pos = kHeaderSize;
  bool after_mi = false;         // a MESSAGE-INTEGRITY has been seen
  bool after_mi_sha256 = false;  // a MESSAGE-INTEGRITY-SHA256 has been seen
  while (pos < end) {
    // RFC 8489 s14.7: FINGERPRINT, when present, is the last attribute.
    if (msg.has_fingerprint_) {
      return std::unexpected(DecodeError::kAttributeAfterFingerprint);
    }
    // pos and end are multiples of 4, so 4 header bytes are always there;
    // checked anyway so the loop does not depend on that reasoning.
    if (end - pos < kAttributeHeaderSize) {
      return std::unexpected(DecodeError::kAttributeTruncated);
    }
    const uint16_t type = LoadBe16(p + pos);
    const size_t value_length = LoadBe16(p + pos + 2);
    // The value and its padding must fit inside the message (RFC 8489 s14:
    // padding is part of the message length even though the attribute length
    // excludes it).
    if (Pad4(value_length) > end - pos - kAttributeHeaderSize) {
      return std::unexpected(DecodeError::kAttributeTruncated);
    }
    if (msg.count_ == kMaxAttributes) {
      return std::unexpected(DecodeError::kTooManyAttributes);
    }

    const bool is_fingerprint = type == static_cast<uint16_t>(AttributeType::kFingerprint);
    const bool is_mi = type == static_cast<uint16_t>(AttributeType::kMessageIntegrity);
    const bool is_mi_sha256 = type == static_cast<uint16_t>(AttributeType::kMessageIntegritySha256);
    // RFC 8489 s14.5: after MESSAGE-INTEGRITY only MESSAGE-INTEGRITY-SHA256
    // and FINGERPRINT count; s14.6: after MESSAGE-INTEGRITY-SHA256 only
    // FINGERPRINT. Anything else there is not covered by the HMAC, so an
    // attacker could have added it: ignore it.
    bool ignored = false;
    if (after_mi_sha256) {
      ignored = !is_fingerprint;
    } else if (after_mi) {
      ignored = !is_fingerprint && !is_mi_sha256;
    }

    bool duplicate = false;
    for (size_t i = 0; i < msg.count_; ++i) {
      if (msg.entries_[i].type == type) {
        duplicate = true;
        break;
      }
    }

    if (!ignored) {
      if (is_mi) {
        after_mi = true;
      } else if (is_mi_sha256) {
        after_mi_sha256 = true;
      }
      if (IsComprehensionRequired(type) && !IsKnownAttribute(type)) {
        bool listed = false;
        for (size_t i = 0; i < msg.unknown_count_; ++i) {
          if (msg.unknown_[i] == type) {
            listed = true;
            break;
          }
        }
        if (!listed) {
          msg.unknown_[msg.unknown_count_++] = type;
        }
      }
    }
    if (is_fingerprint) {
      msg.has_fingerprint_ = true;
    }
    msg.has_duplicates_ = msg.has_duplicates_ || duplicate;
    msg.has_ignored_ = msg.has_ignored_ || ignored;
    msg.entries_[msg.count_++] = Entry{static_cast<uint32_t>(pos), type,
                                       static_cast<uint16_t>(value_length), ignored, duplicate};
    pos += kAttributeHeaderSize + Pad4(value_length);
  }
  return msg;
}

Attribute Message::attribute(size_t i) const {
  const Entry& e = entries_[i];
  Attribute a;
  a.type = e.type;
  a.offset = e.offset;
  a.value = bytes_.subspan(e.offset + kAttributeHeaderSize, e.length);
  a.ignored = e.ignored;
  a.duplicate = e.duplicate;
  return a;
}

std::optional<Attribute> Message::Find(AttributeType type) const {
  const uint16_t wanted = static_cast<uint16_t>(type);
  for (size_t i = 0; i < count_; ++i) {
    if (entries_[i].type == wanted && !entries_[i].ignored) {
      return attribute(i);
    }
  }
  return std::nullopt;
}

std::optional<ByteView> Message::FindValue(AttributeType type) const {
  if (auto a = Find(type)) {
    return a->value;
  }
  return std::nullopt;
}

bool LooksLikeStun(ByteView bytes) {
  return bytes.size() >= kHeaderSize && (bytes[0] & 0xC0) == 0 &&
         LoadBe32(bytes.data() + 4) == kMagicCookie;
}

}  // namespace turnkey::stun
