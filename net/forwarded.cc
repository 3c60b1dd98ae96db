#include "net/forwarded.h"

#include <algorithm>
#include <optional>
#include <string_view>
#include <vector>

namespace turnkey::net {
namespace {

bool IsTrusted(const base::SocketAddress& address, std::span<const base::Cidr> trusted) {
  const base::SocketAddress plain = address.Unmapped();
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

bool IsLocalClient(const HttpRequest& request) {
  return request.peer.Unmapped().IsLoopback() && !request.headers.Has("X-Forwarded-For") &&
         !request.headers.Has("Forwarded") && !request.headers.Has("X-Real-IP");
}

}  // namespace turnkey::net
