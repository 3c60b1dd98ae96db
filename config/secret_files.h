// Internal to config/: path resolution and `*_file` secrets, run by the
// loader after the YAML has been decoded without errors.
#pragma once

#include <string>

#include "config/config.h"
#include "config/diagnostics.h"

namespace turnkey::config {

// Makes the relative paths among state_dir, tls.certificate, tls.private_key
// and the *_file keys (database.mysql.tls_ca_file too) relative to `base_dir` (the config file's
// directory). An empty `base_dir` leaves them as written. database.sqlite.path is left alone: it is
// relative to state_dir, which the store applies.
void ResolvePaths(Config& cfg, const std::string& base_dir);

// Reads turn.auth.secrets_file into turn.auth.secrets, signal.jwt.secret_file
// into signal.jwt.secret and (when the driver is mysql)
// database.mysql.password_file into database.mysql.password. Problems are
// reported at the *_file key, naming the file but never its contents. On a
// TURN-only node (turn on, signal off) only turn.auth.secrets_file must be
// readable: the others are read if they can be, their problems not reported.
void ReadSecretFiles(Config& cfg, Diagnostics& diag);

// Warns (never refuses: a working deployment keeps working) about every
// file holding a secret that users other than turnkey's may read or change,
// as OpenSSH does for keys: the *_file keys that are read, tls.private_key,
// and `config_path` (empty: none) when it holds turn.auth.secrets or
// static_users itself. "Other users" are others, and the file's group
// unless this process runs in it: the documented layout, root:turnkey
// 0640, is how the service reads its files. A file that cannot be looked
// at is not warned about (reading it reports that).
void CheckSecretFileModes(const Config& cfg, const std::string& config_path, Diagnostics& diag);

}  // namespace turnkey::config
