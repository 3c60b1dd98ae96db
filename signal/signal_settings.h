// SignalSettings: the settings of the signaling service a reload may
// change (config/reload.h: signal.allowed_origins, signal.ice_servers.*,
// signal.registration, turn.auth.secrets). A plain value; SignalService::Reload swaps it in.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace turnkey::signal {

struct SignalSettings {
  // Exact Origin values allowed cross-origin on the REST API ("*" = any);
  // [] = same-origin only (net/cors.h). Default [].
  std::vector<std::string> allowed_origins;
  // stun:/stuns:/turn:/turns: URIs handed to clients (auth/ice_servers.h).
  // Default [].
  std::vector<std::string> ice_urls;
  // The TURN REST secret new credentials are minted with (the first of
  // turn.auth.secrets). "" = no TURN credentials: only the STUN URIs are
  // handed out. Never logged. Default "".
  std::string turn_secret;
  // Lifetime of minted TURN credentials. > 0. Default 24h.
  std::chrono::seconds ice_ttl{24 * 3600};
  // POST /api/auth/register creates accounts; false answers it 403
  // REGISTRATION_CLOSED. Default true.
  bool registration_open = true;
};

}  // namespace turnkey::signal
