#include "config/field_checks.h"

#include <algorithm>
#include <array>
#include <tuple>
#include <vector>

#include "base/address.h"
#include "base/bytes.h"
#include "base/ice_url.h"
#include "base/utf8.h"

namespace turnkey::config {
namespace {

base::Status Bad(std::string_view what, std::string_view text, std::string_view expected) {
  std::string message = "bad ";
  message.append(what);
  message += " " + QuoteForMessage(text) + " (";
  message.append(expected);
  message += ")";
  return base::InvalidArgument(std::move(message));
}

// Removes `prefix` from `text` if it is there.
bool Consume(std::string_view& text, std::string_view prefix) {
  if (!text.starts_with(prefix)) {
    return false;
  }
  text.remove_prefix(prefix.size());
  return true;
}

}  // namespace

std::string Escaped(std::string_view text, bool quotes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (quotes && (c == '"' || c == '\\')) {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += ch;
    }
  }
  return out;
}

std::string QuoteForMessage(std::string_view text) {
  constexpr size_t kMaxShown = 60;
  std::string out = "\"" + Escaped(text.substr(0, kMaxShown), true);
  if (text.size() > kMaxShown) {
    out += "...";
  }
  out += "\"";
  return out;
}

bool HasControlCharacter(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char ch) {
    const unsigned char c = static_cast<unsigned char>(ch);
    return c < 0x20 || c == 0x7f;
  });
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

base::Status CheckRealm(std::string_view text) {
  // RFC 8489 section 14.9: UTF-8, fewer than 128 characters.
  const std::optional<size_t> characters = base::Utf8Length(text);
  if (!characters || *characters == 0 || *characters > 127 || HasControlCharacter(text) ||
      text.find_first_of("\"\\") != std::string_view::npos) {
    return Bad("realm", text,
               "1-127 characters of UTF-8, no quotes, backslashes or control characters");
  }
  return base::Ok();
}

base::Status CheckClusterName(std::string_view text) {
  const bool ok =
      !text.empty() && text.size() <= 64 && std::all_of(text.begin(), text.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '.' || c == '-';
      });
  if (!ok) {
    return Bad("cluster name", text, "1-64 letters, digits, '_', '.' or '-'");
  }
  return base::Ok();
}

base::Status CheckDomainName(std::string_view text) {
  auto bad = [&] {
    return Bad("domain", text, "a DNS name: dot-separated labels of letters, digits and hyphens");
  };
  if (text.empty() || text.size() > 253) {
    return bad();
  }
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('.', start);
    if (end == std::string_view::npos) {
      end = text.size();
    }
    const std::string_view label = text.substr(start, end - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return bad();
    }
    for (char c : label) {
      const bool ok =
          (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
      if (!ok) {
        return bad();
      }
    }
    start = end + 1;
  }
  return base::Ok();
}

base::Status CheckSoftware(std::string_view text) {
  if (text.size() > 127 || HasControlCharacter(text)) {
    return Bad("software", text, "at most 127 characters, no control characters");
  }
  return base::Ok();
}

base::Status CheckOrigin(std::string_view text) {
  // Matched as exact strings against what browsers send, which is the
  // serialized origin (RFC 6454 section 6.1): lower case, no default port,
  // an IPv6 host in its shortest form. An entry in any other form could
  // never match, so it is refused with the form to write.
  // Any scheme (RFC 3986 section 3.1, as browsers serialize it: lower
  // case): apps in a WebView send their own (capacitor://localhost,
  // ionic://localhost, app://-). "null" (file:// and sandboxed pages) is
  // not an origin one can allow: any such page sends it.
  if (text == "null") {
    return Bad("origin", text,
               "file:// and sandboxed pages all send it, so allowing it would allow any of them");
  }
  std::string_view rest = text;
  const size_t separator = rest.find("://");
  const std::string_view scheme =
      separator == std::string_view::npos ? std::string_view() : rest.substr(0, separator);
  const bool scheme_ok =
      !scheme.empty() && scheme.front() >= 'a' && scheme.front() <= 'z' &&
      scheme.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789+-.") == std::string_view::npos;
  if (scheme_ok) {
    rest.remove_prefix(separator + 3);
  }
  const bool https = scheme == "https";
  const bool ok =
      scheme_ok && !rest.empty() && rest.front() != ':' &&
      rest.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-:[]") == std::string_view::npos;
  if (!ok) {
    return Bad("origin", text,
               "expected lower-case scheme://host[:port] with no path, e.g. "
               "\"https://app.example.org\"");
  }
  std::string_view port;
  if (rest.front() == '[') {
    const size_t close = rest.find(']');
    const auto ip = close == std::string_view::npos
                        ? std::nullopt
                        : base::SocketAddress::ParseIp(rest.substr(1, close - 1));
    if (!ip || !ip->is_v6()) {
      return Bad("origin", text, "expected an IPv6 address inside [ ]");
    }
    if (ip->Unmapped() != *ip) {
      return Bad("origin", text, "browsers write this host as " + ip->Unmapped().IpString());
    }
    if (rest.substr(1, close - 1) != ip->IpString()) {
      return Bad("origin", text, "browsers write this host as [" + ip->IpString() + "]");
    }
    rest.remove_prefix(close + 1);
    if (!rest.empty() && (!Consume(rest, ":") || rest.empty())) {
      return Bad("origin", text, "expected :port after ]");
    }
    port = rest;
  } else {
    if (rest.find_first_of("[]") != std::string_view::npos) {
      return Bad("origin", text, "expected host[:port]");
    }
    if (const size_t colon = rest.find(':'); colon != std::string_view::npos) {
      port = rest.substr(colon + 1);
      if (port.empty()) {
        return Bad("origin", text, "empty port");
      }
    }
  }
  if (!port.empty()) {
    const std::optional<uint16_t> value = base::ParsePort(port);
    if (!value || port.front() == '0') {
      return Bad("origin", text, "port must be 1-65535, without leading zeros");
    }
    if ((https && *value == 443) || (scheme == "http" && *value == 80)) {
      return Bad("origin", text,
                 "browsers leave out the scheme's default port; drop :" + std::string(port));
    }
  }
  return base::Ok();
}

base::Status CheckIceUrl(std::string_view text) {
  // The parser the credentials are built with: a URL taken here never fails
  // at a login.
  auto parsed = base::ParseIceUrl(text);
  if (!parsed) {
    return Bad("ICE server URL", text, parsed.error().message);
  }
  return base::Ok();
}

base::Status CheckUrlPath(std::string_view text) {
  if (!text.starts_with("/") || HasControlCharacter(text) ||
      text.find_first_of(" ?#") != std::string_view::npos) {
    return Bad("path", text, "expected an absolute URL path such as /metrics");
  }
  return base::Ok();
}

namespace {

template <size_t N>
std::optional<std::array<uint8_t, N>> ParseHexBytes(std::string_view text) {
  std::array<uint8_t, N> out{};
  base::Bytes bytes;
  if (text.size() != 2 * N || !base::HexDecode(text, bytes)) {
    return std::nullopt;
  }
  std::copy(bytes.begin(), bytes.end(), out.begin());
  return out;
}

}  // namespace

std::optional<base::Md5Digest> ParseHexMd5(std::string_view text) {
  return ParseHexBytes<std::tuple_size_v<base::Md5Digest>>(text);
}

std::optional<base::Sha256Digest> ParseHexSha256(std::string_view text) {
  return ParseHexBytes<std::tuple_size_v<base::Sha256Digest>>(text);
}

}  // namespace turnkey::config
