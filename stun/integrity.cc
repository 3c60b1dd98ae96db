#include "stun/integrity.h"

#include <array>
#include <cstring>
#include <string>

#include "stun/attributes.h"

namespace turnkey::stun {

using base::ByteView;

namespace {

// Most authenticated requests (Allocate, Refresh, CreatePermission,
// ChannelBind) are a few hundred bytes; those are hashed from a stack copy.
// Larger ones (possible over TCP) fall back to the heap.
constexpr size_t kStackCopySize = 2048;

// Runs `mac` over the first `prefix_len` bytes of `msg` with the header
// length field replaced by `patched_length` (RFC 8489 s14.5: the length must
// point just past the integrity attribute even if more attributes follow).
// The caller's bytes are const, so the prefix is copied.
template <typename Mac>
auto MacWithPatchedLength(ByteView msg, size_t prefix_len, uint16_t patched_length, Mac mac) {
  std::array<uint8_t, kStackCopySize> stack;
  base::Bytes heap;
  uint8_t* buf = stack.data();
  if (prefix_len > stack.size()) {
    heap.resize(prefix_len);
    buf = heap.data();
  }
  std::memcpy(buf, msg.data(), prefix_len);
  base::StoreBe16(buf + 2, patched_length);
  return mac(ByteView(buf, prefix_len));
}

// Shared shape of both integrity checks: find the first attribute of `type`
// that is not ignored, check its length, recompute and compare.
template <typename Mac>
IntegrityResult VerifyMac(const Message& msg, AttributeType type, ByteView key, Mac mac,
                          std::optional<ByteView> (*decode)(ByteView)) {
  std::optional<Attribute> attr = msg.Find(type);
  if (!attr) {
    return IntegrityResult::kAbsent;
  }
  std::optional<ByteView> sent = decode(attr->value);
  if (!sent) {
    return IntegrityResult::kMalformed;
  }
  // Offsets are bounded by the 16-bit length field, so this fits.
  const size_t end_of_attr = attr->offset + kAttributeHeaderSize + attr->value.size();
  const auto patched = static_cast<uint16_t>(end_of_attr - kHeaderSize);
  const auto expected = MacWithPatchedLength(msg.bytes(), attr->offset, patched,
                                             [&](ByteView data) { return mac(key, data); });
  ByteView expected_view(expected.data(), sent->size());
  return base::ConstantTimeEqual(expected_view, *sent) ? IntegrityResult::kValid
                                                       : IntegrityResult::kMismatch;
}

std::string JoinColon(std::string_view a, std::string_view b) {
  std::string s;
  s.reserve(a.size() + 1 + b.size());
  s.append(a);
  s.push_back(':');
  s.append(b);
  return s;
}

std::string JoinColon(std::string_view a, std::string_view b, std::string_view c) {
  std::string s = JoinColon(a, b);
  s.push_back(':');
  s.append(c);
  return s;
}

}  // namespace

const char* IntegrityResultName(IntegrityResult result) {
  switch (result) {
    case IntegrityResult::kValid: return "valid";
    case IntegrityResult::kAbsent: return "absent";
    case IntegrityResult::kMalformed: return "malformed";
    case IntegrityResult::kMismatch: return "mismatch";
  }
  return "unknown";
}

IntegrityResult VerifyMessageIntegrity(const Message& msg, ByteView key) {
  return VerifyMac(msg, AttributeType::kMessageIntegrity, key, base::HmacSha1,
                   &DecodeMessageIntegrity);
}

IntegrityResult VerifyMessageIntegritySha256(const Message& msg, ByteView key, size_t min_length) {
  if (std::optional<ByteView> sent = msg.FindValue(AttributeType::kMessageIntegritySha256);
      sent && sent->size() < min_length) {
    return IntegrityResult::kMalformed;
  }
  return VerifyMac(msg, AttributeType::kMessageIntegritySha256, key, base::HmacSha256,
                   &DecodeMessageIntegritySha256);
}

uint32_t ComputeFingerprint(ByteView message_prefix) {
  return base::Crc32(message_prefix) ^ kFingerprintXor;
}

IntegrityResult VerifyFingerprint(const Message& msg) {
  std::optional<Attribute> attr = msg.Find(AttributeType::kFingerprint);
  if (!attr) {
    return IntegrityResult::kAbsent;
  }
  std::optional<uint32_t> sent = DecodeFingerprint(attr->value);
  if (!sent) {
    return IntegrityResult::kMalformed;
  }
  // FINGERPRINT is the last attribute (the decoder enforces it), so the
  // header length already ends after it and the prefix is hashed as is.
  const uint32_t expected = ComputeFingerprint(msg.bytes().first(attr->offset));
  return expected == *sent ? IntegrityResult::kValid : IntegrityResult::kMismatch;
}

base::Md5Digest LongTermKeyMd5(std::string_view username, std::string_view realm,
                               std::string_view password) {
  return base::Md5(base::AsBytes(JoinColon(username, realm, password)));
}

base::Sha256Digest LongTermKeySha256(std::string_view username, std::string_view realm,
                                     std::string_view password) {
  return base::Sha256(base::AsBytes(JoinColon(username, realm, password)));
}

base::Sha256Digest Userhash(std::string_view username, std::string_view realm) {
  return base::Sha256(base::AsBytes(JoinColon(username, realm)));
}

}  // namespace turnkey::stun
