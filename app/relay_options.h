// Translates the validated config into the relay's own options (app/ is the
// only place that sees both).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "relay/relay_service.h"

namespace turnkey::app {

// What the relay's addresses resolve to on this host, worked out once at
// start (relay addresses and listeners are restart-only settings) and reused
// by every reload.
struct RelayAddressPlan {
  std::optional<relay::RelayAddress> relay[2];     // [0] IPv4, [1] IPv6
  std::vector<base::SocketAddress> own_addresses;  // denied as peers
  std::vector<std::string> warnings;               // for the log
};

// Resolves wildcard binds to the host's interface addresses, drops a family
// that cannot be bound here (e.g. "::" without IPv6), and collects the
// server's own addresses for the peer policy.
RelayAddressPlan PlanRelayAddresses(const config::Config& config);

relay::RelayServiceOptions MakeRelayOptions(const config::Config& config,
                                            const RelayAddressPlan& plan);
relay::TurnServerOptions MakeTurnServerOptions(const config::Config& config,
                                               const RelayAddressPlan& plan);
// True if a role that runs uses the `tls:` certificate: a TLS TURN listener
// while turn is enabled, or signal.listen.tls while signal is enabled. Only
// then is the certificate loaded (at start and on reload).
bool NeedsTls(const config::Config& config);

}  // namespace turnkey::app
