#include "sql/fields.h"

#include <fmt/format.h>

#include <cstdint>

#include "sql/store.h"

namespace turnkey::sql {

bool IsValidId(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdBytes) {
    return false;
  }
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) {
      return false;
    }
  }
  return true;
}

base::Status CheckId(std::string_view field, std::string_view value) {
  if (!IsValidId(value)) {
    return base::InvalidArgument(
        fmt::format("{}: must be 1-{} characters of A-Z a-z 0-9 _ -", field, kMaxIdBytes));
  }
  return base::Ok();
}

bool IsValidUtf8(std::string_view text) {
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    uint8_t b = p[i];
    if (b == 0) {
      return false;
    }
    if (b < 0x80) {
      ++i;
      continue;
    }
    size_t length = 0;
    uint32_t min = 0;
    uint32_t cp = 0;
    if ((b & 0xE0) == 0xC0) {
      length = 2;
      min = 0x80;
      cp = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
      length = 3;
      min = 0x800;
      cp = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
      length = 4;
      min = 0x10000;
      cp = b & 0x07;
    } else {
      return false;
    }
    if (n - i < length) {
      return false;
    }
    for (size_t k = 1; k < length; ++k) {
      uint8_t c = p[i + k];
      if ((c & 0xC0) != 0x80) {
        return false;
      }
      cp = (cp << 6) | (c & 0x3F);
    }
    // RFC 3629 section 3: overlong forms, UTF-16 surrogates and code points
    // above U+10FFFF are not UTF-8.
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += length;
  }
  return true;
}

base::Status CheckText(std::string_view field, std::string_view value, size_t max_bytes,
                       bool required) {
  if (required && value.empty()) {
    return base::InvalidArgument(fmt::format("{}: required", field));
  }
  if (value.size() > max_bytes) {
    return base::InvalidArgument(fmt::format("{}: longer than {} bytes", field, max_bytes));
  }
  if (!IsValidUtf8(value)) {
    return base::InvalidArgument(fmt::format("{}: not valid UTF-8 text", field));
  }
  return base::Ok();
}

std::string AsciiLower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

std::string LikePrefixPattern(std::string_view prefix) {
  std::string out;
  out.reserve(prefix.size() + 8);
  for (char c : prefix) {
    if (c == '!' || c == '%' || c == '_') {
      out += '!';
    }
    out += c;
  }
  out += '%';
  return out;
}

}  // namespace turnkey::sql
