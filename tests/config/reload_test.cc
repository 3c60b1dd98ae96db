#include "config/reload.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>

namespace turnkey::config {
namespace {

using Strings = std::vector<std::string>;

base::SocketAddress Ip(const char* text, uint16_t port = 0) {
  return *base::SocketAddress::ParseIp(text, port);
}

// The keys a reload from `running` to `next` would report.
Strings RestartOnlyChanges(const Config& running, Config next) {
  return KeepRestartOnly(running, next);
}

TEST(ReloadTest, SameConfigNeedsNoRestart) {
  EXPECT_TRUE(RestartOnlyChanges(Config{}, Config{}).empty());
}

TEST(ReloadTest, ReloadableSettingsNeedNoRestart) {
  const std::vector<std::function<void(Config&)>> edits = {
      [](Config& c) { c.log.level = base::LogLevel::kDebug; },
      [](Config& c) { c.log.format = base::LogFormat::kJson; },
      [](Config& c) { c.tls.certificate = "/new/cert.pem"; },
      [](Config& c) { c.tls.private_key = "/new/key.pem"; },
      [](Config& c) {
        c.turn.auth.secrets = {"rotated", "old"};
      },
      [](Config& c) { c.turn.auth.secrets_file = "/etc/turnkey/secrets"; },
      [](Config& c) {
        c.turn.auth.static_users.push_back({"alice", {}});
      },
      [](Config& c) { c.turn.auth.nonce_lifetime = std::chrono::seconds(60); },
      [](Config& c) { c.turn.lifetimes.allocation_default = std::chrono::seconds(60); },
      [](Config& c) { c.turn.lifetimes.allocation_max = std::chrono::seconds(7200); },
      [](Config& c) { c.turn.lifetimes.permission = std::chrono::seconds(60); },
      [](Config& c) { c.turn.lifetimes.channel = std::chrono::seconds(60); },
      [](Config& c) { c.turn.quotas.allocations_per_user = 1; },
      [](Config& c) { c.turn.quotas.allocations_total = 1; },
      [](Config& c) { c.turn.quotas.permissions_per_allocation = 1; },
      [](Config& c) { c.turn.quotas.bandwidth_per_allocation = 1; },
      [](Config& c) { c.turn.peers.allow.push_back(*base::ParseCidr("127.0.0.1/32")); },
      [](Config& c) { c.turn.peers.deny.push_back(*base::ParseCidr("192.0.2.0/24")); },
      [](Config& c) { c.turn.software = "turnkey"; },
      [](Config& c) {
        c.turn.alternate_servers = {*base::SocketAddress::ParseIpPort("198.51.100.7:3478")};
      },
      [](Config& c) {
        c.turn.alternate_tls_servers = {*base::SocketAddress::ParseIpPort("198.51.100.7:5349")};
      },
      [](Config& c) { c.turn.alternate_domain = "turn2.example.net"; },
      [](Config& c) { c.signal.allowed_origins = {"https://a.example"}; },
      [](Config& c) { c.signal.ring_timeout = std::chrono::seconds(5); },
      [](Config& c) { c.signal.reconnect_grace = std::chrono::seconds(5); },
      [](Config& c) { c.signal.ice_servers.urls = {"stun:a.example"}; },
      [](Config& c) { c.signal.ice_servers.credential_ttl = std::chrono::seconds(5); },
  };
  for (size_t i = 0; i < edits.size(); ++i) {
    SCOPED_TRACE(i);
    Config changed;
    edits[i](changed);
    ASSERT_NE(changed, Config{});
    EXPECT_EQ(RestartOnlyChanges(Config{}, changed), Strings{});
  }
}

TEST(ReloadTest, RestartOnlySettingsAreReported) {
  struct Case {
    std::function<void(Config&)> edit;
    const char* path;
  };
  const Case cases[] = {
      {[](Config& c) { c.realm = "example.org"; }, "realm"},
      {[](Config& c) { c.state_dir = "/srv"; }, "state_dir"},
      {[](Config& c) { c.turn.enabled = false; }, "turn.enabled"},
      {[](Config& c) { c.turn.threads = 2; }, "turn.threads"},
      {[](Config& c) { c.turn.listeners.pop_back(); }, "turn.listeners"},
      {[](Config& c) { c.turn.listeners[0].address.set_port(3479); }, "turn.listeners"},
      {[](Config& c) { c.turn.listeners[1].transport = Transport::kTls; }, "turn.listeners"},
      {[](Config& c) { c.turn.relay.addresses = {Ip("192.0.2.1")}; }, "turn.relay.addresses"},
      {[](Config& c) { c.turn.relay.external_addresses = {Ip("203.0.113.1")}; },
       "turn.relay.external_addresses"},
      {[](Config& c) { c.turn.relay.ports.min = 50000; }, "turn.relay.ports"},
      {[](Config& c) { c.turn.relay.default_family = RelayFamily::kIpv6; },
       "turn.relay.default_family"},
      {[](Config& c) { c.turn.relay.ports.max = 50000; }, "turn.relay.ports"},
      {[](Config& c) { c.turn.nat_discovery.alternate_port = 3500; }, "turn.nat_discovery"},
      {[](Config& c) { c.signal.enabled = false; }, "signal.enabled"},
      {[](Config& c) { c.signal.listen.address.set_port(8443); }, "signal.listen"},
      {[](Config& c) { c.signal.listen.tls = true; }, "signal.listen"},
      {[](Config& c) { c.signal.jwt.secret_file = "/etc/jwt"; }, "signal.jwt.secret_file"},
      {[](Config& c) { c.signal.jwt.secret = std::string(32, 'x'); }, "signal.jwt.secret_file"},
      {[](Config& c) { c.signal.jwt.access_ttl = std::chrono::seconds(60); },
       "signal.jwt.access_ttl"},
      {[](Config& c) { c.signal.jwt.refresh_ttl = std::chrono::seconds(60); },
       "signal.jwt.refresh_ttl"},
      {[](Config& c) { c.signal.engineio.ping_interval = std::chrono::seconds(1); },
       "signal.engineio.ping_interval"},
      {[](Config& c) { c.signal.engineio.max_payload = 1; }, "signal.engineio.max_payload"},
      {[](Config& c) { c.signal.engineio.max_pending_per_address = 1; },
       "signal.engineio.max_pending_per_address"},
      {[](Config& c) { c.signal.rate_limits.events.rate = 0; }, "signal.rate_limits.events"},
      {[](Config& c) { c.signal.rate_limits.register_per_address.burst = 1; },
       "signal.rate_limits.register_per_address"},
      {[](Config& c) { c.signal.history.commit_delay = std::chrono::milliseconds(0); },
       "signal.history.commit_delay"},
      {[](Config& c) { c.signal.protocol_test_mode = true; }, "signal.protocol_test_mode"},
      {[](Config& c) { c.database.driver = DatabaseDriver::kMysql; }, "database.driver"},
      {[](Config& c) { c.database.sqlite.path = "x.db"; }, "database.sqlite.path"},
      {[](Config& c) { c.database.mysql.host = "db"; }, "database.mysql.host"},
      {[](Config& c) { c.database.mysql.port = 1; }, "database.mysql.port"},
      {[](Config& c) { c.database.mysql.user = "u"; }, "database.mysql.user"},
      {[](Config& c) { c.database.mysql.password_file = "/p"; }, "database.mysql.password_file"},
      {[](Config& c) { c.database.mysql.password = "pw"; }, "database.mysql.password_file"},
      {[](Config& c) { c.database.mysql.database = "d"; }, "database.mysql.database"},
      {[](Config& c) { c.database.mysql.pool_size = 1; }, "database.mysql.pool_size"},
      {[](Config& c) { c.database.mysql.tls = true; }, "database.mysql.tls"},
      {[](Config& c) { c.database.mysql.tls_ca_file = "/ca.pem"; }, "database.mysql.tls_ca_file"},
      {[](Config& c) { c.metrics.enabled = false; }, "metrics.enabled"},
      {[](Config& c) { c.metrics.listen = Ip("127.0.0.1", 9100); }, "metrics.listen"},
      {[](Config& c) { c.metrics.path = "/m"; }, "metrics.path"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.path);
    Config changed;
    c.edit(changed);
    EXPECT_EQ(RestartOnlyChanges(Config{}, changed), Strings{c.path});
    EXPECT_EQ(RestartOnlyChanges(changed, Config{}), Strings{c.path});
  }
}

TEST(ReloadTest, SecretChangeBehindNewPathIsReportedOnce) {
  Config changed;
  changed.database.mysql.password_file = "/p";
  changed.database.mysql.password = "pw";
  changed.signal.jwt.secret_file = "/j";
  changed.signal.jwt.secret = std::string(32, 'j');
  EXPECT_EQ(RestartOnlyChanges(Config{}, changed),
            (Strings{"signal.jwt.secret_file", "database.mysql.password_file"}));
}

TEST(ReloadTest, KeepRestartOnlyPutsTheRunningValuesBackAndKeepsTheRest) {
  Config running;
  running.realm = "running.example";
  Config next = running;
  next.realm = "new.example";  // restart-only
  next.turn.threads = running.turn.threads + 1;
  next.log.level = base::LogLevel::kWarn;  // reloadable
  next.turn.auth.nonce_lifetime = std::chrono::seconds(2);
  EXPECT_EQ(KeepRestartOnly(running, next), (Strings{"realm", "turn.threads"}));
  EXPECT_EQ(next.realm, "running.example");
  EXPECT_EQ(next.turn.threads, running.turn.threads);
  EXPECT_EQ(next.log.level, base::LogLevel::kWarn);
  EXPECT_EQ(next.turn.auth.nonce_lifetime, std::chrono::seconds(2));
  // Kept as the running config, the next reload of the same file reports
  // the same keys again.
  Config again = running;
  again.realm = "new.example";
  again.turn.threads = running.turn.threads + 1;
  EXPECT_EQ(KeepRestartOnly(next, again), (Strings{"realm", "turn.threads"}));
  EXPECT_TRUE(RestartOnlyChanges(next, next).empty());
}

TEST(ReloadTest, ANewRealmWithNewStaticUserKeysIsNotAppliedInPart) {
  Config running;
  running.realm = "old.example";
  running.turn.auth.static_users = {StaticUser{.name = "alice"}};
  Config next = running;
  next.realm = "new.example";
  EXPECT_EQ(HalfAppliedReload(running, next), "");  // the old keys go on working
  next.turn.auth.static_users[0].key[0] = 1;
  EXPECT_NE(HalfAppliedReload(running, next).find("restart turnkey to apply both"),
            std::string::npos);
  next.realm = running.realm;
  EXPECT_EQ(HalfAppliedReload(running, next), "");  // new keys, same realm: a normal reload
}

TEST(ReloadTest, SeveralChangesInFileOrder) {
  Config changed;
  changed.metrics.path = "/m";
  changed.turn.threads = 3;
  changed.log.level = base::LogLevel::kWarn;
  changed.state_dir = "/srv";
  EXPECT_EQ(RestartOnlyChanges(Config{}, changed),
            (Strings{"state_dir", "turn.threads", "metrics.path"}));
}

TEST(ReloadTest, WarningsAboutRestartOnlyKeysAreKnownAsSuch) {
  const std::vector<std::string> changed = {"signal.listen", "turn.relay.addresses"};
  EXPECT_TRUE(WarningIsAboutKeys(
      "/etc/t.yaml:12: warning: signal.listen: plain HTTP on 0.0.0.0: ...", changed));
  EXPECT_TRUE(WarningIsAboutKeys("t.yaml:3: warning: signal.listen.address: x", changed));
  EXPECT_TRUE(WarningIsAboutKeys("t.yaml:3: warning: turn.relay.addresses[1]: x", changed));
  EXPECT_TRUE(WarningIsAboutKeys("t.yaml:3: warning: turn.relay: x", changed));
  EXPECT_FALSE(WarningIsAboutKeys("t.yaml:3: warning: signal.listener: x", changed));
  EXPECT_FALSE(WarningIsAboutKeys("t.yaml:3: warning: turn.auth.secrets_file: x", changed));
  EXPECT_FALSE(WarningIsAboutKeys("no marker signal.listen: x", changed));
  EXPECT_FALSE(WarningIsAboutKeys("t.yaml:3: warning: signal.listen: x", {}));
}

}  // namespace
}  // namespace turnkey::config
