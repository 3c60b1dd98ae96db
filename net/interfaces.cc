#include "net/interfaces.h"

#include <ifaddrs.h>
#include <net/if.h>

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

bool CanBindUdp(const base::SocketAddress& address) {
  base::SocketAddress probe = address;
  probe.set_port(0);
  return CreateBoundSocket(probe, SOCK_DGRAM, BindOptions{}).has_value();
}

}  // namespace turnkey::net
