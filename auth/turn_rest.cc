#include "auth/turn_rest.h"

#include "base/bytes.h"
#include "base/crypto.h"

namespace turnkey::auth {

std::string TurnRestPassword(std::string_view secret, std::string_view username) {
  base::Sha1Digest mac = base::HmacSha1(base::AsBytes(secret), base::AsBytes(username));
  return base::Base64Encode(mac);
}

TurnRestCredential MintTurnRestCredential(std::string_view secret, std::string_view user_id,
                                          int64_t now_unix, int64_t ttl_seconds) {
  TurnRestCredential c;
  c.expires_at = now_unix + ttl_seconds;
  c.username = std::to_string(c.expires_at);
  c.username += ':';
  c.username += user_id;
  c.password = TurnRestPassword(secret, c.username);
  return c;
}

std::optional<int64_t> TurnRestExpiry(std::string_view username) {
  std::string_view digits = username.substr(0, username.find(':'));
  if (digits.empty() || digits.size() > 18) {
    return std::nullopt;
  }
  int64_t value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    value = value * 10 + (c - '0');
  }
  return value;
}

}  // namespace turnkey::auth
