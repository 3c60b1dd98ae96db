// FiveTuple: how the relay core names a client: its transport and the
// client's and server's transport addresses (RFC 8656 section 2).
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/address.h"

namespace turnkey::relay {

enum class ClientTransport : uint8_t {
  kUdp,   // datagrams on a UDP listener
  kTcp,   // frames on a TCP connection
  kTls,   // frames on a TLS connection
  kDtls,  // datagrams in a DTLS association (RFC 7350) on a UDP listener
};
inline constexpr size_t kClientTransportCount = 4;

// "udp", "tcp", "tls", "dtls".
const char* ClientTransportName(ClientTransport transport);

struct FiveTuple {
  ClientTransport transport = ClientTransport::kUdp;
  base::SocketAddress client;  // the client's address as the server sees it
  base::SocketAddress server;  // the listener address the client sent to

  friend bool operator==(const FiveTuple&, const FiveTuple&) = default;
};

}  // namespace turnkey::relay
