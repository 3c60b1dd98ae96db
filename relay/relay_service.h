// RelayService: the TURN/STUN role of `turnkey serve`: N workers, each with
// its own sockets on every listener (DESIGN.md section 3).
#pragma once

#include <memory>
#include <vector>

#include "base/status.h"
#include "relay/worker.h"

namespace turnkey::relay {

struct RelayServiceOptions {
  WorkerOptions worker;
  // Worker threads; at least 1.
  unsigned threads = 1;
};

class RelayService {
 public:
  // Binds every listener in every worker; fails if any cannot be bound.
  // Listeners on port 0 get a port from the first worker that the other
  // workers then share.
  static base::Result<std::unique_ptr<RelayService>> Create(
      const RelayServiceOptions& options, std::shared_ptr<net::TlsContext> tls);
  ~RelayService();

  void Start();
  // Stops every worker and joins its thread. Idempotent.
  void Stop();
  // New reloadable settings and certificate, applied by every worker.
  void Reload(const TurnServerOptions& options, std::shared_ptr<net::TlsContext> tls);

  // The bound listener addresses (same order as the options).
  std::vector<base::SocketAddress> local_addresses() const;
  size_t worker_count() const { return workers_.size(); }

 private:
  RelayService() = default;
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace turnkey::relay
