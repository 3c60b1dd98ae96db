// Loading the YAML config file into a validated Config.
//
// This is the only place in turnkey that parses YAML (DESIGN.md section 1).
// Rules the loader enforces:
//   - Missing keys take the defaults of the option structs; an empty document
//     or `{}` yields Config{}. A key with an empty value (`realm:`) is an
//     error for scalars, an empty list for lists and all defaults for sections.
//   - Unknown and duplicate keys are errors, as are wrong types, values out
//     of range, bad durations/IPs/CIDRs/names, and inconsistent combinations
//     (allocation_default > allocation_max, ports.min > ports.max, two
//     listeners on one TCP port, ...).
//   - `*_file` keys (turn.auth.secrets_file, signal.jwt.secret_file,
//     database.mysql.password_file) are read now; the secrets land in the
//     Config. Relative paths in the file (state_dir, tls.*, *_file) are
//     resolved against the config file's directory.
//
// Errors: Error{kInvalidArgument} whose message has one line per problem,
// ordered by line, each of the form
//     FILE:LINE: key.path: what is wrong
// (LINE is 1-based; list items appear as `turn.listeners[1].port`, 0-based).
// A YAML syntax error reads `FILE:LINE: syntax error: ...`; an unreadable
// config file `FILE: cannot read: ...`. Messages never contain a secret.
// No exception escapes these functions.
//
// Warnings: a config that loads may still deserve a word to the operator,
// who should see it wherever the config is loaded (serve, check-config,
// reload). Given `warnings`, a successful load fills it with lines of the
// form `FILE:LINE: warning: key.path: what`: so far, a file holding a secret (a *_file key,
// tls.private_key, or the config file when secrets are written in it) that
// users other than turnkey's may read or change (see secret_files.h).
//
// Thread-safe (no shared state); blocking (reads files).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "config/config.h"

namespace turnkey::config {

// Reads and validates the config file at `path`. Errors name `path` as given.
base::Result<Config> LoadConfigFile(const std::string& path,
                                    std::vector<std::string>* warnings = nullptr);

// Validates `yaml`, naming it `name_for_errors` in messages. Relative paths
// are resolved against `base_dir`; "" leaves them relative (to the working
// directory of whoever opens them).
base::Result<Config> LoadConfigString(std::string_view yaml, std::string_view name_for_errors,
                                      const std::string& base_dir = "",
                                      std::vector<std::string>* warnings = nullptr);

}  // namespace turnkey::config
