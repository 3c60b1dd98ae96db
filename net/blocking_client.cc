#include "net/blocking_client.h"

#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>

#include "net/tls_context.h"

namespace turnkey::net {

namespace {

using SteadyClock = std::chrono::steady_clock;

// Milliseconds for poll(), rounded up so that a poll that times out has
// really reached the deadline.
int RemainingMs(SteadyClock::time_point deadline) {
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - SteadyClock::now());
  if (left.count() <= 0) {
    return 0;
  }
  return left.count() > 1'000'000 ? 1'000'000 : static_cast<int>(left.count());
}

// Connects `fd` to `address` within `deadline`.
base::Status ConnectWithin(int fd, const sockaddr* address, socklen_t length,
                           SteadyClock::time_point deadline) {
  if (::connect(fd, address, length) == 0) {
    return base::Ok();
  }
  if (errno != EINPROGRESS) {
    return base::Unavailable(ErrnoMessage("connect", errno));
  }
  pollfd p{fd, POLLOUT, 0};
  for (;;) {
    int ready = ::poll(&p, 1, RemainingMs(deadline));
    if (ready > 0) {
      break;
    }
    if (ready == 0 && SteadyClock::now() >= deadline) {
      return base::Unavailable("connect: timed out");
    }
    if (ready == 0) {
      continue;
    }
    if (errno != EINTR) {
      return base::Unavailable(ErrnoMessage("poll", errno));
    }
  }
  int err = 0;
  socklen_t err_length = sizeof(err);
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_length) != 0) {
    return base::Unavailable(ErrnoMessage("getsockopt", errno));
  }
  if (err != 0) {
    return base::Unavailable(ErrnoMessage("connect", err));
  }
  return base::Ok();
}

// A datagram BIO on `fd`, a UDP socket connected to its peer, which it reads
// and writes as such: one record per datagram. Null on failure.
BIO* ConnectedDatagramBio(int fd) {
  sockaddr_storage peer{};
  socklen_t length = sizeof(peer);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &length) != 0) {
    return nullptr;
  }
  const auto* v4 = reinterpret_cast<const sockaddr_in*>(&peer);
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&peer);
  BIO_ADDR* address = BIO_ADDR_new();
  const bool made =
      address != nullptr &&
      (peer.ss_family == AF_INET
           ? BIO_ADDR_rawmake(address, AF_INET, &v4->sin_addr, 4, v4->sin_port)
           : BIO_ADDR_rawmake(address, AF_INET6, &v6->sin6_addr, 16, v6->sin6_port)) == 1;
  BIO* bio = made ? BIO_new_dgram(fd, BIO_NOCLOSE) : nullptr;
  if (bio != nullptr) {
    BIO_ctrl(bio, BIO_CTRL_DGRAM_SET_CONNECTED, 0, address);
  }
  BIO_ADDR_free(address);
  return bio;
}

}  // namespace

const char* TransportName(Transport transport) {
  switch (transport) {
    case Transport::kUdp:
      return "udp";
    case Transport::kTcp:
      return "tcp";
    case Transport::kTls:
      return "tls";
    case Transport::kDtls:
      return "dtls";
  }
  return "unknown";
}

