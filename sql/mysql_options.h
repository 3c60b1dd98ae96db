// Options of MysqlStore: plain values, no config/ dependency (the app copies
// them from config::DatabaseOptions).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace turnkey::sql {

struct MysqlStoreOptions {
  // Server host name or IP. "localhost" makes libmysqlclient use the Unix
  // socket instead of TCP. Default 127.0.0.1.
  std::string host = "127.0.0.1";
  // TCP port. Default 3306.
  uint16_t port = 3306;
  // Unix socket path; when set it is used instead of host/port. Default "".
  std::string unix_socket;
  // Account name. Default turnkey.
  std::string user = "turnkey";
  // Never logged. Default "" (no password).
  std::string password;
  // Schema name (must exist; Migrate() creates the tables). Default turnkey.
  std::string database = "turnkey";
  // Connections kept open, 1-256; each is used by one thread at a time.
  // Default 4.
  int pool_size = 4;
  // TLS required, the server's certificate verified against tls_ca_file
  // (empty: the system's CAs) and its name against `host`. Default false.
  bool tls = false;
  std::string tls_ca_file;
  // Bounds for one connect, and for each read / write on the socket: a dead
  // server or network answers kUnavailable within these. Whole seconds (the
  // client library's unit), at least 1. Defaults 3 s, 10 s, 10 s.
  std::chrono::seconds connect_timeout{3};
  std::chrono::seconds read_timeout{10};
  std::chrono::seconds write_timeout{10};
  // How long a call waits for a free pooled connection before
  // kResourceExhausted. Default 5 s.
  std::chrono::milliseconds acquire_timeout{5000};
  // After a failed connect, no new connect is tried for this long (doubling
  // per failure up to the max); calls meanwhile fail at once with
  // kUnavailable. Defaults 100 ms and 2 s.
  std::chrono::milliseconds reconnect_backoff_initial{100};
  std::chrono::milliseconds reconnect_backoff_max{2000};
};

}  // namespace turnkey::sql
