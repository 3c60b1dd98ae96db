// What `turnkey check-config` can tell of a config on this host beyond the
// file itself, which `serve` would otherwise find only at its start: an
// address to listen on that is not one of the host's, a web root that is not
// a directory, an SQLite database or state directory this user cannot write.
// Ports are not tried: the running server holds them while check-config runs
// before a reload or an upgrade.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "base/address.h"
#include "config/config.h"

namespace turnkey::app {

struct HostCheckResult {
  std::vector<std::string> errors;  // each starts with the key it is about
};

// `can_bind`: whether a socket can be bound to that IP address (port 0) on
// this host (net::CanBindUdp; tests pass their own).
HostCheckResult CheckHost(const config::Config& config,
                          const std::function<bool(const base::SocketAddress&)>& can_bind);

}  // namespace turnkey::app
