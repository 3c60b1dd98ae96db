#include "bench/stream_client.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>

#include "stun/stream_framer.h"

namespace turnkey::bench {

namespace {

// Input buffer: room for many frames per read (one read per wakeup, like a
// recvmmsg batch), and for the largest frame the framer accepts.
constexpr size_t kInputBytes = 256 * 1024;

std::string SslErrorText() {
  unsigned long e = ERR_get_error();
  if (e == 0) {
    return "TLS error";
  }
  char text[256];
  ERR_error_string_n(e, text, sizeof(text));
  ERR_clear_error();
  return text;
}

bool SetTimeouts(int fd, int timeout_ms) {
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  return ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == 0 &&
         ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0;
}

}  // namespace

bool ParseClientTransport(std::string_view text, ClientTransportKind* kind) {
  if (text == "udp") {
    *kind = ClientTransportKind::kUdp;
  } else if (text == "tcp") {
    *kind = ClientTransportKind::kTcp;
  } else if (text == "tls") {
    *kind = ClientTransportKind::kTls;
  } else {
    return false;
  }
  return true;
}

const char* ClientTransportText(ClientTransportKind kind) {
  switch (kind) {
    case ClientTransportKind::kUdp:
      return "udp";
    case ClientTransportKind::kTcp:
      return "tcp";
    case ClientTransportKind::kTls:
      return "tls";
  }
  return "?";
}

base::Result<std::shared_ptr<TlsClientContext>> TlsClientContext::Create() {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) {
    return base::Unavailable("SSL_CTX_new: " + SslErrorText());
  }
  // A bench on loopback against a throwaway certificate: no verification.
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  return std::shared_ptr<TlsClientContext>(new TlsClientContext(ctx));
}

TlsClientContext::~TlsClientContext() { SSL_CTX_free(ctx_); }

base::Result<std::unique_ptr<StreamClient>> StreamClient::Connect(
    const base::SocketAddress& server, const base::SocketAddress& bind,
    std::shared_ptr<TlsClientContext> tls, int timeout_ms) {
  sockaddr_storage bind_storage{};
  socklen_t bind_len = bind.ToSockaddr(&bind_storage);
  sockaddr_storage server_storage{};
  socklen_t server_len = server.ToSockaddr(&server_storage);
  if (bind_len == 0 || server_len == 0) {
    return base::InvalidArgument("stream client: address without a family");
  }
  UniqueFd fd(::socket(server_storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    return base::Unavailable("socket: " + ErrnoText(errno));
  }
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (!SetTimeouts(fd.get(), timeout_ms)) {
    return base::Unavailable("SO_SNDTIMEO: " + ErrnoText(errno));
  }
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&bind_storage), bind_len) != 0) {
    return base::Unavailable("bind " + bind.ToString() + ": " + ErrnoText(errno));
  }
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&server_storage), server_len) != 0) {
    return base::Unavailable("connect " + server.ToString() + ": " + ErrnoText(errno));
  }
  SSL* ssl = nullptr;
  if (tls) {
    ssl = SSL_new(tls->get());
    if (ssl == nullptr) {
      return base::Unavailable("SSL_new: " + SslErrorText());
    }
    if (SSL_set_fd(ssl, fd.get()) != 1 || SSL_connect(ssl) != 1) {
      std::string why = "TLS handshake with " + server.ToString() + ": " + SslErrorText();
      SSL_free(ssl);
      return base::Unavailable(why);
    }
  }
  std::unique_ptr<StreamClient> client(new StreamClient(std::move(fd), ssl));
  SetTimeouts(client->fd(), 0);
  const int flags = ::fcntl(client->fd(), F_GETFL);
  if (flags < 0 || ::fcntl(client->fd(), F_SETFL, flags | O_NONBLOCK) != 0) {
    return base::Unavailable("O_NONBLOCK: " + ErrnoText(errno));
  }
  return client;
}

StreamClient::StreamClient(UniqueFd fd, ssl_st* ssl)
    : fd_(std::move(fd)), ssl_(ssl), in_(kInputBytes) {}

StreamClient::~StreamClient() {
  if (ssl_ != nullptr) {
    SSL_free(ssl_);
  }
}

