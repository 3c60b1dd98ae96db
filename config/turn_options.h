// Options of the TURN/STUN relay: the `turn:` section of the config file.
//
// Plain values with their defaults in-class, so `TurnOptions{}` is the
// configuration of a file that does not mention `turn:` at all. The loader
// (config/loader.h) fills and validates them; everything else only reads them.
// "restart" marks settings a SIGHUP reload cannot change (KeepRestartOnly()
// in config/reload.h keeps and reports them); everything else is applied on
// reload.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/address.h"
#include "base/cidr.h"
#include "base/crypto.h"

namespace turnkey::config {

// How clients reach a TURN listener.
enum class Transport {
  kUdp,   // STUN/TURN over UDP (RFC 8656 section 3.1)
  kTcp,   // STUN/TURN framed over a TCP connection
  kTls,   // the same over TLS 1.2+ on TCP; uses the `tls:` certificate
  kDtls,  // datagrams over DTLS 1.2 on UDP (RFC 7350); the same certificate
};

// "udp", "tcp", "tls", "dtls": the spelling the config file uses.
constexpr std::string_view TransportName(Transport transport) {
  switch (transport) {
    case Transport::kUdp:
      return "udp";
    case Transport::kTcp:
      return "tcp";
    case Transport::kTls:
      return "tls";
    case Transport::kDtls:
      return "dtls";
  }
  return "udp";
}

// One socket clients send STUN/TURN to. Restart.
struct ListenerOptions {
  // Client transport. Default udp.
  Transport transport = Transport::kUdp;
  // Local IP and port to bind; the port is the YAML `port` key (1-65535).
  // 0.0.0.0 / :: bind every interface. Default 0.0.0.0:3478.
  base::SocketAddress address = base::SocketAddress::V4({0, 0, 0, 0}, 3478);

  friend bool operator==(const ListenerOptions&, const ListenerOptions&) = default;
};

// Range of local ports relay sockets are bound from, inclusive. Restart.
struct PortRange {
  // Lowest relay port, 1-65535. Default 49152 (start of the IANA dynamic range).
  uint16_t min = 49152;
  // Highest relay port, min-65535. Default 65535.
  uint16_t max = 65535;

  friend bool operator==(const PortRange&, const PortRange&) = default;
};

// An address family of relayed addresses.
enum class RelayFamily { kIpv4, kIpv6 };

// Where relayed transport addresses live. Restart.
struct RelayOptions {
  // Local addresses relay sockets bind to (ports 0), at most one per
  // address family: the client's REQUESTED-ADDRESS-FAMILY picks it.
  // Non-empty while turn is enabled. Default [0.0.0.0, ::].
  std::vector<base::SocketAddress> addresses = {base::SocketAddress::V4({0, 0, 0, 0}, 0),
                                                base::SocketAddress::V6({}, 0)};
  // Addresses advertised to clients instead of the bound ones, for a host
  // behind 1:1 NAT; at most one per family, never unspecified. Default [].
  std::vector<base::SocketAddress> external_addresses;
  // Relay port range. Default 49152-65535.
  PortRange ports;
  // The family of an Allocate that names none (no REQUESTED-ADDRESS-FAMILY:
  // every WebRTC client's). RFC 8656 section 7.2 says IPv4, and 440 when
  // there is no IPv4 relay; an IPv6-only host sets kIpv6, which needs an
  // IPv6 address in `addresses`. Default kIpv4.
  RelayFamily default_family = RelayFamily::kIpv4;

  friend bool operator==(const RelayOptions&, const RelayOptions&) = default;
};

// A user configured by long-term key instead of TURN REST credentials.
struct StaticUser {
  // Username as the client sends it in USERNAME. Non-empty, unique.
  std::string name;
  // MD5(name ":" realm ":" password), RFC 8489 section 9.2.2. Written in the
  // file as 32 hex digits. It is password-equivalent: never log it.
  base::Md5Digest key{};
  // SHA-256(name ":" realm ":" password), 64 hex digits (`key_sha256`),
  // optional: it lets RFC 8489 clients that pick SHA-256 authenticate.
  // Password-equivalent as well.
  std::optional<base::Sha256Digest> key_sha256;

