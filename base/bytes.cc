#include "base/bytes.h"

namespace turnkey::base {

std::string HexEncode(ByteView b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(b.size() * 2);
  for (uint8_t c : b) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0x0f]);
  }
  return out;
}

int HexDigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsUriUnreserved(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

namespace {

// Decodes `text`, handing each escape's two hex digit values to `escape`
// (which appends what it stands for) and every other character to `plain`.
template <typename Escape, typename Plain>
std::optional<std::string> Unescape(std::string_view text, Escape escape, Plain plain) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      plain(out, text[i]);
      continue;
    }
    if (i + 2 >= text.size()) {
      return std::nullopt;
    }
    const int hi = HexDigitValue(text[i + 1]);
    const int lo = HexDigitValue(text[i + 2]);
    if (hi < 0 || lo < 0) {
      return std::nullopt;
    }
    escape(out, hi, lo);
    i += 2;
  }
  return out;
}

}  // namespace

bool HexDecode(std::string_view hex, Bytes& out) {
  if (hex.size() % 2 != 0) {
    return false;
  }
  Bytes result;
  result.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = HexDigitValue(hex[i]);
    int lo = HexDigitValue(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      return false;
    }
    result.push_back(static_cast<uint8_t>(hi << 4 | lo));
  }
  out = std::move(result);
  return true;
}

std::optional<std::string> PercentDecode(std::string_view text, bool plus_is_space) {
  return Unescape(
      text,
      [](std::string& out, int hi, int lo) { out.push_back(static_cast<char>(hi << 4 | lo)); },
      [plus_is_space](std::string& out, char c) {
        out.push_back(c == '+' && plus_is_space ? ' ' : c);
      });
}

std::optional<std::string> PercentNormalize(std::string_view text) {
  return Unescape(
      text,
      [](std::string& out, int hi, int lo) {
        const char decoded = static_cast<char>(hi << 4 | lo);
        if (IsUriUnreserved(decoded)) {
          out.push_back(decoded);
        } else {
          static constexpr char kHex[] = "0123456789ABCDEF";
          out.append({'%', kHex[hi], kHex[lo]});
        }
      },
      [](std::string& out, char c) { out.push_back(c); });
}

}  // namespace turnkey::base
