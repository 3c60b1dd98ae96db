// The subcommands of the turnkey binary. Each returns the process exit code
// and prints its own diagnostics (stderr for errors).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"
#include "sql/store.h"

namespace turnkey::app {

// The config of a one-shot command (check-config, migrate, credentials,
// user): loaded and validated, its warnings (secret files others can read)
// printed to stderr. On an error it prints that and returns nothing; the
// command then exits 1.
std::optional<config::Config> LoadCommandConfig(const std::string& config_path);

// The database of a command that works on accounts or calls (user, call):
// the config loaded, the store opened and its schema ready as serve would
// have it (a new SQLite file gets the schema; anything behind or ahead is
// refused with what to do). On a failure it prints "`command`: what: why"
// and returns nothing; the command then exits 1.
std::unique_ptr<sql::Store> OpenCommandDatabase(const std::string& config_path,
                                                const char* command);

// `turnkey serve`: runs until SIGTERM/SIGINT. Loads and validates the config
// first; exits 1 with `file:line: key: problem` when it is bad.
int RunServe(const std::string& config_path);

// `turnkey check-config`: validates the file; 0 when good, 1 otherwise.
int RunCheckConfig(const std::string& config_path);

// `turnkey migrate`: applies pending database migrations (database.* of the
// config) and prints what it did; 0 when the schema is current afterwards.
int RunMigrate(const std::string& config_path);

struct ProbeArgs {
  std::string uri;             // stun[s]://host:port, turn[s]://user:pass@host:port (probe_uri.h)
  std::string timeout = "3s";  // per request, a duration with unit
  std::string ca_file;         // verify TLS servers against this CA file
  bool insecure = false;       // skip TLS certificate verification
  std::string secret;          // TURN REST secret: mint the password for turn://USER@...
  std::string relay_family;    // TURN: "" (the server's default), "ipv4" or "ipv6"
};

// `turnkey probe URI`: a client self-test against any STUN or TURN server.
// Prints what worked, the addresses and the round-trip times; 0 on success.
// TURN: allocates, relays through Send and through a channel to a local echo
// peer it starts (turn_probe.h), frees the allocation.
int RunProbe(const ProbeArgs& args);

struct CredentialsArgs {
  std::string user;         // the user id the credential is for (no ':')
  int64_t ttl_seconds = 0;  // 0 = signal.ice_servers.credential_ttl
};

// --ttl: a number of seconds, or a duration with a unit ("10m", "12h");
// 0 when it is neither, or outside 1 s .. 2^31-1 s.
int64_t ParseTtlSeconds(std::string_view text);

// `turnkey credentials --user ID [--ttl SECONDS]`: prints TURN REST JSON.
int RunCredentials(const std::string& config_path, const CredentialsArgs& args);

struct UserArgs {
  std::string action;        // add | show | set-password | revoke-sessions
  std::string who;           // show, set-password, revoke-sessions: id, email or handle
  std::string email;         // add
  std::string handle;        // add
  std::string display_name;  // add; "" = the handle
};

// `turnkey user ACTION`: account tasks on the configured database. add and
// set-password read the password from stdin (asked twice, without echo, on a
// terminal). 0 on success, 1 when it failed, 2 for bad input.
int RunUser(const std::string& config_path, const UserArgs& args);

// A user by id, email (has an '@' past the first character) or handle (a
// leading '@' is ignored, as by the API): how commands name a user.
base::Result<sql::User> FindCommandUser(sql::Store& store, const std::string& who);

// `turnkey call show CALL_ID`: prints one call of the history (JSON) with
// both participants. 0 when found, 1 otherwise.
int RunCallShow(const std::string& config_path, const std::string& call_id);
// `turnkey call list USER [--limit N]`: a user's newest calls (JSON, as
// their history has them, ICE reports included), for an operator whose user
// says calls fail. 0 when the user exists, 1 otherwise.
int RunCallList(const std::string& config_path, const std::string& who, int limit);

}  // namespace turnkey::app
