#include "net/forwarded.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace turnkey::net {
namespace {

// ::ffff:a.b.c.d as a.b.c.d: a dual-stack listener sees IPv4 proxies so.
base::SocketAddress Unmapped(const base::SocketAddress& address) {
  static constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (!address.is_v6() || !std::equal(kMappedPrefix, kMappedPrefix + 12, address.bytes())) {
    return address;
  }
  const uint8_t* v4 = address.bytes() + 12;
  return base::SocketAddress::V4({v4[0], v4[1], v4[2], v4[3]}, address.port());
}

bool IsTrusted(const base::SocketAddress& address, std::span<const base::Cidr> trusted) {
  const base::SocketAddress plain = Unmapped(address);
  return std::any_of(trusted.begin(), trusted.end(),
                     [&](const base::Cidr& cidr) { return base::CidrContains(cidr, plain); });
}

// One X-Forwarded-For element: an IP address, as nginx and HAProxy write
// it; "[v6]" and "[v6]:port" or "v4:port" as some other proxies do.
std::optional<base::SocketAddress> ParseElement(std::string_view text) {
  if (auto ip = base::SocketAddress::ParseIp(text)) {
    return ip;
  }
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) {
      return std::nullopt;
    }
    return base::SocketAddress::ParseIp(text.substr(1, close - 1));
  }
  if (auto with_port = base::SocketAddress::ParseIpPort(text)) {
    return base::SocketAddress::ParseIp(with_port->IpString());
  }
  return std::nullopt;
}

}  // namespace

base::SocketAddress ForwardedClient(const HttpRequest& request,
                                    std::span<const base::Cidr> trusted) {
  if (trusted.empty() || !IsTrusted(request.peer, trusted)) {
    return request.peer;
  }
  std::vector<std::string_view> chain;
  request.headers.AnyListElement("X-Forwarded-For", [&](std::string_view element) {
    chain.push_back(element);
    return false;  // visit them all
  });
  base::SocketAddress client = request.peer;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    std::optional<base::SocketAddress> hop = ParseElement(*it);
    if (!hop) {
      break;
    }
    client = *hop;
    if (!IsTrusted(client, trusted)) {
      break;
    }
  }
  return client;
}

}  // namespace turnkey::net
