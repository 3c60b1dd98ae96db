// Byte views and big-endian field access.
//
// Network fields are read and written with shifts, never through a cast
// pointer: an unaligned read through a cast crashed coturn on ARM64
// (../shared/reference/security.md). Callers check bounds before calling.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace turnkey::base {

using ByteView = std::span<const uint8_t>;
using MutableByteView = std::span<uint8_t>;
using Bytes = std::vector<uint8_t>;

inline uint16_t LoadBe16(const uint8_t* p) {
  return static_cast<uint16_t>((uint16_t{p[0]} << 8) | uint16_t{p[1]});
}
inline uint32_t LoadBe32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
inline uint64_t LoadBe64(const uint8_t* p) {
  return (uint64_t{LoadBe32(p)} << 32) | uint64_t{LoadBe32(p + 4)};
}
inline void StoreBe16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void StoreBe32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}
inline void StoreBe64(uint8_t* p, uint64_t v) {
  StoreBe32(p, static_cast<uint32_t>(v >> 32));
  StoreBe32(p + 4, static_cast<uint32_t>(v));
}

// Appends big-endian fields to a growing buffer.
inline void AppendBe16(Bytes& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}
inline void AppendBe32(Bytes& out, uint32_t v) {
  AppendBe16(out, static_cast<uint16_t>(v >> 16));
  AppendBe16(out, static_cast<uint16_t>(v));
}
inline void AppendBytes(Bytes& out, ByteView v) { out.insert(out.end(), v.begin(), v.end()); }

inline ByteView AsBytes(std::string_view s) {
  return ByteView(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}
inline std::string_view AsString(ByteView b) {
  return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}

// The value of a hex digit of either case, or -1.
int HexDigitValue(char c);
// RFC 3986 section 2.3: unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~".
bool IsUriUnreserved(char c);

// Lower-case hex of `b`, e.g. "0a1b".
std::string HexEncode(ByteView b);
// Decodes hex (either case, even length); returns false on bad input.
bool HexDecode(std::string_view hex, Bytes& out);

// RFC 3986 section 2.1 percent-decoding ("%2F" -> "/"); with `plus_is_space`
// also '+' -> ' ' (HTML form / query strings). nullopt for a '%' not followed
// by two hex digits.
std::optional<std::string> PercentDecode(std::string_view text, bool plus_is_space = false);
// `text` in the form RFC 3986 section 6.2.2 compares URIs in: an escaped
// unreserved character decoded ("%75" -> "u", section 6.2.2.2), the hex
// digits of every other escape upper-cased ("%2f" -> "%2F", 6.2.2.1), so
// an escaped delimiter stays escaped. nullopt as for PercentDecode.
std::optional<std::string> PercentNormalize(std::string_view text);

}  // namespace turnkey::base