base::Result<std::unique_ptr<BlockingClient>> BlockingClient::Connect(
    const std::string& host, uint16_t port, const BlockingClientOptions& options) {
  // A peer that closes while we write must produce EPIPE, not kill the
  // process (OpenSSL writes with write(2), which cannot pass MSG_NOSIGNAL).
  std::signal(SIGPIPE, SIG_IGN);
  const auto deadline = SteadyClock::now() + options.connect_timeout;
  const int type = IsDatagram(options.transport) ? SOCK_DGRAM : SOCK_STREAM;

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = type;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  // getaddrinfo has no timeout of its own; the resolver's (resolv.conf) applies.
  if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    return base::Unavailable(fmt::format("resolve {}: {}", host, gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addresses(found, &freeaddrinfo);

  std::string last_error = "no address";
  for (const addrinfo* ai = addresses.get(); ai != nullptr; ai = ai->ai_next) {
    ScopedFd fd(
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd.valid()) {
      last_error = ErrnoMessage("socket", errno);
      continue;
    }
    auto connected = ConnectWithin(fd.get(), ai->ai_addr, ai->ai_addrlen, deadline);
    if (!connected) {
      last_error = connected.error().message;
      continue;
    }
    std::unique_ptr<BlockingClient> client(new BlockingClient(options.transport, std::move(fd)));
    if (auto peer = PeerAddressOf(client->fd_.get()); peer) {
      client->peer_address_ = Unmap(*peer);
    }
    if (auto local = LocalAddressOf(client->fd_.get()); local) {
      client->local_address_ = Unmap(*local);
    }
    if (options.transport == Transport::kTls || options.transport == Transport::kDtls) {
      if (auto s = client->HandshakeTls(host, options, deadline); !s) {
        return std::unexpected(s.error());
      }
    }
    return client;
  }
  return base::Unavailable(fmt::format("connect {}:{}: {}", host, port, last_error));
}

BlockingClient::~BlockingClient() {
  if (ssl_ != nullptr) {
    // Best effort close_notify; the socket is non-blocking so this never waits.
    SSL_shutdown(ssl_);
    SSL_free(ssl_);
    ERR_clear_error();
  }
}

base::Status BlockingClient::HandshakeTls(const std::string& host,
                                          const BlockingClientOptions& options,
                                          SteadyClock::time_point deadline) {
  const bool dtls = transport_ == Transport::kDtls;
  auto context = TlsContext::CreateClient(options.verify_peer, options.ca_file, dtls);
  if (!context) {
    return std::unexpected(context.error());
  }
  tls_context_ = *context;
  ERR_clear_error();
  ssl_ = SSL_new(tls_context_->native());
  if (ssl_ == nullptr) {
    return base::Internal(TlsErrorMessage("SSL_new"));
  }
  if (dtls) {
    BIO* bio = ConnectedDatagramBio(fd_.get());
    if (bio == nullptr) {
      return base::Internal(TlsErrorMessage("DTLS BIO"));
    }
    SSL_set_bio(ssl_, bio, bio);
  } else if (SSL_set_fd(ssl_, fd_.get()) != 1) {
    return base::Internal(TlsErrorMessage("SSL_new"));
  }
  const bool host_is_ip = base::SocketAddress::ParseIp(host).has_value();
  std::string name = options.server_name;
  if (name.empty() && !host_is_ip) {
    name = host;
  }
  if (!name.empty()) {
    SSL_set_tlsext_host_name(ssl_, name.c_str());
  }
  if (options.verify_peer) {
    if (!name.empty()) {
      SSL_set1_host(ssl_, name.c_str());
    } else {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), host.c_str());
    }
  }
  for (;;) {
    int rc = SSL_connect(ssl_);
    if (rc == 1) {
      return base::Ok();
    }
    int err = SSL_get_error(ssl_, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      // DTLS retransmits a lost flight when its timer runs out (RFC 6347
      // section 4.2.4): wait no longer than that, then let it.
      timeval retransmit{};
      auto until = deadline;
      if (dtls && DTLSv1_get_timeout(ssl_, &retransmit) == 1) {
        until = std::min(until, SteadyClock::now() + std::chrono::seconds(retransmit.tv_sec) +
                                    std::chrono::microseconds(retransmit.tv_usec));
      }
      if (auto s = WaitFor(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, until); !s) {
        if (SteadyClock::now() >= deadline) {
          return base::Unavailable(std::string(dtls ? "DTLS" : "TLS") + " handshake: timed out");
        }
        if (dtls && DTLSv1_handle_timeout(ssl_) < 0) {
          return base::Unavailable(TlsErrorMessage("DTLS handshake"));
        }
      }
      continue;
    }
    const int saved_errno = errno;
    long verify = SSL_get_verify_result(ssl_);
    std::string message = TlsErrorMessage(dtls ? "DTLS handshake" : "TLS handshake");
    if (err == SSL_ERROR_SYSCALL && saved_errno != 0) {
      // No TLS reason: the socket's (a datagram refused by the host: ICMP
      // port unreachable on the connected socket).
      message = ErrnoMessage(dtls ? "DTLS handshake" : "TLS handshake", saved_errno);
    }
    if (verify != X509_V_OK) {
      message += fmt::format(" (certificate: {})", X509_verify_cert_error_string(verify));
    }
    return base::Unavailable(message);
  }
}

base::Status BlockingClient::WaitFor(short events, SteadyClock::time_point deadline) {
  pollfd p{fd_.get(), events, 0};
  for (;;) {
    int ready = ::poll(&p, 1, RemainingMs(deadline));
    if (ready > 0) {
      return base::Ok();
    }
    if (ready == 0 && SteadyClock::now() >= deadline) {
      return base::Unavailable("timed out");
    }
    if (ready == 0) {
      continue;
    }
    if (errno != EINTR) {
      return base::Unavailable(ErrnoMessage("poll", errno));
    }
  }
}

