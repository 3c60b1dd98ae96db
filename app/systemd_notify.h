// sd_notify(3) for Type=notify units (systemd/turnkey.service): READY,
// RELOADING, STOPPING, STATUS and the watchdog. Every call is a no-op when
// not started by systemd (NOTIFY_SOCKET unset), so `turnkey serve` behaves
// the same from a shell.
#pragma once

#include <chrono>
#include <string_view>

namespace turnkey::app {

void NotifyReady(std::string_view status);
// RELOADING=1 with MONOTONIC_USEC (systemd 253+ uses it for notify-reload).
void NotifyReloading();
void NotifyStopping();
void NotifyStatus(std::string_view status);
void NotifyWatchdog();
// EXTEND_TIMEOUT_USEC: the start (or stop) in progress needs `more` from now,
// past TimeoutStartSec; for long work before READY.
void NotifyExtendTimeout(std::chrono::microseconds more);
// Half of WatchdogSec when the watchdog is enabled for us, else zero.
std::chrono::microseconds WatchdogInterval();

}  // namespace turnkey::app
