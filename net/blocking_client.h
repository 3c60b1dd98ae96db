// BlockingClient: a small synchronous UDP / TCP / TLS / DTLS client for the `probe`
// command and for tests. Plain sockets and OpenSSL, no event loop; every call
// blocks the calling thread for at most its timeout. Never use it on an event
// loop thread. Not thread-safe; one thread per client.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "base/address.h"
#include "base/bytes.h"
#include "base/status.h"
#include "net/socket_util.h"

struct ssl_st;

namespace turnkey::net {

class TlsContext;

enum class Transport { kUdp, kTcp, kTls, kDtls };

// "udp", "tcp", "tls", "dtls".
const char* TransportName(Transport transport);

struct BlockingClientOptions {
  Transport transport = Transport::kUdp;
  // Bounds name resolution plus connect (and the TLS or DTLS handshake).
  // Default 5 s. TLS options below apply to DTLS as well.
  std::chrono::milliseconds connect_timeout{5000};
  // TLS only: check the server chain and host name. Default on.
  bool verify_peer = true;
  // TLS only: PEM CA bundle to trust instead of the system store.
  std::optional<std::string> ca_file;
  // TLS only: SNI and the name verified; empty = the host passed to Connect()
  // unless it is an IP literal (then no SNI, and the IP is verified).
  std::string server_name;
};

class BlockingClient {
 public:
  // Stream framing: given everything received so far (unconsumed), returns the
  // length of the first complete frame, 0 if more bytes are needed, or an
  // error if the bytes can never form a frame.
  using Framer = std::function<base::Result<size_t>(base::ByteView buffered)>;

  // Resolves `host` (a name or an IP literal) with getaddrinfo and connects to
  // the first address that answers; for UDP the socket is connect()ed to the
  // first address, so only that peer's datagrams are received.
  static base::Result<std::unique_ptr<BlockingClient>> Connect(
      const std::string& host, uint16_t port, const BlockingClientOptions& options);
  ~BlockingClient();
  BlockingClient(const BlockingClient&) = delete;
  BlockingClient& operator=(const BlockingClient&) = delete;

  // Sends all of `data` (one datagram for UDP, one record for DTLS).
  base::Status Send(base::ByteView data, std::chrono::milliseconds timeout);
  // UDP: the next datagram; DTLS: the next record. Stream transports: use
  // ReceiveFrame.
  base::Result<base::Bytes> ReceiveDatagram(std::chrono::milliseconds timeout);
  // TCP/TLS: reads until `framer` reports a complete frame and returns it;
  // bytes after the frame are kept for the next call. kUnavailable on timeout
  // or when the peer closed first.
  base::Result<base::Bytes> ReceiveFrame(const Framer& framer, std::chrono::milliseconds timeout);

  Transport transport() const { return transport_; }
  // UDP or DTLS: messages may be lost (retransmit), one per datagram.
  bool datagram() const { return IsDatagram(transport_); }
  static bool IsDatagram(Transport t) { return t == Transport::kUdp || t == Transport::kDtls; }
  const base::SocketAddress& peer_address() const { return peer_address_; }
  const base::SocketAddress& local_address() const { return local_address_; }
  // DTLS: the association ended (the server's close_notify or a fatal
  // error); every later receive fails at once.
  bool ended() const { return ended_; }
  // TLS and DTLS: the negotiated protocol, e.g. "TLSv1.3", "DTLSv1.2"; empty
  // otherwise.
  std::string tls_version() const;

 private:
  BlockingClient(Transport transport, ScopedFd fd) : transport_(transport), fd_(std::move(fd)) {}
  base::Status HandshakeTls(const std::string& host, const BlockingClientOptions& options,
                            std::chrono::steady_clock::time_point deadline);
  // Waits until the socket is readable (`events` POLLIN) or writable (POLLOUT).
  base::Status WaitFor(short events, std::chrono::steady_clock::time_point deadline);
  // Reads some bytes into `buffered_`; false at EOF.
  base::Result<bool> ReadSome(std::chrono::steady_clock::time_point deadline);

  Transport transport_;
  ScopedFd fd_;
  std::shared_ptr<TlsContext> tls_context_;
  ssl_st* ssl_ = nullptr;
  base::SocketAddress peer_address_;
  base::SocketAddress local_address_;
  base::Bytes buffered_;
  bool ended_ = false;
};

}  // namespace turnkey::net
