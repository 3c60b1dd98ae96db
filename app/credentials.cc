// `turnkey credentials`: mints TURN REST credentials for a user with the
// first configured secret and prints the TURN REST API JSON response
// (username, password, ttl, uris), the same thing the signaling side hands
// out at login.
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "auth/turn_rest.h"
#include "base/clock.h"
#include "base/ice_url.h"
#include "base/utf8.h"
#include "config/duration.h"

namespace turnkey::app {
namespace {

constexpr size_t kMaxTurnUsernameBytes = 508;

}  // namespace

int64_t ParseTtlSeconds(std::string_view text) {
  constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
  int64_t seconds = 0;
  if (!text.empty() &&
      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (text.size() > 10) {
      return 0;
    }
    std::from_chars(text.data(), text.data() + text.size(), seconds);
  } else {
    auto duration = config::ParseDuration(text);
    if (!duration || duration->count() % 1000 != 0) {
      return 0;
    }
    seconds = duration->count() / 1000;
  }
  return seconds >= 1 && seconds <= kMax ? seconds : 0;
}

int RunCredentials(const std::string& config_path, const CredentialsArgs& args) {
  std::optional<config::Config> config = LoadCommandConfig(config_path);
  if (!config) {
    return 1;
  }
  if (config->turn.auth.secrets.empty()) {
    std::fprintf(stderr,
                 "%s: turn.auth: no TURN REST secret configured (set turn.auth.secrets or "
                 "turn.auth.secrets_file)\n",
                 config_path.c_str());
    return 1;
  }
  // The user id becomes part of the TURN USERNAME: printable, no ':'.
  const bool printable = std::all_of(args.user.begin(), args.user.end(), [](char c) {
    return static_cast<unsigned char>(c) >= 0x20 && c != 0x7f;
  });
  if (args.user.empty() || args.user.find(':') != std::string::npos || !printable ||
      !base::Utf8Length(args.user)) {
    std::fprintf(stderr,
                 "turnkey credentials: --user must be non-empty UTF-8, without ':' and without "
                 "control characters\n");
    return 2;
  }
  int64_t ttl =
      args.ttl_seconds > 0 ? args.ttl_seconds : config->signal.ice_servers.credential_ttl.count();
  auth::TurnRestCredential credential =
      auth::MintTurnRestCredential(config->turn.auth.secrets.front(), args.user,
                                   base::SystemClock::Instance().UnixSeconds(), ttl);
  // RFC 8489 section 14.3: a USERNAME is fewer than 509 bytes.
  if (credential.username.size() > kMaxTurnUsernameBytes) {
    std::fprintf(stderr,
                 "turnkey credentials: --user is too long: the TURN username (expiry:user) must "
                 "stay under 509 bytes (RFC 8489 section 14.3)\n");
    return 2;
  }
  nlohmann::ordered_json out;
  out["username"] = credential.username;
  out["password"] = credential.password;
  out["ttl"] = ttl;
  // The TURN URIs only, as GET /api/turn/credentials hands out: STUN needs
  // no credential. (The loader has checked every URL.)
  nlohmann::json uris = nlohmann::json::array();
  for (const std::string& url : config->signal.ice_servers.urls) {
    if (auto scheme = base::ParseIceUrl(url); scheme && *scheme == base::IceUrlScheme::kTurn) {
      uris.push_back(url);
    }
  }
  out["uris"] = std::move(uris);
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

}  // namespace turnkey::app
