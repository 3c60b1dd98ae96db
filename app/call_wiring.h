// What `turnkey serve` mounts on the signaling service besides the REST
// API: the call flow over Socket.IO (signal::CallService), or in
// signal.protocol_test_mode the protocol conformance app instead, and the
// demo page from signal.web_root.
#pragma once

#include <memory>

#include "base/status.h"
#include "config/config.h"
#include "signal/call_service.h"
#include "signal/signal_service.h"

namespace turnkey::app {

// signal.engineio.*, signal.allowed_origins, ring_timeout and
// reconnect_grace as the call service takes them.
signal::CallServiceOptions MakeCallServiceOptions(const config::Config& config);
signal::CallServiceSettings MakeCallServiceSettings(const config::Config& config);

// The web root in effect: signal.web_root, or the source tree's web/ when
// that is "".
std::string EffectiveWebRoot(const config::Config& config);

// What MountSignalApps set up. `calls` is null in protocol test mode.
struct SignalApps {
  std::shared_ptr<signal::CallService> calls;
  // The protocol test app, kept alive by the service's hooks; opaque here.
  std::shared_ptr<void> protocol_test;
};

// Mounts the apps on `service` (before its Start()). Fails when a
// configured signal.web_root cannot be read; a missing default web root only
// costs the demo page (logged).
base::Result<SignalApps> MountSignalApps(signal::SignalService& service,
                                         const config::Config& config);

// SIGHUP: allowed origins, ring timeout and reconnect grace.
void ReloadSignalApps(const SignalApps& apps, const config::Config& config);

}  // namespace turnkey::app
