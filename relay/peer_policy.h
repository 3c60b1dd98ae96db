// PeerPolicy: decides whether a relay may send to a peer address.
//
// A TURN server is an open door into the network it sits in unless it refuses
// peers there (reference/security.md). This is the one function every path
// calls: CreatePermission, ChannelBind, Send, and right before sending.
//
// Rules, in order:
//  1. The address and, when it embeds an IPv4 address (::ffff:a.b.c.d,
//     ::a.b.c.d, 6to4 2002:AABB:CCDD::/48, NAT64 64:ff9b::/96), that IPv4
//     address are the candidates.
//  2. If any candidate is inside an operator allow rule: allowed. Allow rules
//     name exceptions and win over every deny rule, for every form of the
//     address.
//  3. A relayed address of this server (what clients are told; not a
//     loopback one) on a port of the relay range: allowed unless an operator
//     deny rule covers it, even inside the built-in deny list (a relay on a
//     private network).
//  4. If any candidate is inside the built-in deny list, an operator deny
//     rule, or is one of the server's own addresses: denied.
//  5. Otherwise allowed.
//
// "The server's own addresses" are its listening and relay IPs. On those IPs
// only the relay port range stays reachable, so two clients relaying through
// the same server still reach each other's relayed addresses while the
// listeners, the signaling port, metrics, SSH and anything else on the host
// do not. Immutable after Create; thread-safe to read.
#pragma once

#include <cstdint>
#include <vector>

#include "base/address.h"
#include "base/cidr.h"

namespace turnkey::relay {

struct PeerPolicyOptions {
  std::vector<base::Cidr> deny;   // added to the built-in deny list
  std::vector<base::Cidr> allow;  // exceptions that win over every deny rule
  // The server's own IPs (listening and relay, after resolving 0.0.0.0/:: to
  // the host's interface addresses). Ports are ignored.
  std::vector<base::SocketAddress> own_addresses;
  // The relayed addresses clients are told, one per family (rule 3). Ports
  // are ignored.
  std::vector<base::SocketAddress> relay_addresses;
  uint16_t relay_port_min = 49152;  // on own IPs only this range is reachable
  uint16_t relay_port_max = 65535;
};

class PeerPolicy {
 public:
  explicit PeerPolicy(PeerPolicyOptions options);

  // True when a relay may send to `peer` (address and port).
  bool IsAllowed(const base::SocketAddress& peer) const;
  // True when a relay may send to some port of `peer`'s address: what a
  // permission (address only, RFC 8656 section 10.1) may be granted for.
  // Another client's relayed address on this server counts, by its relay
  // port range.
  bool IsAllowedOnSomePort(const base::SocketAddress& peer) const;

  // The built-in deny list of reference/security.md, both families.
  static const std::vector<base::Cidr>& BuiltinDenyList();

 private:
  bool Denied(const base::SocketAddress& candidate, uint16_t port) const;

  PeerPolicyOptions options_;
};

// The IPv4 address embedded in an IPv6 address by ::ffff:a.b.c.d (mapped),
// ::a.b.c.d (compatible, deprecated; not :: or ::1), 6to4 2002:AABB:CCDD::/48
// or NAT64 64:ff9b::/96. Returns a kNone address when there is none.
base::SocketAddress EmbeddedIpv4(const base::SocketAddress& v6);

}  // namespace turnkey::relay
