#include "base/address.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace turnkey::base {

SocketAddress SocketAddress::V4(const std::array<uint8_t, 4>& addr, uint16_t port) {
  SocketAddress a;
  a.family_ = Family::kIpv4;
  std::memcpy(a.addr_.data(), addr.data(), 4);
  a.port_ = port;
  return a;
}

SocketAddress SocketAddress::V6(const std::array<uint8_t, 16>& addr, uint16_t port) {
  SocketAddress a;
  a.family_ = Family::kIpv6;
  a.addr_ = addr;
  a.port_ = port;
  return a;
}

std::optional<SocketAddress> SocketAddress::FromSockaddr(const sockaddr* sa, socklen_t len) {
  if (sa == nullptr) {
    return std::nullopt;
  }
  if (sa->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    sockaddr_in in;
    std::memcpy(&in, sa, sizeof(in));
    std::array<uint8_t, 4> b;
    std::memcpy(b.data(), &in.sin_addr, 4);
    return V4(b, ntohs(in.sin_port));
  }
  if (sa->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    sockaddr_in6 in6;
    std::memcpy(&in6, sa, sizeof(in6));
    std::array<uint8_t, 16> b;
    std::memcpy(b.data(), &in6.sin6_addr, 16);
    return V6(b, ntohs(in6.sin6_port));
  }
  return std::nullopt;
}

std::optional<SocketAddress> SocketAddress::ParseIp(std::string_view ip, uint16_t port) {
  // inet_pton stops at a NUL, so "1.2.3.4\0junk" would parse as 1.2.3.4.
  if (ip.size() >= INET6_ADDRSTRLEN || ip.find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  char buf[INET6_ADDRSTRLEN] = {};
  std::memcpy(buf, ip.data(), ip.size());
  std::array<uint8_t, 4> v4;
  if (inet_pton(AF_INET, buf, v4.data()) == 1) {
    return V4(v4, port);
  }
  std::array<uint8_t, 16> v6;
  if (inet_pton(AF_INET6, buf, v6.data()) == 1) {
    return V6(v6, port);
  }
  return std::nullopt;
}

std::optional<uint16_t> ParsePort(std::string_view text) {
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || port == 0 ||
      port > 65535) {
    return std::nullopt;
  }
  return static_cast<uint16_t>(port);
}

std::optional<SocketAddress> SocketAddress::ParseIpPort(std::string_view text) {
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) {
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port > 65535 ||
      port_text.empty()) {
    return std::nullopt;
  }
  return ParseIp(host, static_cast<uint16_t>(port));
}

bool SocketAddress::IsUnspecified() const {
  for (size_t i = 0; i < size(); ++i) {
    if (addr_[i] != 0) {
      return false;
    }
  }
  return family_ != Family::kNone;
}

bool SocketAddress::IsLoopback() const {
  if (is_v4()) {
    return addr_[0] == 127;
  }
  if (!is_v6()) {
    return false;
  }
  for (size_t i = 0; i < 15; ++i) {
    if (addr_[i] != 0) {
      return false;
    }
  }
  return addr_[15] == 1;
}

socklen_t SocketAddress::ToSockaddr(sockaddr_storage* out) const {
  std::memset(out, 0, sizeof(*out));
  if (is_v4()) {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(port_);
    std::memcpy(&in.sin_addr, addr_.data(), 4);
    std::memcpy(out, &in, sizeof(in));
    return sizeof(in);
  }
  if (is_v6()) {
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port_);
    std::memcpy(&in6.sin6_addr, addr_.data(), 16);
    std::memcpy(out, &in6, sizeof(in6));
    return sizeof(in6);
  }
  return 0;
}

std::string SocketAddress::IpString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (is_v4()) {
    inet_ntop(AF_INET, addr_.data(), buf, sizeof(buf));
  } else if (is_v6()) {
    inet_ntop(AF_INET6, addr_.data(), buf, sizeof(buf));
  } else {
    return "none";
  }
  return buf;
}

std::string SocketAddress::ToString() const {
  if (is_v6()) {
    return "[" + IpString() + "]:" + std::to_string(port_);
  }
  return IpString() + ":" + std::to_string(port_);
}

SocketAddress SocketAddress::Unmapped() const {
  static constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (!is_v6() || !std::equal(kMappedPrefix, kMappedPrefix + 12, addr_.begin())) {
    return *this;
  }
  return V4({addr_[12], addr_[13], addr_[14], addr_[15]}, port_);
}

std::string SocketAddress::ClientBlock() const {
  const SocketAddress plain = Unmapped();
  const char* raw = reinterpret_cast<const char*>(plain.bytes());
  switch (plain.family()) {
    case Family::kIpv4:
      return std::string(raw, 4);
    case Family::kIpv6:
      return std::string(raw, 8);
    case Family::kNone:
      break;
  }
  return std::string();
}

size_t SocketAddress::Hash() const {
  // FNV-1a over the meaningful bytes; cheap and good enough for hash tables
  // keyed by client addresses.
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](uint8_t b) {
    h ^= b;
    h *= 1099511628211ull;
  };
  for (size_t i = 0; i < size(); ++i) {
    mix(addr_[i]);
  }
  mix(static_cast<uint8_t>(port_ >> 8));
  mix(static_cast<uint8_t>(port_));
  mix(static_cast<uint8_t>(family_));
  return static_cast<size_t>(h);
}

}  // namespace turnkey::base
