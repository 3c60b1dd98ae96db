// `turnkey serve`: loads the config, starts the enabled roles and waits for
// signals on the main thread.
//
// Signals are blocked in every thread (the mask is inherited by the workers,
// which are started after it is set) and taken synchronously here with
// sigwaitinfo, so no code runs in a signal handler.
#include <fmt/format.h>
#include <malloc.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "app/call_wiring.h"
#include "app/commands.h"
#include "app/database_setup.h"
#include "app/host_checks.h"
#include "app/loop_liveness.h"
#include "app/metrics_service.h"
#include "app/relay_metrics.h"
#include "app/relay_options.h"
#include "app/signal_wiring.h"
#include "app/systemd_notify.h"
#include "app/tls_setup.h"
#include "app/version.h"
#include "base/clock.h"
#include "base/log.h"
#include "config/duration.h"
#include "config/loader.h"
#include "config/reload.h"
#include "metrics/registry.h"
#include "metrics/turnkey_metrics.h"
#include "net/connection_budget.h"
#include "net/event_loop.h"
#include "net/interfaces.h"
#include "net/tls_context.h"
#include "relay/relay_service.h"

namespace turnkey::app {

namespace {

// serve with turn, signal and metrics all disabled starts, reports ready and
// listens on nothing: almost surely not what was meant (the one-shot
// commands use such configs, so this is said by serve and check-config only).
std::optional<std::string> ServesNothing(const config::Config& config) {
  if (config.turn.enabled || config.signal.enabled || config.metrics.enabled) {
    return std::nullopt;
  }
  return "turn, signal and metrics are all disabled: serve listens on nothing";
}

// How often serve looks for addresses the host gained without a reload (a
// floating IP moved here, a rotated IPv6 privacy address): they become own
// addresses, denied as peers (a datagram relayed to one arrives from the
// host itself).
constexpr std::chrono::seconds kHostAddressCheck{30};

// How often serve gives memory the allocator holds free back to the system,
// and from how much. After a burst (a flood of TLS handshakes, a reconnect
// storm) glibc keeps the freed pages in its per-thread arenas: a server
// back to idle stayed at hundreds of MB until it restarted.
constexpr std::chrono::seconds kMemoryTrim{60};
constexpr size_t kMemoryTrimFrom = 16 << 20;

void TrimFreeMemory() {
  if (mallinfo2().fordblks >= kMemoryTrimFrom) {
    malloc_trim(0);
  }
}

// The info line and the warnings of a certificate just loaded, at start and
// on reload (with `prefix` "reload: ").
void LogLoadedTls(const config::Config& config, const net::TlsContext& tls, const char* prefix) {
  TK_LOG_INFO("{}{}", prefix, TlsLoadedLine(config, tls));
  for (const std::string& warning :
       TlsWarnings(config, tls, base::SystemClock::Instance().UnixSeconds())) {
    TK_LOG_WARN("{}{}", prefix, warning);
  }
}

// Re-reads the config; on success applies the reloadable parts and returns
// the (possibly null) new TLS context. On failure nothing changes: a config
// that does not load, TLS files that do not, and a new certificate that is
// not valid now while `running_tls`'s is (KeepRunningCertificate).
std::optional<std::shared_ptr<net::TlsContext>> Reload(
    const std::string& path, config::Config& current, RelayAddressPlan& plan,
    relay::RelayService* relay, bool draining, signal::SignalService* signal_service,
    const SignalApps& apps, const net::TlsContext* running_tls) {
  std::vector<std::string> warnings;
  auto next = config::LoadConfigFile(path, &warnings);
  if (!next) {
    TK_LOG_ERROR("reload: {}; keeping the running config", next.error().message);
    return std::nullopt;
  }
  // The running values of restart-only keys stay (a new realm, say, would
  // otherwise reach the relay's Reload below), listeners included, so TLS is
  // loaded for the listeners that run.
  if (std::string refused = config::HalfAppliedReload(current, *next); !refused.empty()) {
    TK_LOG_ERROR("reload: {}; keeping the running config", refused);
    return std::nullopt;
  }
  const std::vector<std::string> restart_only = config::KeepRestartOnly(current, *next);
  for (const std::string& warning : warnings) {
    if (config::WarningIsAboutKeys(warning, restart_only)) {
      TK_LOG_WARN("reload: {} (at the next restart; the running value stays until then)", warning);
    } else {
      TK_LOG_WARN("reload: {}", warning);
    }
  }
  auto tls = LoadTls(*next);
  if (!tls) {
    TK_LOG_ERROR("reload: tls: {}; keeping the running config", tls.error().message);
    return std::nullopt;
  }
  if (*tls && running_tls != nullptr) {
    if (auto keep = KeepRunningCertificate(running_tls->certificate(), (*tls)->certificate(),
                                           base::SystemClock::Instance().UnixSeconds())) {
      TK_LOG_ERROR("reload: tls: {}: {}; keeping the running config", next->tls.certificate, *keep);
      return std::nullopt;
    }
  }
  if (*tls) {
    LogLoadedTls(*next, **tls, "reload: ");
  }
  for (const std::string& key : restart_only) {
    TK_LOG_WARN("reload: {} changed; it takes effect after a restart", key);
  }
  base::InitLogging(next->log.level, next->log.format);
  if (relay != nullptr) {
    // Addresses the host gained since (a floating IP, a new IPv6 address)
    // are its own too; ones it lost stay denied.
    AddHostAddresses(plan, net::InterfaceAddresses());
    relay::TurnServerOptions options = MakeTurnServerOptions(*next, plan);
    options.draining = draining;
    relay->Reload(options, *tls);
  }
  if (signal_service != nullptr) {
    ReloadSignalService(*signal_service, *next, *tls);
    ReloadSignalApps(apps, *next);
  }
  current = std::move(*next);
  TK_LOG_INFO("reload: config {} applied", path);
  return *tls;
}

}  // namespace

int RunServe(const std::string& config_path) {
  // Blocked first: a SIGHUP (kill -HUP right after a start) while the config
  // loads would otherwise end the process, which systemd counts as a clean
  // exit. What arrives now is handled once the signal loop runs.
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGUSR1}) {
    sigaddset(&signals, s);
  }
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::vector<std::string> config_warnings;
  auto loaded = config::LoadConfigFile(config_path, &config_warnings);
  if (!loaded) {
    std::fprintf(stderr, "turnkey: %s\n", loaded.error().message.c_str());
    return 1;
  }
  config::Config config = std::move(*loaded);
  base::InitLogging(config.log.level, config.log.format);

  // A peer that closes a TCP/TLS connection mid-write must not kill us.
  ::signal(SIGPIPE, SIG_IGN);

  TK_LOG_INFO("turnkey {} starting (config {})", kVersion, config_path);
  for (const std::string& warning : config_warnings) {
    TK_LOG_WARN("{}", warning);
  }
  if (auto nothing = ServesNothing(config)) {
    TK_LOG_WARN("{}", *nothing);
  }

  auto tls = LoadTls(config);
  if (!tls) {
    TK_LOG_ERROR("tls: {}", tls.error().message);
    return 1;
  }
  // An expired certificate is served all the same: without it the TLS
  // listeners could not start at all, and the warning and the expiry gauge
  // say what to fix.
  if (*tls) {
    LogLoadedTls(config, **tls, "");
  }
  std::shared_ptr<net::TlsContext> running_tls = *tls;

  // Before the first listener: the connection budget is sized from it.
  const size_t file_limit = net::RaiseFileLimit();
  TK_LOG_INFO("files: {} descriptors, {} of them for client connections", file_limit,
              net::ProcessConnectionBudget()->max_total());

  metrics::Registry registry;
  auto process_metrics = metrics::ProcessMetrics::Create(registry, kVersion);
  if (!process_metrics) {
    TK_LOG_ERROR("metrics: cannot register the metric families");
    return 1;
  }
  if (*tls) {
    process_metrics->tls_certificate_expiry.Set(static_cast<double>((*tls)->not_after_unix()));
  }
  SetProcessStartTime(*process_metrics);
  RecordConfigLoad(*process_metrics, true);

  std::unique_ptr<relay::RelayService> relay;
  // Outlives `bridge`, which reads it.
  std::optional<metrics::TurnMetrics> turn_metrics;
  std::unique_ptr<RelayMetricsBridge> bridge;
  RelayAddressPlan plan;
  relay::TurnServerOptions turn_options;
  if (config.turn.enabled) {
    plan = PlanRelayAddresses(config);
    for (const std::string& warning : plan.warnings) {
      TK_LOG_WARN("{}", warning);
    }
    for (const std::string& error : plan.errors) {
      TK_LOG_ERROR("{}", error);
    }
    if (!plan.errors.empty()) {
      return 1;
    }
    relay::RelayServiceOptions options = MakeRelayOptions(config, plan);
    turn_options = options.worker.server;
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
    for (int f = 0; f < 2; ++f) {
      if (plan.relay[f]) {
        TK_LOG_INFO("turn: relay {} advertised as {}, ports {}-{}", plan.relay[f]->bind.IpString(),
                    plan.relay[f]->advertised.IpString(), options.port_min, options.port_max);
      }
    }
    if (auto warning = RelaySocketsWarning(plan, options.port_min, options.port_max, file_limit,
                                           net::ProcessConnectionBudget()->max_total())) {
      TK_LOG_WARN("{}", *warning);
    }
    // Registered only with the relay (docs/metrics.md, "Roles"): a host
    // without it must not expose TURN families full of zeros.
    auto created_metrics = metrics::TurnMetrics::Create(registry);
    if (!created_metrics) {
      TK_LOG_ERROR("metrics: cannot register the TURN metric families");
      return 1;
    }
    turn_metrics = std::move(*created_metrics);
    bridge = std::make_unique<RelayMetricsBridge>(*relay, *turn_metrics, registry);
  }
  std::unique_ptr<signal::SignalService> signal_service;
  SignalApps signal_apps;
  if (config.signal.enabled) {
    // A MySQL server still starting is waited for; SIGTERM/SIGINT meanwhile
    // stop the start (SIGHUP and SIGUSR1 have nothing to act on yet).
    bool stopped_while_starting = false;
    std::vector<int> deferred_signals;
    auto wait_for_database = [&](std::chrono::seconds delay) {
      NotifyStatus("waiting for the database");
      const auto until = std::chrono::steady_clock::now() + delay;
      for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(
            until - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
          return true;
        }
        timespec timeout{static_cast<time_t>(left.count() / 1000000000),
                         static_cast<long>(left.count() % 1000000000)};
        siginfo_t info;
        const int sig = sigtimedwait(&signals, &info, &timeout);
        if (sig == SIGTERM || sig == SIGINT) {
          stopped_while_starting = true;
          return false;
        }
        if ((sig == SIGHUP || sig == SIGUSR1) &&
            std::find(deferred_signals.begin(), deferred_signals.end(), sig) ==
                deferred_signals.end()) {
          TK_LOG_INFO("{} received while waiting for the database: acted on once started",
                      sig == SIGHUP ? "SIGHUP" : "SIGUSR1");
          deferred_signals.push_back(sig);
        }
      }
    };
    auto created = CreateSignalService(config, *tls, registry, wait_for_database);
    if (!created) {
      if (stopped_while_starting) {
        TK_LOG_INFO("stopped while waiting for the database");
        NotifyStopping();
        if (relay) {
          relay->Stop();
        }
        return 0;
      }
      TK_LOG_ERROR("signal: {}", created.error().message);
      return 1;
    }
    signal_service = std::move(*created);
    // Pending again (every thread blocks them), so the loop below takes them.
    for (int sig : deferred_signals) {
      ::kill(::getpid(), sig);
    }
    auto apps = MountSignalApps(*signal_service, config);
    if (!apps) {
      TK_LOG_ERROR("signal: {}", apps.error().message);
      return 1;
    }
    signal_apps = std::move(*apps);
    signal_service->Start();
  }

  std::unique_ptr<MetricsService> metrics_service;
  if (config.metrics.enabled) {
    auto created = MetricsService::Create(
        config.metrics.listen, config.metrics.path, registry,
        [&bridge, &process_metrics] {
          SampleProcess(*process_metrics);
          if (bridge) {
            bridge->Collect();
          }
        },
        process_metrics->draining);
    if (!created) {
      TK_LOG_ERROR("metrics: {}", created.error().message);
      return 1;
    }
    metrics_service = std::move(*created);
    metrics_service->Start();
    TK_LOG_INFO("metrics: serving http://{}{}", metrics_service->local_address().ToString(),
                config.metrics.path);
  }

  NotifyReady("serving");
  // Every listener is bound. The pid tells a supervisor reading the log (the
  // tests do) that this process is serving, not another one on the same port.
  TK_LOG_INFO("ready: serving (pid {})", getpid());
  const std::chrono::microseconds watchdog = WatchdogInterval();
  // WATCHDOG=1 vouches for every loop, not just this thread: a loop that has
  // not run a posted beat within one ping interval withholds the ping.
  LoopLiveness liveness(watchdog);
  if (watchdog.count() > 0) {
    // Relay workers and event loops both take work through Post().
    auto post_to = [](auto& target) {
      return [&target](std::function<void()> task) { target.Post(std::move(task)); };
    };
    for (size_t i = 0; relay && i < relay->worker_count(); ++i) {
      liveness.Watch(fmt::format("relay worker {}", i), post_to(relay->worker(i)));
    }
    if (signal_service) {
      liveness.Watch("signal", post_to(signal_service->loop()));
    }
    if (metrics_service) {
      liveness.Watch("metrics", post_to(metrics_service->loop()));
    }
  }
  bool draining = false;
  bool stopped_by_signal = false;  // SIGTERM/SIGINT ended the loop (not a drain)
  // New allocations get 403 from now on; existing ones go on. Health checks
  // and turnkey_draining say so.
  // The relay takes the running config and address plan again (the
  // certificate stays), refusing new allocations when `drained`.
  auto apply_relay_plan = [&](bool drained) {
    if (relay) {
      relay::TurnServerOptions options = MakeTurnServerOptions(config, plan);
      options.draining = drained;
      relay->Reload(options, nullptr);
    }
  };
  auto drain_relay = [&] {
    apply_relay_plan(true);
    process_metrics->draining.Set(1);
  };
  std::chrono::steady_clock::time_point drain_deadline{};
  auto active_allocations = [&relay] {
    uint64_t total = 0;
    for (size_t i = 0; relay && i < relay->worker_count(); ++i) {
      total += relay->worker(i).counters().allocations_active.Get();
    }
    return total;
  };
  auto active_calls = [&signal_apps]() -> uint64_t {
    return signal_apps.calls ? signal_apps.calls->active_calls() : 0;
  };

  auto next_address_check = std::chrono::steady_clock::now() + kHostAddressCheck;
  auto next_memory_trim = std::chrono::steady_clock::now() + kMemoryTrim;
  for (;;) {
    // Wake up for the watchdog, for the host's addresses, to trim memory and,
    // while draining, to see whether the last allocation is gone.
    std::chrono::microseconds wait = kMemoryTrim;
    if (watchdog.count() > 0) {
      wait = std::min(wait, watchdog);
    }
    if (relay) {
      wait = std::min<std::chrono::microseconds>(wait, kHostAddressCheck);
    }
    if (draining) {
      wait = std::min<std::chrono::microseconds>(wait, std::chrono::seconds(1));
    }
    timespec timeout{static_cast<time_t>(wait.count() / 1000000),
                     static_cast<long>((wait.count() % 1000000) * 1000)};
    siginfo_t info;
    int sig = sigtimedwait(&signals, &info, &timeout);
    if (watchdog.count() > 0) {
      const std::vector<std::string> stuck = liveness.Check(std::chrono::steady_clock::now());
      if (stuck.empty()) {
        NotifyWatchdog();
      } else {
        TK_LOG_ERROR("watchdog: {} ran nothing for over {} ms; not notifying systemd",
                     fmt::join(stuck, ", "),
                     std::chrono::duration_cast<std::chrono::milliseconds>(watchdog).count());
      }
    }
    if (const auto now = std::chrono::steady_clock::now(); relay && now >= next_address_check) {
      next_address_check = now + kHostAddressCheck;
      const std::vector<base::SocketAddress> added =
          AddHostAddresses(plan, net::InterfaceAddresses());
      if (!added.empty()) {
        std::vector<std::string> names;
        for (const base::SocketAddress& a : added) {
          names.push_back(a.IpString());
        }
        TK_LOG_INFO("relay: the host has new addresses ({}); denied as peers from now on",
                    fmt::join(names, ", "));
        apply_relay_plan(draining);
      }
    }
    if (const auto now = std::chrono::steady_clock::now(); now >= next_memory_trim) {
      next_memory_trim = now + kMemoryTrim;
      TrimFreeMemory();
    }
    if (draining) {
      const uint64_t left = active_allocations();
      const uint64_t calls = active_calls();
      if (left == 0 && calls == 0) {
        TK_LOG_INFO("drain: no allocations or calls left; stopping");
        break;
      }
      if (std::chrono::steady_clock::now() >= drain_deadline) {
        TK_LOG_WARN("drain: deadline reached with {} allocations and {} calls; stopping", left,
                    calls);
        break;
      }
      NotifyStatus(fmt::format("draining: {} allocations, {} calls left", left, calls));
    }
    if (sig < 0) {
      continue;  // timeout or EINTR
    }
    if (sig == SIGHUP) {
      TK_LOG_INFO("reload: SIGHUP received");
      NotifyReloading();
      if (auto next = Reload(config_path, config, plan, relay.get(), draining, signal_service.get(),
                             signal_apps, running_tls.get())) {
        if (*next) {
          process_metrics->tls_certificate_expiry.Set(
              static_cast<double>((*next)->not_after_unix()));
        }
        running_tls = std::move(*next);
        RecordConfigLoad(*process_metrics, true);
        NotifyReady("serving (config reloaded)");
      } else {
        RecordConfigLoad(*process_metrics, false);
        NotifyReady("serving (reload refused: see the log)");
      }
      continue;
    }
    if (sig == SIGUSR1) {
      if (!draining) {
        draining = true;
        drain_deadline = std::chrono::steady_clock::now() + config.drain_timeout;
        TK_LOG_INFO(
            "drain: SIGUSR1 received; new allocations and calls are refused, {} active "
            "allocations and {} calls go on (deadline {})",
            active_allocations(), active_calls(), config::FormatDuration(config.drain_timeout));
        NotifyStatus("draining");
        if (signal_apps.calls) {
          signal_apps.calls->SetDraining(true);
        }
        if (signal_service) {
          signal_service->SetDraining(true);
        }
        drain_relay();
      }
      continue;
    }
    const char* name = sig == SIGTERM ? "SIGTERM" : "SIGINT";
    if (signal_service != nullptr) {
      const uint64_t calls = active_calls();
      TK_LOG_INFO("{} received: stopping ({} {} now)", name, calls,
                  calls == 1 ? "call ends" : "calls end");
    } else {
      TK_LOG_INFO("{} received: stopping", name);  // a TURN-only node has no calls
    }
    stopped_by_signal = true;
    break;
  }
  // The stop is bounded, but a database that hangs holds the last history
  // writes for its timeouts: a second SIGTERM/SIGINT ends the process at once.
  // After a drain ended the loop, the first one only says so (the stop is
  // under way); the one after it ends the process.
  std::thread([signals, signalled = stopped_by_signal] {
    bool stopping = signalled;
    for (;;) {
      int sig = 0;
      if (sigwait(&signals, &sig) != 0 || (sig != SIGTERM && sig != SIGINT)) {
        continue;
      }
      const char* name = sig == SIGTERM ? "SIGTERM" : "SIGINT";
      if (!stopping) {
        TK_LOG_INFO("{} received: already stopping after the drain", name);
        stopping = true;
        continue;
      }
      TK_LOG_WARN("second {} received: exiting at once; writes still queued are lost", name);
      std::_Exit(1);
    }
  }).detach();
  NotifyStopping();
  if (!draining) {
    // Allocations made while the calls end and the history is written would
    // die with the process a moment later: refuse them (403) from now on.
    drain_relay();
  }
  if (metrics_service) {
    metrics_service->Stop();
  }
  if (signal_apps.calls) {
    // Before the listener closes, so that polling clients still fetch their
    // callEnded.
    const size_t left = signal_apps.calls->EndCallsAndClose(std::chrono::seconds(3));
    if (left > 0) {
      TK_LOG_WARN("signal: {} sessions did not close in time", left);
    }
  }
  if (signal_service) {
    signal_service->Stop();
  }
  bridge.reset();
  if (relay) {
    relay->Stop();
  }
  TK_LOG_INFO("stopped");
  return 0;
}

