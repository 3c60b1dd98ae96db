#include "config/loader.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "tests/config/test_util.h"

namespace turnkey::config {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using testing::TempDir;

base::SocketAddress Ip(const char* text, uint16_t port = 0) {
  return *base::SocketAddress::ParseIp(text, port);
}

Config MustLoad(std::string_view yaml, const std::string& base_dir = "") {
  base::Result<Config> cfg = LoadConfigString(yaml, "test.yaml", base_dir);
  EXPECT_TRUE(cfg.has_value()) << cfg.error().message;
  return cfg.value_or(Config{});
}

TEST(LoaderTest, DefaultsMatchDesign) {
  const Config cfg;
  EXPECT_EQ(cfg.realm, "turnkey.local");
  EXPECT_EQ(cfg.state_dir, "/var/lib/turnkey");
  EXPECT_EQ(cfg.log.level, base::LogLevel::kInfo);
  EXPECT_EQ(cfg.log.format, base::LogFormat::kText);
  EXPECT_EQ(cfg.tls.certificate, "/etc/turnkey/tls/cert.pem");
  EXPECT_EQ(cfg.tls.private_key, "/etc/turnkey/tls/key.pem");

  EXPECT_TRUE(cfg.turn.enabled);
  EXPECT_EQ(cfg.turn.threads, 0u);
  ASSERT_EQ(cfg.turn.listeners.size(), 3u);
  EXPECT_EQ(cfg.turn.listeners[0], (ListenerOptions{Transport::kUdp, Ip("0.0.0.0", 3478)}));
  EXPECT_EQ(cfg.turn.listeners[1], (ListenerOptions{Transport::kTcp, Ip("0.0.0.0", 3478)}));
  EXPECT_EQ(cfg.turn.listeners[2], (ListenerOptions{Transport::kTls, Ip("0.0.0.0", 5349)}));
  EXPECT_EQ(cfg.turn.relay.addresses, (std::vector<base::SocketAddress>{Ip("0.0.0.0"), Ip("::")}));
  EXPECT_TRUE(cfg.turn.relay.external_addresses.empty());
  EXPECT_EQ(cfg.turn.relay.ports.min, 49152);
  EXPECT_EQ(cfg.turn.relay.ports.max, 65535);
  EXPECT_TRUE(cfg.turn.auth.secrets.empty());
  EXPECT_EQ(cfg.turn.auth.secrets_file, "");
  EXPECT_TRUE(cfg.turn.auth.static_users.empty());
  EXPECT_EQ(cfg.turn.auth.nonce_lifetime, minutes(10));
  EXPECT_EQ(cfg.turn.lifetimes.allocation_default, seconds(600));
  EXPECT_EQ(cfg.turn.lifetimes.allocation_max, seconds(3600));
  EXPECT_EQ(cfg.turn.lifetimes.permission, seconds(300));
  EXPECT_EQ(cfg.turn.lifetimes.channel, seconds(600));
  EXPECT_EQ(cfg.turn.quotas.allocations_per_user, 10u);
  EXPECT_EQ(cfg.turn.quotas.allocations_total, 0u);
  EXPECT_EQ(cfg.turn.quotas.permissions_per_allocation, 64u);
  EXPECT_EQ(cfg.turn.quotas.bandwidth_per_allocation, 0u);
  EXPECT_TRUE(cfg.turn.peers.deny.empty());
  EXPECT_TRUE(cfg.turn.peers.allow.empty());
  EXPECT_EQ(cfg.turn.software, "");

  EXPECT_TRUE(cfg.signal.enabled);
  EXPECT_EQ(cfg.signal.listen.address, Ip("0.0.0.0", 8080));
  EXPECT_FALSE(cfg.signal.listen.tls);
  EXPECT_EQ(cfg.signal.listen.hsts_max_age, std::chrono::days(365));
  EXPECT_TRUE(cfg.signal.allowed_origins.empty());
  EXPECT_EQ(cfg.signal.registration, Registration::kOpen);
  EXPECT_EQ(cfg.signal.jwt.secret_file, "");
  EXPECT_EQ(cfg.signal.jwt.secret, "");
  EXPECT_EQ(cfg.signal.jwt.access_ttl, minutes(15));
  EXPECT_EQ(cfg.signal.jwt.refresh_ttl, hours(24 * 30));
  EXPECT_EQ(cfg.signal.ring_timeout, seconds(30));
  EXPECT_EQ(cfg.signal.reconnect_grace, seconds(10));
  EXPECT_TRUE(cfg.signal.ice_servers.urls.empty());
  EXPECT_EQ(cfg.signal.ice_servers.credential_ttl, hours(24));
  EXPECT_EQ(cfg.signal.engineio.ping_interval, seconds(25));
  EXPECT_EQ(cfg.signal.engineio.ping_timeout, seconds(20));
  EXPECT_EQ(cfg.signal.engineio.max_payload, 1000000u);
  EXPECT_EQ(cfg.signal.engineio.connect_timeout, seconds(45));
  EXPECT_EQ(cfg.signal.rate_limits.events, (RateLimitOptions{.rate = 50, .burst = 100}));
  EXPECT_EQ(cfg.signal.rate_limits.initiate_per_socket,
            (RateLimitOptions{.rate = 0.5, .burst = 5}));
  EXPECT_EQ(cfg.signal.rate_limits.initiate_per_user, (RateLimitOptions{.rate = 1, .burst = 10}));
  EXPECT_EQ(cfg.signal.rate_limits.register_per_address,
            (RateLimitOptions{.rate = 0.05, .burst = 20}));
  EXPECT_EQ(cfg.signal.history.commit_delay, milliseconds(20));
  EXPECT_FALSE(cfg.signal.protocol_test_mode);

  EXPECT_EQ(cfg.database.driver, DatabaseDriver::kSqlite);
  EXPECT_EQ(cfg.database.sqlite.path, "turnkey.db");
  EXPECT_EQ(cfg.database.mysql.host, "127.0.0.1");
  EXPECT_EQ(cfg.database.mysql.port, 3306);
  EXPECT_EQ(cfg.database.mysql.user, "turnkey");
  EXPECT_EQ(cfg.database.mysql.password_file, "");
  EXPECT_EQ(cfg.database.mysql.password, "");
  EXPECT_EQ(cfg.database.mysql.database, "turnkey");
  EXPECT_EQ(cfg.database.mysql.pool_size, 4u);

  EXPECT_TRUE(cfg.metrics.enabled);
  EXPECT_EQ(cfg.metrics.listen, Ip("127.0.0.1", 9641));
  EXPECT_EQ(cfg.metrics.path, "/metrics");
}

TEST(LoaderTest, RateLimitsAndHistory) {
  const Config cfg = MustLoad(
      "signal:\n"
      "  rate_limits:\n"
      "    events: {rate: 0}\n"
      "    initiate_per_socket: {rate: 2.5, burst: 20}\n"
      "    initiate_per_user: {burst: 1e3}\n"
      "  history: {commit_delay: 0s}\n");
  // A key left out keeps its default.
  EXPECT_EQ(cfg.signal.rate_limits.events, (RateLimitOptions{.rate = 0, .burst = 100}));
  EXPECT_EQ(cfg.signal.rate_limits.initiate_per_socket,
            (RateLimitOptions{.rate = 2.5, .burst = 20}));
  EXPECT_EQ(cfg.signal.rate_limits.initiate_per_user, (RateLimitOptions{.rate = 1, .burst = 1000}));
  EXPECT_EQ(cfg.signal.history.commit_delay, milliseconds(0));
}

TEST(LoaderTest, EmptyDocumentsGiveDefaults) {
  for (std::string_view yaml :
       {"", "{}", "# only a comment\n", "---\n", "---\n...\n", "\n\n", "~"}) {
    SCOPED_TRACE(yaml);
    EXPECT_EQ(MustLoad(yaml), Config{});
  }
}

TEST(LoaderTest, EmptySectionsGiveDefaults) {
  EXPECT_EQ(MustLoad("log:\ntls:\nturn:\n  relay:\n  auth: {}\nsignal:\ndatabase:\nmetrics:\n"),
            Config{});
}

TEST(LoaderTest, EmptyListValueIsEmptyList) {
  const Config cfg = MustLoad("turn:\n  enabled: false\n  listeners:\n");
  EXPECT_TRUE(cfg.turn.listeners.empty());
}

std::string SourcePath(const char* relative) {
  return (std::filesystem::path(TURNKEY_SOURCE_DIR) / relative).string();
}

TEST(LoaderTest, ExampleFileLoadsAndStatesTheDefaults) {
  base::Result<Config> cfg = LoadConfigFile(SourcePath("config/turnkey.example.yaml"));
  ASSERT_TRUE(cfg.has_value()) << cfg.error().message;
  // The example documents each default; if code and file drift apart, this
  // names the first section that differs.
  const Config defaults;
  EXPECT_EQ(cfg->realm, defaults.realm);
  EXPECT_EQ(cfg->state_dir, defaults.state_dir);
  EXPECT_EQ(cfg->log, defaults.log);
  EXPECT_EQ(cfg->tls, defaults.tls);
  EXPECT_EQ(cfg->turn.listeners, defaults.turn.listeners);
  EXPECT_EQ(cfg->turn.relay, defaults.turn.relay);
  EXPECT_EQ(cfg->turn.auth, defaults.turn.auth);
  EXPECT_EQ(cfg->turn.lifetimes, defaults.turn.lifetimes);
  EXPECT_EQ(cfg->turn.quotas, defaults.turn.quotas);
  EXPECT_EQ(cfg->turn.peers, defaults.turn.peers);
  EXPECT_EQ(cfg->turn, defaults.turn);
  EXPECT_EQ(cfg->signal.jwt, defaults.signal.jwt);
  EXPECT_EQ(cfg->signal.engineio, defaults.signal.engineio);
  EXPECT_EQ(cfg->signal, defaults.signal);
  EXPECT_EQ(cfg->database, defaults.database);
  EXPECT_EQ(cfg->metrics, defaults.metrics);
  EXPECT_EQ(*cfg, defaults);
}

// Every key path the loader accepts, each spelled out in the example file.
TEST(LoaderTest, ExampleFileMentionsEveryKey) {
  std::ifstream in(SourcePath("config/turnkey.example.yaml"));
  std::stringstream text;
  text << in.rdbuf();
  const std::string example = text.str();
  for (const char* key : {"realm:",
                          "state_dir:",
                          "log:",
                          "level:",
                          "format:",
                          "tls:",
                          "certificate:",
                          "private_key:",
                          "turn:",
                          "enabled:",
                          "threads:",
                          "listeners:",
                          "transport:",
                          "address:",
                          "port:",
                          "relay:",
                          "addresses:",
                          "external_addresses:",
                          "default_family:",
                          "ports:",
                          "min:",
                          "max:",
                          "auth:",
                          "secrets:",
                          "secrets_file:",
                          "static_users:",
                          "name:",
                          "key:",
                          "key_sha256:",
                          "nonce_lifetime:",
                          "lifetimes:",
                          "allocation_default:",
                          "allocation_max:",
                          "permission:",
                          "channel:",
                          "quotas:",
                          "allocations_per_user:",
                          "allocations_total:",
                          "permissions_per_allocation:",
                          "bandwidth_per_allocation:",
                          "peers:",
                          "deny:",
                          "allow:",
                          "alternate_servers:",
                          "alternate_tls_servers:",
                          "alternate_domain:",
                          "nat_discovery:",
                          "alternate_address:",
                          "alternate_port:",
                          "software:",
                          "signal:",
                          "listen:",
                          "tls:",
                          "allowed_origins:",
                          "trusted_proxies:",
                          "connections_per_address:",
                          "pending_connections:",
                          "sockets_per_user:",
                          "registration:",
                          "register_per_address:",
                          "max_pending_per_address:",
                          "jwt:",
                          "secret_file:",
                          "access_ttl:",
                          "refresh_ttl:",
                          "rate_limits:",
                          "events:",
                          "initiate_per_socket:",
                          "initiate_per_user:",
                          "rate:",
                          "burst:",
                          "history:",
                          "commit_delay:",
                          "ring_timeout:",
                          "reconnect_grace:",
                          "connection_recovery:",
                          "ice_servers:",
                          "urls:",
                          "credential_ttl:",
                          "engineio:",
                          "ping_interval:",
                          "ping_timeout:",
                          "max_payload:",
                          "connect_timeout:",
                          "protocol_test_mode:",
                          "web_root:",
                          "database:",
                          "driver:",
                          "sqlite:",
                          "path:",
                          "mysql:",
                          "host:",
                          "user:",
                          "password_file:",
                          "database:",
                          "pool_size:",
                          "tls:",
                          "tls_ca_file:",
                          "metrics:",
                          "cluster:",
                          "name:",
                          "node_timeout:",
                          "redis:",
                          "username:"}) {
    EXPECT_NE(example.find(key), std::string::npos) << key;
  }
}

// Every key set to something other than its default.
constexpr std::string_view kFullConfig = R"yaml(
realm: example.org
state_dir: state
log: {level: debug, format: json}
tls:
  certificate: tls/cert.pem
  private_key: /etc/ssl/private/key.pem
turn:
  enabled: true
  threads: 4
  connections_per_address: 64
  pending_connections: 1000
  listeners:
    - {transport: udp, address: 192.0.2.10, port: 3479}
    - {transport: tcp, address: "2001:db8::10", port: 443}
    - {transport: tls}
    - transport: udp
      address: "::"
  relay:
    addresses: [192.0.2.10, "2001:db8::10"]
    external_addresses: [203.0.113.5]
    ports: {min: 40000, max: 40999}
    default_family: ipv6
  auth:
    secrets: [new-secret, old-secret]
    static_users:
      - {name: alice, key: 0123456789ABCDEF0123456789abcdef}
      - name: bob
        key: ffffffffffffffffffffffffffffffff
        key_sha256: 000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F
    nonce_lifetime: 1h
  lifetimes: {allocation_default: 5m, allocation_max: 2h, permission: 4m, channel: 9m}
  quotas:
    allocations_per_user: 3
    allocations_total: 5000
    permissions_per_allocation: 0
    bandwidth_per_allocation: 12500000000
  peers:
    deny: [203.0.113.0/24, "2001:db8:bad::/48"]
    allow: [127.0.0.1/32, "::1", 10.1.0.0/16]
  alternate_servers: ["198.51.100.7:3478", "[2001:db8::7]:3479"]
  alternate_tls_servers: ["198.51.100.7:5349"]
  alternate_domain: turn2.example.net
  nat_discovery: {enabled: true, alternate_address: 192.0.2.11, alternate_port: 3480}
  software: turnkey test
signal:
  enabled: false
  listen: {address: 127.0.0.1, port: 8443, tls: true, hsts_max_age: 1d}
  allowed_origins: ["https://app.example.org", "http://localhost:3000"]
  trusted_proxies: [127.0.0.1/32, "fd00::/8"]
  connections_per_address: 0
  pending_connections: 0
  registration: closed
  jwt: {secret_file: "", access_ttl: 5m, refresh_ttl: 7d}
  ring_timeout: 45s
  reconnect_grace: 0s
  ice_servers:
    urls:
      - stun:turn.example.org:3478
      - turn:turn.example.org:3478?transport=udp
      - turns:turn.example.org:5349?transport=tcp
      - "stun:[2001:db8::10]"
    credential_ttl: 12h
  engineio: {ping_interval: 250ms, ping_timeout: 2s, max_payload: 65536, connect_timeout: 1m}
  protocol_test_mode: true
database:
  driver: mysql
  sqlite: {path: other.db}
  mysql:
    host: db.internal
    port: 3307
    user: tk
    password_file: ""
    database: calls
    pool_size: 16
    tls: true
    tls_ca_file: /etc/ssl/db-ca.pem
metrics: {enabled: false, listen: "[::1]:9100", path: /prom}
cluster:
  enabled: false
  name: calls-eu.1
  node_timeout: 3s
  redis: {host: redis.internal, port: 6380, username: tk, password_file: redis.pw}
)yaml";

