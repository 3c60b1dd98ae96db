// Internal to config/: checks that span several keys, run after decoding.
#pragma once

#include <cstddef>

#include "config/config.h"
#include "config/diagnostics.h"

namespace turnkey::config {

// Reports combinations that are each valid alone but not together:
// allocation_default > allocation_max, ports.min > ports.max,
// refresh_ttl < access_ttl, an enabled role with nothing to listen on or relay
// from, two relay or external addresses of one family, two sockets on one
// port, TLS listeners without a certificate, duplicate static users.
void CheckConsistency(const Config& cfg, Diagnostics& diag);

// Warns (never refuses) about settings that expose a public host: plain
// HTTP signaling off loopback, metrics off loopback, TURN REST secrets
// shorter than kMinTurnSecretBytes, peers.allow rules that reach loopback.
inline constexpr size_t kMinTurnSecretBytes = 16;
void CheckExposure(const Config& cfg, Diagnostics& diag);

}  // namespace turnkey::config
