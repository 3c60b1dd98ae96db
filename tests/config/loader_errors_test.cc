// Malformed configs: each must be refused with one message that names the
// file, the line and the key, in the form "NAME:LINE: key.path: what".
#include <gtest/gtest.h>

#include "config/loader.h"

namespace turnkey::config {
namespace {

struct BadInput {
  const char* yaml;
  // The whole message starts with this; the rest explains.
  const char* prefix;
};

const BadInput kBadInputs[] = {
    // Unknown and duplicate keys.
    {"realm: x\nturn:\n  listners: []\n",
     "x.yaml:3: turn.listners: unknown key (did you mean turn.listeners?)"},
    {"relam: x\n", "x.yaml:1: relam: unknown key (did you mean realm?)"},
    // A key with a terminal escape sequence in it is shown escaped.
    {"\"\\e[31mred\": x\n", "x.yaml:1: \\x1b[31mred: unknown key"},
    {"turn:\n  auth:\n    shared_secret: abc\n", "x.yaml:3: turn.auth.shared_secret: unknown key"},
    {"turn:\n  listeners:\n    - {transport: udp, bind: 0.0.0.0}\n",
     "x.yaml:3: turn.listeners[0].bind: unknown key"},
    {"realm: a\nrealm: b\n", "x.yaml:2: realm: duplicate key (first on line 1)"},
    // Syntax and shape.
    {"turn: [1, 2\n", "x.yaml:2: syntax error: "},
    {"realm: x\n  bad indent: 1\n", "x.yaml:2: syntax error: "},
    {"realm: x\n---\nrealm: y\n", "x.yaml:3: syntax error: more than one YAML document"},
    {"- realm\n", "x.yaml:1: (top level): expected a mapping of settings, found a list"},
    {"just text\n", "x.yaml:1: (top level): expected a mapping of settings, found a single value"},
    {"turn: 5\n", "x.yaml:1: turn: expected a mapping, found a single value"},
    {"log: [info]\n", "x.yaml:1: log: expected a mapping, found a list"},
    {"? [a, b]\n: 1\n", "x.yaml:1: (top level): keys must be plain names, found a list"},
    // Types.
    {"realm:\n", "x.yaml:1: realm: missing value (expected a string)"},
    {"realm: [a]\n", "x.yaml:1: realm: expected a string, found a list"},
    {"turn:\n  enabled: yes\n", "x.yaml:2: turn.enabled: expected true or false, found \"yes\""},
    {"turn:\n  threads: -1\n", "x.yaml:2: turn.threads: must not be negative, found -1"},
    {"turn:\n  threads: 2000\n", "x.yaml:2: turn.threads: 2000 is out of range (0-1024)"},
    {"turn:\n  threads: 4.5\n", "x.yaml:2: turn.threads: expected a whole number, found \"4.5\""},
    {"turn:\n  quotas:\n    allocations_per_user: ten\n",
     "x.yaml:3: turn.quotas.allocations_per_user: expected a whole number, found \"ten\""},
    {"turn:\n  quotas: {allocations_total: 4294967296}\n",
     "x.yaml:2: turn.quotas.allocations_total: 4294967296 is out of range"},
    {"turn:\n  quotas: {bandwidth_per_allocation: -5}\n",
     "x.yaml:2: turn.quotas.bandwidth_per_allocation: must not be negative"},
    {"turn:\n  peers: {deny: 10.0.0.0/8}\n",
     "x.yaml:2: turn.peers.deny: expected a list, found a single value"},
    // Durations.
    {"turn:\n  lifetimes:\n    permission: 5x\n",
     "x.yaml:3: turn.lifetimes.permission: bad duration \"5x\" (expected a number with unit ms, "
     "s, m, h or d)"},
    {"turn:\n  lifetimes: {channel: 600}\n",
     "x.yaml:2: turn.lifetimes.channel: bad duration \"600\" (missing unit"},
    {"turn:\n  auth: {nonce_lifetime: 0s}\n",
     "x.yaml:2: turn.auth.nonce_lifetime: must be longer than 0s"},
    {"signal:\n  jwt: {access_ttl: 1500ms}\n",
     "x.yaml:2: signal.jwt.access_ttl: bad duration \"1500ms\" (must be a whole number of "
     "seconds)"},
    {"signal:\n  reconnect_grace: -1s\n",
     "x.yaml:2: signal.reconnect_grace: bad duration \"-1s\" (must not be negative"},
    {"signal:\n  ring_timeout: 0ms\n", "x.yaml:2: signal.ring_timeout: must be longer than 0s"},
    {"signal:\n  listen: {tls: true, hsts_max_age: 1.5s}\n",
     "x.yaml:2: signal.listen.hsts_max_age: bad duration \"1.5s\""},
    {"signal:\n  engineio:\n    ping_interval:\n",
     "x.yaml:3: signal.engineio.ping_interval: missing value (expected a duration such as 30s)"},
    {"signal:\n  rate_limits:\n    events: {rate: fast}\n",
     "x.yaml:3: signal.rate_limits.events.rate: expected a number, found \"fast\""},
    {"signal:\n  rate_limits:\n    initiate_per_user: {rate: -1}\n",
     "x.yaml:3: signal.rate_limits.initiate_per_user.rate: -1 is out of range (0-1000000)"},
    {"signal:\n  rate_limits:\n    initiate_per_socket: {burst: 0.5}\n",
     "x.yaml:3: signal.rate_limits.initiate_per_socket.burst: 0.5 is out of range (1-1000000)"},
    {"signal:\n  rate_limits:\n    events: {rate: nan}\n",
     "x.yaml:3: signal.rate_limits.events.rate: expected a number, found \"nan\""},
    {"signal:\n  history: {commit_delay: 11s}\n",
     "x.yaml:2: signal.history.commit_delay: must be at most 10s, found \"11s\""},
    // Ports and addresses.
    {"turn:\n  listeners:\n    - {transport: udp, port: 70000}\n",
     "x.yaml:3: turn.listeners[0].port: port 70000 is out of range (1-65535)"},
    {"turn:\n  listeners:\n    - transport: tcp\n      port: 0\n",
     "x.yaml:4: turn.listeners[0].port: port 0 is out of range (1-65535)"},
    {"turn:\n  listeners:\n    - {transport: udp}\n    - {transport: sctp}\n",
     "x.yaml:4: turn.listeners[1].transport: bad transport \"sctp\" (expected udp, tcp, tls or "
     "dtls)"},
    {"turn:\n  listeners:\n    - {address: 0.0.0.0, port: 3478}\n",
     "x.yaml:3: turn.listeners[0].transport: missing (expected udp, tcp, tls or dtls)"},
    {"turn:\n  listeners:\n    - udp\n",
     "x.yaml:3: turn.listeners[0]: expected a mapping, found a single value"},
    {"turn:\n  listeners:\n    - {transport: udp, address: 1.2.3}\n",
     "x.yaml:3: turn.listeners[0].address: bad IP address \"1.2.3\""},
    {"turn:\n  relay:\n    addresses: [0.0.0.0, turn.example.org]\n",
     "x.yaml:3: turn.relay.addresses[1]: bad IP address \"turn.example.org\""},
    {"turn:\n  relay:\n    addresses:\n      - 192.0.2.1:3478\n",
     "x.yaml:4: turn.relay.addresses[0]: bad IP address \"192.0.2.1:3478\" (give the port "
     "separately)"},
    {"turn:\n  relay:\n    ports: {min: 50000, max: 40000}\n",
     "x.yaml:3: turn.relay.ports.min: min 50000 is above max 40000"},
    {"turn:\n  relay:\n    ports:\n      max: 1000\n",
     "x.yaml:3: turn.relay.ports.min: min 49152 is above max 1000"},
    {"turn:\n  relay:\n    ports: {min: 65536}\n",
     "x.yaml:3: turn.relay.ports.min: port 65536 is out of range (1-65535)"},
    {"turn:\n  relay:\n    addresses: [192.0.2.1, 192.0.2.2]\n",
     "x.yaml:3: turn.relay.addresses[1]: a second IPv4 address"},
    {"turn:\n  relay:\n    external_addresses: [0.0.0.0]\n",
     "x.yaml:3: turn.relay.external_addresses[0]: an unspecified address cannot be advertised"},
    {"turn:\n  relay:\n    addresses: [0.0.0.0]\n    external_addresses: [\"2001:db8::1\"]\n",
     "x.yaml:4: turn.relay.external_addresses[0]: no IPv6 address in turn.relay.addresses"},
    {"turn:\n  relay:\n    external_addresses: [224.0.0.1]\n",
     "x.yaml:3: turn.relay.external_addresses[0]: a multicast, broadcast or reserved address"},
    {"turn:\n  relay:\n    external_addresses: [255.255.255.255]\n",
     "x.yaml:3: turn.relay.external_addresses[0]: a multicast, broadcast or reserved address"},
    {"turn:\n  relay:\n    addresses: [0.0.0.0]\n    default_family: ipv6\n",
     "x.yaml:4: turn.relay.default_family: ipv6 needs an IPv6 address in turn.relay.addresses"},
    {"turn:\n  relay:\n    default_family: ipv5\n", "x.yaml:3: turn.relay.default_family"},
    {"turn:\n  relay:\n    addresses: []\n",
     "x.yaml:3: turn.relay.addresses: empty while turn.enabled is true"},
    {"turn:\n  listeners: []\n", "x.yaml:2: turn.listeners: empty while turn.enabled is true"},
    {"turn:\n  listeners:\n    - {transport: tcp, port: 3478}\n    - {transport: tls, port: "
     "3478}\n",
     "x.yaml:4: turn.listeners[1]: port 3478/tcp is also used by turn.listeners[0]"},
    {"signal:\n  listen: {address: 127.0.0.1, port: 9641}\n",
     "x.yaml:2: signal.listen: port 9641/tcp is also used by metrics.listen"},
    {"metrics:\n  listen: 0.0.0.0:8080\n",
     "x.yaml:2: metrics.listen: port 8080/tcp is also used by signal.listen"},
    // signal.listen on "::" takes IPv4 as well.
    {"signal:\n  listen: {address: \"::\", port: 9641}\n",
     "x.yaml:2: signal.listen: port 9641/tcp is also used by metrics.listen"},
    {"metrics:\n  listen: 127.0.0.1\n",
     "x.yaml:2: metrics.listen: bad address \"127.0.0.1\" (expected IPv4:port or [IPv6]:port"},
    {"metrics:\n  listen: \"[::1]:0\"\n", "x.yaml:2: metrics.listen: bad address \"[::1]:0\""},
    {"database:\n  mysql:\n    port: abc\n",
     "x.yaml:3: database.mysql.port: expected a port number, found \"abc\""},
    {"signal:\n  listen:\n    port: -80\n",
     "x.yaml:3: signal.listen.port: port -80 is out of range (1-65535)"},
    // CIDRs.
    {"turn:\n  peers:\n    deny: [10.0.0.0/33]\n",
     "x.yaml:3: turn.peers.deny[0]: bad CIDR \"10.0.0.0/33\" (prefix length must be 0-32)"},
    {"turn:\n  peers:\n    allow:\n      - 127.0.0.1/32\n      - not-an-ip/8\n",
     "x.yaml:5: turn.peers.allow[1]: bad CIDR \"not-an-ip/8\" (not an IPv4 or IPv6 address)"},
    {"turn:\n  peers:\n    allow: [\"fe80::1/10\"]\n",
     "x.yaml:3: turn.peers.allow[0]: bad CIDR \"fe80::1/10\" (host bits set; did you mean "
     "fe80::/10?)"},
    // IPv4 ranges in IPv4-mapped form would match no IPv4 peer or client.
    {"turn:\n  peers:\n    deny: [\"::ffff:8.8.8.0/120\"]\n",
     "x.yaml:3: turn.peers.deny[0]: bad CIDR \"::ffff:8.8.8.0/120\" (an IPv4 range in IPv6 form; "
     "write 8.8.8.0/24)"},
    {"signal:\n  trusted_proxies: [\"::ffff:127.0.0.1/128\"]\n",
     "x.yaml:2: signal.trusted_proxies[0]: bad CIDR \"::ffff:127.0.0.1/128\" (an IPv4 range in "
     "IPv6 form; write 127.0.0.1/32)"},
    // Enumerations.
    {"log:\n  level: verbose\n",
     "x.yaml:2: log.level: bad log level \"verbose\" (expected trace, debug, info, warn, error or "
     "off)"},
    {"log: {format: xml}\n",
     "x.yaml:1: log.format: bad log format \"xml\" (expected text or json)"},
    {"database:\n  driver: postgres\n",
     "x.yaml:2: database.driver: bad database driver \"postgres\" (expected sqlite or mysql)"},
    {"signal: {registration: invite}\n",
     "x.yaml:1: signal.registration: bad registration \"invite\" (expected open or closed)"},
    // Other values and combinations.
    {"turn:\n  lifetimes: {allocation_default: 2h, allocation_max: 1h}\n",
     "x.yaml:2: turn.lifetimes.allocation_default: 2h is longer than allocation_max 1h"},
    {"turn:\n  lifetimes:\n    allocation_max: 5m\n",
     "x.yaml:2: turn.lifetimes.allocation_default: 10m is longer than allocation_max 5m"},
    {"signal:\n  jwt:\n    refresh_ttl: 10m\n",
     "x.yaml:3: signal.jwt.refresh_ttl: 10m is shorter than access_ttl 15m"},
    {"realm: \"\"\n", "x.yaml:1: realm: must not be empty"},
    {"turn:\n  alternate_servers: [\"0.0.0.0:3478\"]\n",
     "x.yaml:2: turn.alternate_servers[0]: an unspecified address cannot be sent to clients"},
    {"turn:\n  alternate_tls_servers: [\"[::]:5349\"]\n",
     "x.yaml:2: turn.alternate_tls_servers[0]: an unspecified address cannot be sent to clients"},
    {"turn:\n  alternate_servers: [198.51.100.7]\n",
     "x.yaml:2: turn.alternate_servers[0]: bad address"},
    {"turn:\n  alternate_domain: \"turn..example.net\"\n",
     "x.yaml:2: turn.alternate_domain: bad domain"},
    {"realm: \"a\\\"b\"\n", "x.yaml:1: realm: bad realm"},
    {"turn:\n  software: \""
     "0123456789012345678901234567890123456789012345678901234567890123"
     "0123456789012345678901234567890123456789012345678901234567890123\"\n",
     "x.yaml:2: turn.software: bad software"},
    {"database:\n  mysql: {pool_size: 0}\n",
     "x.yaml:2: database.mysql.pool_size: 0 is out of range (1-256)"},
    {"database: {driver: mysql}\ncluster:\n  enabled: true\n",
     "x.yaml:3: cluster.enabled: needs signal.jwt.secret_file, the same secret on every node"},
    {"cluster:\n  name: \"a b\"\n", "x.yaml:2: cluster.name: bad cluster name \"a b\""},
    {"cluster:\n  node_timeout: 500ms\n",
     "x.yaml:2: cluster.node_timeout: must be at least 1s, found \"500ms\""},
    {"cluster:\n  redis: {port: 0}\n", "x.yaml:2: cluster.redis.port: "},
    {"database:\n  mysql: {tls_ca_file: ca.pem}\n",
     "x.yaml:2: database.mysql.tls_ca_file: set without database.mysql.tls: true"},
    {"signal:\n  engineio: {max_payload: 0}\n",
     "x.yaml:2: signal.engineio.max_payload: 0 is out of range (1-1073741824)"},
    {"metrics:\n  path: metrics\n", "x.yaml:2: metrics.path: bad path \"metrics\""},
    {"signal:\n  allowed_origins: [\"https://app.example.org/\"]\n",
     "x.yaml:2: signal.allowed_origins[0]: bad origin \"https://app.example.org/\""},
    {"signal:\n  allowed_origins:\n    - https://App.example.org\n",
     "x.yaml:3: signal.allowed_origins[0]: bad origin"},
    {"turn:\n  relay:\n    addresses: [\"::ffff:192.0.2.1\"]\n",
     "x.yaml:3: turn.relay.addresses[0]: bad IP address \"::ffff:192.0.2.1\" (an IPv4 address in "
     "IPv6 form; write 192.0.2.1)"},
    {"metrics:\n  listen: \"[::ffff:127.0.0.1]:9641\"\n",
     "x.yaml:2: metrics.listen: bad IP address \"[::ffff:127.0.0.1]:9641\" (an IPv4 address in "
     "IPv6 form; write 127.0.0.1:9641)"},
    {"signal:\n  ice_servers:\n    urls: [\"http://turn.example.org\"]\n",
     "x.yaml:3: signal.ice_servers.urls[0]: bad ICE server URL \"http://turn.example.org\""},
    {"signal:\n  ice_servers:\n    urls: [\"stun:x.org?transport=udp\"]\n",
     "x.yaml:3: signal.ice_servers.urls[0]: bad ICE server URL"},
    {"turn:\n  auth:\n    static_users:\n      - {name: alice}\n",
     "x.yaml:4: turn.auth.static_users[0].key: missing"},
    {"turn:\n  auth:\n    static_users:\n      - {name: alice, key: "
     "00000000000000000000000000000000,\n"
     "         key_sha256: 00000000000000000000000000000000}\n",
     "x.yaml:5: turn.auth.static_users[0].key_sha256: expected 64 hex digits (SHA-256 of "
     "name:realm:password)"},
    {"turn:\n  auth:\n    static_users:\n      - {name: a, key: 00000000000000000000000000000000}\n"
     "      - {name: a, key: 11111111111111111111111111111111}\n",
     "x.yaml:5: turn.auth.static_users[1].name: same name as turn.auth.static_users[0]"},
    {"turn:\n  auth:\n    static_users:\n"
     "      - {name: \"1999999999:bob\", key: 00000000000000000000000000000000}\n",
     "x.yaml:4: turn.auth.static_users[0].name: has the form of a TURN REST username (a number, "
     "':', a user); choose a name that does not start with digits followed by ':'"},
    {"turn:\n  auth:\n    secrets: [\"\"]\n", "x.yaml:3: turn.auth.secrets[0]: must not be empty"},
    {"tls:\n  certificate: \"\"\n",
     "x.yaml:2: tls.certificate: empty, but a TLS listener is configured"},
    {"turn:\n  nat_discovery: {enabled: true}\n",
     "x.yaml:2: turn.nat_discovery.alternate_address: required while turn.nat_discovery.enabled"},
    {"turn:\n  nat_discovery:\n    enabled: true\n    alternate_address: \"::\"\n",
     "x.yaml:4: turn.nat_discovery.alternate_address: must be a specific address"},
    {"turn:\n  nat_discovery: {enabled: true, alternate_address: 192.0.2.2}\n",
     "x.yaml:2: turn.nat_discovery.enabled: needs a UDP listener on a specific IPv4 address (not "
     "0.0.0.0)"},
    {"turn:\n  listeners:\n    - {transport: udp, address: 192.0.2.1, port: 3478}\n"
     "  nat_discovery:\n    enabled: true\n    alternate_address: 192.0.2.1\n",
     "x.yaml:5: turn.nat_discovery.enabled: needs a UDP listener on a specific IPv4 address (not "
     "0.0.0.0) other than alternate_address"},
    {"turn:\n  listeners:\n    - {transport: udp, address: 192.0.2.1, port: 3478}\n"
     "  nat_discovery:\n    enabled: true\n    alternate_address: 192.0.2.2\n"
     "    alternate_port: 3478\n",
     "x.yaml:7: turn.nat_discovery.alternate_port: is the port of turn.listeners[0]"},
    {"turn:\n  listeners:\n    - {transport: udp, address: 192.0.2.1, port: 65535}\n"
     "  nat_discovery: {enabled: true, alternate_address: 192.0.2.2}\n",
     "x.yaml:3: turn.listeners[0]: port 65535 has no next port for turn.nat_discovery"},
    {"turn:\n  listeners:\n    - {transport: udp, address: 192.0.2.1, port: 3478}\n"
     "    - {transport: udp, address: 192.0.2.2, port: 3479}\n"
     "  nat_discovery: {enabled: true, alternate_address: 192.0.2.2, alternate_port: 3479}\n",
     "x.yaml:4: turn.listeners[1]: port 3479/udp is also used by turn.nat_discovery"},
};

TEST(LoaderErrorsTest, EachBadInputNamesFileLineAndKey) {
  EXPECT_GE(std::size(kBadInputs), 20u);
  for (const BadInput& bad : kBadInputs) {
    SCOPED_TRACE(bad.yaml);
    base::Result<Config> cfg = LoadConfigString(bad.yaml, "x.yaml");
    ASSERT_FALSE(cfg.has_value());
    EXPECT_EQ(cfg.error().code, base::ErrorCode::kInvalidArgument);
    const std::string& message = cfg.error().message;
    EXPECT_TRUE(message.starts_with(bad.prefix)) << "got: " << message;
    // Exactly one problem per input: no knock-on errors.
    EXPECT_EQ(message.find('\n'), std::string::npos) << "got: " << message;
  }
}

// A cluster on SQLite is refused whatever else is wrong (each node would
// keep its own accounts and history).
TEST(LoaderErrorsTest, ClusterNeedsMysql) {
  auto cfg = LoadConfigString("cluster:\n  enabled: true\n", "x.yaml");
  ASSERT_FALSE(cfg);
  EXPECT_NE(cfg.error().message.find("x.yaml:2: cluster.enabled: needs database.driver: mysql"),
            std::string::npos)
      << cfg.error().message;
}

TEST(LoaderErrorsTest, ReportsEveryProblemOrderedByLine) {
  base::Result<Config> cfg = LoadConfigString(
      "realm: x\n"
      "turn:\n"
      "  threads: many\n"
      "  lifetimes: {allocation_default: 2h}\n"
      "log: {level: loud}\n"
      "colour: blue\n",
      "x.yaml");
  ASSERT_FALSE(cfg.has_value());
  // Decoding stops before cross-key checks when a value is already bad, so
  // the allocation_default check does not add a confusing second report.
  EXPECT_EQ(cfg.error().message,
            "x.yaml:3: turn.threads: expected a whole number, found \"many\"\n"
            "x.yaml:5: log.level: bad log level \"loud\" (expected trace, debug, info, warn, "
            "error or off)\n"
            "x.yaml:6: colour: unknown key");
}

TEST(LoaderErrorsTest, ManyErrorsAreCapped) {
  std::string yaml;
  for (int i = 0; i < 30; ++i) {
    yaml += "unknown_" + std::to_string(i) + ": 1\n";
  }
  base::Result<Config> cfg = LoadConfigString(yaml, "x.yaml");
  ASSERT_FALSE(cfg.has_value());
  EXPECT_TRUE(cfg.error().message.starts_with("x.yaml:1: unknown_0: unknown key\n"));
  EXPECT_TRUE(cfg.error().message.ends_with("\n(10 more errors)")) << cfg.error().message;
}

// Secrets are never echoed, whatever is wrong around them.
TEST(LoaderErrorsTest, SecretsNeverAppearInMessages) {
  const char* inputs[] = {
      "turn:\n  auth:\n    secrets: [S3CRET-one, \"\"]\n",
      "turn:\n  auth:\n    secrets: [S3CRET-one, [nested]]\n",
      "turn:\n  auth:\n    static_users: [{name: alice, key: S3CRET-key}]\n",
      ("turn:\n  auth:\n    static_users: [{name: alice, key: "
       "S3CRET0123456789abcdef0123456789}]\n"),
      "turn:\n  auth:\n    secrets: S3CRET-one\n",
  };
  for (const char* yaml : inputs) {
    SCOPED_TRACE(yaml);
    base::Result<Config> cfg = LoadConfigString(yaml, "x.yaml");
    ASSERT_FALSE(cfg.has_value());
    EXPECT_TRUE(cfg.error().message.starts_with("x.yaml:3: turn.auth.")) << cfg.error().message;
    EXPECT_EQ(cfg.error().message.find("S3CRET"), std::string::npos) << cfg.error().message;
  }
}

TEST(LoaderErrorsTest, NulBytesAreRefused) {
  const std::string yaml("realm: \"a\\0b\"\n");
  base::Result<Config> cfg = LoadConfigString(yaml, "x.yaml");
  ASSERT_FALSE(cfg.has_value());
  EXPECT_EQ(cfg.error().message, "x.yaml:1: realm: must not contain a NUL character");
}

TEST(LoaderErrorsTest, GarbageNeverThrows) {
  // Inputs that make yaml-cpp throw from odd places; all must come back as
  // errors, never as exceptions or crashes.
  const std::string inputs[] = {
      std::string("\xff\xfe\x00\x01", 4),
      "{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{",
      std::string(2000, '['),
      "a: *unknown_alias\n",
      "turn: &a {listeners: *a}\n",
      "%YAML 9.9\n---\nrealm: x\n",
      "!!binary realm: x\n",
  };
  for (const std::string& yaml : inputs) {
    base::Result<Config> cfg;
    EXPECT_NO_THROW(cfg = LoadConfigString(yaml, "x.yaml"));
    if (!cfg.has_value()) {
      EXPECT_TRUE(cfg.error().message.starts_with("x.yaml")) << cfg.error().message;
    }
  }
}

}  // namespace
}  // namespace turnkey::config
