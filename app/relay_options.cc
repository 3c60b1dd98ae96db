#include "app/relay_options.h"

#include <algorithm>
#include <thread>

namespace turnkey::app {

namespace {
relay::ClientTransport ToClientTransport(config::Transport t) {
  switch (t) {
    case config::Transport::kUdp: return relay::ClientTransport::kUdp;
    case config::Transport::kTcp: return relay::ClientTransport::kTcp;
    case config::Transport::kTls: return relay::ClientTransport::kTls;
  }
  return relay::ClientTransport::kUdp;
}
}  // namespace

relay::TurnServerOptions MakeTurnServerOptions(const config::Config& config) {
  relay::TurnServerOptions options;
  options.software = config.turn.software;
  return options;
}

relay::RelayServiceOptions MakeRelayOptions(const config::Config& config) {
  relay::RelayServiceOptions options;
  for (const config::ListenerOptions& l : config.turn.listeners) {
    options.worker.listeners.push_back({ToClientTransport(l.transport), l.address});
  }
  options.worker.server = MakeTurnServerOptions(config);
  options.threads = config.turn.threads;
  if (options.threads == 0) {
    options.threads = std::max(1u, std::thread::hardware_concurrency());
  }
  return options;
}

bool NeedsTls(const config::Config& config) {
  for (const config::ListenerOptions& l : config.turn.listeners) {
    if (l.transport == config::Transport::kTls) {
      return true;
    }
  }
  return false;
}

}  // namespace turnkey::app
