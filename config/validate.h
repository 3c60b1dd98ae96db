// Internal to config/: checks that span several keys, run after decoding.
#pragma once

#include "config/config.h"
#include "config/diagnostics.h"

namespace turnkey::config {

// Reports combinations that are each valid alone but not together:
// allocation_default > allocation_max, ports.min > ports.max,
// refresh_ttl < access_ttl, an enabled role with nothing to listen on or relay
// from, two relay or external addresses of one family, two sockets on one
// port, TLS listeners without a certificate, duplicate static users.
void CheckConsistency(const Config& cfg, Diagnostics& diag);

}  // namespace turnkey::config