base::Status BlockingClient::Send(base::ByteView data, std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  size_t offset = 0;
  do {
    if (ssl_ != nullptr) {
      ERR_clear_error();
      size_t written = 0;
      int rc = SSL_write_ex(ssl_, data.data() + offset, data.size() - offset, &written);
      if (rc == 1) {
        offset += written;
        continue;
      }
      int err = SSL_get_error(ssl_, rc);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        if (auto s = WaitFor(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline); !s) {
          return std::unexpected(s.error());
        }
        continue;
      }
      return base::Unavailable(
          TlsErrorMessage(transport_ == Transport::kDtls ? "DTLS write" : "TLS write"));
    }
    ssize_t sent = ::send(fd_.get(), data.data() + offset, data.size() - offset, MSG_NOSIGNAL);
    if (sent >= 0) {
      offset += static_cast<size_t>(sent);
      if (transport_ == Transport::kUdp) {
        break;  // one datagram, sent whole or not at all
      }
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (auto s = WaitFor(POLLOUT, deadline); !s) {
        return std::unexpected(s.error());
      }
      continue;
    }
    if (errno != EINTR) {
      return base::Unavailable(ErrnoMessage("send", errno));
    }
  } while (offset < data.size());
  return base::Ok();
}

base::Result<base::Bytes> BlockingClient::ReceiveDatagram(std::chrono::milliseconds timeout) {
  if (!datagram()) {
    return base::InvalidArgument("ReceiveDatagram needs a UDP or DTLS client");
  }
  const auto deadline = SteadyClock::now() + timeout;
  base::Bytes datagram(65536);
  while (ssl_ != nullptr) {
    ERR_clear_error();
    size_t got = 0;
    const int rc = SSL_read_ex(ssl_, datagram.data(), datagram.size(), &got);
    if (rc == 1) {
      datagram.resize(got);
      return datagram;
    }
    const int err = SSL_get_error(ssl_, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      if (auto s = WaitFor(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline); !s) {
        return std::unexpected(s.error());
      }
      continue;
    }
    ended_ = true;  // close_notify or a fatal error: nothing more comes
    if (err == SSL_ERROR_ZERO_RETURN) {
      return base::Unavailable("the server ended the DTLS association");
    }
    return base::Unavailable(TlsErrorMessage("DTLS read"));
  }
  for (;;) {
    ssize_t got = ::recv(fd_.get(), datagram.data(), datagram.size(), 0);
    if (got >= 0) {
      datagram.resize(static_cast<size_t>(got));
      return datagram;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (auto s = WaitFor(POLLIN, deadline); !s) {
        return std::unexpected(s.error());
      }
      continue;
    }
    if (errno != EINTR) {
      // ECONNREFUSED here is the ICMP port unreachable of a connected socket.
      return base::Unavailable(ErrnoMessage("recv", errno));
    }
  }
}

base::Result<bool> BlockingClient::ReadSome(SteadyClock::time_point deadline) {
  uint8_t chunk[16384];
  for (;;) {
    if (ssl_ != nullptr) {
      ERR_clear_error();
      size_t got = 0;
      int rc = SSL_read_ex(ssl_, chunk, sizeof(chunk), &got);
      if (rc == 1) {
        buffered_.insert(buffered_.end(), chunk, chunk + got);
        return true;
      }
      int err = SSL_get_error(ssl_, rc);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        if (auto s = WaitFor(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline); !s) {
          return std::unexpected(s.error());
        }
        continue;
      }
      if (err == SSL_ERROR_ZERO_RETURN ||
          (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno == 0)) {
        return false;
      }
      return base::Unavailable(TlsErrorMessage("TLS read"));
    }
    ssize_t got = ::recv(fd_.get(), chunk, sizeof(chunk), 0);
    if (got > 0) {
      buffered_.insert(buffered_.end(), chunk, chunk + got);
      return true;
    }
    if (got == 0) {
      return false;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (auto s = WaitFor(POLLIN, deadline); !s) {
        return std::unexpected(s.error());
      }
      continue;
    }
    if (errno != EINTR) {
      return base::Unavailable(ErrnoMessage("recv", errno));
    }
  }
}

base::Result<base::Bytes> BlockingClient::ReceiveFrame(const Framer& framer,
                                                       std::chrono::milliseconds timeout) {
  if (datagram()) {
    return base::InvalidArgument("ReceiveFrame needs a TCP or TLS client");
  }
  const auto deadline = SteadyClock::now() + timeout;
  for (;;) {
    if (!buffered_.empty()) {
      auto length = framer(base::ByteView(buffered_));
      if (!length) {
        return std::unexpected(length.error());
      }
      if (*length > buffered_.size()) {
        return base::Internal("framer reported a frame longer than the input");
      }
      if (*length > 0) {
        base::Bytes frame(buffered_.begin(), buffered_.begin() + static_cast<ptrdiff_t>(*length));
        buffered_.erase(buffered_.begin(), buffered_.begin() + static_cast<ptrdiff_t>(*length));
        return frame;
      }
    }
    auto more = ReadSome(deadline);
    if (!more) {
      return std::unexpected(more.error());
    }
    if (!*more) {
      return base::Unavailable("peer closed the connection before a whole frame");
    }
  }
}

std::string BlockingClient::tls_version() const {
  return ssl_ != nullptr ? SSL_get_version(ssl_) : "";
}

}  // namespace turnkey::net
