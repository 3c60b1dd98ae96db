#include "auth/ice_servers.h"

#include <nlohmann/json.hpp>

#include "auth/turn_rest.h"
#include "base/ice_url.h"

namespace turnkey::auth {

namespace {

base::Result<base::IceUrlScheme> ParseIceUrl(std::string_view url) {
  auto parsed = base::ParseIceUrl(url);
  if (!parsed) {
    return base::InvalidArgument("ICE server URL \"" + std::string(url) +
                                 "\": " + parsed.error().message);
  }
  return parsed;
}

}  // namespace

base::Status CheckIceServerUrl(std::string_view url) {
  auto parsed = ParseIceUrl(url);
  if (!parsed) {
    return std::unexpected(std::move(parsed.error()));
  }
  return base::Ok();
}

base::Result<IceServerList> BuildIceServers(std::span<const std::string> urls,
                                            std::string_view turn_secret, std::string_view user_id,
                                            int64_t ttl_seconds, int64_t now_unix) {
  if (ttl_seconds <= 0) {
    return base::InvalidArgument("ICE server credential ttl must be positive");
  }
  IceServer stun;
  IceServer turn;
  for (const std::string& url : urls) {
    auto scheme = ParseIceUrl(url);
    if (!scheme) {
      return std::unexpected(std::move(scheme.error()));
    }
    (*scheme == base::IceUrlScheme::kStun ? stun : turn).urls.push_back(url);
  }

  IceServerList list;
  list.ttl_seconds = ttl_seconds;
  if (!stun.urls.empty()) {
    list.servers.push_back(std::move(stun));
  }
  if (!turn.urls.empty()) {
    if (turn_secret.empty()) {
      return base::InvalidArgument("TURN URLs are configured but there is no TURN REST secret");
    }
    if (user_id.empty() || user_id.find(':') != std::string_view::npos) {
      return base::InvalidArgument("TURN REST user id must be non-empty and without ':'");
    }
    TurnRestCredential credential =
        MintTurnRestCredential(turn_secret, user_id, now_unix, ttl_seconds);
    turn.username = std::move(credential.username);
    turn.credential = std::move(credential.password);
    list.expires_at = credential.expires_at;
    list.servers.push_back(std::move(turn));
  }
  return list;
}

nlohmann::json IceServersJson(const IceServerList& list) {
  nlohmann::json out = nlohmann::json::array();
  for (const IceServer& server : list.servers) {
    nlohmann::json entry = {{"urls", server.urls}};
    if (!server.username.empty()) {
      entry["username"] = server.username;
      entry["credential"] = server.credential;
    }
    out.push_back(std::move(entry));
  }
  return out;
}

nlohmann::json TurnCredentialsJson(const IceServerList& list) {
  for (const IceServer& server : list.servers) {
    if (!server.username.empty()) {
      return {{"username", server.username},
              {"password", server.credential},
              {"ttl", list.ttl_seconds},
              {"uris", server.urls}};
    }
  }
  return nlohmann::json::object();
}

}  // namespace turnkey::auth