TEST(LoaderTest, FullFileSetsEveryKey) {
  const Config cfg = MustLoad(kFullConfig, "/srv/turnkey");
  EXPECT_EQ(cfg.realm, "example.org");
  EXPECT_EQ(cfg.state_dir, "/srv/turnkey/state");
  EXPECT_EQ(cfg.log.level, base::LogLevel::kDebug);
  EXPECT_EQ(cfg.log.format, base::LogFormat::kJson);
  EXPECT_EQ(cfg.tls.certificate, "/srv/turnkey/tls/cert.pem");
  EXPECT_EQ(cfg.tls.private_key, "/etc/ssl/private/key.pem");

  const TurnOptions& turn = cfg.turn;
  EXPECT_TRUE(turn.enabled);
  EXPECT_EQ(turn.threads, 4u);
  EXPECT_EQ(turn.connections_per_address, 64u);
  EXPECT_EQ(turn.pending_connections, 1000u);
  EXPECT_EQ(turn.listeners, (std::vector<ListenerOptions>{
                                {Transport::kUdp, Ip("192.0.2.10", 3479)},
                                {Transport::kTcp, Ip("2001:db8::10", 443)},
                                {Transport::kTls, Ip("0.0.0.0", 5349)},
                                {Transport::kUdp, Ip("::", 3478)},
                            }));
  EXPECT_EQ(turn.relay.addresses,
            (std::vector<base::SocketAddress>{Ip("192.0.2.10"), Ip("2001:db8::10")}));
  EXPECT_EQ(turn.relay.external_addresses, (std::vector<base::SocketAddress>{Ip("203.0.113.5")}));
  EXPECT_EQ(turn.relay.ports, (PortRange{40000, 40999}));
  EXPECT_EQ(turn.relay.default_family, RelayFamily::kIpv6);
  EXPECT_EQ(turn.auth.secrets, (std::vector<std::string>{"new-secret", "old-secret"}));
  EXPECT_EQ(turn.auth.secrets_file, "");
  ASSERT_EQ(turn.auth.static_users.size(), 2u);
  EXPECT_EQ(turn.auth.static_users[0].name, "alice");
  EXPECT_EQ(turn.auth.static_users[0].key,
            (base::Md5Digest{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67,
                             0x89, 0xab, 0xcd, 0xef}));
  EXPECT_EQ(turn.auth.static_users[1].name, "bob");
  base::Md5Digest all_ones;
  all_ones.fill(0xff);
  EXPECT_EQ(turn.auth.static_users[1].key, all_ones);
  EXPECT_FALSE(turn.auth.static_users[0].key_sha256.has_value());
  ASSERT_TRUE(turn.auth.static_users[1].key_sha256.has_value());
  for (size_t i = 0; i < 32; ++i) {
    EXPECT_EQ((*turn.auth.static_users[1].key_sha256)[i], i);
  }
  EXPECT_EQ(turn.auth.nonce_lifetime, hours(1));
  EXPECT_EQ(turn.lifetimes, (LifetimeOptions{minutes(5), hours(2), minutes(4), minutes(9)}));
  EXPECT_EQ(turn.quotas, (QuotaOptions{3, 5000, 0, 12500000000u}));
  ASSERT_EQ(turn.peers.deny.size(), 2u);
  EXPECT_EQ(CidrToString(turn.peers.deny[0]), "203.0.113.0/24");
  EXPECT_EQ(CidrToString(turn.peers.deny[1]), "2001:db8:bad::/48");
  ASSERT_EQ(turn.peers.allow.size(), 3u);
  EXPECT_EQ(CidrToString(turn.peers.allow[0]), "127.0.0.1/32");
  EXPECT_EQ(CidrToString(turn.peers.allow[1]), "::1/128");
  EXPECT_EQ(CidrToString(turn.peers.allow[2]), "10.1.0.0/16");
  EXPECT_EQ(turn.alternate_servers, (std::vector<base::SocketAddress>{
                                        *base::SocketAddress::ParseIpPort("198.51.100.7:3478"),
                                        *base::SocketAddress::ParseIpPort("[2001:db8::7]:3479")}));
  EXPECT_EQ(
      turn.alternate_tls_servers,
      (std::vector<base::SocketAddress>{*base::SocketAddress::ParseIpPort("198.51.100.7:5349")}));
  EXPECT_EQ(turn.alternate_domain, "turn2.example.net");
  EXPECT_EQ(turn.software, "turnkey test");
  EXPECT_TRUE(turn.nat_discovery.enabled);
  EXPECT_EQ(turn.nat_discovery.alternate_address, Ip("192.0.2.11"));
  EXPECT_EQ(turn.nat_discovery.alternate_port, 3480);
  // The UDP listener on 192.0.2.10:3479 is paired; the one on 0.0.0.0 is not.
  const std::vector<NatDiscoveryQuad> quads = NatDiscoveryQuads(turn);
  ASSERT_EQ(quads.size(), 1u);
  EXPECT_EQ(quads[0][0][0], Ip("192.0.2.10", 3479));
  EXPECT_EQ(quads[0][0][1], Ip("192.0.2.10", 3480));
  EXPECT_EQ(quads[0][1][0], Ip("192.0.2.11", 3479));
  EXPECT_EQ(quads[0][1][1], Ip("192.0.2.11", 3480));

  const SignalOptions& signal = cfg.signal;
  EXPECT_FALSE(signal.enabled);
  EXPECT_EQ(signal.listen.address, Ip("127.0.0.1", 8443));
  EXPECT_TRUE(signal.listen.tls);
  EXPECT_EQ(signal.listen.hsts_max_age, std::chrono::hours(24));
  EXPECT_EQ(signal.allowed_origins,
            (std::vector<std::string>{"https://app.example.org", "http://localhost:3000"}));
  EXPECT_EQ(signal.connections_per_address, 0u);
  EXPECT_EQ(signal.pending_connections, 0u);
  EXPECT_EQ(signal.registration, Registration::kClosed);
  ASSERT_EQ(signal.trusted_proxies.size(), 2u);
  EXPECT_EQ(base::CidrToString(signal.trusted_proxies[0]), "127.0.0.1/32");
  EXPECT_EQ(base::CidrToString(signal.trusted_proxies[1]), "fd00::/8");
  EXPECT_EQ(signal.jwt.secret_file, "");
  EXPECT_EQ(signal.jwt.access_ttl, minutes(5));
  EXPECT_EQ(signal.jwt.refresh_ttl, hours(24 * 7));
  EXPECT_EQ(signal.ring_timeout, seconds(45));
  EXPECT_EQ(signal.reconnect_grace, milliseconds(0));
  EXPECT_EQ(signal.ice_servers.urls.size(), 4u);
  EXPECT_EQ(signal.ice_servers.urls[1], "turn:turn.example.org:3478?transport=udp");
  EXPECT_EQ(signal.ice_servers.credential_ttl, hours(12));
  EXPECT_EQ(signal.engineio.ping_interval, milliseconds(250));
  EXPECT_EQ(signal.engineio.ping_timeout, seconds(2));
  EXPECT_EQ(signal.engineio.max_payload, 65536u);
  EXPECT_EQ(signal.engineio.connect_timeout, minutes(1));
  EXPECT_TRUE(signal.protocol_test_mode);

  EXPECT_EQ(cfg.database.driver, DatabaseDriver::kMysql);
  EXPECT_EQ(cfg.database.sqlite.path, "other.db");
  EXPECT_EQ(cfg.database.mysql.host, "db.internal");
  EXPECT_EQ(cfg.database.mysql.port, 3307);
  EXPECT_EQ(cfg.database.mysql.user, "tk");
  EXPECT_EQ(cfg.database.mysql.password, "");
  EXPECT_EQ(cfg.database.mysql.database, "calls");
  EXPECT_EQ(cfg.database.mysql.pool_size, 16u);
  EXPECT_TRUE(cfg.database.mysql.tls);
  EXPECT_EQ(cfg.database.mysql.tls_ca_file, "/etc/ssl/db-ca.pem");

  EXPECT_FALSE(cfg.metrics.enabled);
  EXPECT_EQ(cfg.metrics.listen, Ip("::1", 9100));
  EXPECT_EQ(cfg.metrics.path, "/prom");

  EXPECT_FALSE(cfg.cluster.enabled);
  EXPECT_EQ(cfg.cluster.name, "calls-eu.1");
  EXPECT_EQ(cfg.cluster.node_timeout, std::chrono::seconds(3));
  EXPECT_EQ(cfg.cluster.redis.host, "redis.internal");
  EXPECT_EQ(cfg.cluster.redis.port, 6380);
  EXPECT_EQ(cfg.cluster.redis.username, "tk");
  EXPECT_EQ(cfg.cluster.redis.password_file, "/srv/turnkey/redis.pw");
  EXPECT_EQ(cfg.cluster.redis.password, "");  // read only when enabled
}

