// The host's own IP addresses, for resolving wildcard binds (0.0.0.0, ::)
// into addresses that can be advertised or refused as peers.
#pragma once

#include <vector>

#include "base/address.h"

namespace turnkey::net {

// Every IPv4 and IPv6 address configured on an interface that is up
// (getifaddrs), ports 0. Empty if the call fails.
std::vector<base::SocketAddress> InterfaceAddresses();

// Whether a UDP socket can be bound to `address` with port 0 right now (e.g.
// false for "::" on a host without IPv6).
bool CanBindUdp(const base::SocketAddress& address);

}  // namespace turnkey::net
