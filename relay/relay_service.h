// RelayService: the TURN/STUN role of `turnkey serve`: N workers, each with
// its own sockets on every listener (DESIGN.md section 3), and what they
// share: relay port pools, allocation quotas and the nonce key.
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include "auth/nonce.h"
#include "base/status.h"
#include "relay/relay_shared.h"
#include "relay/turn_counters.h"
#include "relay/worker.h"

namespace turnkey::relay {

struct RelayServiceOptions {
  WorkerOptions worker;
  // Worker threads; at least 1.
  unsigned threads = 1;
  // Relay port range, split between workers (per address family).
  uint16_t port_min = 49152;
  uint16_t port_max = 65535;
  // How long a nonce stays fresh (438 after).
  std::chrono::seconds nonce_lifetime{600};
};

class RelayService {
 public:
  // Binds every listener in every worker; fails if any cannot be bound, or
  // (kAlreadyExists) if another process is already on a listener's port.
  // Listeners on port 0 get a port from the first worker that the other
  // workers then share.
  static base::Result<std::unique_ptr<RelayService>> Create(const RelayServiceOptions& options,
                                                            std::shared_ptr<net::TlsContext> tls);
  ~RelayService();

  void Start();
  // Stops every worker and joins its thread. Idempotent.
  void Stop();
  // New reloadable settings and certificate, applied by every worker.
  void Reload(const TurnServerOptions& options, std::shared_ptr<net::TlsContext> tls);

  // The bound listener addresses (same order as the options).
  std::vector<base::SocketAddress> local_addresses() const;
  size_t worker_count() const { return workers_.size(); }
  const Worker& worker(size_t i) const { return *workers_[i]; }
  Worker& worker(size_t i) { return *workers_[i]; }
  // Free relay ports over both families (a gauge).
  size_t free_relay_ports() const;

 private:
  RelayService() = default;
  // Fails if a socket bound without SO_REUSEPORT cannot have a listener's port.
  static base::Status CheckPortsFree(const std::vector<ListenerSpec>& listeners);
  // Declared before the workers, which use them until they are destroyed.
  std::unique_ptr<RelayShared> shared_;
  std::unique_ptr<auth::NonceIssuer> nonces_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace turnkey::relay
