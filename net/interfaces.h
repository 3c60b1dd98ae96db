// The host's own IP addresses, for resolving wildcard binds (0.0.0.0, ::)
// into addresses that can be advertised or refused as peers.
#pragma once

#include <optional>
#include <vector>

#include "base/address.h"

namespace turnkey::net {

// Every IPv4 and IPv6 address configured on an interface that is up
// (getifaddrs), ports 0. Empty if the call fails.
std::vector<base::SocketAddress> InterfaceAddresses();

// The address this host sends from toward the Internet in one family: the
// source the kernel picks for its default route (RFC 6724 source selection
// for IPv6, so deprecated addresses are passed over). Found by connecting a
// UDP socket to a documentation address (192.0.2.1, 2001:db8::1); nothing is
// sent. nullopt without a route, or when the source would be loopback.
std::optional<base::SocketAddress> RouteSource(base::Family family);

// Whether a UDP socket can be bound to `address` with port 0 right now (e.g.
// false for "::" on a host without IPv6).
bool CanBindUdp(const base::SocketAddress& address);

}  // namespace turnkey::net