TEST(LoaderTest, RelativePathsStayRelativeWithoutBaseDir) {
  const Config cfg = MustLoad("state_dir: state\ntls: {certificate: c.pem}\n");
  EXPECT_EQ(cfg.state_dir, "state");
  EXPECT_EQ(cfg.tls.certificate, "c.pem");
}

TEST(LoaderTest, DisabledRolesNeedNoListeners) {
  const Config cfg = MustLoad(
      "turn: {enabled: false, listeners: [], relay: {addresses: []}}\n"
      "signal: {enabled: false, listen: {port: 9641}}\n"
      "tls: {certificate: \"\", private_key: \"\"}\n");
  EXPECT_FALSE(cfg.turn.enabled);
  EXPECT_FALSE(cfg.signal.enabled);
}

TEST(LoaderTest, MissingFileIsAnError) {
  base::Result<Config> cfg = LoadConfigFile("/nonexistent/turnkey.yaml");
  ASSERT_FALSE(cfg.has_value());
  EXPECT_EQ(cfg.error().code, base::ErrorCode::kInvalidArgument);
  EXPECT_TRUE(cfg.error().message.starts_with("/nonexistent/turnkey.yaml: cannot read: "))
      << cfg.error().message;
}

TEST(LoaderTest, FileErrorsNameTheFileAsGiven) {
  TempDir dir;
  const std::string path = dir.Write("turnkey.yaml", "realm: x\n\nturn:\n  listners: []\n");
  base::Result<Config> cfg = LoadConfigFile(path);
  ASSERT_FALSE(cfg.has_value());
  EXPECT_EQ(cfg.error().message,
            path + ":4: turn.listners: unknown key (did you mean turn.listeners?)");
}

