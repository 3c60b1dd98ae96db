#include "relay/relay_service.h"

#include <sys/socket.h>

#include <string>
#include <utility>

#include "net/socket_util.h"

namespace turnkey::relay {

base::Status RelayService::CheckPortsFree(const std::vector<ListenerSpec>& listeners) {
  // The workers bind with SO_REUSEPORT, which would also let them join a
  // port another process of this user holds (a second turnkey), each then
  // getting part of the clients' traffic. A socket bound without it fails
  // when anyone is on the port; it is closed again before the workers bind.
  for (const ListenerSpec& spec : listeners) {
    if (spec.address.port() == 0) {
      continue;
    }
    const bool udp =
        spec.transport == ClientTransport::kUdp || spec.transport == ClientTransport::kDtls;
    net::BindOptions probe;
    probe.reuse_addr = !udp;  // a TCP port lingering in TIME_WAIT is free to listen on
    auto fd = net::CreateBoundSocket(spec.address, udp ? SOCK_DGRAM : SOCK_STREAM, probe);
    if (!fd) {
      const std::string where =
          std::string(ClientTransportName(spec.transport)) + " listener " + spec.address.ToString();
      if (fd.error().code == base::ErrorCode::kAlreadyExists) {
        return base::MakeError(base::ErrorCode::kAlreadyExists,
                               where + ": the port is in use by another process");
      }
      return base::MakeError(fd.error().code, where + ": " + fd.error().message);
    }
  }
  return base::Ok();
}

base::Result<std::unique_ptr<RelayService>> RelayService::Create(
    const RelayServiceOptions& options, std::shared_ptr<net::TlsContext> tls) {
  std::unique_ptr<RelayService> service(new RelayService());
  WorkerOptions worker_options = options.worker;
  unsigned threads = options.threads == 0 ? 1 : options.threads;
  service->shared_ = std::make_unique<RelayShared>();
  for (int f = 0; f < 2; ++f) {
    if (worker_options.server.relay[f]) {
      auto pools = SharedPortPools::Create(options.port_min, options.port_max, threads);
      if (!pools) {
        return std::unexpected(pools.error());
      }
      service->shared_->ports[f] = std::move(*pools);
    }
  }
  auto nonces = auth::NonceIssuer::Create(options.nonce_lifetime);
  if (!nonces) {
    return std::unexpected(nonces.error());
  }
  service->nonces_ = std::make_unique<auth::NonceIssuer>(std::move(*nonces));
  if (auto free = CheckPortsFree(worker_options.listeners); !free) {
    return std::unexpected(free.error());
  }
  for (unsigned i = 0; i < threads; ++i) {
    auto worker = Worker::Create(static_cast<int>(i), worker_options, tls, *service->shared_,
                                 *service->nonces_);
    if (!worker) {
      return std::unexpected(worker.error());
    }
    if (i == 0) {
      // Pin port-0 listeners to the port the first worker got, so every
      // worker shares it through SO_REUSEPORT.
      std::vector<base::SocketAddress> bound = (*worker)->local_addresses();
      for (size_t k = 0; k < worker_options.listeners.size() && k < bound.size(); ++k) {
        worker_options.listeners[k].address = bound[k];
      }
    }
    service->workers_.push_back(std::move(*worker));
  }
  return service;
}

RelayService::~RelayService() { Stop(); }

void RelayService::Start() {
  for (auto& worker : workers_) {
    worker->Start();
  }
}

void RelayService::Stop() {
  for (auto& worker : workers_) {
    worker->Stop();
  }
}

void RelayService::Reload(const TurnServerOptions& options, std::shared_ptr<net::TlsContext> tls) {
  for (auto& worker : workers_) {
    worker->Reload(options, tls);
  }
}

size_t RelayService::free_relay_ports() const {
  size_t total = 0;
  for (const auto& pools : shared_->ports) {
    if (pools) {
      total += pools->free_count();
    }
  }
  return total;
}

std::vector<base::SocketAddress> RelayService::local_addresses() const {
  if (workers_.empty()) {
    return {};
  }
  return workers_.front()->local_addresses();
}

}  // namespace turnkey::relay
