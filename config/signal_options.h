// Options of the signaling and account service: the `signal:` section.
//
// Plain values with in-class defaults, filled and validated by the loader
// (config/loader.h). "restart" marks settings a reload cannot change
// (config/reload.h); the rest apply on SIGHUP.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "base/address.h"
#include "base/cidr.h"

namespace turnkey::config {

// The HTTP/WebSocket listener. Restart.
struct SignalListenOptions {
  // Local IP and port (the YAML `address` and `port` keys; port 1-65535).
  // Default 0.0.0.0:8080.
  base::SocketAddress address = base::SocketAddress::V4({0, 0, 0, 0}, 8080);
  // Serve HTTPS/WSS with the `tls:` certificate instead of plain HTTP.
  // Default false (for a reverse proxy in front).
  bool tls = false;
  // With tls: every answer carries Strict-Transport-Security: max-age=this
  // (RFC 6797), so browsers that saw it use HTTPS only for this host. Whole
  // seconds; 0 = not sent. Default 365d.
  std::chrono::seconds hsts_max_age{365 * 24 * 3600};

  friend bool operator==(const SignalListenOptions&, const SignalListenOptions&) = default;
};

// Access and refresh tokens (HS256 JWT). Restart.
struct JwtOptions {
  // File holding the HMAC key (first line, at least 32 bytes); relative to
  // the config file's directory, stored resolved. "" = the service generates
  // one in state_dir. Default "".
  std::string secret_file;
  // The key read from `secret_file` by the loader; "" when secret_file is "".
  // Never log it.
  std::string secret;
  // Access token lifetime. Whole seconds, > 0. Default 15m.
  std::chrono::seconds access_ttl{15 * 60};
  // Refresh token lifetime; >= access_ttl. Whole seconds. Default 30d.
  std::chrono::seconds refresh_ttl{30 * 24 * 3600};

  friend bool operator==(const JwtOptions&, const JwtOptions&) = default;
};

// ICE servers handed to clients with fresh TURN REST credentials. Reloadable.
struct IceServerOptions {
  // stun:, stuns:, turn: or turns: URIs (RFC 7064 / 7065), e.g.
  // "turn:turn.example.org:3478?transport=udp". Default [] (none handed out;
  // the example file shows what to put here).
  std::vector<std::string> urls;
  // Lifetime of the minted TURN credentials; clients get new ones over the
  // socket before they expire. Whole seconds, > 0. Default 24h.
  std::chrono::seconds credential_ttl{24 * 3600};

  friend bool operator==(const IceServerOptions&, const IceServerOptions&) = default;
};

// Engine.IO v4 transport settings, sent to clients in the handshake. Restart.
struct EngineIoOptions {
  // Server ping period. > 0. Default 25s (the Engine.IO default).
  std::chrono::milliseconds ping_interval{25000};
  // How long to wait for a pong before closing. > 0. Default 20s.
  std::chrono::milliseconds ping_timeout{20000};
  // Largest accepted message / polling payload, bytes, 1-1073741824.
  // Default 1000000 (the Engine.IO default maxHttpBufferSize).
  uint64_t max_payload = 1000000;
  // Time a new connection has to send the Socket.IO CONNECT. > 0.
  // Default 45s.
  std::chrono::milliseconds connect_timeout{45000};
  // Connections from one address (IPv6: one /64) that have not sent their
  // CONNECT yet; more handshakes are answered 403. 0 = no limit. Default 1024.
  uint32_t max_pending_per_address = 1024;

  friend bool operator==(const EngineIoOptions&, const EngineIoOptions&) = default;
};

// A token bucket: `burst` at once, refilled at `rate` per second.
struct RateLimitOptions {
  // Tokens per second, 0-1000000; 0 turns the limit off.
  double rate = 0;
  // Bucket size, 1-1000000.
  double burst = 1;

  friend bool operator==(const RateLimitOptions&, const RateLimitOptions&) = default;
};

// What one client may send. Restart.
struct SignalRateLimitOptions {
  // Every Socket.IO event, per socket. Default 50/s, burst 100.
  RateLimitOptions events{.rate = 50, .burst = 100};
  // initiateCall per socket. Default 0.5/s, burst 5.
  RateLimitOptions initiate_per_socket{.rate = 0.5, .burst = 5};
  // initiateCall per user, over all their devices. Default 1/s, burst 10.
  RateLimitOptions initiate_per_user{.rate = 1, .burst = 10};
  // POST /api/auth/register per client address (IPv6: per /64), whatever
  // the outcome. Default 20 at once, then one every 20 s.
  RateLimitOptions register_per_address{.rate = 0.05, .burst = 20};