void StreamClient::SetError(std::string why) {
  if (error_.empty()) {
    error_ = std::move(why);
  }
}

bool StreamClient::Write(const uint8_t* data, size_t size) {
  if (!ok()) {
    return false;
  }
  if (out_sent_ == out_.size()) {
    out_.clear();
    out_sent_ = 0;
  }
  out_.insert(out_.end(), data, data + size);
  return SendQueued();
}

bool StreamClient::Flush() {
  if (!ok()) {
    return false;
  }
  return out_sent_ == out_.size() || SendQueued();
}

bool StreamClient::SendQueued() {
  while (out_sent_ < out_.size()) {
    const uint8_t* p = out_.data() + out_sent_;
    const size_t left = out_.size() - out_sent_;
    if (ssl_ != nullptr) {
      ERR_clear_error();
      const int n = SSL_write(ssl_, p, static_cast<int>(left));
      if (n > 0) {
        out_sent_ += static_cast<size_t>(n);
        continue;
      }
      const int e = SSL_get_error(ssl_, n);
      if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
        break;
      }
      SetError("SSL_write: " + SslErrorText());
      return false;
    }
    const ssize_t n = ::send(fd_.get(), p, left, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      out_sent_ += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      break;
    }
    SetError("send: " + ErrnoText(errno));
    return false;
  }
  if (out_sent_ > 0 && out_sent_ == out_.size()) {
    out_.clear();
    out_sent_ = 0;
  } else if (out_sent_ > 64 * 1024) {
    // Keep the queue from growing at the front (TLS: the moving-buffer mode
    // lets the retry come from a new address).
    out_.erase(out_.begin(), out_.begin() + static_cast<ptrdiff_t>(out_sent_));
    out_sent_ = 0;
  }
  return true;
}

bool StreamClient::Read(const FrameCallback& on_frame) {
  if (!ok()) {
    return false;
  }
  for (;;) {
    if (in_end_ == in_.size()) {
      if (in_start_ == 0) {
        SetError("input buffer full without a whole frame");
        return false;
      }
      std::memmove(in_.data(), in_.data() + in_start_, in_end_ - in_start_);
      in_end_ -= in_start_;
      in_start_ = 0;
    }
    uint8_t* p = in_.data() + in_end_;
    const size_t room = in_.size() - in_end_;
    size_t got = 0;
    if (ssl_ != nullptr) {
      ERR_clear_error();
      const int n = SSL_read(ssl_, p, static_cast<int>(room));
      if (n <= 0) {
        const int e = SSL_get_error(ssl_, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
          break;
        }
        SetError(e == SSL_ERROR_ZERO_RETURN ? std::string("server closed the TLS connection")
                                            : "SSL_read: " + SslErrorText());
        return false;
      }
      got = static_cast<size_t>(n);
    } else {
      const ssize_t n = ::recv(fd_.get(), p, room, MSG_DONTWAIT);
      if (n == 0) {
        SetError("server closed the connection");
        return false;
      }
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
          break;
        }
        SetError("recv: " + ErrnoText(errno));
        return false;
      }
      got = static_cast<size_t>(n);
    }
    in_end_ += got;
    if (!DeliverFrames(on_frame)) {
      return false;
    }
    if (got < room && ssl_ == nullptr) {
      break;  // the kernel had no more (TLS may still hold a record: read on)
    }
  }
  return true;
}

bool StreamClient::DeliverFrames(const FrameCallback& on_frame) {
  const stun::StreamFramer framer(stun::kMaxStreamFrame);
  while (in_start_ < in_end_) {
    const base::ByteView head(in_.data() + in_start_, in_end_ - in_start_);
    const stun::FrameResult frame = framer.Next(head);
    if (frame.status == stun::FrameResult::Status::kNeedMore) {
      break;
    }
    if (frame.status == stun::FrameResult::Status::kError) {
      SetError(std::string("unframeable input: ") + stun::FramingErrorText(frame.error));
      return false;
    }
    on_frame(head.first(frame.size));
    in_start_ += frame.size;
  }
  if (in_start_ == in_end_) {
    in_start_ = in_end_ = 0;
  }
  return true;
}

}  // namespace turnkey::bench