TEST(LoaderTest, DirectoryIsNotAConfigFile) {
  TempDir dir;
  base::Result<Config> cfg = LoadConfigFile(dir.path().string());
  ASSERT_FALSE(cfg.has_value());
  EXPECT_TRUE(cfg.error().message.starts_with(dir.path().string() + ": cannot read: "))
      << cfg.error().message;
}

// ---- *_file secrets

TEST(SecretFilesTest, SecretsFileRelativeToConfigDirectory) {
  TempDir dir;
  dir.Write("secrets/turn.txt",
            "# rotated 2024-05-01\n\n  newest-secret  \r\nolder-secret\n#retired-secret\n");
  const std::string path =
      dir.Write("etc/turnkey.yaml", "turn:\n  auth:\n    secrets_file: ../secrets/turn.txt\n");
  base::Result<Config> cfg = LoadConfigFile(path);
  ASSERT_TRUE(cfg.has_value()) << cfg.error().message;
  EXPECT_EQ(cfg->turn.auth.secrets, (std::vector<std::string>{"newest-secret", "older-secret"}));
  EXPECT_EQ(cfg->turn.auth.secrets_file, (dir.path() / "secrets/turn.txt").string());
}

TEST(SecretFilesTest, LoadConfigStringUsesBaseDir) {
  TempDir dir;
  dir.Write("turn.txt", "s1\n");
  const Config cfg = MustLoad("turn: {auth: {secrets_file: turn.txt}}\n", dir.path().string());
  EXPECT_EQ(cfg.turn.auth.secrets, (std::vector<std::string>{"s1"}));
}

