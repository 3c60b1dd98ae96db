// SocketAddress: an IPv4 or IPv6 address and port, small and copyable.
//
// Stored as 16 address bytes (IPv4 in the first 4) plus family and port, so
// it can be hashed and compared on the per-packet path without allocation.
// IPv4-mapped IPv6 (::ffff:a.b.c.d) is kept as IPv6: callers that apply policy
// reduce embedded forms themselves.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace turnkey::base {

enum class Family : uint8_t { kNone = 0, kIpv4 = 4, kIpv6 = 6 };

// A port number written in decimal, 1-65535 ("3478"); nullopt for anything
// else (empty, a sign, other characters, 0, too large).
std::optional<uint16_t> ParsePort(std::string_view text);

class SocketAddress {
 public:
  SocketAddress() = default;
  static SocketAddress V4(const std::array<uint8_t, 4>& addr, uint16_t port);
  static SocketAddress V6(const std::array<uint8_t, 16>& addr, uint16_t port);
  // From a kernel sockaddr (AF_INET or AF_INET6); nullopt for anything else.
  static std::optional<SocketAddress> FromSockaddr(const sockaddr* sa, socklen_t len);
  // Parses a numeric address without port: "192.0.2.1", "2001:db8::1".
  static std::optional<SocketAddress> ParseIp(std::string_view ip, uint16_t port = 0);
  // Parses "192.0.2.1:3478", "[2001:db8::1]:3478".
  static std::optional<SocketAddress> ParseIpPort(std::string_view text);

  Family family() const { return family_; }
  bool is_v4() const { return family_ == Family::kIpv4; }
  bool is_v6() const { return family_ == Family::kIpv6; }
  uint16_t port() const { return port_; }
  void set_port(uint16_t port) { port_ = port; }
  // 4 bytes for IPv4, 16 for IPv6.
  const uint8_t* bytes() const { return addr_.data(); }
  size_t size() const { return is_v4() ? 4 : 16; }
  bool IsUnspecified() const;
  // 127.0.0.0/8 or ::1. Conservative: an IPv4-mapped ::ffff:127.x.y.z is
  // not counted.
  bool IsLoopback() const;
  // An IPv4-mapped ::ffff:a.b.c.d (RFC 4291 section 2.5.5.2) as the IPv4
  // address a.b.c.d, port kept; any other address unchanged. A dual-stack
  // socket sees IPv4 peers so.
  SocketAddress Unmapped() const;
  // The block of addresses one client usually holds, for limits per client:
  // the IPv4 address (IPv4-mapped IPv6 counts as IPv4), or the /64 of an
  // IPv6 address (RFC 7421), as 4 or 8 raw bytes (the lengths keep the two
  // apart; short enough to need no allocation). Port ignored; "" for kNone.
  std::string ClientBlock() const;

  // Writes a sockaddr_in/sockaddr_in6; returns its length (0 if kNone).
  socklen_t ToSockaddr(sockaddr_storage* out) const;
  // "192.0.2.1" / "2001:db8::1".
  std::string IpString() const;
  // "192.0.2.1:3478" / "[2001:db8::1]:3478".
  std::string ToString() const;

  friend bool operator==(const SocketAddress&, const SocketAddress&) = default;
  size_t Hash() const;

 private:
  std::array<uint8_t, 16> addr_{};
  uint16_t port_ = 0;
  Family family_ = Family::kNone;
};

}  // namespace turnkey::base

template <>
struct std::hash<turnkey::base::SocketAddress> {
  size_t operator()(const turnkey::base::SocketAddress& a) const noexcept { return a.Hash(); }
};
