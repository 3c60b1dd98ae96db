#include "signal/account_rules.h"

#include <cstdint>

#include "base/utf8.h"

namespace turnkey::signal {

namespace {

bool IsHandleChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

// C0 controls, DEL and the C1 controls (U+0080-U+009F, 0xC2 0x80-0x9F in
// UTF-8). `text` is valid UTF-8.
bool HasControlChar(std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<uint8_t>(text[i]);
    if (c < 0x20 || c == 0x7F) {
      return true;
    }
    if (c == 0xC2 && i + 1 < text.size()) {
      const auto next = static_cast<uint8_t>(text[i + 1]);
      if (next >= 0x80 && next <= 0x9F) {
        return true;
      }
    }
  }
  return false;
}

// The code points of `text`, which is valid UTF-8.
template <typename F>
void ForEachCodePoint(std::string_view text, F&& f) {
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<uint8_t>(text[i]);
    const size_t extra = c < 0x80 ? 0 : c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
    uint32_t cp = extra == 0 ? c : c & (0x3F >> extra);
    for (size_t k = 1; k <= extra && i + k < text.size(); ++k) {
      cp = (cp << 6) | (static_cast<uint8_t>(text[i + k]) & 0x3F);
    }
    f(cp);
    i += extra + 1;
  }
}

// Unicode's White_Space characters, and those that show nothing by
// themselves (zero-width spaces and joiners, word joiner, byte order mark,
// soft hyphen, combining grapheme joiner, the direction marks, Mongolian and
// other variation selectors, tag characters, Hangul fillers, the blank
// Braille pattern, the Khmer inherent vowels, the deprecated format
// characters, interlinear annotation, musical and shorthand format
// controls): a name of only these looks empty, an email with one is not what
// its owner typed.
bool IsBlank(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0xAD ||
         cp == 0x34F || cp == 0x61C || cp == 0x115F || cp == 0x1160 || cp == 0x1680 ||
         cp == 0x17B4 || cp == 0x17B5 || (cp >= 0x180B && cp <= 0x180F) ||
         (cp >= 0x2000 && cp <= 0x200F) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || (cp >= 0x2060 && cp <= 0x2064) || (cp >= 0x206A && cp <= 0x206F) ||
         cp == 0x2800 || cp == 0x3000 || cp == 0x3164 || (cp >= 0xFE00 && cp <= 0xFE0F) ||
         cp == 0xFEFF || cp == 0xFFA0 || (cp >= 0xFFF9 && cp <= 0xFFFB) ||
         (cp >= 0x1BCA0 && cp <= 0x1BCA3) || (cp >= 0x1D173 && cp <= 0x1D17A) ||
         (cp >= 0xE0000 && cp <= 0xE007F) || (cp >= 0xE0100 && cp <= 0xE01EF);
}

// Line and paragraph separators break a name over lines; bidirectional
// embeddings, overrides and isolates make it read as something else
// ("\u202Eevil" shows as "live"). The marks (U+200E, U+200F, U+061C) stay
// allowed in a name with something visible: mixed-direction names need them.
bool IsLayoutControl(uint32_t cp) {
  return cp == 0x2028 || cp == 0x2029 || (cp >= 0x202A && cp <= 0x202E) ||
         (cp >= 0x2066 && cp <= 0x2069);
}

}  // namespace

std::optional<std::string> CheckEmail(std::string_view email) {
  if (email.empty()) {
    return "email is required";
  }
  if (email.size() > kMaxEmailBytes) {
    return "email must be at most 254 bytes";
  }
  if (!base::Utf8Length(email) || HasControlChar(email)) {
    return "email must be valid UTF-8 without control characters";
  }
  bool blank = false;
  ForEachCodePoint(email,
                   [&](uint32_t cp) { blank = blank || IsBlank(cp) || IsLayoutControl(cp); });
  if (blank) {
    return "email must not contain spaces or invisible characters";
  }
  // Exactly one '@' (docs/api.md): "a@b@c.org" is refused, not read as the
  // local part "a@b".
  const size_t at = email.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == email.size() ||
      email.find('@', at + 1) != std::string_view::npos) {
    return "email must look like name@domain";
  }
  if (at > 64) {
    return "the part of email before '@' must be at most 64 bytes";
  }
  return std::nullopt;
}

std::string NormalizeEmail(std::string_view email) {
  std::string out(email);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

std::optional<std::string> CheckPassword(std::string_view password, std::string_view field) {
  if (password.size() > kMaxPasswordBytes) {
    return std::string(field) + " must be at most 1024 bytes";
  }
  auto length = base::Utf8Length(password);
  if (!length) {
    return std::string(field) + " must be valid UTF-8";
  }
  if (*length < kMinPasswordChars) {
    return std::string(field) + " must be at least 8 characters";
  }
  return std::nullopt;
}

std::optional<std::string> CheckHandle(std::string_view handle) {
  if (handle.size() < kMinHandleChars || handle.size() > kMaxHandleChars) {
    return "handle must be 3 to 32 characters";
  }
  for (char c : handle) {
    if (!IsHandleChar(c)) {
      return "handle may contain only letters, digits, '_', '.' and '-'";
    }
  }
  return std::nullopt;
}

std::optional<std::string> CheckDisplayName(std::string_view name) {
  auto length = base::Utf8Length(name);
  bool layout = false;
  bool visible = false;
  if (length) {
    ForEachCodePoint(name, [&](uint32_t cp) {
      layout = layout || IsLayoutControl(cp);
      visible = visible || !IsBlank(cp);
    });
  }
  if (!length || HasControlChar(name) || layout) {
    return "displayName must be valid UTF-8 without control characters";
  }
  if (!visible) {
    return "displayName must not be empty";
  }
  if (*length > kMaxDisplayNameChars) {
    return "displayName must be at most 64 characters";
  }
  return std::nullopt;
}

std::optional<std::string> CheckSearchPrefix(std::string_view prefix) {
  auto length = base::Utf8Length(prefix);
  if (!length || HasControlChar(prefix)) {
    return "q must be valid UTF-8 without control characters";
  }
  if (*length == 0) {
    return "q is required";
  }
  if (*length > kMaxSearchPrefixChars) {
    return "q must be at most 32 characters";
  }
  return std::nullopt;
}

std::string HandleFromEmail(std::string_view email, std::string_view digits) {
  std::string_view local = email.substr(0, email.rfind('@'));
  std::string base;
  for (char c : local) {
    if (IsHandleChar(c) && base.size() < 24) {
      base.push_back(c);
    }
  }
  if (base.size() < kMinHandleChars) {
    base.append("user");
  }
  base.append(digits);
  if (base.size() > kMaxHandleChars) {
    base.resize(kMaxHandleChars);
  }
  return base;
}

}  // namespace turnkey::signal