TEST(SecretFilesTest, AbsolutePathIsKept) {
  TempDir dir;
  const std::string secret_path = dir.Write("jwt.key", std::string(64, 'k') + "\n");
  const Config cfg =
      MustLoad("signal:\n  jwt:\n    secret_file: " + secret_path + "\n", "/elsewhere");
  EXPECT_EQ(cfg.signal.jwt.secret_file, secret_path);
  EXPECT_EQ(cfg.signal.jwt.secret, std::string(64, 'k'));
}

TEST(SecretFilesTest, MissingSecretsFileNamesKeyAndLine) {
  TempDir dir;
  const std::string path =
      dir.Write("turnkey.yaml", "realm: x\nturn:\n  auth:\n    secrets_file: missing.txt\n");
  base::Result<Config> cfg = LoadConfigFile(path);
  ASSERT_FALSE(cfg.has_value());
  EXPECT_EQ(cfg.error().message, path + ":4: turn.auth.secrets_file: cannot read \"" +
                                     (dir.path() / "missing.txt").string() +
                                     "\": No such file or directory");
}

TEST(SecretFilesTest, EmptySecretsFileIsAnError) {
  TempDir dir;
  dir.Write("turn.txt", "# nothing yet\n\n");
  base::Result<Config> cfg =
      LoadConfigString("turn:\n  auth: {secrets_file: turn.txt}\n", "t.yaml", dir.path().string());
  ASSERT_FALSE(cfg.has_value());
  EXPECT_TRUE(cfg.error().message.starts_with("t.yaml:2: turn.auth.secrets_file: no secrets in"))
      << cfg.error().message;
}

