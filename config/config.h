// Config: the whole validated configuration of one turnkey process.
//
// An aggregate of per-module option structs, each a plain value with in-class
// defaults: `Config{}` is exactly what an empty config file gives. Build one
// with LoadConfigFile() / LoadConfigString() (config/loader.h), which reject
// anything invalid; treat the result as immutable and share it read-only
// (copy it, or hold it by shared_ptr<const Config> across a reload).
// Key names below are the YAML keys; DESIGN.md section 8 and
// config/turnkey.example.yaml document the file. "restart" marks settings a
// reload cannot change (config/reload.h).
#pragma once

#include <cstdint>
#include <string>

#include "base/address.h"
#include "base/log.h"
#include "config/signal_options.h"
#include "config/turn_options.h"

namespace turnkey::config {

// Logging. Reloadable.
struct LogOptions {
  // Lowest level written. Default info.
  base::LogLevel level = base::LogLevel::kInfo;
  // text, or json (one object per line). Default text.
  base::LogFormat format = base::LogFormat::kText;

  friend bool operator==(const LogOptions&, const LogOptions&) = default;
};

// Certificate for every TLS listener (TURN tls, signal with tls: true).
// Reloadable: the files are read again on SIGHUP. The loader resolves
// relative paths against the config file's directory but does not open the
// files (they may legitimately appear later, e.g. from an ACME client).
struct TlsOptions {
  // PEM certificate chain. Default /etc/turnkey/tls/cert.pem.
  std::string certificate = "/etc/turnkey/tls/cert.pem";
  // PEM private key. Default /etc/turnkey/tls/key.pem.
  std::string private_key = "/etc/turnkey/tls/key.pem";

  friend bool operator==(const TlsOptions&, const TlsOptions&) = default;
};

enum class DatabaseDriver {
  kSqlite,  // embedded file in state_dir (the default)
  kMysql,   // MySQL / MariaDB server
};

// "sqlite", "mysql".
constexpr std::string_view DatabaseDriverName(DatabaseDriver driver) {
  return driver == DatabaseDriver::kMysql ? "mysql" : "sqlite";
}

struct SqliteOptions {
  // Database file; a relative path is relative to state_dir (the store
  // joins them, the loader keeps what was written). Default turnkey.db.
  std::string path = "turnkey.db";

  friend bool operator==(const SqliteOptions&, const SqliteOptions&) = default;
};

struct MysqlOptions {
  // Server host name or IP. Non-empty. Default 127.0.0.1.
  std::string host = "127.0.0.1";
  // Server TCP port, 1-65535. Default 3306.
  uint16_t port = 3306;
  // Account name. Default turnkey.
  std::string user = "turnkey";
  // File whose first line is the password; relative to the config file's
  // directory, stored resolved. "" = no password. Default "".
  std::string password_file;
  // The password read from password_file by the loader. Never log it.
  std::string password;
  // Schema name. Non-empty. Default turnkey.
  std::string database = "turnkey";
  // Connections kept open, 1-256. Default 4.
  uint32_t pool_size = 4;
  // Encrypt the connection: TLS required, the server's certificate must
  // chain to tls_ca_file (empty: the system's CAs) and name `host`.
  // Default false.
  bool tls = false;
  // PEM file of the CA(s) to verify the server with; relative to the config
  // file's directory, stored resolved. Only with tls. Default "".
  std::string tls_ca_file;

  friend bool operator==(const MysqlOptions&, const MysqlOptions&) = default;
};

// Accounts and call history store. Restart.
struct DatabaseOptions {
  // Which store. Default sqlite.
  DatabaseDriver driver = DatabaseDriver::kSqlite;
  // Used when driver is sqlite.
  SqliteOptions sqlite;
  // Used when driver is mysql.
  MysqlOptions mysql;

  friend bool operator==(const DatabaseOptions&, const DatabaseOptions&) = default;
};

// Prometheus exposition. Restart.
struct MetricsOptions {
  // Serve metrics at all. Default true.
  bool enabled = true;
  // "IP:port" of the separate metrics listener (port 1-65535).
  // Default 127.0.0.1:9641 (loopback only: metrics reveal traffic patterns).
  base::SocketAddress listen = base::SocketAddress::V4({127, 0, 0, 1}, 9641);
  // URL path, starting with "/". Default /metrics.
  std::string path = "/metrics";

  friend bool operator==(const MetricsOptions&, const MetricsOptions&) = default;
};

// Several signaling nodes as one service (DESIGN.md section 9): they share a
// Redis server, through which one node (the coordinator, elected with a
// lease) keeps the call state for all of them, and one MySQL/MariaDB
// database. Restart-only.
struct ClusterRedisOptions {
  // Redis host name or IP. Non-empty. Default 127.0.0.1.
  std::string host = "127.0.0.1";
  // Redis TCP port, 1-65535. Default 6379.
  uint16_t port = 6379;
  // ACL user for AUTH; "" = AUTH with the password only. Default "".
  std::string username;
  // File whose first line is the password; relative to the config file's
  // directory, stored resolved. "" = no AUTH. Default "".
  std::string password_file;
  // The password read from password_file by the loader. Never log it.
  std::string password;

  friend bool operator==(const ClusterRedisOptions&, const ClusterRedisOptions&) = default;
};

struct ClusterOptions {
  // Run as one node of a cluster. Needs database.driver mysql and
  // signal.jwt.secret_file (the same on every node). Default false.
  bool enabled = false;
  // Prefix of the Redis keys and channels: nodes with the same name form one
  // cluster. 1-64 characters of [A-Za-z0-9_.-]. Default turnkey.
  std::string name = "turnkey";
  // A node not heard from for this long is gone (its sockets are dropped and
  // their calls get the reconnect grace); also the coordinator's lease.
  // 1s-60s. Default 5s.
  std::chrono::milliseconds node_timeout{std::chrono::seconds(5)};
  ClusterRedisOptions redis;

  friend bool operator==(const ClusterOptions&, const ClusterOptions&) = default;
};

struct Config {
  // TURN realm (REALM attribute, part of static users' keys). Non-empty, at
  // most 127 characters. Restart. Default turnkey.local.
  std::string realm = "turnkey.local";
  // Directory for the SQLite file and generated secrets; relative to the
  // config file's directory, stored resolved. Restart.
  // Default /var/lib/turnkey.
  std::string state_dir = "/var/lib/turnkey";
  // How long a drain (SIGUSR1) waits for the last allocation and call to end
  // before the process exits anyway. Reloadable. Default 15m.
  std::chrono::milliseconds drain_timeout{std::chrono::minutes(15)};
  LogOptions log;
  TlsOptions tls;
  TurnOptions turn;
  SignalOptions signal;
  DatabaseOptions database;
  MetricsOptions metrics;
  ClusterOptions cluster;

  friend bool operator==(const Config&, const Config&) = default;
};

}  // namespace turnkey::config
