#include "app/call_wiring.h"

#include <fmt/format.h>

#include <utility>

#include "app/database_setup.h"
#include "base/bytes.h"
#include "base/crypto.h"
#include "base/log.h"
#include "signal/protocol_test_app.h"
#include "signal/static_files.h"

#ifndef TURNKEY_SOURCE_WEB_DIR
#define TURNKEY_SOURCE_WEB_DIR ""
#endif

namespace turnkey::app {
namespace {

signal::EngineIoServerOptions MakeEngineIoOptions(const config::Config& config) {
  signal::EngineIoServerOptions engineio;
  engineio.ping_interval = config.signal.engineio.ping_interval;
  engineio.ping_timeout = config.signal.engineio.ping_timeout;
  engineio.max_payload = config.signal.engineio.max_payload;
  engineio.cors.allowed_origins = config.signal.allowed_origins;
  engineio.max_pending_per_address = config.signal.engineio.max_pending_per_address;
  engineio.pending_exempt_loopback = true;
  // Until a connection has joined, 64 KiB per message (its CONNECT is a few
  // hundred bytes): see EngineIoServerOptions::max_pending_payload.
  engineio.max_pending_payload = 64 * 1024;
  return engineio;
}

// signal.protocol_test_mode: the conformance app on /engine.io/ and
// /socket.io/, living on the service's loop like the call service would.
base::Result<std::shared_ptr<void>> MountProtocolTestApp(signal::SignalService& service,
                                                         const config::Config& config) {
  // Only on loopback: config validation refuses protocol_test_mode
  // elsewhere, and every Config is validated when it is loaded.
  signal::ProtocolTestAppOptions options;
  options.engineio = MakeEngineIoOptions(config);
  options.connect_timeout = config.signal.engineio.connect_timeout;
  auto created = signal::ProtocolTestApp::Create(service.loop(), options);
  if (!created) {
    return std::unexpected(created.error());
  }
  struct Holder {
    std::unique_ptr<signal::ProtocolTestApp> app;
  };
  auto holder = std::make_shared<Holder>(Holder{std::move(*created)});
  auto mount = [&service, holder](std::string_view prefix, bool echo) {
    return service.MountEngineIo(prefix, [holder, echo]() -> signal::EngineIoServer* {
      if (holder->app == nullptr) {
        return nullptr;
      }
      return echo ? &holder->app->echo() : &holder->app->socketio().engine();
    });
  };
  if (auto mounted = mount("/engine.io/", true); !mounted) {
    return std::unexpected(mounted.error());
  }
  if (auto mounted = mount("/socket.io/", false); !mounted) {
    return std::unexpected(mounted.error());
  }
  service.OnStopping([holder] {
    if (holder->app) {
      holder->app->CloseAll();
    }
  });
  service.OnStopped([holder] { holder->app.reset(); });
  TK_LOG_WARN(
      "signal: protocol_test_mode is on: /socket.io/ and /engine.io/ serve the "
      "conformance app without authentication (never on a production host)");
  return std::shared_ptr<void>(holder);
}

// The demo page (web/README.md) from the web root, read once.
base::Status MountDemoPage(signal::SignalService& service, const config::Config& config) {
  const std::string root = EffectiveWebRoot(config);
  const bool configured = !config.signal.web_root.empty();
  if (root.empty()) {
    TK_LOG_WARN("signal: no signal.web_root; the demo page is not served");
    return base::Ok();
  }
  auto loaded = signal::StaticFiles::Load(root);
  if (!loaded) {
    if (configured) {
      return base::InvalidArgument("signal.web_root: " + loaded.error().message);
    }
    TK_LOG_WARN("signal: {}; the demo page is not served (set signal.web_root)",
                loaded.error().message);
    return base::Ok();
  }
  auto files = std::make_shared<const signal::StaticFiles>(std::move(*loaded));
  if (!files->Has("/index.html") || !files->Has("/socket.io.min.js")) {
    TK_LOG_WARN(
        "signal: the demo page in {} is incomplete (missing: {}); run `npm ci` in that "
        "directory for socket.io-client's browser build",
        root, fmt::join(files->missing(), ", "));
  }
  for (const std::string& path : files->served()) {
    auto added = service.AddRoute(
        "GET", path, [files, path](net::HttpRequest request, net::Responder responder) {
          responder.Respond(files->Respond(path, request.headers));
        });
    if (!added) {
      return added;
    }
  }
  TK_LOG_INFO("signal: demo page at / from {}", root);
  return base::Ok();
}

}  // namespace

signal::CallServiceOptions MakeCallServiceOptions(const config::Config& config) {
  signal::CallServiceOptions options;
  options.socketio.engineio = MakeEngineIoOptions(config);
  options.socketio.connect_timeout = config.signal.engineio.connect_timeout;
  options.calls.ring_timeout = config.signal.ring_timeout;
  options.calls.reconnect_grace = config.signal.reconnect_grace;
  options.sockets_per_user = config.signal.sockets_per_user;
  options.connection_recovery = config.signal.connection_recovery;
  if (config.cluster.enabled) {
    signal::ClusterLinkOptions cluster;
    cluster.name = config.cluster.name;
    cluster.node_timeout = config.cluster.node_timeout;
    cluster.redis.host = config.cluster.redis.host;
    cluster.redis.port = config.cluster.redis.port;
    cluster.redis.username = config.cluster.redis.username;
    cluster.redis.password = config.cluster.redis.password;
    // Not the key: a digest only it makes, the same on every node that has it.
    if (!config.signal.jwt.secret.empty()) {
      cluster.settings_check =
          base::HexEncode(
              base::HmacSha256(base::AsBytes(config.signal.jwt.secret),
                               base::AsBytes(std::string_view("turnkey cluster check"))))
              .substr(0, 16);
    }
    options.cluster = std::move(cluster);
  }
  const config::SignalRateLimitOptions& limits = config.signal.rate_limits;
  options.socketio.rate_limit.events_per_second = limits.events.rate;
  options.socketio.rate_limit.burst = limits.events.burst;
  options.calls.initiate_socket_rate = limits.initiate_per_socket.rate;
  options.calls.initiate_socket_burst = limits.initiate_per_socket.burst;
  options.calls.initiate_user_rate = limits.initiate_per_user.rate;
  options.calls.initiate_user_burst = limits.initiate_per_user.burst;
  options.recorder.commit_delay = config.signal.history.commit_delay;
  options.recorder.unwritten_path = UnwrittenCallsPath(config);
  return options;
}

signal::CallServiceSettings MakeCallServiceSettings(const config::Config& config) {
  signal::CallServiceSettings settings;
  settings.allowed_origins = config.signal.allowed_origins;
  settings.ring_timeout = config.signal.ring_timeout;
  settings.reconnect_grace = config.signal.reconnect_grace;
  return settings;
}

std::string EffectiveWebRoot(const config::Config& config) {
  if (!config.signal.web_root.empty()) {
    return config.signal.web_root;
  }
  return TURNKEY_SOURCE_WEB_DIR;
}

base::Result<SignalApps> MountSignalApps(signal::SignalService& service,
                                         const config::Config& config) {
  SignalApps apps;
  if (config.signal.protocol_test_mode) {
    auto app = MountProtocolTestApp(service, config);
    if (!app) {
      return std::unexpected(app.error());
    }
    apps.protocol_test = std::move(*app);
  } else {
    auto calls = signal::CallService::Create(service, MakeCallServiceOptions(config));
    if (!calls) {
      return std::unexpected(calls.error());
    }
    apps.calls = std::move(*calls);
  }
  if (auto page = MountDemoPage(service, config); !page) {
    return std::unexpected(page.error());
  }
  return apps;
}

void ReloadSignalApps(const SignalApps& apps, const config::Config& config) {
  if (apps.calls) {
    apps.calls->Reload(MakeCallServiceSettings(config));
  }
}

}  // namespace turnkey::app
