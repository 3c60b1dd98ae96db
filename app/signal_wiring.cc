#include "app/signal_wiring.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>

#include "app/database_setup.h"
#include "app/jwt_key.h"
#include "app/systemd_notify.h"
#include "base/log.h"
#include "net/connection_budget.h"
#include "signal/call_store_recorder.h"
#include "signal/unwritten_calls.h"

namespace turnkey::app {

namespace {

// Room above engineio.max_payload in the HTTP body limit: the Engine.IO
// server answers an oversized polling POST itself (413 with CORS headers),
// so such a body must reach it.
constexpr size_t kBodySlack = 64 * 1024;

}  // namespace

signal::SignalSettings MakeSignalSettings(const config::Config& config) {
  signal::SignalSettings settings;
  settings.allowed_origins = config.signal.allowed_origins;
  settings.ice_urls = config.signal.ice_servers.urls;
  settings.ice_ttl = config.signal.ice_servers.credential_ttl;
  settings.registration_open = config.signal.registration == config::Registration::kOpen;
  if (!config.turn.auth.secrets.empty()) {
    settings.turn_secret = config.turn.auth.secrets.front();
  }
  return settings;
}

namespace {

// Writes what the last stop could not (signal/unwritten_calls.h) before
// anything else touches the history: before the calls it left unfinished are
// ended below, which would refuse their ends. Only the database being away
// is an error (waited for like any other); a file that cannot be read or
// writes the database refuses are logged, and the server starts.
base::Status WriteUnwrittenCalls(sql::Store& store, const config::Config& config) {
  const std::string path = UnwrittenCallsPath(config);
  // A long outage can leave many: systemd's start timeout must not kill the
  // start that is writing them.
  auto said = std::chrono::steady_clock::now();
  auto progress = [&](const signal::UnwrittenCallsReplay& so_far) {
    const auto now = std::chrono::steady_clock::now();
    if (now - said < std::chrono::seconds(1)) {
      return;
    }
    said = now;
    NotifyExtendTimeout(std::chrono::seconds(30));
    NotifyStatus(fmt::format("writing the call history saved at the last stop: {} written",
                             so_far.applied + so_far.refused));
  };
  auto replayed = signal::ReplayUnwrittenCalls(store, path, progress);
  if (!replayed) {
    if (replayed.error().code == base::ErrorCode::kUnavailable) {
      return std::unexpected(replayed.error());
    }
    TK_LOG_ERROR(
        "calls: the call history writes saved at the last stop were not written ({}); "
        "{} is kept for the next start",
        replayed.error().message, path);
    return base::Ok();
  }
  const size_t total = replayed->applied + replayed->refused + replayed->unreadable;
  if (total > 0) {
    TK_LOG_INFO(
        "calls: {} call history writes saved at the last stop written from {} ({} refused, {} "
        "unreadable)",
        replayed->applied, path, replayed->refused, replayed->unreadable);
  }
  signal::LogUnfinishedCallsEnded(static_cast<int>(replayed->ended),
                                  fmt::format("in {} (left going by the last run)", path));
  return base::Ok();
}

// The database, open and with a schema serve can use.
base::Result<std::unique_ptr<sql::Store>> OpenForServe(const config::Config& config,
                                                       const DatabaseWait& wait) {
  const auto started = std::chrono::steady_clock::now();
  const auto give_up = started + kDatabaseStartPatience;
  std::chrono::seconds delay{1};
  for (;;) {
    base::Error failed;
    auto store = OpenDatabase(config);
    if (store) {
      auto prepared = PrepareSchemaForServe(**store, config);
      if (prepared) {
        prepared = WriteUnwrittenCalls(**store, config);
      }
      if (prepared) {
        // Calls the last process never ended (a crash, a kill) would stay
        // ringing or active in the history for ever.
        // In a cluster the coordinator does it when it takes over
        // (another node may be running calls now).
        if (!config.cluster.enabled) {
          signal::LogUnfinishedCallsEnded((*store)->EndUnfinishedCalls(std::nullopt),
                                          "of the last run");
        }
        return store;
      }
      failed = prepared.error();
    } else {
      failed = store.error();
    }
    // Only an unreachable server is worth waiting for; a wrong password or
    // schema stays wrong, and SQLite is a file.
    const bool worth_waiting = wait && config.database.driver == config::DatabaseDriver::kMysql &&
                               failed.code == base::ErrorCode::kUnavailable;
    const auto now = std::chrono::steady_clock::now();
    if (!worth_waiting || now + delay >= give_up) {
      if (worth_waiting) {
        failed.message +=
            fmt::format("; gave up after waiting {} s for the database",
                        std::chrono::duration_cast<std::chrono::seconds>(now - started).count());
      }
      return std::unexpected(failed);
    }
    TK_LOG_WARN("database: {}; trying again in {} s", failed.message, delay.count());
    if (!wait(delay)) {
      return std::unexpected(
          base::Error{base::ErrorCode::kUnavailable, "stopped while waiting for the database"});
    }
    delay = std::min(delay * 2, std::chrono::seconds(8));
  }
}

}  // namespace

base::Result<std::unique_ptr<signal::SignalService>> CreateSignalService(
    const config::Config& config, std::shared_ptr<net::TlsContext> tls, metrics::Registry& registry,
    const DatabaseWait& wait) {
  if (config.signal.listen.tls && !tls) {
    return base::InvalidArgument("signal.listen.tls: no TLS certificate loaded");
  }
  auto store = OpenForServe(config, wait);
  if (!store) {
    return std::unexpected(store.error());
  }
  TK_LOG_INFO("database: {} (schema current)", DescribeDatabase(config));

  signal::SignalServiceOptions options;
  options.listen = config.signal.listen.address;
  options.tls = config.signal.listen.tls ? std::move(tls) : nullptr;
  if (config.signal.listen.tls && config.signal.listen.hsts_max_age.count() > 0) {
    options.http.strict_transport_security =
        "max-age=" + std::to_string(config.signal.listen.hsts_max_age.count());
  }
  options.http.max_body_bytes =
      std::max<size_t>(options.http.max_body_bytes,
                       static_cast<size_t>(config.signal.engineio.max_payload) + kBodySlack);
  if (!config.signal.jwt.secret.empty()) {
    options.jwt_key = config.signal.jwt.secret;
  } else {
    auto key = LoadOrCreateJwtKey(config.state_dir);
    if (!key) {
      return std::unexpected(key.error());
    }
    options.jwt_key = std::move(*key);
  }
  options.access_ttl = config.signal.jwt.access_ttl;
  options.refresh_ttl = config.signal.jwt.refresh_ttl;
  // Every request's peer is then the client its proxy names (login and
  // registration limits, unjoined Socket.IO connections).
  options.http.trusted_proxies = config.signal.trusted_proxies;
  options.http.max_fresh_connections = config.signal.pending_connections;
  options.http.listener.budget = std::make_shared<net::ConnectionBudget>(
      net::ConnectionBudgetOptions{.max_per_client = config.signal.connections_per_address,
                                   .exempt = config.signal.trusted_proxies,
                                   .exempt_loopback = true},
      net::ProcessConnectionBudget());
  options.register_rate = config.signal.rate_limits.register_per_address.rate;
  options.register_burst = config.signal.rate_limits.register_per_address.burst;
  options.settings = MakeSignalSettings(config);
  return signal::SignalService::Create(std::move(options), std::move(*store), registry);
}

void ReloadSignalService(signal::SignalService& service, const config::Config& config,
                         std::shared_ptr<net::TlsContext> tls) {
  service.Reload(MakeSignalSettings(config), config.signal.listen.tls ? std::move(tls) : nullptr);
}

}  // namespace turnkey::app
