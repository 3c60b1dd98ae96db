// What a SIGHUP reload may change.
//
// On reload the new file is loaded and validated like at startup; a config
// that fails is not applied. Settings fall in two classes (redis-style):
//   restart-only: realm, state_dir, turn.enabled, turn.threads,
//     turn.listeners, turn.relay.*, signal.enabled, signal.listen.*,
//     signal.jwt.*, signal.engineio.*, signal.protocol_test_mode,
//     signal.web_root,
//     database.*, metrics.*
//   reloadable: log.*, tls.* (files re-read), turn.auth.* (secrets re-read),
//     turn.lifetimes.*, turn.quotas.*, turn.peers.*, turn.software,
//     signal.allowed_origins, signal.ring_timeout, signal.reconnect_grace,
//     signal.ice_servers.*
// A reload applies the reloadable part and logs the restart-only keys that
// differ (they take effect at the next restart).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace turnkey::config {

// What a reload applies: sets every restart-only value of `next` back to the
// `running` one and returns the key paths (e.g. "turn.listeners",
// "database.mysql.host") that differed, in file order; empty when the whole
// difference can be applied. A changed secret is reported under its *_file
// key, so the result is safe to log. `next` is then the config to apply and
// to keep as running, so a later reload reports the same keys again until a
// restart.
std::vector<std::string> KeepRestartOnly(const Config& running, Config& next);

// Why a reload from `running` to `next` (before KeepRestartOnly) cannot be
// applied in part, or "" when it can. One case: a new realm together with
// new turn.auth.static_users. Their keys are MD5(name:realm:password), so
// the new keys belong to the new realm, which only a restart applies:
// taken alone they would fail every static user's authentication.
std::string HalfAppliedReload(const Config& running, const Config& next);

// Whether a load warning ("FILE:LINE: warning: KEY: ...") is about one of
// `keys` (KeepRestartOnly's result) or a key inside or above one: such a
// warning describes the next restart, not the running process.
bool WarningIsAboutKeys(std::string_view warning, const std::vector<std::string>& keys);

}  // namespace turnkey::config