TEST(SecretFilesTest, SecretsAndSecretsFileAreExclusive) {
  TempDir dir;
  dir.Write("turn.txt", "from-file\n");
  base::Result<Config> cfg =
      LoadConfigString("turn:\n  auth:\n    secrets: [inline]\n    secrets_file: turn.txt\n",
                       "t.yaml", dir.path().string());
  ASSERT_FALSE(cfg.has_value());
  EXPECT_EQ(cfg.error().message,
            "t.yaml:4: turn.auth.secrets_file: set either turn.auth.secrets or "
            "turn.auth.secrets_file, not both");
}

TEST(SecretFilesTest, ShortJwtSecretIsRefusedWithoutShowingIt) {
  TempDir dir;
  dir.Write("jwt.key", "tooshort-secret-value\n");
  base::Result<Config> cfg = LoadConfigString("signal:\n  jwt:\n    secret_file: jwt.key\n",
                                              "t.yaml", dir.path().string());
  ASSERT_FALSE(cfg.has_value());
  EXPECT_TRUE(cfg.error().message.starts_with("t.yaml:3: signal.jwt.secret_file: the secret in"))
      << cfg.error().message;
  EXPECT_EQ(cfg.error().message.find("tooshort-secret-value"), std::string::npos);
}

TEST(SecretFilesTest, JwtSecretIsTheFirstLine) {
  TempDir dir;
  const std::string key(43, 'A');
  dir.Write("jwt.key", key + "\r\nsecond line is ignored\n");
  const Config cfg = MustLoad("signal: {jwt: {secret_file: jwt.key}}\n", dir.path().string());
  EXPECT_EQ(cfg.signal.jwt.secret, key);
}

TEST(SecretFilesTest, MysqlPasswordReadOnlyForMysql) {
  TempDir dir;
  dir.Write("db.pass", "pa ss word\n");
  const Config mysql = MustLoad("database:\n  driver: mysql\n  mysql: {password_file: db.pass}\n",
                                dir.path().string());
  EXPECT_EQ(mysql.database.mysql.password, "pa ss word");
  EXPECT_EQ(mysql.database.mysql.password_file, (dir.path() / "db.pass").string());

  // With sqlite the MySQL password is not needed, so a stale path is harmless.
  const Config sqlite =
      MustLoad("database:\n  mysql: {password_file: gone.pass}\n", dir.path().string());
  EXPECT_EQ(sqlite.database.mysql.password, "");
}

TEST(SecretFilesTest, UnreadablePasswordFileNamesKey) {
  TempDir dir;
  base::Result<Config> cfg = LoadConfigString(
      "database:\n  driver: mysql\n  mysql:\n    password_file: /nonexistent/db.pass\n", "t.yaml",
      dir.path().string());
  ASSERT_FALSE(cfg.has_value());
  EXPECT_EQ(cfg.error().message,
            "t.yaml:4: database.mysql.password_file: cannot read \"/nonexistent/db.pass\": No "
            "such file or directory");
}

TEST(SecretFilesTest, DirectoryIsNotASecretFile) {
  TempDir dir;
  base::Result<Config> cfg =
      LoadConfigString("turn: {auth: {secrets_file: .}}\n", "t.yaml", dir.path().string());
  ASSERT_FALSE(cfg.has_value());
  EXPECT_TRUE(cfg.error().message.ends_with("not a regular file")) << cfg.error().message;
}

TEST(SecretFilesTest, EmptyPasswordFileIsAnError) {
  TempDir dir;
  dir.Write("db.pass", "\nsecond\n");
  base::Result<Config> cfg =
      LoadConfigString("database: {driver: mysql, mysql: {password_file: db.pass}}\n", "t.yaml",
                       dir.path().string());
  ASSERT_FALSE(cfg.has_value());
  EXPECT_TRUE(cfg.error().message.starts_with("t.yaml:1: database.mysql.password_file: "))
      << cfg.error().message;
}

// DESIGN.md section 1: only config/ sees yaml-cpp, in its .cc files and in
// yaml_read.h, which only they include, so the option headers can be
// included anywhere.
TEST(LayeringTest, NoHeaderIncludesYamlCpp) {
  const std::filesystem::path root(TURNKEY_SOURCE_DIR);
  const std::filesystem::path dir = root / "config";
  constexpr std::string_view kReader = "yaml_read.h";
  int headers = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(root);
       it != std::filesystem::recursive_directory_iterator(); ++it) {
    const std::filesystem::directory_entry& entry = *it;
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && (name.starts_with("build") || name.starts_with(".") ||
                                 name == "node_modules" || name == "web")) {
      it.disable_recursion_pending();  // not ours (build trees, npm packages), or no C++
      continue;
    }
    const std::string ext = entry.path().extension().string();
    if (!entry.is_regular_file() || (ext != ".h" && ext != ".cc") ||
        entry.path().parent_path() == dir) {
      continue;
    }
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_EQ(text.str().find(std::string("config/") + std::string(kReader)), std::string::npos)
        << entry.path() << " includes config's YAML reader";
  }
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".h" || entry.path().filename() == kReader) {
      continue;
    }
    ++headers;
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_EQ(text.str().find("yaml-cpp"), std::string::npos) << entry.path();
    EXPECT_EQ(text.str().find("YAML::"), std::string::npos) << entry.path();
  }
  EXPECT_GE(headers, 5);
}

