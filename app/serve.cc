// `turnkey serve`: loads the config, starts the enabled roles and waits for
// signals on the main thread.
//
// Signals are blocked in every thread (the mask is inherited by the workers,
// which are started after it is set) and taken synchronously here with
// sigwaitinfo, so no code runs in a signal handler.
#include <signal.h>

#include <cstdio>
#include <memory>

#include "app/commands.h"
#include "app/relay_options.h"
#include "app/version.h"
#include "base/log.h"
#include "config/loader.h"
#include "config/reload.h"
#include "net/tls_context.h"
#include "relay/relay_service.h"

namespace turnkey::app {

namespace {

// Loads the TLS certificate when some listener needs it.
base::Result<std::shared_ptr<net::TlsContext>> LoadTls(const config::Config& config) {
  if (!NeedsTls(config)) {
    return std::shared_ptr<net::TlsContext>();
  }
  return net::TlsContext::CreateServer(config.tls.certificate, config.tls.private_key);
}

void Reload(const std::string& path, config::Config& current, const RelayAddressPlan& plan,
            relay::RelayService* relay) {
  auto next = config::LoadConfigFile(path);
  if (!next) {
    TK_LOG_ERROR("reload: {}; keeping the running config", next.error().message);
    return;
  }
  auto tls = LoadTls(*next);
  if (!tls) {
    TK_LOG_ERROR("reload: tls: {}; keeping the running config", tls.error().message);
    return;
  }
  for (const std::string& key : config::RestartOnlyChanges(current, *next)) {
    TK_LOG_WARN("reload: {} changed; it takes effect after a restart", key);
  }
  base::SetLogLevel(next->log.level);
  if (relay != nullptr) {
    relay->Reload(MakeTurnServerOptions(*next, plan), *tls);
  }
  current = std::move(*next);
  TK_LOG_INFO("reload: config {} applied", path);
}

}  // namespace

int RunServe(const std::string& config_path) {
  auto loaded = config::LoadConfigFile(config_path);
  if (!loaded) {
    std::fprintf(stderr, "turnkey: %s\n", loaded.error().message.c_str());
    return 1;
  }
  config::Config config = std::move(*loaded);
  base::InitLogging(config.log.level, config.log.format);

  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGUSR1}) {
    sigaddset(&signals, s);
  }
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A peer that closes a TCP/TLS connection mid-write must not kill us.
  signal(SIGPIPE, SIG_IGN);

  TK_LOG_INFO("turnkey {} starting (config {})", kVersion, config_path);

  auto tls = LoadTls(config);
  if (!tls) {
    TK_LOG_ERROR("tls: {}", tls.error().message);
    return 1;
  }

  std::unique_ptr<relay::RelayService> relay;
  RelayAddressPlan plan;
  if (config.turn.enabled) {
    plan = PlanRelayAddresses(config);
    for (const std::string& warning : plan.warnings) {
      TK_LOG_WARN("{}", warning);
    }
    relay::RelayServiceOptions options = MakeRelayOptions(config, plan);
    auto created = relay::RelayService::Create(options, *tls);
    if (!created) {
      TK_LOG_ERROR("turn: {}", created.error().message);
      return 1;
    }
    relay = std::move(*created);
    relay->Start();
    std::vector<base::SocketAddress> bound = relay->local_addresses();
    for (size_t i = 0; i < bound.size() && i < options.worker.listeners.size(); ++i) {
      TK_LOG_INFO("turn: listening on {} {} ({} workers)",
                  relay::ClientTransportName(options.worker.listeners[i].transport),
                  bound[i].ToString(), relay->worker_count());
    }
  }
  if (config.signal.enabled) {
    TK_LOG_WARN("signal: the signaling service is not part of this build yet; "
                "only the STUN/TURN role runs");
  }

  for (;;) {
    siginfo_t info;
    int sig = sigwaitinfo(&signals, &info);
    if (sig < 0) {
      continue;  // EINTR
    }
    if (sig == SIGHUP) {
      TK_LOG_INFO("reload: SIGHUP received");
      Reload(config_path, config, plan, relay.get());
      continue;
    }
    if (sig == SIGUSR1) {
      TK_LOG_INFO("SIGUSR1 received: draining is not implemented yet; ignoring");
      continue;
    }
    TK_LOG_INFO("{} received: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    break;
  }
  if (relay) {
    relay->Stop();
  }
  TK_LOG_INFO("stopped");
  return 0;
}

int RunCheckConfig(const std::string& config_path) {
  auto loaded = config::LoadConfigFile(config_path);
  if (!loaded) {
    std::fprintf(stderr, "%s\n", loaded.error().message.c_str());
    return 1;
  }
  // The certificate files are checked too, but only as a warning: the file
  // may be valid and meant for a host where the certificate is in place.
  if (auto tls = LoadTls(*loaded); !tls) {
    std::fprintf(stderr, "%s: warning: tls: %s\n", config_path.c_str(),
                 tls.error().message.c_str());
  }
  std::printf("%s: ok\n", config_path.c_str());
  return 0;
}

}  // namespace turnkey::app
