#include "config/reload.h"

#include <algorithm>

namespace turnkey::config {

std::vector<std::string> KeepRestartOnly(const Config& running, Config& next) {
  std::vector<std::string> changed;
  auto check = [&](const char* path, const auto& old_value, auto& new_value) {
    if (!(old_value == new_value)) {
      new_value = old_value;
      if (std::find(changed.begin(), changed.end(), path) == changed.end()) {
        changed.emplace_back(path);
      }
    }
  };
  const Config& a = running;
  Config& b = next;

  // The realm is baked into static users' keys and into every nonce and
  // credential check of live allocations.
  check("realm", a.realm, b.realm);
  check("state_dir", a.state_dir, b.state_dir);

  // Sockets and threads are created once; relay ports are partitioned
  // between the workers at start.
  check("turn.enabled", a.turn.enabled, b.turn.enabled);
  check("turn.threads", a.turn.threads, b.turn.threads);
  check("turn.listeners", a.turn.listeners, b.turn.listeners);
  check("turn.relay.addresses", a.turn.relay.addresses, b.turn.relay.addresses);
  check("turn.relay.external_addresses", a.turn.relay.external_addresses,
        b.turn.relay.external_addresses);
  check("turn.relay.ports", a.turn.relay.ports, b.turn.relay.ports);
  check("turn.relay.default_family", a.turn.relay.default_family, b.turn.relay.default_family);
  check("turn.connections_per_address", a.turn.connections_per_address,
        b.turn.connections_per_address);
  check("turn.pending_connections", a.turn.pending_connections, b.turn.pending_connections);
  check("turn.nat_discovery", a.turn.nat_discovery, b.turn.nat_discovery);

  check("signal.enabled", a.signal.enabled, b.signal.enabled);
  check("signal.listen", a.signal.listen, b.signal.listen);
  check("signal.trusted_proxies", a.signal.trusted_proxies, b.signal.trusted_proxies);
  check("signal.connections_per_address", a.signal.connections_per_address,
        b.signal.connections_per_address);
  check("signal.pending_connections", a.signal.pending_connections, b.signal.pending_connections);
  check("signal.sockets_per_user", a.signal.sockets_per_user, b.signal.sockets_per_user);
  check("signal.connection_recovery", a.signal.connection_recovery, b.signal.connection_recovery);
  // A new signing key would silently log every client out; restarting makes
  // that a deliberate act.
  // The secret itself is reported under its file's key (safe to log).
  check("signal.jwt.secret_file", a.signal.jwt.secret_file, b.signal.jwt.secret_file);
  check("signal.jwt.secret_file", a.signal.jwt.secret, b.signal.jwt.secret);
  check("signal.jwt.access_ttl", a.signal.jwt.access_ttl, b.signal.jwt.access_ttl);
  check("signal.jwt.refresh_ttl", a.signal.jwt.refresh_ttl, b.signal.jwt.refresh_ttl);
  // Engine.IO values are promised to each client in its handshake.
  // Named key by key, so the log says which one waits for a restart.
  const EngineIoOptions& ea = a.signal.engineio;
  EngineIoOptions& eb = b.signal.engineio;
  check("signal.engineio.ping_interval", ea.ping_interval, eb.ping_interval);
  check("signal.engineio.ping_timeout", ea.ping_timeout, eb.ping_timeout);
  check("signal.engineio.max_payload", ea.max_payload, eb.max_payload);
  check("signal.engineio.connect_timeout", ea.connect_timeout, eb.connect_timeout);
  check("signal.engineio.max_pending_per_address", ea.max_pending_per_address,
        eb.max_pending_per_address);
  const SignalRateLimitOptions& ra = a.signal.rate_limits;
  SignalRateLimitOptions& rb = b.signal.rate_limits;
  check("signal.rate_limits.events", ra.events, rb.events);
  check("signal.rate_limits.initiate_per_socket", ra.initiate_per_socket, rb.initiate_per_socket);
  check("signal.rate_limits.initiate_per_user", ra.initiate_per_user, rb.initiate_per_user);
  check("signal.rate_limits.register_per_address", ra.register_per_address,
        rb.register_per_address);
  check("signal.history.commit_delay", a.signal.history.commit_delay,
        b.signal.history.commit_delay);
  // Whatever the keys above do not name (a field added later) still counts.
  check("signal.engineio", ea, eb);
  check("signal.rate_limits", ra, rb);
  check("signal.history", a.signal.history, b.signal.history);
  check("signal.protocol_test_mode", a.signal.protocol_test_mode, b.signal.protocol_test_mode);
  check("signal.web_root", a.signal.web_root, b.signal.web_root);

  // The store and its connection pool live for the whole process.
  const DatabaseOptions& da = a.database;
  DatabaseOptions& db = b.database;
  check("database.driver", da.driver, db.driver);
  check("database.sqlite.path", da.sqlite.path, db.sqlite.path);
  check("database.mysql.host", da.mysql.host, db.mysql.host);
  check("database.mysql.port", da.mysql.port, db.mysql.port);
  check("database.mysql.user", da.mysql.user, db.mysql.user);
  check("database.mysql.password_file", da.mysql.password_file, db.mysql.password_file);
  check("database.mysql.password_file", da.mysql.password, db.mysql.password);
  check("database.mysql.database", da.mysql.database, db.mysql.database);
  check("database.mysql.pool_size", da.mysql.pool_size, db.mysql.pool_size);
  check("database.mysql.tls", da.mysql.tls, db.mysql.tls);
  check("database.mysql.tls_ca_file", da.mysql.tls_ca_file, db.mysql.tls_ca_file);
  const ClusterOptions& ca = a.cluster;
  ClusterOptions& cb = b.cluster;
  check("cluster.enabled", ca.enabled, cb.enabled);
  check("cluster.name", ca.name, cb.name);
  check("cluster.node_timeout", ca.node_timeout, cb.node_timeout);
  check("cluster.redis.host", ca.redis.host, cb.redis.host);
  check("cluster.redis.port", ca.redis.port, cb.redis.port);
  check("cluster.redis.username", ca.redis.username, cb.redis.username);
  check("cluster.redis.password_file", ca.redis.password_file, cb.redis.password_file);
  check("cluster.redis.password_file", ca.redis.password, cb.redis.password);

  check("metrics.enabled", a.metrics.enabled, b.metrics.enabled);
  check("metrics.listen", a.metrics.listen, b.metrics.listen);
  check("metrics.path", a.metrics.path, b.metrics.path);
  return changed;
}

std::string HalfAppliedReload(const Config& running, const Config& next) {
  if (running.realm != next.realm &&
      running.turn.auth.static_users != next.turn.auth.static_users) {
    return "realm and turn.auth.static_users changed together: the new keys are made with the "
           "new realm, which takes effect only after a restart; restart turnkey to apply both";
  }
  return "";
}

bool WarningIsAboutKeys(std::string_view warning, const std::vector<std::string>& keys) {
  constexpr std::string_view kMarker = ": warning: ";
  const size_t at = warning.find(kMarker);
  if (at == std::string_view::npos) {
    return false;
  }
  std::string_view key = warning.substr(at + kMarker.size());
  key = key.substr(0, key.find(": "));
  auto within = [](std::string_view inner, std::string_view outer) {
    return inner.size() > outer.size() && inner.starts_with(outer) &&
           (inner[outer.size()] == '.' || inner[outer.size()] == '[');
  };
  return std::any_of(keys.begin(), keys.end(), [&](const std::string& changed) {
    return key == changed || within(key, changed) || within(changed, key);
  });
}

}  // namespace turnkey::config
