// Message integrity and FINGERPRINT checks, and long-term key derivation.
//
// The key is always a parameter: the caller looks it up (auth/) and this code
// only computes. Keys (RFC 8489 s9.2.2, s9.1.1):
//   - short-term credentials: the password bytes;
//   - long-term, PASSWORD-ALGORITHM MD5 (the default): MD5(user ":" realm ":" pass);
//   - long-term, PASSWORD-ALGORITHM SHA-256: SHA-256(user ":" realm ":" pass).
// No SASLprep / OpaqueString processing is done: bytes are passed through.
//
// All functions are pure and thread-safe. Comparisons are constant-time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/bytes.h"
#include "base/crypto.h"
#include "stun/constants.h"
#include "stun/message.h"

namespace turnkey::stun {

enum class IntegrityResult : uint8_t {
  kValid,      // present, well formed, and matches
  kAbsent,     // not in the message (an occurrence the decoder marked ignored does not count)
  kMalformed,  // present with a bad length: answer 400
  kMismatch,   // present and well formed but wrong: answer 401 / drop
};
const char* IntegrityResultName(IntegrityResult result);

// Checks MESSAGE-INTEGRITY (RFC 8489 s14.5): HMAC-SHA1 with `key` over the
// message up to the attribute, with the header length counting the message
// up to and including MESSAGE-INTEGRITY (so a FINGERPRINT or
// MESSAGE-INTEGRITY-SHA256 after it does not count).
IntegrityResult VerifyMessageIntegrity(const Message& msg, base::ByteView key);

// Checks MESSAGE-INTEGRITY-SHA256 (RFC 8489 s14.6): as above with
// HMAC-SHA256, compared over the length sent. A value shorter than
// `min_length` is kMalformed: the attribute carries the full 32 bytes
// unless the STUN usage allows truncation (to no less than 16), and TURN
// (RFC 8656) does not.
IntegrityResult VerifyMessageIntegritySha256(const Message& msg, base::ByteView key,
                                             size_t min_length = kMessageIntegritySha256Size);

// Checks FINGERPRINT (RFC 8489 s14.7): CRC-32 of the message up to the
// attribute, XOR 0x5354554e. kAbsent if the message has none.
IntegrityResult VerifyFingerprint(const Message& msg);

// The FINGERPRINT value for `message_prefix` (everything before the
// attribute, with the header length already counting FINGERPRINT).
uint32_t ComputeFingerprint(base::ByteView message_prefix);

// Long-term keys (RFC 8489 s9.2.2). Not for the per-packet path: they build
// the joined string on the heap; auth/ caches keys.
base::Md5Digest LongTermKeyMd5(std::string_view username, std::string_view realm,
                               std::string_view password);
base::Sha256Digest LongTermKeySha256(std::string_view username, std::string_view realm,
                                     std::string_view password);
// USERHASH value (RFC 8489 s14.4): SHA-256(username ":" realm).
base::Sha256Digest Userhash(std::string_view username, std::string_view realm);

}  // namespace turnkey::stun
