#include "base/utf8.h"

#include <cstddef>
#include <cstdint>

namespace turnkey::base {

namespace {

// The sequence starting at p[0] (n >= 1 bytes available): its length if it is
// one well-formed character, else 0, with `bad` set to the length of its
// maximal ill-formed subpart (Unicode 15 section 3.9, "U+FFFD substitution
// of maximal subparts"; at least 1).
size_t SequenceLength(const uint8_t* p, size_t n, size_t& bad) {
  const uint8_t lead = p[0];
  if (lead < 0x80) {
    return 1;
  }
  // RFC 3629 section 4 (UTF8-2, UTF8-3, UTF8-4): the lead byte fixes the
  // length and the range of the second byte; later bytes are 80-BF.
  size_t length = 0;
  uint8_t low = 0x80;
  uint8_t high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) {
      low = 0xA0;  // overlong below U+0800
    } else if (lead == 0xED) {
      high = 0x9F;  // surrogates
    }
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) {
      low = 0x90;  // overlong below U+10000
    } else if (lead == 0xF4) {
      high = 0x8F;  // above U+10FFFF
    }
  } else {
    bad = 1;  // 80-C1 (continuation or overlong lead), F5-FF
    return 0;
  }
  for (size_t k = 1; k < length; ++k) {
    const bool fits = k < n && (k == 1 ? (p[k] >= low && p[k] <= high) : (p[k] & 0xC0) == 0x80);
    if (!fits) {
      bad = k;  // the lead and the continuation bytes that fitted
      return 0;
    }
  }
  return length;
}

}  // namespace

bool IsValidUtf8(std::string_view text) {
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  size_t bad = 0;
  while (i < n) {
    const size_t length = SequenceLength(p + i, n - i, bad);
    if (length == 0) {
      return false;
    }
    i += length;
  }
  return true;
}

std::string ToValidUtf8(std::string_view text) {
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  std::string out;
  out.reserve(n);
  size_t i = 0;
  size_t bad = 0;
  while (i < n) {
    const size_t length = SequenceLength(p + i, n - i, bad);
    if (length == 0) {
      out.append("\xEF\xBF\xBD");  // U+FFFD REPLACEMENT CHARACTER
      i += bad;
      continue;
    }
    out.append(text.substr(i, length));
    i += length;
  }
  return out;
}

std::optional<size_t> Utf8Length(std::string_view text) {
  if (!IsValidUtf8(text)) {
    return std::nullopt;
  }
  // Each code point has one byte that does not continue a sequence.
  size_t count = 0;
  for (const char c : text) {
    count += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
  }
  return count;
}

}  // namespace turnkey::base
