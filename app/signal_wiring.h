// The signaling service as `turnkey serve` runs it: config -> options,
// opening and checking the database, the token key, and reloads.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "base/status.h"
#include "config/config.h"
#include "metrics/registry.h"
#include "net/tls_context.h"
#include "signal/signal_service.h"

namespace turnkey::app {

// The reloadable settings from the config: allowed origins, ICE URIs,
// credential lifetime and the minting TURN secret (the first of
// turn.auth.secrets).
signal::SignalSettings MakeSignalSettings(const config::Config& config);

// Waits `delay` before the next attempt to reach a MySQL server that is not
// up yet; false gives up (the process is being stopped).
using DatabaseWait = std::function<bool(std::chrono::seconds delay)>;

// How long start-up keeps trying to reach a MySQL server that does not
// answer (a host booting with the database, or the database restarting):
// within the unit's TimeoutStartSec=90s.
inline constexpr std::chrono::seconds kDatabaseStartPatience{60};

// Opens the database (PrepareSchemaForServe: a fresh SQLite database is
// migrated, anything else must already be current), loads or generates the
// token key, and creates the service bound to signal.listen, not started:
// the caller mounts what else runs on the port, then Start()s it. `tls`
// must be the server context when signal.listen.tls is set. `registry`
// must outlive the service. A MySQL server that cannot be reached is tried
// again through `wait` (1, 2, 4, then every 8 s) for kDatabaseStartPatience;
// without `wait`, not at all.
base::Result<std::unique_ptr<signal::SignalService>> CreateSignalService(
    const config::Config& config, std::shared_ptr<net::TlsContext> tls, metrics::Registry& registry,
    const DatabaseWait& wait = {});

// SIGHUP: applies the reloadable settings of `config` and a new certificate
// (null = keep) to a running service.
void ReloadSignalService(signal::SignalService& service, const config::Config& config,
                         std::shared_ptr<net::TlsContext> tls);

}  // namespace turnkey::app