int RunCheckConfig(const std::string& config_path) {
  std::optional<config::Config> loaded = LoadCommandConfig(config_path);
  if (!loaded) {
    return 1;
  }
  // Like `nginx -t`: TLS files that `serve` could not load make the config
  // bad, since serve would refuse to start with them (and a reload would be
  // refused). What serve only warns about is a warning here too.
  auto tls = LoadTls(*loaded);
  if (!tls) {
    std::fprintf(stderr, "%s: error: tls: %s\n", config_path.c_str(), tls.error().message.c_str());
    return 1;
  }
  if (*tls) {
    for (const std::string& warning :
         TlsWarnings(*loaded, **tls, base::SystemClock::Instance().UnixSeconds())) {
      std::fprintf(stderr, "%s: warning: %s\n", config_path.c_str(), warning.c_str());
    }
  }
  if (auto nothing = ServesNothing(*loaded)) {
    std::fprintf(stderr, "%s: warning: %s\n", config_path.c_str(), nothing->c_str());
  }
  if (auto files = loaded->signal.enabled ? CheckDatabaseFiles(*loaded) : base::Ok(); !files) {
    std::fprintf(stderr, "%s: error: %s\n", config_path.c_str(), files.error().message.c_str());
    return 1;
  }
  // What serve would find at its start on this host.
  if (HostCheckResult host = CheckHost(*loaded, net::CanBindUdp); !host.errors.empty()) {
    for (const std::string& error : host.errors) {
      std::fprintf(stderr, "%s: error: %s\n", config_path.c_str(), error.c_str());
    }
    return 1;
  }
  // The relay addresses as serve would resolve them on this host.
  if (loaded->turn.enabled) {
    const RelayAddressPlan plan = PlanRelayAddresses(*loaded);
    for (const std::string& warning : plan.warnings) {
      std::fprintf(stderr, "%s: warning: %s\n", config_path.c_str(), warning.c_str());
    }
    for (const std::string& error : plan.errors) {
      std::fprintf(stderr, "%s: error: %s\n", config_path.c_str(), error.c_str());
    }
    if (!plan.errors.empty()) {
      return 1;
    }
  }
  std::printf("%s: ok\n", config_path.c_str());
  return 0;
}

}  // namespace turnkey::app
