#include "relay/peer_policy.h"

#include <string_view>
#include <utility>

namespace turnkey::relay {

namespace {

std::vector<base::Cidr> MakeBuiltinDenyList() {
  // reference/security.md, "TURN: relay abuse is the main threat".
  static constexpr std::string_view kRanges[] = {
      "0.0.0.0/8",        "10.0.0.0/8",     "100.64.0.0/10",   "127.0.0.0/8",     "169.254.0.0/16",
      "172.16.0.0/12",    "192.0.0.0/24",   "192.0.2.0/24",    "192.31.196.0/24", "192.52.193.0/24",
      "192.88.99.0/24",   "192.168.0.0/16", "192.175.48.0/24", "198.18.0.0/15",   "198.51.100.0/24",
      "203.0.113.0/24",   "224.0.0.0/4",    "240.0.0.0/4",     "::/128",          "::1/128",
      "64:ff9b::/96",     "64:ff9b:1::/48", "100::/64",        "2001::/23",       "2001:db8::/32",
      "2002::/16",        "fc00::/7",       "fe80::/10",       "fec0::/10",       "ff00::/8",
      "3fff::/20",         // documentation (RFC 9637)
      "168.63.129.16/32",  // Azure's platform address: its DNS resolver and WireServer
  };
  std::vector<base::Cidr> list;
  for (std::string_view text : kRanges) {
    auto cidr = base::ParseCidr(text);
    if (cidr) {
      list.push_back(*cidr);
    }
  }
  // 255.255.255.255 is inside 240.0.0.0/4. The IPv4-compatible block ::/96
  // (other than :: and ::1, listed) is reduced to its IPv4 form and checked
  // against the IPv4 list instead.
  return list;
}

bool AnyContains(const std::vector<base::Cidr>& rules, const base::SocketAddress& a) {
  for (const base::Cidr& rule : rules) {
    if (base::CidrContains(rule, a)) {
      return true;
    }
  }
  return false;
}

bool SameIp(const base::SocketAddress& a, const base::SocketAddress& b) {
  if (a.family() != b.family()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (a.bytes()[i] != b.bytes()[i]) {
      return false;
    }
  }
  return true;
}

// 6to4 2002:AABB:CCDD::/48 (RFC 3056): a network behind the IPv4 router
// AABB:CCDD, not that host.
bool IsSixToFour(const base::SocketAddress& a) {
  return a.is_v6() && a.bytes()[0] == 0x20 && a.bytes()[1] == 0x02;
}

}  // namespace

base::SocketAddress EmbeddedIpv4(const base::SocketAddress& v6) {
  if (!v6.is_v6()) {
    return {};
  }
  const uint8_t* b = v6.bytes();
  auto v4_at = [&](size_t offset) {
    return base::SocketAddress::V4({b[offset], b[offset + 1], b[offset + 2], b[offset + 3]},
                                   v6.port());
  };
  auto zero = [&](size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) {
      if (b[i] != 0) {
        return false;
      }
    }
    return true;
  };
  // ::ffff:a.b.c.d (RFC 4291 section 2.5.5.2).
  if (const base::SocketAddress plain = v6.Unmapped(); plain.is_v4()) {
    return plain;
  }
  // ::ffff:0:a.b.c.d (IPv4-translated, RFC 2765 section 2.1: what SIIT
  // translators map to IPv4).
  if (zero(0, 8) && b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0) {
    return v4_at(12);
  }
  // ::a.b.c.d (deprecated IPv4-compatible, RFC 4291 section 2.5.5.1); :: and
  // ::1 are IPv6 addresses in their own right.
  if (zero(0, 12) && !(zero(12, 15) && b[15] <= 1)) {
    return v4_at(12);
  }
  if (IsSixToFour(v6)) {
    return v4_at(2);
  }
  // NAT64 well-known prefix 64:ff9b::/96 (RFC 6052).
  if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && zero(4, 12)) {
    return v4_at(12);
  }
  return {};
}

PeerPolicy::PeerPolicy(PeerPolicyOptions options) : options_(std::move(options)) {}

const std::vector<base::Cidr>& PeerPolicy::BuiltinDenyList() {
  static const std::vector<base::Cidr> list = MakeBuiltinDenyList();
  return list;
}

bool PeerPolicy::Denied(const base::SocketAddress& candidate, uint16_t port) const {
  if (AnyContains(BuiltinDenyList(), candidate) || AnyContains(options_.deny, candidate)) {
    return true;
  }
  for (const base::SocketAddress& own : options_.own_addresses) {
    if (SameIp(own, candidate) &&
        (port < options_.relay_port_min || port > options_.relay_port_max)) {
      return true;
    }
  }
  return false;
}

bool PeerPolicy::IsAllowedOnSomePort(const base::SocketAddress& peer) const {
  base::SocketAddress in_relay_range = peer;
  in_relay_range.set_port(options_.relay_port_min);
  return IsAllowed(peer) || IsAllowed(in_relay_range);
}

bool PeerPolicy::IsAllowed(const base::SocketAddress& peer) const {
  if (peer.family() == base::Family::kNone) {
    return false;
  }
  base::SocketAddress embedded = EmbeddedIpv4(peer);
  bool has_embedded = embedded.family() != base::Family::kNone;
  // An IPv4 allow rule lets through the forms that name that host (mapped,
  // translated, compatible, NAT64), not a 6to4 address: that names a /48
  // network behind the IPv4 router, 2^80 addresses the rule never meant.
  if (AnyContains(options_.allow, peer) ||
      (has_embedded && !IsSixToFour(peer) && AnyContains(options_.allow, embedded))) {
    return true;
  }
  // Another client's relayed address on this server: reachable even where
  // the built-in list would deny it (a relay on 10.0.0.0/8), so two clients
  // relaying through this server reach each other.
  if (peer.port() >= options_.relay_port_min && peer.port() <= options_.relay_port_max) {
    for (const base::SocketAddress& relay : options_.relay_addresses) {
      if (!relay.IsLoopback() && SameIp(relay, peer)) {
        return !AnyContains(options_.deny, peer);
      }
    }
  }
  if (Denied(peer, peer.port()) || (has_embedded && Denied(embedded, peer.port()))) {
    return false;
  }
  // Past the listed ranges, an IPv6 peer must be global unicast, 2000::/3
  // (RFC 4291 section 2.4): the rest of ::/8 and everything IANA has not
  // allocated (4000::/2, 8000::/1 outside the listed blocks) is nobody's
  // public address. IPv4 in IPv6 was judged by its IPv4 form above.
  static const base::Cidr kGlobalUnicast = *base::ParseCidr("2000::/3");
  if (peer.is_v6() && !has_embedded && !base::CidrContains(kGlobalUnicast, peer)) {
    return false;
  }
  return true;
}

}  // namespace turnkey::relay
