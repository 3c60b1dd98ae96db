#include "app/probe_uri.h"

#include <fmt/format.h>

#include "base/bytes.h"

namespace turnkey::app {

namespace {

const char* SchemeName(ProbeUri::Scheme scheme) {
  switch (scheme) {
    case ProbeUri::Scheme::kStun:
      return "stun";
    case ProbeUri::Scheme::kStuns:
      return "stuns";
    case ProbeUri::Scheme::kTurn:
      return "turn";
    case ProbeUri::Scheme::kTurns:
      return "turns";
  }
  return "stun";
}

}  // namespace

std::string ProbeUri::Display() const {
  const bool v6 = host.find(':') != std::string::npos;
  std::string text =
      fmt::format("{}://{}{}{}:{}", SchemeName(scheme), v6 ? "[" : "", host, v6 ? "]" : "", port);
  if (transport == net::Transport::kTcp) {
    text += "?transport=tcp";
  } else if (transport == net::Transport::kDtls) {
    text += "?transport=udp";
  }
  return text;
}

base::Result<ProbeUri> ParseProbeUri(std::string_view uri) {
  ProbeUri t;
  const size_t colon = uri.find(':');
  if (colon == std::string_view::npos) {
    return base::InvalidArgument(
        "expected stun://HOST:PORT, stuns://HOST:PORT, turn://USER:PASS@HOST:PORT or "
        "turns://USER:PASS@HOST:PORT");
  }
  const std::string_view scheme = uri.substr(0, colon);
  if (scheme == "stun") {
    t.scheme = ProbeUri::Scheme::kStun;
  } else if (scheme == "stuns") {
    t.scheme = ProbeUri::Scheme::kStuns;
  } else if (scheme == "turn") {
    t.scheme = ProbeUri::Scheme::kTurn;
  } else if (scheme == "turns") {
    t.scheme = ProbeUri::Scheme::kTurns;
  } else {
    return base::InvalidArgument("unsupported scheme \"" + std::string(scheme) +
                                 "\" (expected stun, stuns, turn or turns)");
  }
  const bool secure = t.scheme == ProbeUri::Scheme::kStuns || t.scheme == ProbeUri::Scheme::kTurns;
  std::string_view rest = uri.substr(colon + 1);
  if (rest.starts_with("//")) {
    rest.remove_prefix(2);
  }
  // The user information ends at the last '@': a password may contain '@',
  // a host never does.
  if (size_t at = rest.rfind('@'); at != std::string_view::npos) {
    if (!t.is_turn()) {
      return base::InvalidArgument("stun and stuns URIs take no USER:PASS@");
    }
    std::string_view userinfo = rest.substr(0, at);
    rest.remove_prefix(at + 1);
    std::string_view user = userinfo;
    std::optional<std::string_view> pass;
    if (size_t c = userinfo.rfind(':'); c != std::string_view::npos) {
      user = userinfo.substr(0, c);
      pass = userinfo.substr(c + 1);
    }
    auto decoded_user = base::PercentDecode(user);
    if (!decoded_user || decoded_user->empty()) {
      return base::InvalidArgument("bad or empty user name before '@'");
    }
    t.username = std::move(*decoded_user);
    if (pass) {
      auto decoded_pass = base::PercentDecode(*pass);
      if (!decoded_pass) {
        return base::InvalidArgument("bad percent-encoding in the password");
      }
      t.password = std::move(*decoded_pass);
    }
  }
  std::string_view query;
  if (size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string_view port_text;
  if (rest.starts_with('[')) {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) {
      return base::InvalidArgument("unterminated [IPv6] host");
    }
    t.host = std::string(rest.substr(1, close - 1));
    // RFC 3986 section 3.2.2: brackets hold an IPv6 literal, never a name;
    // a link-local one may name its interface (RFC 6874: "%25" then the zone,
    // or a bare "%" as getaddrinfo writes it).
    std::string address = t.host;
    if (const size_t zone = t.host.find('%'); zone != std::string::npos) {
      address = t.host.substr(0, zone);
      std::string_view name = std::string_view(t.host).substr(zone + 1);
      if (name.starts_with("25")) {
        name.remove_prefix(2);
      }
      t.host = address + "%" + std::string(name);
      if (name.empty()) {
        return base::InvalidArgument("[" + address + "%] names no interface");
      }
    }
    const auto literal = base::SocketAddress::ParseIp(address);
    if (!literal || !literal->is_v6()) {
      return base::InvalidArgument("[" + address + "] is not an IPv6 address");
    }
    rest.remove_prefix(close + 1);
    if (rest.starts_with(':')) {
      port_text = rest.substr(1);
    } else if (!rest.empty()) {
      return base::InvalidArgument("unexpected text after the host");
    }
  } else {
    const size_t c = rest.rfind(':');
    t.host = std::string(rest.substr(0, c));
    if (c != std::string_view::npos) {
      port_text = rest.substr(c + 1);
    }
    if (t.host.find(':') != std::string::npos) {
      return base::InvalidArgument("an IPv6 host must be written in brackets: [::1]");
    }
  }
  if (t.host.empty()) {
    return base::InvalidArgument("missing host");
  }
  t.port = secure ? 5349 : 3478;
  if (!port_text.empty()) {
    unsigned long port = 0;
    for (char c : port_text) {
      if (c < '0' || c > '9' || port > 65535) {
        return base::InvalidArgument("bad port \"" + std::string(port_text) + "\"");
      }
      port = port * 10 + static_cast<unsigned long>(c - '0');
    }
    if (port == 0 || port > 65535) {
      return base::InvalidArgument("bad port \"" + std::string(port_text) + "\"");
    }
    t.port = static_cast<uint16_t>(port);
  }
  t.transport = secure ? net::Transport::kTls : net::Transport::kUdp;
  if (!query.empty()) {
    if (query == "transport=tcp") {
      t.transport = secure ? net::Transport::kTls : net::Transport::kTcp;
    } else if (query == "transport=udp") {
      // stuns/turns over UDP is DTLS (RFC 7350 section 4.1 and 4.2).
      t.transport = secure ? net::Transport::kDtls : net::Transport::kUdp;
    } else {
      return base::InvalidArgument("unsupported query \"" + std::string(query) +
                                   "\" (expected transport=udp|tcp)");
    }
  }
  return t;
}

}  // namespace turnkey::app