  friend bool operator==(const SignalRateLimitOptions&, const SignalRateLimitOptions&) = default;
};

// Writing the call history. Restart.
struct CallHistoryOptions {
  // Group commit: a call record waits up to this long for others to share
  // its transaction. The history a crash can lose; 0 = a transaction per
  // record. 0-10s. Default 20ms.
  std::chrono::milliseconds commit_delay{20};

  friend bool operator==(const CallHistoryOptions&, const CallHistoryOptions&) = default;
};

// Who may create an account over POST /api/auth/register.
enum class Registration {
  kOpen,    // anyone who reaches the API (the stock apps register themselves)
  kClosed,  // nobody: 403 REGISTRATION_CLOSED; `turnkey user add` creates accounts
};

// The `signal:` section.
struct SignalOptions {
  // Run the signaling service. Restart. Default true.
  bool enabled = true;
  // Listener. Restart.
  SignalListenOptions listen;
  // Exact Origin values ("https://app.example.org", scheme://host[:port], no
  // path) allowed on WebSocket and polling; [] = same-origin only.
  // Reloadable. Default [].
  std::vector<std::string> allowed_origins;
  // Reverse proxies whose X-Forwarded-For names the client (net/forwarded.h)
  // for the REST API's per-address limits; [] = none (the header is
  // ignored). Restart. Default [].
  std::vector<base::Cidr> trusted_proxies;
  // Connections one client (an IPv4 address or an IPv6 /64) may hold at once
  // on the signaling port; further ones are closed at once. Trusted proxies
  // have no limit. 0 = unlimited. Restart. Default 4096.
  uint32_t connections_per_address = 4096;
  // Connections to the signaling port that have not sent a whole request
  // yet (a TLS handshake, a request on its way), from all clients: one more
  // closes the oldest of them. 0 = unlimited. Restart. Default 16384.
  uint32_t pending_connections = 16384;
  // Socket.IO connections one account may hold at once (its devices, tabs);
  // a further CONNECT gets CONNECT_ERROR TOO_MANY_CONNECTIONS. 0 =
  // unlimited. Restart. Default 64.
  uint32_t sockets_per_user = 64;
  // Self-registration over the REST API. Every account gets TURN
  // credentials, so on a public host `closed` keeps strangers from relaying
  // through it. Reloadable. Default open.
  Registration registration = Registration::kOpen;
  // Tokens. Restart.
  JwtOptions jwt;
  // An unanswered call ends as missed after this long. > 0. Reloadable.
  // Default 30s.
  std::chrono::milliseconds ring_timeout{30000};
  // How long a dropped participant of an active call may take to rejoin
  // before the call ends with connection_lost; 0 = end at once. Reloadable.
  // Default 10s.
  std::chrono::milliseconds reconnect_grace{10000};
  // Socket.IO connection-state recovery: CONNECT replies carry a "pid", and
  // a client whose connection failed that comes back within reconnect_grace
  // with it keeps its socket and its side of a call (in a cluster, on a node
  // that is not the coordinator, only while that node still holds the old
  // socket). Restart. Default true.
  bool connection_recovery = true;
  // ICE servers for clients. Reloadable.
  IceServerOptions ice_servers;
  // Engine.IO timing and limits. Restart.
  EngineIoOptions engineio;
  // Per-socket and per-user limits. Restart.
  SignalRateLimitOptions rate_limits;
  // Call history writes. Restart.
  CallHistoryOptions history;
  // Enables what the upstream Socket.IO protocol test suite needs and a
  // production server must not offer. Restart. Default false.
  bool protocol_test_mode = false;
  // Directory the demo page is served from (index.html, app.js,
  // turnkey.js, style.css and node_modules/socket.io-client/dist/ after
  // `npm ci`); relative to the config file's directory, stored resolved.
  // "" = the web/ directory of the source tree turnkey was built from (for
  // development builds; packages set it). Restart. Default "".
  std::string web_root;

  friend bool operator==(const SignalOptions&, const SignalOptions&) = default;
};

}  // namespace turnkey::config
