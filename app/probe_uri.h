// ProbeUri: the server `turnkey probe` checks, as written on its command line.
//
// Accepted forms (RFC 7064 / RFC 7065 URIs, with "//" optional, plus user
// information for TURN so an admin can paste one string):
//   stun://HOST[:PORT][?transport=udp|tcp]     stuns://HOST[:PORT]
//   turn://[USER[:PASS]@]HOST[:PORT][?transport=udp|tcp]
//   turns://[USER[:PASS]@]HOST[:PORT][?transport=tcp]
// IPv6 hosts go in brackets. Default ports: 3478, and 5349 for the secure
// schemes, which run over TLS. USER and PASS are percent-decoded after they
// are split at the LAST ':' of the user information, so a TURN REST username
// ("1700000000:alice") can be written as it is; a ':' inside a password must
// be written %3A.
//
// Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "net/blocking_client.h"

namespace turnkey::app {

struct ProbeUri {
  enum class Scheme : uint8_t { kStun, kStuns, kTurn, kTurns };

  Scheme scheme = Scheme::kStun;
  net::Transport transport = net::Transport::kUdp;
  std::string host;  // without brackets
  uint16_t port = 0;
  std::optional<std::string> username;  // TURN only; decoded
  std::optional<std::string> password;  // TURN only; decoded

  bool is_turn() const { return scheme == Scheme::kTurn || scheme == Scheme::kTurns; }
  // "turn://host:port" style, without user information (never the password),
  // for printing.
  std::string Display() const;
};

// Parses `uri`; the error message says what is wrong without repeating the
// user information.
base::Result<ProbeUri> ParseProbeUri(std::string_view uri);

}  // namespace turnkey::app
