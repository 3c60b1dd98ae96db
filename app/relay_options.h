// Translates the validated config into the relay's own options (app/ is the
// only place that sees both).
#pragma once

#include "config/config.h"
#include "relay/relay_service.h"

namespace turnkey::app {

relay::RelayServiceOptions MakeRelayOptions(const config::Config& config);
relay::TurnServerOptions MakeTurnServerOptions(const config::Config& config);
// True if any TURN listener uses TLS (then the certificate must load).
bool NeedsTls(const config::Config& config);

}  // namespace turnkey::app
