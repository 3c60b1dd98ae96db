// SessionPool: creates TURN allocations in bulk and keeps them alive, from
// one thread with one epoll set.
//
// Grow() opens one UDP socket, or one TCP/TLS connection, per allocation
// (so each has its own 5-tuple)
// and runs TurnSession setups, at most `pipeline` at a time, until every one
// is ready or failed: the load generator's setup step and its
// allocations-per-second measurement. Serve() then answers refreshes until a
// deadline, a stop flag, or a watched fd becoming readable (the bench script
// writes to stdin to move on).
//
// Sessions may be handed to other threads for the data path (session(i)):
// the pool must not be driven while they are in use elsewhere.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/address.h"
#include "base/status.h"
#include "bench/stream_client.h"
#include "bench/turn_session.h"
#include "bench/udp_util.h"

namespace turnkey::bench {

struct SessionPoolOptions {
  base::SocketAddress server;
  // Local IP for the client sockets (port 0).
  base::SocketAddress bind;
  // IPv4 only: spread client sockets over this many consecutive addresses
  // from `bind` (127.0.0.1, 127.0.0.2, ... are all loopback on Linux), the
  // way allocations arrive from many hosts. A server that rate-limits 401s
  // per source IP would otherwise throttle a bulk run from one address.
  size_t bind_count = 1;
  TurnSessionOptions session;
  TurnCredentials credentials;
  // Allocations in setup at once.
  size_t pipeline = 64;
  // SO_RCVBUF / SO_SNDBUF of each client socket; 0 = kernel default (UDP only).
  int buffer_bytes = 0;
  // Client transport. kTls needs `tls`. Stream connections are made one at a
  // time, blocking, before each session starts.
  ClientTransportKind transport = ClientTransportKind::kUdp;
  std::shared_ptr<TlsClientContext> tls;
  int connect_timeout_ms = 5000;
};

struct GrowResult {
  size_t started = 0;  // sessions started by this call
  size_t ready = 0;    // of those, ready
  size_t failed = 0;   // of those, failed
  int64_t elapsed_ns = 0;
  uint64_t requests = 0;         // requests sent, retransmissions included
  uint64_t retransmissions = 0;  // of those, retransmissions
  std::string first_error;
};

class SessionPool {
 public:
  static base::Result<std::unique_ptr<SessionPool>> Create(const SessionPoolOptions& options);
  ~SessionPool();
  SessionPool(const SessionPool&) = delete;
  SessionPool& operator=(const SessionPool&) = delete;

  // Starts sessions until there are `target` in total and drives them until
  // each is done. Returns early (with what happened so far) when `stop` is set,
  // a socket cannot be opened, or `pipeline` sessions failed before any
  // worked (first_error says why).
  GrowResult Grow(size_t target, const std::atomic<bool>& stop);

  enum class ServeEnd { kDeadline, kStopped, kWatchReadable };
  // Answers responses and runs timers until `until_ns`, `stop`, or
  // `watch_fd` (>= 0) is readable.
  ServeEnd Serve(int64_t until_ns, const std::atomic<bool>& stop, int watch_fd = -1);

  // Deletes every allocation (Refresh LIFETIME 0, one send each) and lets
  // the answers come in for `linger_ns`.
  void CloseAll(int64_t linger_ns);

  size_t size() const { return sessions_.size(); }
  TurnSession& session(size_t i) { return *sessions_[i]; }
  size_t ready_count() const;

 private:
  SessionPool(const SessionPoolOptions& options, UniqueFd epoll);
  // Reads every queued datagram (or stream frame) on session i and feeds STUN to it.
  void Drain(size_t i, int64_t now_ns);
  void RunTimers(int64_t now_ns);

  SessionPoolOptions options_;
  UniqueFd epoll_;
  std::vector<std::unique_ptr<TurnSession>> sessions_;
  std::vector<uint8_t> buffer_;
};

}  // namespace turnkey::bench
