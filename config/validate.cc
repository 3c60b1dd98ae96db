#include "config/validate.h"

#include <algorithm>
#include <cstddef>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "base/address.h"
#include "base/cidr.h"
#include "config/duration.h"

namespace turnkey::config {
namespace {

std::string Indexed(std::string_view path, size_t i) {
  return std::string(path) + "[" + std::to_string(i) + "]";
}

std::string_view FamilyName(base::Family family) {
  return family == base::Family::kIpv4 ? "IPv4" : "IPv6";
}

// The relay picks its address by the family the client asks for
// (REQUESTED-ADDRESS-FAMILY, RFC 8656 section 7.1), so each family may have
// one address, and an advertised address needs a bound one of its family.
void CheckRelayAddresses(const Config& cfg, Diagnostics& diag) {
  const RelayOptions& relay = cfg.turn.relay;
  std::set<base::Family> bound;
  for (size_t i = 0; i < relay.addresses.size(); ++i) {
    if (!bound.insert(relay.addresses[i].family()).second) {
      const std::string path = Indexed("turn.relay.addresses", i);
      diag.ErrorAt(path, "a second " + std::string(FamilyName(relay.addresses[i].family())) +
                             " address (one per address family)");
    }
  }
  if (cfg.turn.enabled && relay.addresses.empty()) {
    diag.ErrorAt("turn.relay.addresses", "empty while turn.enabled is true");
  }
  std::set<base::Family> advertised;
  for (size_t i = 0; i < relay.external_addresses.size(); ++i) {
    const base::SocketAddress& address = relay.external_addresses[i];
    const std::string path = Indexed("turn.relay.external_addresses", i);
    const std::string family(FamilyName(address.family()));
    // 224.0.0.0/4 multicast, 240.0.0.0/4 reserved (broadcast included),
    // ff00::/8 multicast: never one host's address.
    const bool multicast =
        address.is_v4() ? (address.bytes()[0] & 0xF0) >= 0xE0 : address.bytes()[0] == 0xFF;
    if (address.IsUnspecified()) {
      diag.ErrorAt(path, "an unspecified address cannot be advertised to clients");
    } else if (multicast) {
      diag.ErrorAt(path, "a multicast, broadcast or reserved address cannot be a relayed address");
    } else if (!advertised.insert(address.family()).second) {
      diag.ErrorAt(path, "a second " + family + " address (one per address family)");
    } else if (!bound.contains(address.family())) {
      diag.ErrorAt(path, "no " + family + " address in turn.relay.addresses to stand for");
    }
  }
  if (cfg.turn.enabled && relay.default_family == RelayFamily::kIpv6 &&
      !bound.contains(base::Family::kIpv6)) {
    diag.ErrorAt("turn.relay.default_family", "ipv6 needs an IPv6 address in turn.relay.addresses");
  }
  if (relay.ports.min > relay.ports.max) {
    diag.ErrorAt("turn.relay.ports.min", "min " + std::to_string(relay.ports.min) +
                                             " is above max " + std::to_string(relay.ports.max));
  }
}

struct Socket {
  std::string path;
  bool udp;
  base::SocketAddress address;
  // An HTTP listener on "::" takes IPv4 too (net::HttpServer).
  bool dual_stack = false;
};

// P2 for `listener`, or 0 past 65535.
uint16_t AlternatePort(const NatDiscoveryOptions& discovery, const ListenerOptions& listener) {
  if (discovery.alternate_port != 0) {
    return discovery.alternate_port;
  }
  return listener.address.port() == 65535 ? 0 : listener.address.port() + 1;
}

// Whether NAT behavior discovery is meant for `listener`: a UDP one on a
// specific address of the alternate's family other than the alternate,
// while enabled.
bool MeantForDiscovery(const NatDiscoveryOptions& discovery, const ListenerOptions& listener) {
  return discovery.enabled && discovery.alternate_address &&
         !discovery.alternate_address->IsUnspecified() && listener.transport == Transport::kUdp &&
         !listener.address.IsUnspecified() &&
         listener.address.family() == discovery.alternate_address->family() &&
         listener.address.IpString() != discovery.alternate_address->IpString();
}

// Why such a listener cannot be paired (CheckNatDiscovery reports it).
enum class DiscoveryProblem { kNone, kNoNextPort, kSamePort };

DiscoveryProblem ProblemOf(const NatDiscoveryOptions& discovery, const ListenerOptions& listener) {
  const uint16_t port = AlternatePort(discovery, listener);
  if (port == 0) {
    return DiscoveryProblem::kNoNextPort;
  }
  return port == listener.address.port() ? DiscoveryProblem::kSamePort : DiscoveryProblem::kNone;
}

bool DualStack(const base::SocketAddress& address) {
  return address.is_v6() && address.IsUnspecified();
}

// Two sockets of one protocol on one port clash when their addresses are
// equal or one is the wildcard of the same family (or a dual-stack "::").
// SO_REUSEPORT (which the TURN workers use) would hide the clash and split
// traffic between them.
void CheckPortClashes(const Config& cfg, Diagnostics& diag) {
  std::vector<Socket> sockets;
  if (cfg.turn.enabled) {
    for (size_t i = 0; i < cfg.turn.listeners.size(); ++i) {
      const ListenerOptions& listener = cfg.turn.listeners[i];
      sockets.push_back(
          {Indexed("turn.listeners", i),
           listener.transport == Transport::kUdp || listener.transport == Transport::kDtls,
           listener.address});
    }
    // The three sockets NAT behavior discovery adds to each listener it
    // pairs are UDP listeners too.
    for (const NatDiscoveryQuad& addresses : NatDiscoveryQuads(cfg.turn)) {
      const std::string path = "turn.nat_discovery (" + addresses[0][0].ToString() + ")";
      for (const base::SocketAddress& extra : {addresses[0][1], addresses[1][0], addresses[1][1]}) {
        sockets.push_back({path, true, extra});
      }
    }
  }
  // Clients may relay to any port of turn.relay.ports on this host (two
  // clients of this server reach each other that way), so a UDP listener
  // there answers relayed requests as if from a peer, from this host's own
  // address. A warning, not an error: tests pick free ports, which the
  // default range overlaps.
  if (cfg.turn.enabled) {
    const PortRange& range = cfg.turn.relay.ports;
    for (const Socket& socket : sockets) {
      const uint16_t port = socket.address.port();
      if (socket.udp && port >= range.min && port <= range.max) {
        diag.WarningAt(socket.path,
                       "port " + std::to_string(port) + "/udp is inside turn.relay.ports (" +
                           std::to_string(range.min) + "-" + std::to_string(range.max) +
                           "): clients may relay to it; move it out of the range");
      }
    }
  }
  if (cfg.signal.enabled) {
    sockets.push_back(
        {"signal.listen", false, cfg.signal.listen.address, DualStack(cfg.signal.listen.address)});
  }
  if (cfg.metrics.enabled) {
    sockets.push_back({"metrics.listen", false, cfg.metrics.listen, DualStack(cfg.metrics.listen)});
  }
  for (size_t i = 0; i < sockets.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      const Socket& a = sockets[j];
      const Socket& b = sockets[i];
      if (a.udp != b.udp || a.address.port() != b.address.port()) {
        continue;
      }
      if (a.address.family() != b.address.family() && !a.dual_stack && !b.dual_stack) {
        continue;
      }
      if (a.address == b.address || a.address.IsUnspecified() || b.address.IsUnspecified()) {
        // Blame the one written last in the file: usually the new line, and
        // never a default the operator cannot see.
        const bool blame_a = diag.LineOf(a.path) > diag.LineOf(b.path);
        const Socket& blamed = blame_a ? a : b;
        const Socket& other = blame_a ? b : a;
        diag.ErrorAt(blamed.path, "port " + std::to_string(blamed.address.port()) +
                                      (blamed.udp ? "/udp" : "/tcp") + " is also used by " +
                                      other.path);
        break;
      }
    }
  }
}

// "192.0.2.1" / "[::]": an IPv6 address followed by ':' in a message reads
// wrong without brackets.
std::string HostText(const base::SocketAddress& address) {
  return address.is_v6() ? "[" + address.IpString() + "]" : address.IpString();
}

// RFC 5780 section 6: answers name the address they come from and the
// other one, so both IPs must be specific, distinct and of one family.
void CheckNatDiscovery(const Config& cfg, Diagnostics& diag) {
  const NatDiscoveryOptions& discovery = cfg.turn.nat_discovery;
  if (!discovery.enabled || !cfg.turn.enabled) {
    return;
  }
  if (!discovery.alternate_address) {
    diag.ErrorAt("turn.nat_discovery.alternate_address",
                 "required while turn.nat_discovery.enabled is true (a second IP address of "
                 "this host)");
    return;
  }
  const base::SocketAddress& alternate = *discovery.alternate_address;
  if (alternate.IsUnspecified()) {
    diag.ErrorAt("turn.nat_discovery.alternate_address",
                 "must be a specific address: answers name it to clients (OTHER-ADDRESS)");
    return;
  }
  bool meant = false;
  for (size_t i = 0; i < cfg.turn.listeners.size(); ++i) {
    const ListenerOptions& listener = cfg.turn.listeners[i];
    if (!MeantForDiscovery(discovery, listener)) {
      continue;
    }
    meant = true;
    const std::string path = Indexed("turn.listeners", i);
    const DiscoveryProblem problem = ProblemOf(discovery, listener);
    if (problem == DiscoveryProblem::kNoNextPort) {
      diag.ErrorAt(path,
                   "port 65535 has no next port for turn.nat_discovery; set "
                   "turn.nat_discovery.alternate_port");
    } else if (problem == DiscoveryProblem::kSamePort) {
      diag.ErrorAt("turn.nat_discovery.alternate_port",
                   "is the port of " + path + "; it must be a second one");
    }
  }
  if (!meant) {
    diag.ErrorAt("turn.nat_discovery.enabled",
                 "needs a UDP listener on a specific " +
                     std::string(FamilyName(alternate.family())) + " address (not " +
                     (alternate.is_v4() ? "0.0.0.0" : "::") +
                     ") other than alternate_address: answers name the address they come from");
  }
}

}  // namespace

