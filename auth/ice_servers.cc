#include "auth/ice_servers.h"

#include <nlohmann/json.hpp>

#include "auth/turn_rest.h"
#include "base/address.h"

namespace turnkey::auth {

namespace {

enum class Scheme { kStun, kTurn };

bool Consume(std::string_view& text, std::string_view prefix) {
  if (!text.starts_with(prefix)) {
    return false;
  }
  text.remove_prefix(prefix.size());
  return true;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// RFC 3986 unreserved characters, the only ones we take in a host name.
bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c) || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

std::unexpected<base::Error> Bad(std::string_view url, std::string_view why) {
  std::string message = "ICE server URL \"";
  message += url;
  message += "\": ";
  message += why;
  return base::InvalidArgument(std::move(message));
}

// Checks and returns the kind of `url`, or the reason it is not valid.
base::Result<Scheme> ParseIceUrl(std::string_view url) {
  std::string_view rest = url;
  Scheme scheme;
  if (Consume(rest, "stun:") || Consume(rest, "stuns:")) {
    scheme = Scheme::kStun;
  } else if (Consume(rest, "turn:") || Consume(rest, "turns:")) {
    scheme = Scheme::kTurn;
  } else {
    return Bad(url, "scheme must be stun:, stuns:, turn: or turns: (lower-case)");
  }

  // RFC 7065 section 3: the only query is "?transport=", and only for TURN.
  const size_t query = rest.find('?');
  if (query != std::string_view::npos) {
    std::string_view params = rest.substr(query + 1);
    rest = rest.substr(0, query);
    if (scheme != Scheme::kTurn) {
      return Bad(url, "stun: and stuns: URIs take no query (RFC 7064)");
    }
    if (!Consume(params, "transport=") || (params != "udp" && params != "tcp")) {
      return Bad(url, "the only query is ?transport=udp or ?transport=tcp (RFC 7065)");
    }
  }

  std::string_view port;
  if (rest.starts_with('[')) {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) {
      return Bad(url, "unclosed [ in IPv6 address");
    }
    const std::string_view literal = rest.substr(1, close - 1);
    const auto ip = base::SocketAddress::ParseIp(literal);
    if (!ip || !ip->is_v6()) {
      return Bad(url, "not an IPv6 address inside [ ]");
    }
    rest.remove_prefix(close + 1);
    if (!rest.empty()) {
      if (!Consume(rest, ":") || rest.empty()) {
        return Bad(url, "expected :port after ]");
      }
      port = rest;
    }
  } else {
    const size_t colon = rest.find(':');
    const std::string_view host = rest.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = rest.substr(colon + 1);
      if (port.empty()) {
        return Bad(url, "empty port");
      }
    }
    if (host.empty()) {
      return Bad(url, "missing host");
    }
    if (host.size() > 253) {
      return Bad(url, "host name longer than 253 characters");
    }
    for (char c : host) {
      if (!IsNameChar(c)) {
        return Bad(url,
                   "host must be an IPv4 address, [IPv6 address] or a name of letters, digits "
                   "and -._~ (no path, user or spaces)");
      }
    }
  }

  if (!port.empty()) {
    if (port.size() > 5) {
      return Bad(url, "port must be 1-65535");
    }
    uint32_t value = 0;
    for (char c : port) {
      if (!IsDigit(c)) {
        return Bad(url, "port must be 1-65535");
      }
      value = value * 10 + static_cast<uint32_t>(c - '0');
    }
    if (value == 0 || value > 65535) {
      return Bad(url, "port must be 1-65535");
    }
  }
  return scheme;
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
    (*scheme == Scheme::kStun ? stun : turn).urls.push_back(url);
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