std::vector<std::string> WarningsOf(std::string_view yaml) {
  std::vector<std::string> warnings = {"not filled"};
  base::Result<Config> cfg = LoadConfigString(yaml, "w.yaml", "", &warnings);
  EXPECT_TRUE(cfg.has_value()) << cfg.error().message;
  return warnings;
}

TEST(LoaderTest, LifetimesShorterThanTheRfcsAreWarnedAbout) {
  const std::string base =
      "signal: {listen: {address: 127.0.0.1, port: 8080}}\n"
      "turn:\n"
      "  auth: {secrets: [0123456789abcdef0123456789abcdef]}\n";
  EXPECT_EQ(WarningsOf(base + "  lifetimes: {permission: 1h, channel: 10m}\n"),
            std::vector<std::string>{});
  EXPECT_EQ(WarningsOf(base + "  lifetimes:\n    permission: 30s\n    channel: 599s\n"),
            (std::vector<std::string>{
                "w.yaml:5: warning: turn.lifetimes.permission: 30s is shorter than the 5m of RFC "
                "8656, on which clients refresh: theirs expire while in use and relaying stops",
                "w.yaml:6: warning: turn.lifetimes.channel: 599s is shorter than the 10m of RFC "
                "8656, on which clients refresh: theirs expire while in use and relaying stops"}));
  // Not when the relay is off.
  EXPECT_EQ(WarningsOf("signal: {listen: {address: 127.0.0.1, port: 8080}}\n"
                       "turn: {enabled: false, lifetimes: {permission: 30s}}\n"),
            std::vector<std::string>{});
}

TEST(LoaderTest, AUdpListenerInsideTheRelayPortsIsWarnedAbout) {
  // Clients may relay to every port of the range on this host.
  const std::string base =
      "signal: {listen: {address: 127.0.0.1, port: 8080}}\n"
      "turn:\n"
      "  auth: {secrets: [0123456789abcdef0123456789abcdef]}\n"
      "  relay: {ports: {min: 50000, max: 50100}}\n"
      "  listeners:\n";
  EXPECT_EQ(WarningsOf(base + "    - {transport: udp, address: 0.0.0.0, port: 50050}\n"),
            std::vector<std::string>{
                "w.yaml:6: warning: turn.listeners[0]: port 50050/udp is inside turn.relay.ports "
                "(50000-50100): clients may relay to it; move it out of the range"});
  // TCP is not relayed, and a port outside the range is fine.
  EXPECT_EQ(WarningsOf(base + "    - {transport: tcp, address: 0.0.0.0, port: 50050}\n"
                              "    - {transport: udp, address: 0.0.0.0, port: 50101}\n"),
            std::vector<std::string>{});
}

