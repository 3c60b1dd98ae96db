#include "auth/refresh_token.h"

#include <array>
#include <cstdint>
#include <cstdlib>
#include <optional>

#include "base/bytes.h"
#include "base/crypto.h"

namespace turnkey::auth {

std::string NewRefreshToken() {
  std::array<uint8_t, kRefreshTokenBytes> bytes{};
  if (!base::RandomBytes(bytes)) {
    std::abort();
  }
  return base::Base64UrlEncode(bytes);
}

std::string RefreshTokenHash(std::string_view token) {
  return base::HexEncode(base::Sha256(base::AsBytes(token)));
}

bool IsWellFormedRefreshToken(std::string_view token) {
  if (token.size() != kRefreshTokenLength) {
    return false;
  }
  // The decoder refuses padding, foreign characters and non-zero spare bits,
  // so each 32-byte value has exactly one accepted spelling.
  const std::optional<base::Bytes> bytes = base::Base64UrlDecode(token);
  return bytes && bytes->size() == kRefreshTokenBytes;
}

std::string NewUserId() { return base::RandomHex(kUserIdBytes); }

bool IsWellFormedUserId(std::string_view id) {
  if (id.size() != kUserIdLength) {
    return false;
  }
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

}  // namespace turnkey::auth
