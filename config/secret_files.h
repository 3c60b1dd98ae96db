// Internal to config/: path resolution and `*_file` secrets, run by the
// loader after the YAML has been decoded without errors.
#pragma once

#include <string>

#include "config/config.h"
#include "config/diagnostics.h"

namespace turnkey::config {

// Makes the relative paths among state_dir, tls.certificate, tls.private_key
// and the *_file keys relative to `base_dir` (the config file's directory).
// An empty `base_dir` leaves them as written. database.sqlite.path is left
// alone: it is relative to state_dir, which the store applies.
void ResolvePaths(Config& cfg, const std::string& base_dir);

// Reads turn.auth.secrets_file into turn.auth.secrets, signal.jwt.secret_file
// into signal.jwt.secret and (when the driver is mysql)
// database.mysql.password_file into database.mysql.password. Problems are
// reported at the *_file key, naming the file but never its contents.
void ReadSecretFiles(Config& cfg, Diagnostics& diag);

}  // namespace turnkey::config
