#include "app/systemd_notify.h"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <cstdint>
#include <string>

#include "fmt/format.h"

namespace turnkey::app {

namespace {

void Send(const std::string& message) { (void)sd_notify(0, message.c_str()); }

}  // namespace

void NotifyReady(std::string_view status) { Send(fmt::format("READY=1\nSTATUS={}", status)); }

void NotifyReloading() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const uint64_t usec =
      static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
  Send(fmt::format("RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading", usec));
}

void NotifyStopping() { Send("STOPPING=1\nSTATUS=stopping"); }

void NotifyStatus(std::string_view status) { Send(fmt::format("STATUS={}", status)); }

void NotifyWatchdog() { Send("WATCHDOG=1"); }

void NotifyExtendTimeout(std::chrono::microseconds more) {
  Send(fmt::format("EXTEND_TIMEOUT_USEC={}", more.count()));
}

std::chrono::microseconds WatchdogInterval() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
    return std::chrono::microseconds(usec / 2);
  }
  return std::chrono::microseconds(0);
}

}  // namespace turnkey::app
