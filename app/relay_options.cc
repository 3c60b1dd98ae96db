#include "app/relay_options.h"

#include <fmt/format.h>

#include <algorithm>
#include <thread>

#include "base/cidr.h"
#include "net/connection_budget.h"
#include "net/interfaces.h"

namespace turnkey::app {

namespace {

relay::ClientTransport ToClientTransport(config::Transport t) {
  switch (t) {
    case config::Transport::kUdp:
      return relay::ClientTransport::kUdp;
    case config::Transport::kTcp:
      return relay::ClientTransport::kTcp;
    case config::Transport::kTls:
      return relay::ClientTransport::kTls;
    case config::Transport::kDtls:
      return relay::ClientTransport::kDtls;
  }
  return relay::ClientTransport::kUdp;
}

bool IsLinkLocal(const base::SocketAddress& a) {
  if (a.is_v4()) {
    return a.bytes()[0] == 169 && a.bytes()[1] == 254;
  }
  return a.bytes()[0] == 0xfe && (a.bytes()[1] & 0xc0) == 0x80;
}

bool SameFamily(const base::SocketAddress& a, int family_index) {
  return family_index == 0 ? a.is_v4() : a.is_v6();
}

bool IsUniqueLocal(const base::SocketAddress& a) {
  return a.is_v6() && (a.bytes()[0] & 0xfe) == 0xfc;  // fc00::/7
}

bool Contains(const std::vector<base::SocketAddress>& list, base::SocketAddress a) {
  a.set_port(0);
  return std::find(list.begin(), list.end(), a) != list.end();
}

// The host address a wildcard relay bind of family `f` stands for (see
// PlanRelayAddresses in the header).
std::optional<base::SocketAddress> ChooseHostAddress(const HostAddresses& host, int f,
                                                     bool local_only) {
  if (host.route_source[f] && SameFamily(*host.route_source[f], f) &&
      !host.route_source[f]->IsLoopback() && !IsLinkLocal(*host.route_source[f])) {
    return host.route_source[f];
  }
  std::optional<base::SocketAddress> routable;
  for (const base::SocketAddress& a : host.interfaces) {
    if (!SameFamily(a, f) || a.IsLoopback() || IsLinkLocal(a) || a.IsUnspecified()) {
      continue;
    }
    if (!IsUniqueLocal(a)) {
      return a;
    }
    if (!routable) {
      routable = a;
    }
  }
  if (routable || !local_only) {
    return routable;
  }
  for (const base::SocketAddress& a : host.interfaces) {
    if (SameFamily(a, f) && a.IsLoopback()) {
      return a;
    }
  }
  return std::nullopt;
}

// Adds `a` without its port unless it is there; true if it was added.
bool AddUnique(std::vector<base::SocketAddress>& list, base::SocketAddress a) {
  a.set_port(0);
  if (Contains(list, a)) {
    return false;
  }
  list.push_back(a);
  return true;
}

}  // namespace

std::vector<base::SocketAddress> AddHostAddresses(RelayAddressPlan& plan,
                                                  std::span<const base::SocketAddress> interfaces) {
  // Unspecified addresses are denied by the built-in list anyway; keep the
  // own list to real ones.
  std::erase_if(plan.own_addresses, [](const base::SocketAddress& a) { return a.IsUnspecified(); });
  std::vector<base::SocketAddress> added;
  for (const base::SocketAddress& a : interfaces) {
    if (!a.IsUnspecified() && AddUnique(plan.own_addresses, a)) {
      added.push_back(plan.own_addresses.back());
    }
  }
  return added;
}

HostAddresses ReadHostAddresses() {
  HostAddresses host;
  host.interfaces = net::InterfaceAddresses();
  host.route_source[0] = net::RouteSource(base::Family::kIpv4);
  host.route_source[1] = net::RouteSource(base::Family::kIpv6);
  host.can_bind_udp = net::CanBindUdp;
  return host;
}

RelayAddressPlan PlanRelayAddresses(const config::Config& config) {
  return PlanRelayAddresses(config, ReadHostAddresses());
}

RelayAddressPlan PlanRelayAddresses(const config::Config& config, const HostAddresses& host) {
  RelayAddressPlan plan;
  const std::vector<base::SocketAddress>& interfaces = host.interfaces;
  const bool local_only =
      !config.turn.listeners.empty() &&
      std::all_of(config.turn.listeners.begin(), config.turn.listeners.end(),
                  [](const config::ListenerOptions& l) { return l.address.IsLoopback(); });

  for (const base::SocketAddress& bind : config.turn.relay.addresses) {
    const int f = bind.is_v6() ? 1 : 0;
    const char* family_name = f == 0 ? "IPv4" : "IPv6";
    if (!host.can_bind_udp(bind)) {
      if (bind.IsUnspecified()) {
        // The default's "::" on a host without IPv6, say.
        plan.warnings.push_back(std::string("turn: no ") + family_name + " relay: cannot bind " +
                                bind.IpString() + " on this host");
      } else {
        // A chosen address that relays nothing would leave the server
        // answering 440 to every client asking for its family.
        plan.errors.push_back(
            "turn.relay.addresses: cannot bind " + bind.IpString() +
            " on this host (not an address of one of its interfaces, or one a socket cannot "
            "send from); name one of its addresses, or 0.0.0.0 / \"::\" to let turnkey choose");
      }
      continue;
    }
    relay::RelayAddress address;
    address.bind = bind;
    address.bind.set_port(0);
    std::optional<base::SocketAddress> advertised;
    for (const base::SocketAddress& external : config.turn.relay.external_addresses) {
      if (SameFamily(external, f)) {
        advertised = external;
      }
    }
    const bool from_config = advertised.has_value();
    if (bind.IsUnspecified()) {
      if (advertised) {
        if (Contains(interfaces, *advertised)) {
          address.bind = *advertised;
          address.bind.set_port(0);
        }
      } else {
        advertised = ChooseHostAddress(host, f, local_only);
        if (!advertised) {
          plan.warnings.push_back(std::string("turn: no ") + family_name +
                                  " relay: " + bind.IpString() + " has no routable " + family_name +
                                  " address to stand for on this host (clients asking for " +
                                  family_name +
                                  " get 440); set turn.relay.addresses to choose one");
          continue;
        }
        // An address the kernel does not let us bind yet (IPv6 still in
        // duplicate address detection just after boot) keeps the wildcard.
        const bool bindable = host.can_bind_udp(*advertised);
        if (bindable) {
          address.bind = *advertised;
          address.bind.set_port(0);
        }
        plan.warnings.push_back(
            std::string("turn: ") + family_name + " relay: " + bind.IpString() + " resolves to " +
            advertised->IpString() +
            (bindable ? ", which relay sockets bind and clients are told"
                      : ", which clients are told; relay sockets stay on " + bind.IpString() +
                            " (it cannot be bound yet)") +
            " (set turn.relay.addresses or turn.relay.external_addresses to choose)");
      }
    } else if (!advertised) {
      advertised = bind;
    }
    address.advertised = *advertised;
    address.advertised.set_port(0);
    if (from_config && !Contains(interfaces, address.advertised)) {
      // A 1:1 NAT's public address: relayed data between two of this
      // server's clients stays on the host (RelayAddress::hairpin).
      std::optional<base::SocketAddress> local =
          address.bind.IsUnspecified() ? ChooseHostAddress(host, f, local_only)
                                       : std::optional<base::SocketAddress>(address.bind);
      // Not loopback for a wildcard (a setup whose listeners are all on
      // loopback): it would open 127.0.0.1's relay-range ports to clients.
      if (local && *local != address.advertised &&
          !(address.bind.IsUnspecified() && local->IsLoopback())) {
        address.hairpin = *local;
        address.hairpin.set_port(0);
      }
    }
    plan.relay[f] = address;
    AddUnique(plan.own_addresses, address.bind);
    AddUnique(plan.own_addresses, address.advertised);
  }
  // Browsers name no family in their Allocate requests: without a relay of
  // the default family every one of them gets 440.
  const int default_family = config.turn.relay.default_family == config::RelayFamily::kIpv6;
  if (!plan.relay[default_family] && plan.relay[1 - default_family]) {
    const std::string missing = default_family == 0 ? "IPv4" : "IPv6";
    const std::string other = default_family == 0 ? "ipv6" : "ipv4";
    plan.warnings.push_back(
        "turn: no " + missing + " relay, and turn.relay.default_family is " +
        (default_family == 0 ? "ipv4" : "ipv6") +
        ": Allocate requests that name no address family (every WebRTC client's) get 440, so "
        "browsers get no relay candidate; on a host without " +
        missing + " set turn.relay.default_family: " + other);
  }
  for (const config::ListenerOptions& l : config.turn.listeners) {
    if (!l.address.IsUnspecified()) {
      AddUnique(plan.own_addresses, l.address);
    }
  }
  if (config.turn.nat_discovery.enabled && config.turn.nat_discovery.alternate_address) {
    AddUnique(plan.own_addresses, *config.turn.nat_discovery.alternate_address);
  }
  // Every address of the host, whether or not a listener binds it: a relayed
  // datagram to another of them arrives as if sent by this host itself.
  AddHostAddresses(plan, interfaces);

  // An allow rule wins over the own-address rule too (reference/security.md):
  // one that covers this host opens its listeners, signaling, metrics and
  // anything else on it to relayed traffic. check-config warns about
  // loopback; the host's other addresses are only known here.
  for (size_t i = 0; i < config.turn.peers.allow.size(); ++i) {
    const base::Cidr& allow = config.turn.peers.allow[i];
    for (const base::SocketAddress& own : plan.own_addresses) {
      if (!own.IsLoopback() && base::CidrContains(allow, own)) {
        plan.warnings.push_back("turn.peers.allow[" + std::to_string(i) + "] (" +
                                base::CidrToString(allow) + ") covers this host's address " +
                                own.IpString() +
                                ", so clients may relay UDP to every port on it (TURN listeners, "
                                "DNS and any other UDP service)");
        break;
      }
    }
  }
  return plan;
}

relay::TurnServerOptions MakeTurnServerOptions(const config::Config& config,
                                               const RelayAddressPlan& plan) {
  relay::TurnServerOptions options;
  const config::TurnOptions& turn = config.turn;
  options.software = turn.software;
  options.auth.realm = config.realm;
  options.auth.secrets = turn.auth.secrets;
  options.auth.nonce_lifetime = turn.auth.nonce_lifetime;
  for (const config::StaticUser& user : turn.auth.static_users) {
    options.auth.static_users.push_back(relay::StaticUserKey{user.name, user.key, user.key_sha256});
  }
  options.allocation_default = turn.lifetimes.allocation_default;
  options.allocation_max = turn.lifetimes.allocation_max;
  options.permission_lifetime = turn.lifetimes.permission;
  options.channel_lifetime = turn.lifetimes.channel;
  options.allocations_per_user = turn.quotas.allocations_per_user;
  options.allocations_total = turn.quotas.allocations_total;
  options.permissions_per_allocation = turn.quotas.permissions_per_allocation;
  options.bandwidth_per_allocation = turn.quotas.bandwidth_per_allocation;
  options.peers.deny = turn.peers.deny;
  options.peers.allow = turn.peers.allow;
  options.peers.own_addresses = plan.own_addresses;
  for (const std::optional<relay::RelayAddress>& relay : plan.relay) {
    if (relay) {
      options.peers.relay_addresses.push_back(relay->advertised);
    }
  }
  options.peers.relay_port_min = turn.relay.ports.min;
  options.peers.relay_port_max = turn.relay.ports.max;
  options.alternate_servers = turn.alternate_servers;
  options.alternate_tls_servers = turn.alternate_tls_servers;
  options.alternate_domain = turn.alternate_domain;
  options.nat_discovery = config::NatDiscoveryQuads(turn);
  options.relay[0] = plan.relay[0];
  options.relay[1] = plan.relay[1];
  options.default_family = turn.relay.default_family == config::RelayFamily::kIpv6 ? 1 : 0;
  return options;
}

relay::RelayServiceOptions MakeRelayOptions(const config::Config& config,
                                            const RelayAddressPlan& plan) {
  relay::RelayServiceOptions options;
  for (const config::ListenerOptions& l : config.turn.listeners) {
    options.worker.listeners.push_back({ToClientTransport(l.transport), l.address});
  }
  options.worker.server = MakeTurnServerOptions(config, plan);
  // NAT behavior discovery answers from three more UDP addresses per paired
  // listener; they are listeners like the others.
  for (const relay::NatDiscoveryAddresses& quad : options.worker.server.nat_discovery) {
    for (const base::SocketAddress& extra : {quad[0][1], quad[1][0], quad[1][1]}) {
      options.worker.listeners.push_back({relay::ClientTransport::kUdp, extra});
    }
  }
  options.threads = config.turn.threads;
  if (options.threads == 0) {
    options.threads = std::max(1u, std::thread::hardware_concurrency());
  }
  // The 401/438 limits are per source address and per worker, and the
  // kernel spreads one address's datagrams over the workers by port: split
  // the budget so the server as a whole answers what one worker would.
  relay::TurnServerOptions& server = options.worker.server;
  const double workers = options.threads;
  server.challenge_rate /= workers;
  server.challenge_burst = std::max(8.0, server.challenge_burst / workers);
  server.failure_rate /= workers;
  server.failure_burst = std::max(4.0, server.failure_burst / workers);
  options.worker.stream_budget = std::make_shared<net::ConnectionBudget>(
      net::ConnectionBudgetOptions{.max_per_client = config.turn.connections_per_address,
                                   .exempt_loopback = true},
      net::ProcessConnectionBudget());
  options.worker.dtls_budget = std::make_shared<net::ConnectionBudget>(net::ConnectionBudgetOptions{
      .max_per_client = config.turn.connections_per_address, .exempt_loopback = true});
  if (config.turn.pending_connections > 0) {
    options.worker.max_pending_streams =
        (config.turn.pending_connections + options.threads - 1) / options.threads;
  }
  options.port_min = config.turn.relay.ports.min;
  options.port_max = config.turn.relay.ports.max;
  options.nonce_lifetime = config.turn.auth.nonce_lifetime;
  return options;
}

bool ServesTurnOverTls(const config::Config& config) {
  return config.turn.enabled &&
         std::any_of(config.turn.listeners.begin(), config.turn.listeners.end(),
                     [](const config::ListenerOptions& l) {
                       return l.transport == config::Transport::kTls ||
                              l.transport == config::Transport::kDtls;
                     });
}

bool NeedsTls(const config::Config& config) {
  return (config.signal.enabled && config.signal.listen.tls) || ServesTurnOverTls(config);
}

std::optional<std::string> RelaySocketsWarning(const RelayAddressPlan& plan, uint16_t port_min,
                                               uint16_t port_max, size_t file_limit,
                                               size_t client_connections) {
  size_t sockets = 0;
  for (const auto& family : plan.relay) {
    if (family && port_max >= port_min) {
      sockets += static_cast<size_t>(port_max - port_min) + 1;
    }
  }
  const size_t left = file_limit > client_connections ? file_limit - client_connections : 0;
  // And room beside them: listeners, the database, the metrics listener.
  constexpr size_t kOtherFiles = 64;
  if (sockets + kOtherFiles <= left) {
    return std::nullopt;
  }
  // The budget leaves a quarter free: four times the sockets, and room.
  return fmt::format(
      "files: the relay port range allows {} relay sockets, more than the {} descriptors left "
      "beside client connections: allocations could take every descriptor and stall new "
      "connections; raise LimitNOFILE to at least {} or narrow turn.relay.ports",
      sockets, left, (sockets + kOtherFiles) * 4);
}

}  // namespace turnkey::app
