// PlanRelayAddresses: what a relay address in the config becomes on a given
// host (made up here): the address relay sockets bind and the one clients
// are told.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "app/relay_options.h"

namespace turnkey::app {
namespace {

base::SocketAddress Ip(const char* text) { return *base::SocketAddress::ParseIp(text); }

config::Config Config(std::vector<const char*> relay, std::vector<const char*> external = {},
                      const char* listener = "0.0.0.0") {
  config::Config config;
  config.turn.relay.addresses.clear();
  for (const char* a : relay) {
    config.turn.relay.addresses.push_back(Ip(a));
  }
  for (const char* a : external) {
    config.turn.relay.external_addresses.push_back(Ip(a));
  }
  config.turn.listeners = {config::ListenerOptions{.address = Ip(listener)}};
  config.turn.listeners[0].address.set_port(3478);
  return config;
}

// A dual-stack host: a docker bridge first in interface order, a ULA before
// the global IPv6 address, link-local addresses.
HostAddresses Host() {
  HostAddresses host;
  host.interfaces = {Ip("127.0.0.1"),  Ip("::1"),        Ip("172.17.0.1"),
                     Ip("192.0.2.10"), Ip("fd00::10"),   Ip("2001:db8:1::10"),
                     Ip("fe80::1"),    Ip("169.254.0.5")};
  host.route_source[0] = Ip("192.0.2.10");
  host.route_source[1] = Ip("2001:db8:1::10");
  host.can_bind_udp = [](const base::SocketAddress&) { return true; };
  return host;
}

void ExpectRelay(const RelayAddressPlan& plan, int family, const char* bind,
                 const char* advertised) {
  ASSERT_TRUE(plan.relay[family].has_value()) << "family " << family;
  EXPECT_EQ(plan.relay[family]->bind.IpString(), bind);
  EXPECT_EQ(plan.relay[family]->advertised.IpString(), advertised);
}

TEST(RelayPlanTest, AWildcardBindsTheDefaultRoutesSourceAndTellsClientsThatAddress) {
  // Bound to the wildcard, a relay socket would send from whatever address
  // the route picks, not the relayed address the peer was told.
  const RelayAddressPlan plan = PlanRelayAddresses(Config({"0.0.0.0", "::"}), Host());
  ExpectRelay(plan, 0, "192.0.2.10", "192.0.2.10");
  ExpectRelay(plan, 1, "2001:db8:1::10", "2001:db8:1::10");
  // Every interface address is the server's own, denied as a peer.
  for (const char* own : {"172.17.0.1", "fd00::10", "127.0.0.1"}) {
    EXPECT_NE(std::find(plan.own_addresses.begin(), plan.own_addresses.end(), Ip(own)),
              plan.own_addresses.end())
        << own;
  }
}

bool IsOwn(const RelayAddressPlan& plan, const char* ip) {
  return std::find(plan.own_addresses.begin(), plan.own_addresses.end(), Ip(ip)) !=
         plan.own_addresses.end();
}

TEST(RelayPlanTest, EveryHostAddressIsOwnWhenListenersAndRelayNameOne) {
  // A datagram relayed to another address of the host arrives from the host
  // itself (past "trust this host" rules), whatever the listeners bind.
  RelayAddressPlan plan = PlanRelayAddresses(Config({"192.0.2.10"}, {}, "192.0.2.10"), Host());
  for (const char* own : {"192.0.2.10", "172.17.0.1", "fd00::10", "169.254.0.5"}) {
    EXPECT_TRUE(IsOwn(plan, own)) << own;
  }
  // A reload adds the addresses the host gained since (a floating IP).
  EXPECT_FALSE(IsOwn(plan, "198.51.100.7"));
  const std::vector<base::SocketAddress> now = {Ip("198.51.100.7"), Ip("0.0.0.0"),
                                                Ip("172.17.0.1")};
  EXPECT_EQ(AddHostAddresses(plan, now), std::vector<base::SocketAddress>{Ip("198.51.100.7")});
  EXPECT_TRUE(IsOwn(plan, "198.51.100.7"));
  EXPECT_TRUE(IsOwn(plan, "172.17.0.1"));
  EXPECT_FALSE(IsOwn(plan, "0.0.0.0"));
  // What serve's periodic look finds nothing new in changes nothing.
  EXPECT_TRUE(AddHostAddresses(plan, now).empty());
}

TEST(RelayPlanTest, WithoutADefaultRouteAGlobalAddressComesBeforeAUniqueLocalOne) {
  HostAddresses host = Host();
  host.route_source[0].reset();
  host.route_source[1].reset();
  const RelayAddressPlan plan = PlanRelayAddresses(Config({"0.0.0.0", "::"}), host);
  ExpectRelay(plan, 0, "172.17.0.1", "172.17.0.1");
  ExpectRelay(plan, 1, "2001:db8:1::10", "2001:db8:1::10");
  host.interfaces = {Ip("::1"), Ip("fd00::10"), Ip("fe80::1")};
  ExpectRelay(PlanRelayAddresses(Config({"::"}), host), 1, "fd00::10", "fd00::10");
}

TEST(RelayPlanTest, AFamilyWithNothingRoutableIsOffUnlessEveryListenerIsOnLoopback) {
  // An IPv4-only VM: IPv6 has loopback and link-local only. Telling clients
  // ::1 would hand their peers a loopback candidate; they get 440 instead.
  HostAddresses host = Host();
  host.interfaces = {Ip("127.0.0.1"), Ip("::1"), Ip("192.0.2.10"), Ip("fe80::1")};
  host.route_source[1].reset();
  const RelayAddressPlan plan = PlanRelayAddresses(Config({"0.0.0.0", "::"}), host);
  ExpectRelay(plan, 0, "192.0.2.10", "192.0.2.10");
  EXPECT_FALSE(plan.relay[1].has_value());
  ASSERT_FALSE(plan.warnings.empty());
  EXPECT_NE(plan.warnings.back().find("no IPv6 relay"), std::string::npos) << plan.warnings.back();
  // A server only reachable on loopback relays on loopback.
  const RelayAddressPlan local =
      PlanRelayAddresses(Config({"0.0.0.0", "::"}, {}, "127.0.0.1"), host);
  ExpectRelay(local, 1, "::1", "::1");
}

TEST(RelayPlanTest, AnExternalAddressKeepsTheBindUnlessItIsTheHostsOwn) {
  // 1:1 NAT: the public address is not on any interface; the kernel's
  // choice of source is what the NAT maps.
  ExpectRelay(PlanRelayAddresses(Config({"0.0.0.0"}, {"203.0.113.7"}), Host()), 0, "0.0.0.0",
              "203.0.113.7");
  // Choosing one of the host's own addresses binds it.
  ExpectRelay(PlanRelayAddresses(Config({"::"}, {"fd00::10"}), Host()), 1, "fd00::10", "fd00::10");
  // An explicit bind stays as configured.
  ExpectRelay(PlanRelayAddresses(Config({"172.17.0.1"}), Host()), 0, "172.17.0.1", "172.17.0.1");
  ExpectRelay(PlanRelayAddresses(Config({"172.17.0.1"}, {"203.0.113.7"}), Host()), 0, "172.17.0.1",
              "203.0.113.7");
}

TEST(RelayPlanTest, BehindA1To1NatRelayedDataBetweenClientsStaysOnTheHost) {
  // The public address is not the host's: data for it goes to the address
  // relay sockets receive on (the bind, or for a wildcard the address the
  // kernel would send from), not out to a NAT that may not send it back.
  auto hairpin = [](const RelayAddressPlan& plan, int family) {
    return plan.relay[family]->hairpin.IpString();
  };
  EXPECT_EQ(hairpin(PlanRelayAddresses(Config({"0.0.0.0"}, {"203.0.113.7"}), Host()), 0),
            "192.0.2.10");
  EXPECT_EQ(hairpin(PlanRelayAddresses(Config({"172.17.0.1"}, {"203.0.113.7"}), Host()), 0),
            "172.17.0.1");
  EXPECT_EQ(hairpin(PlanRelayAddresses(Config({"::"}, {"2001:db8:9::1"}), Host()), 1),
            "2001:db8:1::10");
  // Not behind a NAT: nothing to keep on the host.
  for (const RelayAddressPlan& plan :
       {PlanRelayAddresses(Config({"0.0.0.0"}), Host()),
        PlanRelayAddresses(Config({"0.0.0.0"}, {"192.0.2.10"}), Host()),
        PlanRelayAddresses(Config({"172.17.0.1"}), Host())}) {
    EXPECT_EQ(plan.relay[0]->hairpin.family(), base::Family::kNone)
        << plan.relay[0]->advertised.IpString();
  }
}

TEST(RelayPlanTest, WarnsWhenBrowsersWouldGet440) {
  // Relaying IPv6 only, with RFC 8656's IPv4 default: every Allocate that
  // names no family (every browser's) is refused.
  auto warned = [](const RelayAddressPlan& plan) {
    return std::any_of(plan.warnings.begin(), plan.warnings.end(), [](const std::string& w) {
      return w.find("set turn.relay.default_family: ipv6") != std::string::npos;
    });
  };
  config::Config v6_only = Config({"::"});
  EXPECT_TRUE(warned(PlanRelayAddresses(v6_only, Host())));
  v6_only.turn.relay.default_family = config::RelayFamily::kIpv6;
  const RelayAddressPlan plan = PlanRelayAddresses(v6_only, Host());
  EXPECT_FALSE(warned(plan));
  EXPECT_EQ(MakeTurnServerOptions(v6_only, plan).default_family, 1);
  EXPECT_FALSE(warned(PlanRelayAddresses(Config({"0.0.0.0", "::"}), Host())));
}

TEST(RelayPlanTest, WarnsWhenAnAllowRuleCoversOneOfTheHostsOwnAddresses) {
  config::Config config = Config({"0.0.0.0"});
  config.turn.peers.allow = {*base::ParseCidr("127.0.0.0/8"), *base::ParseCidr("192.0.2.0/24"),
                             *base::ParseCidr("198.51.100.0/24")};
  const RelayAddressPlan plan = PlanRelayAddresses(config, Host());
  std::vector<std::string> allow_warnings;
  for (const std::string& warning : plan.warnings) {
    if (warning.starts_with("turn.peers.allow")) {
      allow_warnings.push_back(warning);
    }
  }
  // Loopback is check-config's warning; 198.51.100.0/24 is not this host.
  ASSERT_EQ(allow_warnings.size(), 1u);
  EXPECT_EQ(allow_warnings[0],
            "turn.peers.allow[1] (192.0.2.0/24) covers this host's address 192.0.2.10, so clients "
            "may relay UDP to every port on it (TURN listeners, DNS and any other UDP "
            "service)");
}

TEST(RelayPlanTest, AnAddressThatCannotBeBoundDropsItsFamily) {
  HostAddresses host = Host();
  host.can_bind_udp = [](const base::SocketAddress& a) { return a.is_v4(); };
  const RelayAddressPlan plan = PlanRelayAddresses(Config({"0.0.0.0", "::"}), host);
  EXPECT_TRUE(plan.relay[0].has_value());
  EXPECT_FALSE(plan.relay[1].has_value());
}

TEST(RelayPlanTest, ANamedAddressThatCannotBeBoundIsAnError) {
  // Not on this host, link-local without a scope, multicast: serve and
  // check-config refuse it rather than answer 440 for its family forever.
  HostAddresses host = Host();
  host.can_bind_udp = [](const base::SocketAddress& a) { return a.IpString() != "fe80::1"; };
  const RelayAddressPlan plan = PlanRelayAddresses(Config({"192.0.2.10", "fe80::1"}), host);
  EXPECT_TRUE(plan.relay[0].has_value());
  EXPECT_FALSE(plan.relay[1].has_value());
  ASSERT_EQ(plan.errors.size(), 1u);
  EXPECT_TRUE(plan.errors[0].starts_with("turn.relay.addresses: cannot bind fe80::1 on this host"))
      << plan.errors[0];
  // The default's wildcards only warn: a host without IPv6 relays IPv4.
  host.can_bind_udp = [](const base::SocketAddress& a) { return a.is_v4(); };
  const RelayAddressPlan defaults = PlanRelayAddresses(Config({"0.0.0.0", "::"}), host);
  EXPECT_TRUE(defaults.errors.empty());
  EXPECT_TRUE(defaults.relay[0].has_value());
}

TEST(RelayPlanTest, AChosenAddressThatCannotBeBoundYetKeepsTheWildcardBind) {
  // An IPv6 address still in duplicate address detection just after boot.
  HostAddresses host = Host();
  host.can_bind_udp = [](const base::SocketAddress& a) { return a.IsUnspecified(); };
  const RelayAddressPlan plan = PlanRelayAddresses(Config({"::"}), host);
  ExpectRelay(plan, 1, "::", "2001:db8:1::10");
  ASSERT_FALSE(plan.warnings.empty());
  EXPECT_NE(plan.warnings[0].find("relay sockets stay on ::"), std::string::npos)
      << plan.warnings[0];
}

TEST(RelayPlanTest, NatDiscoveryAddsThreeListenersAndAnOwnAddress) {
  config::Config config = Config({"192.0.2.10"}, {}, "192.0.2.10");
  config.turn.nat_discovery.enabled = true;
  config.turn.nat_discovery.alternate_address = Ip("192.0.2.11");
  const RelayAddressPlan plan = PlanRelayAddresses(config, Host());
  EXPECT_NE(std::find(plan.own_addresses.begin(), plan.own_addresses.end(), Ip("192.0.2.11")),
            plan.own_addresses.end());
  const relay::RelayServiceOptions options = MakeRelayOptions(config, plan);
  ASSERT_EQ(options.worker.server.nat_discovery.size(), 1u);
  std::vector<std::string> listeners;
  for (const relay::ListenerSpec& l : options.worker.listeners) {
    listeners.push_back(l.address.ToString());
    EXPECT_EQ(l.transport, relay::ClientTransport::kUdp);
  }
  EXPECT_EQ(listeners, (std::vector<std::string>{"192.0.2.10:3478", "192.0.2.10:3479",
                                                 "192.0.2.11:3478", "192.0.2.11:3479"}));
}

TEST(RelayPlanTest, WarnsWhenRelaySocketsDoNotFitBesideClientConnections) {
  RelayAddressPlan plan;
  plan.relay[0] = relay::RelayAddress{Ip("192.0.2.10"), Ip("192.0.2.10")};
  // 1,000 ports, one family: 1,000 sockets against the 256 a limit of 1,024
  // leaves.
  auto warning = RelaySocketsWarning(plan, 40000, 40999, 1024, 768);
  ASSERT_TRUE(warning.has_value());
  EXPECT_NE(warning->find("1000 relay sockets"), std::string::npos) << *warning;
  EXPECT_NE(warning->find("at least 4256"), std::string::npos) << *warning;
  EXPECT_FALSE(RelaySocketsWarning(plan, 40000, 40999, 8192, 6144).has_value());
  // Each family holds its own port.
  plan.relay[1] = relay::RelayAddress{Ip("2001:db8::10"), Ip("2001:db8::10")};
  EXPECT_TRUE(RelaySocketsWarning(plan, 40000, 40999, 6000, 4500).has_value());
  EXPECT_FALSE(RelaySocketsWarning(plan, 40000, 40999, 10000, 7500).has_value());
  // An exact fit leaves nothing for listeners and the database.
  EXPECT_TRUE(RelaySocketsWarning(plan, 40000, 40999, 4000, 2000).has_value());
}

}  // namespace

}  // namespace turnkey::app
