#include "net/interfaces.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <sys/socket.h>

#include "net/socket_util.h"

namespace turnkey::net {

std::vector<base::SocketAddress> InterfaceAddresses() {
  std::vector<base::SocketAddress> result;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) {
    return result;
  }
  for (ifaddrs* it = list; it != nullptr; it = it->ifa_next) {
    if (it->ifa_addr == nullptr || (it->ifa_flags & IFF_UP) == 0) {
      continue;
    }
    const int family = it->ifa_addr->sa_family;
    if (family != AF_INET && family != AF_INET6) {
      continue;
    }
    const socklen_t len = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    auto address = base::SocketAddress::FromSockaddr(it->ifa_addr, len);
    if (address) {
      address->set_port(0);
      result.push_back(*address);
    }
  }
  ::freeifaddrs(list);
  return result;
}

std::optional<base::SocketAddress> RouteSource(base::Family family) {
  const bool v6 = family == base::Family::kIpv6;
  const auto target = base::SocketAddress::ParseIp(v6 ? "2001:db8::1" : "192.0.2.1", 9);
  ScopedFd fd(::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!target || !fd.valid()) {
    return std::nullopt;
  }
  sockaddr_storage storage{};
  socklen_t len = target->ToSockaddr(&storage);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&storage), len) != 0) {
    return std::nullopt;
  }
  len = sizeof(storage);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&storage), &len) != 0) {
    return std::nullopt;
  }
  auto source = base::SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&storage), len);
  if (!source || source->IsUnspecified() || source->IsLoopback()) {
    return std::nullopt;
  }
  source->set_port(0);
  return source;
}

bool CanBindUdp(const base::SocketAddress& address) {
  base::SocketAddress probe = address;
  probe.set_port(0);
  return CreateBoundSocket(probe, SOCK_DGRAM, BindOptions{}).has_value();
}

}  // namespace turnkey::net