TEST(LoaderTest, SettingsThatExposeAPublicHostAreWarnedAbout) {
  // The defaults: signaling on 0.0.0.0 without TLS.
  EXPECT_EQ(WarningsOf(""),
            std::vector<std::string>{
                "w.yaml:1: warning: signal.listen: plain HTTP on 0.0.0.0: passwords, tokens and "
                "TURN credentials cross the network unencrypted; set tls: true, or listen on "
                "127.0.0.1 behind a TLS reverse proxy"});
  const std::string quiet =
      "signal: {listen: {address: 127.0.0.1, port: 8080}}\n"
      "turn: {auth: {secrets: [0123456789abcdef0123456789abcdef]}}\n";
  EXPECT_EQ(WarningsOf(quiet), std::vector<std::string>{});
  EXPECT_EQ(WarningsOf("signal: {listen: {address: '::1', port: 8080}}\n"),
            std::vector<std::string>{});
  EXPECT_EQ(WarningsOf("signal: {enabled: false}\nturn: {enabled: false}\n"),
            std::vector<std::string>{});

  std::vector<std::string> loud = WarningsOf(
      "signal: {listen: {address: 127.0.0.1, port: 8080}}\n"
      "metrics: {listen: '0.0.0.0:9641'}\n"
      "turn:\n"
      "  auth: {secrets: [short, 0123456789abcdef0123456789abcdef]}\n"
      "  peers: {allow: [192.0.2.0/24, 0.0.0.0/0, '::1/128', 127.0.0.2/31, "
      "'::/0', 169.254.0.0/16, 'fe80::/10']}\n");
  EXPECT_EQ(loud, (std::vector<std::string>{
                      "w.yaml:2: warning: metrics.listen: metrics are served without "
                      "authentication on 0.0.0.0: keep that address off the Internet (firewall)",
                      "w.yaml:4: warning: turn.auth.secrets: a secret shorter than 16 bytes can "
                      "be guessed offline from any credential it signed; use `openssl rand -hex "
                      "32`",
                      "w.yaml:5: warning: turn.peers.allow[1]: lets clients relay to loopback "
                      "(0.0.0.0/0); only do this on a test machine",
                      "w.yaml:5: warning: turn.peers.allow[2]: lets clients relay to loopback "
                      "(::1/128); only do this on a test machine",
                      "w.yaml:5: warning: turn.peers.allow[3]: lets clients relay to loopback "
                      "(127.0.0.2/31); only do this on a test machine",
                      "w.yaml:5: warning: turn.peers.allow[4]: lets clients relay to loopback "
                      "(::/0); only do this on a test machine",
                      "w.yaml:5: warning: turn.peers.allow[5]: lets clients relay to link-local "
                      "addresses (169.254.0.0/16), among them a cloud's metadata service at "
                      "169.254.169.254",
                      "w.yaml:5: warning: turn.peers.allow[6]: lets clients relay to link-local "
                      "addresses (fe80::/10): the machines on this host's own links, which no "
                      "client should reach through the relay",
                  }));
  // Open registration on a public listener with TURN credentials and no
  // bandwidth cap: anyone can relay at full speed. Closing it, or a cap,
  // is enough.
  const auto open_relay = [](const std::string& turn_extra, const std::string& signal_extra) {
    return "tls: {certificate: c.pem, private_key: k.pem}\n"
           "turn:\n"
           "  auth: {secrets: [0123456789abcdef0123456789abcdef]}\n" +
           turn_extra +
           "signal:\n"
           "  listen: {address: 0.0.0.0, port: 8443, tls: true}\n" +
           signal_extra;
  };
  EXPECT_EQ(WarningsOf(open_relay("", "")),
            std::vector<std::string>{
                "w.yaml:4: warning: signal.registration: open on 0.0.0.0 with no "
                "turn.quotas.bandwidth_per_allocation: anyone can sign up and relay traffic "
                "through this host at full speed; set registration: closed for a private "
                "service, or cap the bandwidth"});
  EXPECT_EQ(WarningsOf(open_relay("", "  registration: closed\n")), std::vector<std::string>{});
  EXPECT_EQ(WarningsOf(open_relay("  quotas: {bandwidth_per_allocation: 1000000}\n", "")),
            std::vector<std::string>{});
  // TLS on the signaling listener is enough off loopback.
  EXPECT_EQ(WarningsOf("tls: {certificate: c.pem, private_key: k.pem}\n"
                       "signal: {listen: {address: 0.0.0.0, port: 8443, tls: true}}\n"),
            std::vector<std::string>{});
  // Behind a reverse proxy on loopback, registration is just as open; a
  // proxy rule as wide as the Internet lets anyone name their address.
  EXPECT_EQ(WarningsOf(open_relay("", "").replace(
                open_relay("", "").find("listen:"), std::string::npos,
                "listen: {address: 127.0.0.1, port: 8080}\n  trusted_proxies: ['0.0.0.0/0']\n")),
            (std::vector<std::string>{
                "w.yaml:4: warning: signal.registration: open on the proxies of "
                "signal.trusted_proxies with no turn.quotas.bandwidth_per_allocation: anyone can "
                "sign up and relay traffic through this host at full speed; set registration: "
                "closed for a private service, or cap the bandwidth",
                "w.yaml:6: warning: signal.trusted_proxies[0]: 0.0.0.0/0 trusts that many "
                "addresses to name their client in X-Forwarded-For, so the per-address limits "
                "(logins, registrations, connections) can be dodged by naming another; list "
                "your proxies' own addresses"}));
  // TURN URIs without a secret to sign credentials; MySQL settings unused.
  EXPECT_EQ(WarningsOf("signal:\n"
                       "  listen: {address: 127.0.0.1, port: 8080}\n"
                       "  ice_servers: {urls: ['turn:turn.example.org:3478']}\n"
                       "database: {mysql: {host: db.internal}}\n"),
            (std::vector<std::string>{
                "w.yaml:1: warning: turn.auth.secrets: empty, so clients get only the STUN URIs "
                "of signal.ice_servers.urls (no TURN credentials can be made without a secret)",
                "w.yaml:4: warning: database.driver: sqlite (the default), so the settings under "
                "database.mysql are not used; set driver: mysql to use them"}));
  // STUN only: no relay for anyone who needs one.
  EXPECT_EQ(WarningsOf("signal:\n"
                       "  listen: {address: 127.0.0.1, port: 8080}\n"
                       "  ice_servers: {urls: ['stun:turn.example.org:3478']}\n"),
            (std::vector<std::string>{
                "w.yaml:3: warning: signal.ice_servers.urls: no turn: or turns: URI, so clients "
                "gather no relay candidate and calls between users behind symmetric NATs, or on "
                "networks that block UDP, fail; add this host's TURN URIs"}));

  // A static user named like a TURN REST name with the user first.
  EXPECT_EQ(WarningsOf("signal: {listen: {address: 127.0.0.1, port: 8080}}\n"
                       "turn:\n"
                       "  auth:\n"
                       "    static_users:\n"
                       "      - {name: 'client:1', key: 00000000000000000000000000000000}\n"
                       "      - {name: 'a:b', key: 00000000000000000000000000000000}\n"),
            (std::vector<std::string>{
                "w.yaml:5: warning: turn.auth.static_users[0].name: has the form of a TURN REST "
                "username with the user first (a user, ':', a number): a TURN REST credential "
                "of that name is checked against this static key, not the secrets"}));
  // turns: with an IP address: Firefox drops it without a word.
  EXPECT_EQ(
      WarningsOf("turn: {auth: {secrets: ['" + std::string(32, 's') +
                 "']}}\n"
                 "signal:\n"
                 "  listen: {address: 127.0.0.1, port: 8080}\n"
                 "  ice_servers: {urls: ['turn:192.0.2.1:3478', 'turns:turn.example.org:5349', "
                 "'turns:192.0.2.1:5349?transport=tcp', 'turns:[2001:db8::1]', "
                 "'stuns:192.0.2.1']}\n"),
      (std::vector<std::string>{
          "w.yaml:4: warning: signal.ice_servers.urls[2]: turns:192.0.2.1:5349?transport=tcp "
          "names an IP address: Firefox ignores a turns: or stuns: URI without a host name (no "
          "candidate, no error), and browsers check the certificate against it; use the DNS "
          "name the certificate is for",
          "w.yaml:4: warning: signal.ice_servers.urls[3]: turns:[2001:db8::1] names an IP "
          "address: Firefox ignores a turns: or stuns: URI without a host name (no candidate, no "
          "error), and browsers check the certificate against it; use the DNS name the "
          "certificate is for",
          "w.yaml:4: warning: signal.ice_servers.urls[4]: stuns:192.0.2.1 names an IP address: "
          "Firefox ignores a turns: or stuns: URI without a host name (no candidate, no error), "
          "and browsers check the certificate against it; use the DNS name the certificate is "
          "for"}));
}

}  // namespace
}  // namespace turnkey::config
