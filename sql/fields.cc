#include "sql/fields.h"

#include <fmt/format.h>

#include <cstdint>

#include "base/utf8.h"
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
  return text.find('\0') == std::string_view::npos && base::IsValidUtf8(text);
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
