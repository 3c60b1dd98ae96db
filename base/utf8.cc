#include "base/utf8.h"

#include <cstddef>
#include <cstdint>

namespace turnkey::base {

bool IsValidUtf8(std::string_view text) {
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const uint8_t lead = p[i];
    if (lead < 0x80) {
      ++i;
      continue;
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
      return false;  // 80-C1 (continuation or overlong lead), F5-FF
    }
    if (n - i < length || p[i + 1] < low || p[i + 1] > high) {
      return false;
    }
    for (size_t k = 2; k < length; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) {
        return false;
      }
    }
    i += length;
  }
  return true;
}

}  // namespace turnkey::base
