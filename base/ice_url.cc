#include "base/ice_url.h"

#include <string>

#include "base/address.h"

namespace turnkey::base {

namespace {

bool Consume(std::string_view& text, std::string_view prefix) {
  if (!text.starts_with(prefix)) {
    return false;
  }
  text.remove_prefix(prefix.size());
  return true;
}

// RFC 3986 unreserved characters, the only ones we take in a host name.
bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

std::unexpected<Error> Bad(std::string_view why) { return InvalidArgument(std::string(why)); }

}  // namespace

base::Result<IceUrlScheme> ParseIceUrl(std::string_view url) {
  std::string_view rest = url;
  IceUrlScheme scheme;
  if (Consume(rest, "stun:") || Consume(rest, "stuns:")) {
    scheme = IceUrlScheme::kStun;
  } else if (Consume(rest, "turn:") || Consume(rest, "turns:")) {
    scheme = IceUrlScheme::kTurn;
  } else {
    return Bad("scheme must be stun:, stuns:, turn: or turns: (lower-case)");
  }

  // RFC 7065 section 3: the only query is "?transport=", and only for TURN.
  const size_t query = rest.find('?');
  if (query != std::string_view::npos) {
    std::string_view params = rest.substr(query + 1);
    rest = rest.substr(0, query);
    if (scheme != IceUrlScheme::kTurn) {
      return Bad("stun: and stuns: URIs take no query (RFC 7064)");
    }
    if (!Consume(params, "transport=") || (params != "udp" && params != "tcp")) {
      return Bad("the only query is ?transport=udp or ?transport=tcp (RFC 7065)");
    }
  }

  std::string_view port;
  if (rest.starts_with('[')) {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) {
      return Bad("unclosed [ in IPv6 address");
    }
    const std::string_view literal = rest.substr(1, close - 1);
    const auto ip = SocketAddress::ParseIp(literal);
    if (!ip || !ip->is_v6()) {
      return Bad("not an IPv6 address inside [ ]");
    }
    rest.remove_prefix(close + 1);
    if (!rest.empty()) {
      if (!Consume(rest, ":") || rest.empty()) {
        return Bad("expected :port after ]");
      }
      port = rest;
    }
  } else {
    const size_t colon = rest.find(':');
    if (colon != std::string_view::npos && rest.find(':', colon + 1) != std::string_view::npos) {
      return Bad("an IPv6 address goes in [ ], e.g. turn:[2001:db8::1]:3478 (RFC 7065)");
    }
    const std::string_view host = rest.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = rest.substr(colon + 1);
      if (port.empty()) {
        return Bad("empty port");
      }
    }
    if (host.empty()) {
      return Bad("missing host");
    }
    if (host.size() > 253) {
      return Bad("host name longer than 253 characters");
    }
    for (char c : host) {
      if (!IsNameChar(c)) {
        return Bad(
            "host must be an IPv4 address, [IPv6 address] or a name of letters, digits "
            "and -._~ (no path, user or spaces)");
      }
    }
  }

  if (!port.empty() && !ParsePort(port)) {
    return Bad("port must be 1-65535");
  }
  return scheme;
}

}  // namespace turnkey::base
