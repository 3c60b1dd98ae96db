// The client address of a request that came through reverse proxies we
// trust, from their X-Forwarded-For header.
#pragma once

#include <span>

#include "base/address.h"
#include "base/cidr.h"
#include "net/http_request.h"

namespace turnkey::net {

// The address of whoever sent `request`, seen through `trusted` proxies.
// A request whose peer is not a trusted proxy is its own client: its
// X-Forwarded-For, which anyone can write, is ignored. From a trusted peer,
// the X-Forwarded-For lists (every such header, in order, comma-separated)
// are read from the right, as each proxy appends the address it received
// the request from: the first address not in `trusted` is the client. When
// every listed address is trusted, the leftmost is. A malformed element
// stops the walk at the last address known good (the proxy itself when
// none), so a client cannot hide behind garbage. The port is 0 for a
// forwarded address.
base::SocketAddress ForwardedClient(const HttpRequest& request,
                                    std::span<const base::Cidr> trusted);

// Whether `request` comes from a program on this host itself: its client
// (request.peer, after ForwardedClient) is a loopback address, and it names
// no other client (no X-Forwarded-For, Forwarded or X-Real-IP header). A
// request a proxy forwarded, trusted or not, on this host or another (whose
// own loopback it may name), is not.
bool IsLocalClient(const HttpRequest& request);

}  // namespace turnkey::net
