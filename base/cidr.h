// IP networks in CIDR notation, as used by the TURN peer deny/allow rules.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/address.h"
#include "base/status.h"

namespace turnkey::base {

// An IPv4 or IPv6 network. Plain value; compare with ==.
struct Cidr {
  // The network address (port 0). Its host bits (those past prefix_length) are
  // always zero: ParseCidr refuses "10.0.0.1/8" instead of silently masking.
  SocketAddress network;
  // Leading bits that must match: 0-32 for IPv4, 0-128 for IPv6.
  uint8_t prefix_length = 0;

  friend bool operator==(const Cidr&, const Cidr&) = default;
};

// Parses "192.0.2.0/24", "2001:db8::/32", or a bare address ("127.0.0.1",
// "::1"), which means that single host (/32 or /128). IPv4-mapped IPv6 such
// as "::ffff:127.0.0.0/104" stays IPv6: reducing embedded IPv4 forms is the
// peer policy's job (reference/security.md), not the parser's. The error
// message quotes `text` (rules are not secret) but names no file or key.
Result<Cidr> ParseCidr(std::string_view text);

// "192.0.2.0/24", "2001:db8::/32"; ParseCidr(CidrToString(c)) == c.
std::string CidrToString(const Cidr& cidr);

// True if `address` (port ignored) lies inside `cidr`. Families must match:
// an IPv4 address is never inside an IPv6 network, mapped or not.
bool CidrContains(const Cidr& cidr, const SocketAddress& address);

// True if some address lies in both networks (one holds the other). Families
// must match, as for CidrContains.
bool CidrsOverlap(const Cidr& a, const Cidr& b);

}  // namespace turnkey::base