std::vector<NatDiscoveryQuad> NatDiscoveryQuads(const TurnOptions& turn) {
  std::vector<NatDiscoveryQuad> quads;
  const NatDiscoveryOptions& discovery = turn.nat_discovery;
  for (const ListenerOptions& listener : turn.listeners) {
    if (!MeantForDiscovery(discovery, listener) ||
        ProblemOf(discovery, listener) != DiscoveryProblem::kNone) {
      continue;
    }
    const uint16_t port = AlternatePort(discovery, listener);
    NatDiscoveryQuad quad;
    for (int ip = 0; ip < 2; ++ip) {
      for (int p = 0; p < 2; ++p) {
        base::SocketAddress address = ip == 0 ? listener.address : *discovery.alternate_address;
        address.set_port(p == 0 ? listener.address.port() : port);
        quad[ip][p] = address;
      }
    }
    quads.push_back(quad);
  }
  return quads;
}

void CheckExposure(const Config& cfg, Diagnostics& diag) {
  if (cfg.signal.enabled && !cfg.signal.listen.tls && !cfg.signal.listen.address.IsLoopback()) {
    diag.WarningAt("signal.listen",
                   "plain HTTP on " + HostText(cfg.signal.listen.address) +
                       ": passwords, tokens and TURN credentials cross the network unencrypted; "
                       "set tls: true, or listen on 127.0.0.1 behind a TLS reverse proxy");
  }
  if (cfg.metrics.enabled && !cfg.metrics.listen.IsLoopback()) {
    diag.WarningAt("metrics.listen", "metrics are served without authentication on " +
                                         HostText(cfg.metrics.listen) +
                                         ": keep that address off the Internet (firewall)");
  }
  if (cfg.signal.enabled) {
    // A proxy that may name any client defeats every per-address limit:
    // each request names another (X-Forwarded-For).
    for (size_t i = 0; i < cfg.signal.trusted_proxies.size(); ++i) {
      const base::Cidr& proxy = cfg.signal.trusted_proxies[i];
      if (proxy.prefix_length < (proxy.network.is_v6() ? 32 : 8)) {
        diag.WarningAt(Indexed("signal.trusted_proxies", i),
                       base::CidrToString(proxy) +
                           " trusts that many addresses to name their client in X-Forwarded-For, "
                           "so the per-address limits (logins, registrations, connections) can "
                           "be dodged by naming another; list your proxies' own addresses");
      }
    }
  }
  const std::vector<std::string>& urls = cfg.signal.ice_servers.urls;
  const bool turn_uri = std::any_of(urls.begin(), urls.end(), [](const std::string& url) {
    return url.starts_with("turn");  // turn: or turns:
  });
  if (cfg.signal.enabled && cfg.turn.auth.secrets.empty() && turn_uri) {
    diag.WarningAt("turn.auth.secrets",
                   "empty, so clients get only the STUN URIs of signal.ice_servers.urls (no TURN "
                   "credentials can be made without a secret)");
  }
  if (cfg.signal.enabled && !urls.empty() && !turn_uri) {
    diag.WarningAt("signal.ice_servers.urls",
                   "no turn: or turns: URI, so clients gather no relay candidate and calls "
                   "between users behind symmetric NATs, or on networks that block UDP, fail; "
                   "add this host's TURN URIs");
  }
  for (size_t i = 0; cfg.signal.enabled && i < urls.size(); ++i) {
    // The form is checked already (base::ParseIceUrl): scheme ":" host [":" port] ["?" ...].
    const std::string_view url = urls[i];
    if (!url.starts_with("turns:") && !url.starts_with("stuns:")) {
      continue;
    }
    const std::string_view rest = url.substr(6, url.find('?') - 6);
    const bool ip = rest.starts_with('[') ||
                    base::SocketAddress::ParseIp(rest.substr(0, rest.find(':'))).has_value();
    if (ip) {
      diag.WarningAt(Indexed("signal.ice_servers.urls", i),
                     std::string(url) +
                         " names an IP address: Firefox ignores a turns: or stuns: URI without "
                         "a host name (no candidate, no error), and browsers check the "
                         "certificate against it; use the DNS name the certificate is for");
    }
  }
  if (!cfg.turn.enabled) {
    return;
  }
  // Behind a reverse proxy (listening on loopback, trusting it) registration
  // is just as public.
  const bool public_signal =
      !cfg.signal.listen.address.IsLoopback() || !cfg.signal.trusted_proxies.empty();
  if (cfg.signal.enabled && public_signal && cfg.signal.registration == Registration::kOpen &&
      !cfg.turn.auth.secrets.empty() && cfg.turn.quotas.bandwidth_per_allocation == 0) {
    // Every account gets TURN credentials at login.
    diag.WarningAt(
        "signal.registration",
        "open on " +
            (cfg.signal.listen.address.IsLoopback() ? "the proxies of signal.trusted_proxies"
                                                    : HostText(cfg.signal.listen.address)) +
            " with no turn.quotas.bandwidth_per_allocation: anyone can sign up and "
            "relay traffic through this host at full speed; set registration: closed "
            "for a private service, or cap the bandwidth");
  }
  for (const std::string& secret : cfg.turn.auth.secrets) {
    if (secret.size() < kMinTurnSecretBytes) {
      // Every client's TURN password is an HMAC of its username under the
      // secret: enough to test guesses of a short one offline.
      diag.WarningAt(
          cfg.turn.auth.secrets_file.empty() ? "turn.auth.secrets" : "turn.auth.secrets_file",
          "a secret shorter than " + std::to_string(kMinTurnSecretBytes) +
              " bytes can be guessed offline from any credential it signed; use "
              "`openssl rand -hex 32`");
      break;
    }
  }
  // This host as a peer reaches it: loopback (127.0.0.0/8, ::1, IPv4-mapped
  // 127/8), and on Linux 0.0.0.0/8 and :: too.
  const base::Cidr loopback[] = {*base::ParseCidr("127.0.0.0/8"),
                                 *base::ParseCidr("::1/128"),
                                 *base::ParseCidr("::ffff:127.0.0.0/104"),
                                 *base::ParseCidr("0.0.0.0/8"),
                                 *base::ParseCidr("::/128"),
                                 *base::ParseCidr("::ffff:0.0.0.0/104")};
  for (size_t i = 0; i < cfg.turn.peers.allow.size(); ++i) {
    const base::Cidr& allow = cfg.turn.peers.allow[i];
    if (std::any_of(std::begin(loopback), std::end(loopback),
                    [&](const base::Cidr& l) { return base::CidrsOverlap(allow, l); })) {
      diag.WarningAt(Indexed("turn.peers.allow", i), "lets clients relay to loopback (" +
                                                         base::CidrToString(allow) +
                                                         "); only do this on a test machine");
    } else if (base::CidrsOverlap(allow, *base::ParseCidr("169.254.0.0/16"))) {
      // Link-local: where clouds serve instance metadata and credentials.
      diag.WarningAt(Indexed("turn.peers.allow", i),
                     "lets clients relay to link-local addresses (" + base::CidrToString(allow) +
                         "), among them a cloud's metadata service at 169.254.169.254");
    } else if (base::CidrsOverlap(allow, *base::ParseCidr("fe80::/10"))) {
      diag.WarningAt(Indexed("turn.peers.allow", i),
                     "lets clients relay to link-local addresses (" + base::CidrToString(allow) +
                         "): the machines on this host's own links, which no client should "
                         "reach through the relay");
    }
  }
}

