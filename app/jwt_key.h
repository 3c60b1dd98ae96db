// The HMAC key of the signaling service's access tokens when the config
// names none (signal.jwt.secret_file empty): generated once into
// <state_dir>/jwt.key and reused, so tokens survive a restart.
//
// The file holds 32 random bytes as 64 lower-case hex characters and a
// newline (the same one-line format signal.jwt.secret_file takes, so an
// operator can move it there), mode 0600. It is created atomically (written
// to a temporary name, then link()ed into place), so two processes starting
// at once agree on one key.
#pragma once

#include <string>

#include "base/status.h"

namespace turnkey::app {

inline constexpr const char* kJwtKeyFileName = "jwt.key";

// Reads <state_dir>/jwt.key, or creates it (and state_dir) if missing.
// Fails when the file exists but holds less than 32 bytes on its first
// line (it is never overwritten), or cannot be read or written. Warns when
// the file is readable by group or others.
base::Result<std::string> LoadOrCreateJwtKey(const std::string& state_dir);

}  // namespace turnkey::app
