// Translates the validated config into the relay's own options (app/ is the
// only place that sees both).
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "config/config.h"
#include "relay/relay_service.h"

namespace turnkey::app {

// What the relay's addresses resolve to on this host, worked out once at
// start (relay addresses and listeners are restart-only settings) and reused
// by every reload, which only adds the host's new addresses to its own.
struct RelayAddressPlan {
  std::optional<relay::RelayAddress> relay[2];     // [0] IPv4, [1] IPv6
  std::vector<base::SocketAddress> own_addresses;  // denied as peers
  std::vector<std::string> warnings;               // for the log
  // Settings this host cannot honour (an address named in
  // turn.relay.addresses that cannot be bound): serve refuses to start.
  std::vector<std::string> errors;
};

// What PlanRelayAddresses needs to know of the host (tests make one up).
struct HostAddresses {
  std::vector<base::SocketAddress> interfaces;         // net::InterfaceAddresses()
  std::optional<base::SocketAddress> route_source[2];  // net::RouteSource(), [0] IPv4, [1] IPv6
  std::function<bool(const base::SocketAddress&)> can_bind_udp;
};
HostAddresses ReadHostAddresses();

// Resolves each relay address into what relay sockets bind and what clients
// are told, drops a family that cannot be bound here (e.g. "::" without
// IPv6), and collects the server's own addresses for the peer policy.
//
// A wildcard bind (0.0.0.0, "::") without an external address of its family
// becomes one address of the host, which relay sockets then bind, so a peer
// sees datagrams come from the relayed address the client was told (RFC 8656
// section 11.2; a wildcard socket would send from whatever address the route
// picks): the default route's source, else the first routable interface
// address (for IPv6 a global one before a ULA), else loopback when every
// TURN listener is on loopback (a local setup), else the family is off and
// clients asking for it get 440. With an external address the bind stays as
// configured unless the external address is the host's own.
RelayAddressPlan PlanRelayAddresses(const config::Config& config, const HostAddresses& host);
RelayAddressPlan PlanRelayAddresses(const config::Config& config);

// Adds `interfaces` (every address of the host, listened on or not) to the
// plan's own addresses and returns the ones that were not there yet
// (unspecified addresses are never added). A reload, and serve's periodic
// look at the host's addresses, add them as they are then.
std::vector<base::SocketAddress> AddHostAddresses(RelayAddressPlan& plan,
                                                  std::span<const base::SocketAddress> interfaces);

relay::RelayServiceOptions MakeRelayOptions(const config::Config& config,
                                            const RelayAddressPlan& plan);

// A warning when the relay sockets the plan's families and `ports` allow do
// not fit in the descriptors the connection budget leaves free
// (`file_limit` - `client_connections`): relay sockets are not limited by that
// budget, so allocations alone could take every descriptor and stall every
// listener, metrics too.
std::optional<std::string> RelaySocketsWarning(const RelayAddressPlan& plan, uint16_t port_min,
                                               uint16_t port_max, size_t file_limit,
                                               size_t client_connections);
relay::TurnServerOptions MakeTurnServerOptions(const config::Config& config,
                                               const RelayAddressPlan& plan);
// Whether the relay runs with a TLS listener.
bool ServesTurnOverTls(const config::Config& config);
// True if a role that runs uses the `tls:` certificate: a TLS TURN listener
// while turn is enabled, or signal.listen.tls while signal is enabled. Only
// then is the certificate loaded (at start and on reload).
bool NeedsTls(const config::Config& config);

}  // namespace turnkey::app