  friend bool operator==(const StaticUser&, const StaticUser&) = default;
};

// Client authentication (long-term credential mechanism). Reloadable.
struct AuthOptions {
  // TURN REST shared secrets. The first one mints new credentials, all of
  // them verify, so a secret is rotated by putting the new one first. When
  // `secrets_file` is set this holds the file's secrets. Default [] (then
  // only static users can authenticate). Never log these.
  std::vector<std::string> secrets;
  // File with one secret per line (blank lines and lines starting with #
  // ignored), read at load and on every reload; relative to the config
  // file's directory, stored resolved. Exclusive with inline `secrets`.
  // Default "" (none).
  std::string secrets_file;
  // Users with fixed long-term keys. Default [].
  std::vector<StaticUser> static_users;
  // How long a nonce stays valid before the client gets 438 Stale Nonce.
  // Whole seconds, > 0. Default 10m.
  std::chrono::seconds nonce_lifetime{600};

  friend bool operator==(const AuthOptions&, const AuthOptions&) = default;
};

// Lifetimes of TURN objects (RFC 8656 sections 7, 9, 12). Whole seconds,
// each > 0. Reloadable; applies to objects created or refreshed afterwards.
struct LifetimeOptions {
  // Allocation lifetime when the client asks for none; <= allocation_max.
  // Default 10m.
  std::chrono::seconds allocation_default{600};
  // Upper bound on a requested allocation lifetime. Default 1h.
  std::chrono::seconds allocation_max{3600};
  // Permission lifetime. Default 5m (the RFC's fixed value).
  std::chrono::seconds permission{300};
  // Channel binding lifetime. Default 10m (the RFC's fixed value).
  std::chrono::seconds channel{600};

  friend bool operator==(const LifetimeOptions&, const LifetimeOptions&) = default;
};

// Limits on what clients may create; 0 means unlimited. Reloadable; existing
// objects over a lowered limit are kept, new ones are refused (486 / 508).
struct QuotaOptions {
  // Concurrent allocations per username. Default 10.
  uint32_t allocations_per_user = 10;
  // Concurrent allocations on the whole server. Default 0 (unlimited).
  uint32_t allocations_total = 0;
  // Permissions one allocation may hold. Default 64.
  uint32_t permissions_per_allocation = 64;
  // Relayed bytes per second per allocation, each direction. Default 0
  // (unlimited).
  uint64_t bandwidth_per_allocation = 0;

  friend bool operator==(const QuotaOptions&, const QuotaOptions&) = default;
};

// Operator peer rules on top of the built-in deny list
// (reference/security.md). Reloadable.
struct PeerOptions {
  // Extra networks peers may not be in. Default [].
  std::vector<base::Cidr> deny;
  // Exceptions that win over every deny rule, built-in or not, e.g.
  // 127.0.0.1/32 for local tests. Default [] (safe on a public host).
  std::vector<base::Cidr> allow;

  friend bool operator==(const PeerOptions&, const PeerOptions&) = default;
};

// RFC 5780 NAT behavior discovery: Binding answers a client can tell its
// NAT's mapping and filtering from (CHANGE-REQUEST, OTHER-ADDRESS,
// RESPONSE-ORIGIN, RESPONSE-PORT, PADDING). It needs a second IP address of
// this host. Restart.
struct NatDiscoveryOptions {
  // Serve it. Off: those request attributes get 420, as from any server
  // without it. Default false.
  bool enabled = false;
  // The second IP address (A2), bound directly (not behind NAT). Each UDP
  // listener on a specific address of its family (A1:P1) gets three more UDP
  // sockets, A1:P2, A2:P1 and A2:P2, which serve everything a listener
  // serves. Required while enabled. Default none ("").
  std::optional<base::SocketAddress> alternate_address;
  // P2; 0 = each listener's port + 1. Default 0.
  uint16_t alternate_port = 0;

