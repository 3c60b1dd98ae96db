// The `iceServers` list handed to WebRTC clients at login, on socket connect
// and on `getIceServers`: the configured STUN and TURN URIs, the TURN ones with
// fresh TURN REST credentials for the user (auth/turn_rest.h), in the shape
// `new RTCPeerConnection({iceServers})` takes (W3C webrtc-pc RTCIceServer).
//
// URIs are checked by base::ParseIceUrl (base/ice_url.h: RFC 7064 and RFC
// 7065, lower-case scheme, IP literal or plain name, port 1-65535).
//
// All functions are pure and thread-safe; `now` is passed in.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace turnkey::auth {

// kInvalidArgument naming `url` and what is wrong if it is not a valid
// stun:/stuns:/turn:/turns: URI as described above.
[[nodiscard]] base::Status CheckIceServerUrl(std::string_view url);

// One RTCIceServer.
struct IceServer {
  std::vector<std::string> urls;
  std::string username;    // "" for STUN (no credentials)
  std::string credential;  // "" for STUN

  friend bool operator==(const IceServer&, const IceServer&) = default;
};

struct IceServerList {
  // At most two entries, in this order: every STUN URI together without
  // credentials, then every TURN URI together with one TURN REST credential.
  // Either is left out when there are no URIs of its kind.
  std::vector<IceServer> servers;
  // Lifetime of the TURN credential, seconds (as asked for).
  int64_t ttl_seconds = 0;
  // When the TURN credential stops working, unix seconds; hand out a new list
  // before then. 0 when the list has no TURN entry.
  int64_t expires_at = 0;

  friend bool operator==(const IceServerList&, const IceServerList&) = default;
};

// Builds the list for `user_id` from the configured `urls` (config
// signal.ice_servers.urls, in their configured order within each kind),
// minting a credential with `turn_secret` (the first of turn.auth.secrets)
// valid for `ttl_seconds` from `now_unix`.
// kInvalidArgument if a URL is invalid, if there are TURN URLs but
// `turn_secret` is empty, if `user_id` is empty or contains ':' (it is part of
// the TURN REST username), or if ttl_seconds <= 0.
[[nodiscard]] base::Result<IceServerList> BuildIceServers(std::span<const std::string> urls,
                                                          std::string_view turn_secret,
                                                          std::string_view user_id,
                                                          int64_t ttl_seconds, int64_t now_unix);

// The `iceServers` JSON array: [{"urls": [...]}, {"urls": [...], "username":
// ..., "credential": ...}].
nlohmann::json IceServersJson(const IceServerList& list);

// The TURN REST API response for GET /api/turn/credentials and `turnkey
// credentials`: {"username", "password", "ttl", "uris"} with the TURN URIs
// only. An empty object when the list has no TURN entry.
nlohmann::json TurnCredentialsJson(const IceServerList& list);

}  // namespace turnkey::auth
