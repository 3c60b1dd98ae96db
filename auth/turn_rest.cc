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

namespace {

// A plain non-negative decimal that fits in 63 bits.
std::optional<int64_t> Decimal(std::string_view digits) {
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

}  // namespace

std::optional<int64_t> TurnRestExpiry(std::string_view username) {
  if (std::optional<int64_t> first = Decimal(username.substr(0, username.find(':')))) {
    return first;
  }
  const size_t last = username.rfind(':');
  if (last == std::string_view::npos || last == 0) {
    return std::nullopt;
  }
  return Decimal(username.substr(last + 1));
}

std::string_view TurnRestUser(std::string_view username) {
  const size_t first = username.find(':');
  if (first == std::string_view::npos || !TurnRestExpiry(username)) {
    return username;
  }
  if (Decimal(username.substr(0, first))) {
    return username.substr(first + 1);
  }
  return username.substr(0, username.rfind(':'));
}

}  // namespace turnkey::auth