  friend bool operator==(const NatDiscoveryOptions&, const NatDiscoveryOptions&) = default;
};

// The four UDP addresses NAT behavior discovery answers from for one
// listener, indexed [ip][port]: [0][0] is the listener (A1:P1), [1][1] the
// OTHER-ADDRESS of its answers (A2:P2).
using NatDiscoveryQuad = std::array<std::array<base::SocketAddress, 2>, 2>;

// The `turn:` section.
struct TurnOptions {
  // Run the TURN/STUN relay at all. Restart. Default true.
  bool enabled = true;
  // Worker threads, each with its own sockets; 0 = one per CPU. 0-1024.
  // Restart. Default 0.
  uint32_t threads = 0;
  // Client-facing sockets; must not be empty while `enabled`. Restart.
  // Default udp and tcp on 0.0.0.0:3478, tls on 0.0.0.0:5349 (DTLS, which
  // browsers do not use for TURN, is added by listing it).
  std::vector<ListenerOptions> listeners = {
      {Transport::kUdp, base::SocketAddress::V4({0, 0, 0, 0}, 3478)},
      {Transport::kTcp, base::SocketAddress::V4({0, 0, 0, 0}, 3478)},
      {Transport::kTls, base::SocketAddress::V4({0, 0, 0, 0}, 5349)},
  };
  // Relay socket addresses and ports. Restart.
  RelayOptions relay;
  // Client authentication. Reloadable.
  AuthOptions auth;
  // Object lifetimes. Reloadable.
  LifetimeOptions lifetimes;
  // Quotas. Reloadable.
  QuotaOptions quotas;
  // TCP and TLS connections one client (an IPv4 address or an IPv6 /64) may
  // hold at once; further ones are closed at once. 0 = unlimited. Restart.
  // Default 4096.
  uint32_t connections_per_address = 4096;
  // TCP and TLS connections without an allocation yet (a TLS handshake, an
  // unauthenticated client), over all workers (each takes its share): a new
  // one beyond it closes the oldest. 0 = unlimited. Restart. Default 16384.
  uint32_t pending_connections = 16384;
  // Peer address rules. Reloadable.
  PeerOptions peers;
  // Other TURN servers a client is sent to (300 Try Alternate with
  // ALTERNATE-SERVER, RFC 8489 section 10) when this one refuses a new
  // allocation for its own state: while draining, or with
  // quotas.allocations_total or the relay ports used up. Taken in turn among
  // those of the client's address family; with none of that family the
  // refusal (403, 508) stands. IP:port, never unspecified. For UDP and TCP
  // clients (a client retries with its own transport). Reloadable.
  // Default [].
  std::vector<base::SocketAddress> alternate_servers;
  // The same for TLS clients: the alternates' TLS listeners. Default [] (TLS
  // clients get the refusal).
  std::vector<base::SocketAddress> alternate_tls_servers;
  // ALTERNATE-DOMAIN sent with the redirect to TLS clients: the name the
  // alternate's certificate is checked against. "" = none (the client checks
  // the name it used for this server). Reloadable. Default "".
  std::string alternate_domain;
  // NAT behavior discovery (RFC 5780). Restart.
  NatDiscoveryOptions nat_discovery;
  // SOFTWARE attribute value in responses; "" = send none, which keeps
  // unauthenticated responses small and does not advertise a version.
  // At most 127 characters (RFC 8489 section 14.14). Reloadable. Default "".
  std::string software;

  friend bool operator==(const TurnOptions&, const TurnOptions&) = default;
};

// The UDP listeners NAT behavior discovery pairs, in listener order: those
// on a specific address of alternate_address's family, while enabled. Ports
// past 65535 are left out (validation reports them). Defined in validate.cc.
std::vector<NatDiscoveryQuad> NatDiscoveryQuads(const TurnOptions& turn);

}  // namespace turnkey::config