void CheckConsistency(const Config& cfg, Diagnostics& diag) {
  if (cfg.database.driver == DatabaseDriver::kSqlite && !(cfg.database.mysql == MysqlOptions{})) {
    diag.WarningAt("database.driver",
                   "sqlite (the default), so the settings under database.mysql are not used; "
                   "set driver: mysql to use them");
  }
  const LifetimeOptions& lifetimes = cfg.turn.lifetimes;
  if (lifetimes.allocation_default > lifetimes.allocation_max) {
    diag.ErrorAt("turn.lifetimes.allocation_default", FormatDuration(lifetimes.allocation_default) +
                                                          " is longer than allocation_max " +
                                                          FormatDuration(lifetimes.allocation_max));
  }
  if (cfg.signal.jwt.refresh_ttl < cfg.signal.jwt.access_ttl) {
    diag.ErrorAt("signal.jwt.refresh_ttl", FormatDuration(cfg.signal.jwt.refresh_ttl) +
                                               " is shorter than access_ttl " +
                                               FormatDuration(cfg.signal.jwt.access_ttl));
  }
  if (cfg.turn.enabled && cfg.turn.listeners.empty()) {
    diag.ErrorAt("turn.listeners", "empty while turn.enabled is true");
  }
  CheckRelayAddresses(cfg, diag);
  CheckNatDiscovery(cfg, diag);
  CheckPortClashes(cfg, diag);
  // Engine.IO heartbeats: on a mobile or lossy link a pong can take seconds
  // (a lost TCP SYN of a new polling request alone costs 1-3 s), and a
  // shorter timeout drops clients that are fine.
  if (cfg.signal.enabled && cfg.signal.engineio.ping_timeout < std::chrono::seconds(5)) {
    diag.WarningAt("signal.engineio.ping_timeout",
                   FormatDuration(cfg.signal.engineio.ping_timeout) +
                       " drops clients on slow or lossy links (mobile) that are still there; "
                       "5s or more is safer");
  }
  // RFC 8656 fixes both lifetimes (sections 9 and 12), and clients refresh
  // on that schedule (Pion: permissions every 2 min, channels after 5):
  // shorter ones expire what a standard client still uses, and the media
  // stops. Longer ones are harmless. A warning: tests shorten them.
  for (const auto& [key, value, rfc] :
       {std::tuple{"turn.lifetimes.permission", lifetimes.permission, std::chrono::seconds(300)},
        std::tuple{"turn.lifetimes.channel", lifetimes.channel, std::chrono::seconds(600)}}) {
    if (cfg.turn.enabled && value < rfc) {
      diag.WarningAt(key, FormatDuration(value) + " is shorter than the " + FormatDuration(rfc) +
                              " of RFC 8656, on which clients refresh: theirs expire while in "
                              "use and relaying stops");
    }
  }
  if (!cfg.database.mysql.tls_ca_file.empty() && !cfg.database.mysql.tls) {
    // A CA file alone would look like an encrypted connection.
    diag.ErrorAt("database.mysql.tls_ca_file", "set without database.mysql.tls: true");
  }
  if (cfg.cluster.enabled && cfg.signal.enabled) {
    // Every node must read the same accounts and history and verify the
    // tokens the others signed.
    if (cfg.database.driver != DatabaseDriver::kMysql) {
      diag.ErrorAt("cluster.enabled",
                   "needs database.driver: mysql (every node of a cluster uses one database)");
    }
    if (cfg.signal.jwt.secret_file.empty()) {
      diag.ErrorAt("cluster.enabled",
                   "needs signal.jwt.secret_file, the same secret on every node (a generated "
                   "one differs per node and the others would refuse its tokens)");
    }
    if (cfg.turn.auth.secrets.empty() && cfg.turn.auth.secrets_file.empty()) {
      diag.WarningAt("cluster.enabled",
                     "turn.auth.secrets is empty, so each node mints TURN credentials with a "
                     "secret of its own: set the same turn.auth.secrets_file on every node");
    }
  }
  if (cfg.cluster.enabled && !cfg.signal.enabled) {
    diag.WarningAt("cluster.enabled", "has no effect without signal.enabled");
  }
  for (const auto& [key, list] :
       {std::pair{"turn.alternate_servers", &cfg.turn.alternate_servers},
        std::pair{"turn.alternate_tls_servers", &cfg.turn.alternate_tls_servers}}) {
    for (size_t i = 0; i < list->size(); ++i) {
      if ((*list)[i].IsUnspecified()) {
        diag.ErrorAt(Indexed(key, i), "an unspecified address cannot be sent to clients");
      }
    }
  }
  // The conformance app answers anyone without authentication; serve
  // refuses it off loopback, so the check belongs here, where check-config
  // sees it too.
  if (cfg.signal.enabled && cfg.signal.protocol_test_mode &&
      !cfg.signal.listen.address.IsLoopback()) {
    diag.ErrorAt("signal.protocol_test_mode",
                 "only allowed when signal.listen.address is a loopback address (found " +
                     cfg.signal.listen.address.IpString() + ")");
  }

  bool needs_tls = cfg.signal.enabled && cfg.signal.listen.tls;
  for (const ListenerOptions& listener : cfg.turn.listeners) {
    needs_tls = needs_tls || (cfg.turn.enabled && (listener.transport == Transport::kTls ||
                                                   listener.transport == Transport::kDtls));
  }
  if (needs_tls) {
    for (const auto& [path, value] : {std::pair{"tls.certificate", &cfg.tls.certificate},
                                      std::pair{"tls.private_key", &cfg.tls.private_key}}) {
      if (value->empty()) {
        diag.ErrorAt(path, "empty, but a TLS listener is configured");
      }
    }
  }

  const std::vector<StaticUser>& users = cfg.turn.auth.static_users;
  for (size_t i = 0; i < users.size(); ++i) {
    // "1999999999:bob" is also what a TURN REST credential of bob is called:
    // such a client would be checked against the static key and refused.
    // "bob:1999999999" too (the other order, which the relay takes as well),
    // but names like "client:1" may exist in configs written before: warned.
    const std::string& name = users[i].name;
    auto digits = [](std::string_view text) {
      return !text.empty() &&
             std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    const size_t first = name.find(':');
    const size_t last = name.rfind(':');
    if (first != std::string::npos && digits(std::string_view(name).substr(0, first))) {
      diag.ErrorAt(Indexed("turn.auth.static_users", i) + ".name",
                   "has the form of a TURN REST username (a number, ':', a user); choose a "
                   "name that does not start with digits followed by ':'");
    } else if (last != std::string::npos && last > 0 &&
               digits(std::string_view(name).substr(last + 1))) {
      diag.WarningAt(Indexed("turn.auth.static_users", i) + ".name",
                     "has the form of a TURN REST username with the user first (a user, ':', a "
                     "number): a TURN REST credential of that name is checked against this "
                     "static key, not the secrets");
    }
    for (size_t j = 0; j < i; ++j) {
      if (users[i].name == users[j].name) {
        diag.ErrorAt(Indexed("turn.auth.static_users", i) + ".name",
                     "same name as turn.auth.static_users[" + std::to_string(j) + "]");
        break;
      }
    }
  }
}

}  // namespace turnkey::config
