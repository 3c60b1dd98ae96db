// Small crypto helpers over OpenSSL 3 (and a table CRC-32).
//
// All functions are thread-safe and never log. Digests are returned by value
// in fixed-size arrays so the per-packet path does not allocate.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/bytes.h"

namespace turnkey::base {

using Sha1Digest = std::array<uint8_t, 20>;
using Sha256Digest = std::array<uint8_t, 32>;
using Md5Digest = std::array<uint8_t, 16>;

Sha1Digest HmacSha1(ByteView key, ByteView data);
Sha256Digest HmacSha256(ByteView key, ByteView data);
Md5Digest Md5(ByteView data);
Sha1Digest Sha1(ByteView data);
Sha256Digest Sha256(ByteView data);

// CRC-32 (ISO-HDLC / the one STUN FINGERPRINT uses: reflected 0xEDB88320,
// initial and final XOR 0xFFFFFFFF). `seed` lets callers chain over pieces:
// Crc32(b, Crc32(a)) == Crc32(a ++ b).
uint32_t Crc32(ByteView data, uint32_t seed = 0);

// Compares without an early exit, so the time does not depend on where the
// inputs differ. Different sizes compare unequal (the size is not secret).
bool ConstantTimeEqual(ByteView a, ByteView b);

// Fills `out` from the OpenSSL CSPRNG. Returns false only if the RNG failed.
[[nodiscard]] bool RandomBytes(MutableByteView out);
// `n` random bytes as lower-case hex (2n characters); aborts if the RNG fails.
std::string RandomHex(size_t n);
// A uniformly random 64-bit value; aborts if the RNG fails, like RandomHex.
uint64_t RandomUint64();
// 16 bytes as 32 lower-case hex digits: `unix_ms` in the first 6 (big-endian),
// 10 bytes after. Ids made one after another sort in the order they were made
// (within one millisecond too, in this process), so a database index on them
// grows at its right edge instead of dirtying a random page per insert. The
// first id of a millisecond has 80 random bits; a later one is the previous
// plus a random step (32 bits), so it cannot be guessed without one of its
// neighbours. Thread-safe.
std::string TimeOrderedId(int64_t unix_ms);

// Standard base64 with '=' padding (RFC 4648 section 4).
std::string Base64Encode(ByteView data);
// The length of Base64Encode's text for `bytes` bytes, without encoding.
constexpr size_t Base64EncodedSize(size_t bytes) { return (bytes + 2) / 3 * 4; }
// Whether a standard base64 decoder insists on '=' padding.
enum class Base64Padding {
  kRequired,  // the length is a multiple of 4, with "=" / "==" as needed
  kOptional,  // either that or no '=' at all (RFC 4648 section 3.2)
};
// Decodes standard base64 (no whitespace; leftover bits must be zero);
// nullopt on bad input.
std::optional<Bytes> Base64Decode(std::string_view text,
                                  Base64Padding padding = Base64Padding::kRequired);
// URL-safe base64 without padding (RFC 4648 section 5), as JWTs use.
std::string Base64UrlEncode(ByteView data);
std::optional<Bytes> Base64UrlDecode(std::string_view text);

}  // namespace turnkey::base
