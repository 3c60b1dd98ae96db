#include "net/dtls_socket.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <utility>

#include "base/log.h"
#include "net/connection_budget.h"
#include "net/timer.h"
#include "net/tls_context.h"

namespace turnkey::net {

namespace {

// DTLS record header (RFC 6347 section 4.1): content type, version (2),
// epoch (2), sequence number (6), length (2); a handshake message header
// follows: type (1), ...
constexpr size_t kRecordHeader = 13;
constexpr uint8_t kContentHandshake = 22;
constexpr uint8_t kClientHello = 1;

// The first record of `data` is a ClientHello of epoch 0: a client starting a
// handshake (the only record a server may answer without an association).
bool IsClientHello(base::ByteView data) {
  return data.size() > kRecordHeader && data[0] == kContentHandshake && data[1] == 0xFE &&
         data[3] == 0 && data[4] == 0 && data[kRecordHeader] == kClientHello;
}

// The ClientHello's random (RFC 5246 section 7.4.1.2), after the handshake
// header (12 bytes, RFC 6347 section 4.2.2) and client_version: the same in
// every copy of one ClientHello (a retransmission, a duplicate), new in a
// client's next handshake. Empty when the datagram is too short.
constexpr size_t kHandshakeHeader = 12;
constexpr size_t kRandomBytes = 32;
base::ByteView ClientRandom(base::ByteView client_hello) {
  const size_t at = kRecordHeader + kHandshakeHeader + 2;
  return client_hello.size() >= at + kRandomBytes ? client_hello.subspan(at, kRandomBytes)
                                                  : base::ByteView();
}

// RFC 7983 section 7: a first byte of 20-63 is DTLS. Anything else on this
// port (STUN, RTP) is not for us.
bool LooksLikeDtls(base::ByteView data) {
  return data.size() >= kRecordHeader && data[0] >= 20 && data[0] <= 63;
}

}  // namespace

struct DtlsSocket::Session {
  ~Session() {
    if (ssl != nullptr) {
      SSL_free(ssl);
    }
  }
  Io io;
  SSL* ssl = nullptr;
  bool established = false;
  bool held = false;
  // Begun or released: the setup timeout runs from here, and the oldest
  // pending one goes first.
  base::MonoTime started;
  base::MonoTime last_input;
  std::chrono::milliseconds idle{0};
  std::array<uint8_t, kRandomBytes> client_random{};  // of the ClientHello that began it
};

struct DtlsBio {
  static int Write(BIO* bio, const char* data, int length) {
    auto* io = static_cast<DtlsSocket::Io*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    if (io == nullptr || length < 0) {
      return -1;
    }
    ++io->writes;
    io->owner->Output(io->peer,
                      {reinterpret_cast<const uint8_t*>(data), static_cast<size_t>(length)});
    return length;
  }

  static int Read(BIO* bio, char* out, int length) {
    auto* io = static_cast<DtlsSocket::Io*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    if (io == nullptr || io->input.empty()) {
      BIO_set_retry_read(bio);
      return -1;
    }
    // One datagram per read, as a datagram socket gives it; what does not
    // fit is lost, as the kernel would truncate it.
    const size_t n = std::min(io->input.size(), static_cast<size_t>(std::max(length, 0)));
    std::copy_n(io->input.data(), n, reinterpret_cast<uint8_t*>(out));
    io->input = {};
    return static_cast<int>(n);
  }

  static long Ctrl(BIO* /*bio*/, int command, long /*number*/, void* /*pointer*/) {
    // Flush succeeds (writes go out as they come); nothing is pending. Peer
    // address, MTU queries, timers: the socket does these itself (SSL_set_mtu
    // with SSL_OP_NO_QUERY_MTU, DTLSv1_handle_timeout). OpenSSL 3.0's
    // DTLSv1_listen keeps the ClientHello it reads itself (no peek mode).
    return command == BIO_CTRL_FLUSH ? 1 : 0;
  }

  static int Create(BIO* bio) {
    BIO_set_init(bio, 1);
    return 1;
  }

  static BIO_METHOD* Method() {
    static BIO_METHOD* method = [] {
      BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "turnkey dtls");
      if (m != nullptr) {
        BIO_meth_set_write(m, Write);
        BIO_meth_set_read(m, Read);
        BIO_meth_set_ctrl(m, Ctrl);
        BIO_meth_set_create(m, Create);
      }
      return m;
    }();
    return method;
  }
};

base::Result<std::unique_ptr<DtlsSocket>> DtlsSocket::Create(
    EventLoop& loop, const base::SocketAddress& bind, const DtlsSocketOptions& options,
    std::shared_ptr<TlsContext> tls, MessageHandler on_message, CloseHandler on_close,
    BatchDoneHandler on_batch_done) {
  if (!tls || tls->dtls_native() == nullptr) {
    return base::InvalidArgument("DTLS needs a server certificate");
  }
  if (DtlsBio::Method() == nullptr) {
    return base::Internal(TlsErrorMessage("DTLS BIO"));
  }
  std::unique_ptr<DtlsSocket> socket(new DtlsSocket(options, std::move(tls), std::move(on_message),
                                                    std::move(on_close), std::move(on_batch_done)));
  const bool wildcard = options.udp.receive_destinations;
  DtlsSocket* self = socket.get();
  auto udp =
      UdpSocket::Create(loop, bind, options.udp, [self, wildcard](std::span<const Datagram> batch) {
        const base::MonoTime now = base::SystemClock::Instance().Now();
        const base::SocketAddress& local = self->udp_->local_address();
        for (const Datagram& d : batch) {
          Peer peer{d.from, local};
          if (wildcard && d.to.family() != base::Family::kNone) {
            peer.server = d.to;
          }
          self->OnDatagram(now, peer, d.data);
        }
        if (self->on_batch_done_) {
          self->on_batch_done_();
        }
      });
  if (!udp) {
    return std::unexpected(udp.error());
  }
  socket->udp_ = std::move(*udp);
  if (!socket->ResetListener()) {
    return base::Internal(TlsErrorMessage("DTLS listener"));
  }
  socket->tick_ = std::make_unique<Timer>(loop, [self] { self->OnTick(); });
  socket->tick_->StartPeriodic(options.tick);
  return socket;
}

DtlsSocket::DtlsSocket(const DtlsSocketOptions& options, std::shared_ptr<TlsContext> tls,
                       MessageHandler on_message, CloseHandler on_close,
                       BatchDoneHandler on_batch_done)
    : options_(options),
      tls_(std::move(tls)),
      on_message_(std::move(on_message)),
      on_close_(std::move(on_close)),
      on_batch_done_(std::move(on_batch_done)),
      plaintext_(65536) {}

DtlsSocket::~DtlsSocket() {
  tick_.reset();
  if (options_.budget) {
    // The budget may be shared with sockets that live on.
    for (const auto& [peer, session] : sessions_) {
      options_.budget->Give(peer.client);
    }
  }
  sessions_.clear();
  if (listener_ != nullptr) {
    SSL_free(listener_);
  }
}

BIO* DtlsSocket::NewBio(Io* io) {
  BIO* bio = BIO_new(DtlsBio::Method());
  if (bio != nullptr) {
    BIO_set_data(bio, io);
  }
  return bio;
}

bool DtlsSocket::ResetListener() {
  if (listener_ != nullptr) {
    SSL_free(listener_);
    listener_ = nullptr;
  }
  listener_io_.owner = this;
  SSL* ssl = SSL_new(tls_->dtls_native());
  BIO* bio = ssl != nullptr ? NewBio(&listener_io_) : nullptr;
  if (bio == nullptr) {
    if (ssl != nullptr) {
      SSL_free(ssl);
    }
    return false;
  }
  SSL_set_bio(ssl, bio, bio);  // one reference, taken by the SSL
  SSL_set_options(ssl, SSL_OP_NO_QUERY_MTU | SSL_OP_COOKIE_EXCHANGE);
  SSL_set_mtu(ssl, static_cast<long>(options_.mtu));
  SetAlpnPolicy(ssl, AlpnPolicy::kStunTurn);
  SetDtlsCookiePeer(ssl, &listener_io_.peer.client);
  SSL_set_accept_state(ssl);
  listener_ = ssl;
  return true;
}

void DtlsSocket::SetTlsContext(std::shared_ptr<TlsContext> tls) {
  if (!tls || tls->dtls_native() == nullptr) {
    return;
  }
  tls_ = std::move(tls);
  if (!ResetListener()) {
    TK_LOG_WARN("dtls {}: {}", local_address().ToString(), TlsErrorMessage("new listener"));
  }
}

void DtlsSocket::Output(const Peer& peer, base::ByteView datagram) {
  // On a wildcard bind the answer leaves from the address the client wrote to.
  udp_->QueueSend(peer.client, datagram,
                  options_.udp.receive_destinations ? &peer.server : nullptr);
}

void DtlsSocket::OnDatagram(base::MonoTime now, const Peer& peer, base::ByteView data) {
  if (!LooksLikeDtls(data)) {
    return;
  }
  auto it = sessions_.find(peer);
  if (it == sessions_.end()) {
    if (IsClientHello(data)) {
      Listen(now, peer, data);
    }
    return;
  }
  Session& session = *it->second;
  if (IsClientHello(data)) {
    // A ClientHello with another random than the one that began this
    // association is a new handshake: the client restarted on the same port
    // (RFC 6347 section 4.2.8), before or after this one finished. It
    // replaces the association once its cookie proves the address. A copy of
    // the ClientHello that began it (a retransmission, a late duplicate: the
    // same random) is the association's own.
    const base::ByteView random = ClientRandom(data);
    if (!random.empty() && !std::equal(random.begin(), random.end(), session.client_random.begin(),
                                       session.client_random.end())) {
      Listen(now, peer, data);
      return;
    }
    if (session.established) {
      return;
    }
  }
  Serve(now, session, data);
}

void DtlsSocket::Listen(base::MonoTime now, const Peer& peer, base::ByteView data) {
  if (listener_ == nullptr && !ResetListener()) {
    return;
  }
  listener_io_.peer = peer;
  listener_io_.input = data;
  const uint64_t writes_before = listener_io_.writes;
  ERR_clear_error();
  BIO_ADDR* unused = BIO_ADDR_new();
  const int listened = DTLSv1_listen(listener_, unused);
  BIO_ADDR_free(unused);
  // A datagram that is not a usable ClientHello leaves errors queued even
  // when it returns 0; the next SSL call on this thread must not see them.
  ERR_clear_error();
  if (listened <= 0) {
    // A HelloVerifyRequest went out (or the datagram was not a usable
    // ClientHello); the listener stays for the next one.
    if (listener_io_.writes != writes_before) {
      ++cookies_sent_;
    }
    listener_io_.input = {};
    if (listened < 0) {
      ResetListener();
    }
    return;
  }
  // The cookie came back: this ClientHello starts an association. The
  // listener's SSL becomes it, with a BIO of its own.
  if (auto old = sessions_.find(peer); old != sessions_.end()) {
    TK_LOG_DEBUG("dtls {}: {} started a new handshake; its association ends",
                 local_address().ToString(), peer.client.ToString());
    End(peer, /*tell=*/true, /*notify_client=*/false);
  }
  if (options_.budget &&
      options_.budget->TryTake(peer.client) != ConnectionBudget::Verdict::kTaken) {
    TK_LOG_WARN_EVERY(std::chrono::seconds(10),
                      "dtls {}: client {} holds as many associations as one client may "
                      "(turn.connections_per_address); a handshake from {} is refused",
                      local_address().ToString(), peer.client.IpString(), peer.client.ToString());
    ResetListener();  // the listener's SSL took this ClientHello
    SendRefusal(peer, data);
    return;
  }
  if (options_.max_pending > 0 && pending_ >= options_.max_pending) {
    EvictOldestPending();
  }
  auto session = std::make_unique<Session>();
  session->io.owner = this;
  session->io.peer = peer;
  session->ssl = std::exchange(listener_, nullptr);
  BIO* bio = NewBio(&session->io);
  if (bio == nullptr) {
    if (options_.budget) {
      options_.budget->Give(peer.client);
    }
    ResetListener();
    return;
  }
  SSL_set_bio(session->ssl, bio, bio);  // frees the listener's BIO
  SetDtlsCookiePeer(session->ssl, &session->io.peer.client);
  const base::ByteView random = ClientRandom(data);
  std::copy(random.begin(), random.end(), session->client_random.begin());
  session->started = now;
  session->last_input = now;
  Session& added = *sessions_.emplace(peer, std::move(session)).first->second;
  ++pending_;
  ResetListener();
  // OpenSSL 3.0's DTLSv1_listen keeps the ClientHello it accepted for the
  // handshake to go on from; fed again, the copy is dropped as a duplicate.
  // (A library that left it to be read again would need it.)
  Serve(now, added, data);
}

void DtlsSocket::SendRefusal(const Peer& peer, base::ByteView client_hello) {
  // A fatal handshake_failure alert in the clear (RFC 5246 section 7.2), of
  // epoch 0 with the ClientHello's sequence number and version: the client
  // ends its handshake now instead of retransmitting into silence.
  uint8_t alert[kRecordHeader + 2];
  std::copy_n(client_hello.data(), kRecordHeader, alert);
  alert[0] = 21;  // alert
  alert[11] = 0;
  alert[12] = 2;
  alert[13] = 2;   // fatal
  alert[14] = 40;  // handshake_failure
  Output(peer, {alert, sizeof(alert)});
}

bool DtlsSocket::Serve(base::MonoTime now, Session& session, base::ByteView data) {
  session.io.input = data;
  ERR_clear_error();
  if (!session.established) {
    const int done = SSL_do_handshake(session.ssl);
    if (done != 1) {
      const int error = SSL_get_error(session.ssl, done);
      session.io.input = {};
      if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
        return true;
      }
      TK_LOG_DEBUG("dtls {}: handshake with {} failed: {}", local_address().ToString(),
                   session.io.peer.client.ToString(), TlsErrorMessage("handshake"));
      End(session.io.peer, /*tell=*/true, /*notify_client=*/false);
      return false;
    }
    session.established = true;
    session.last_input = now;
  }
  for (;;) {
    ERR_clear_error();  // the handler may have left some; SSL_get_error needs none
    const int n = SSL_read(session.ssl, plaintext_.data(), static_cast<int>(plaintext_.size()));
    if (n > 0) {
      // The handler cannot end the association (see the header).
      session.last_input = now;
      on_message_(session.io.peer, {plaintext_.data(), static_cast<size_t>(n)});
      continue;
    }
    const int error = SSL_get_error(session.ssl, n);
    session.io.input = {};
    if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
      return true;
    }
    if (error == SSL_ERROR_ZERO_RETURN) {
      // close_notify: answer it and end.
      End(session.io.peer, /*tell=*/true, /*notify_client=*/true);
    } else {
      TK_LOG_DEBUG("dtls {}: association with {} failed: {}", local_address().ToString(),
                   session.io.peer.client.ToString(), TlsErrorMessage("read"));
      End(session.io.peer, /*tell=*/true, /*notify_client=*/false);
    }
    ERR_clear_error();
    return false;
  }
}

bool DtlsSocket::Send(const Peer& peer, base::ByteView datagram) {
  auto it = sessions_.find(peer);
  if (it == sessions_.end() || !it->second->established || datagram.empty()) {
    return false;
  }
  ERR_clear_error();
  const int n = SSL_write(it->second->ssl, datagram.data(), static_cast<int>(datagram.size()));
  if (n <= 0) {
    ERR_clear_error();
    return false;
  }
  return true;
}

bool DtlsSocket::Hold(const Peer& peer, std::chrono::milliseconds idle) {
  auto it = sessions_.find(peer);
  if (it == sessions_.end()) {
    return false;
  }
  Session& session = *it->second;
  if (!session.held) {
    session.held = true;
    --pending_;
  }
  session.idle = idle;
  return true;
}

void DtlsSocket::Release(const Peer& peer) {
  auto it = sessions_.find(peer);
  if (it == sessions_.end() || !it->second->held) {
    return;
  }
  it->second->held = false;
  it->second->started = base::SystemClock::Instance().Now();
  ++pending_;
}

void DtlsSocket::End(const Peer& peer, bool tell, bool notify_client) {
  auto it = sessions_.find(peer);
  if (it == sessions_.end()) {
    return;
  }
  std::unique_ptr<Session> session = std::move(it->second);
  sessions_.erase(it);
  if (!session->held) {
    --pending_;
  }
  if (options_.budget) {
    options_.budget->Give(session->io.peer.client);
  }
  if (notify_client && session->established) {
    ERR_clear_error();
    SSL_shutdown(session->ssl);  // close_notify; no wait for the client's
    ERR_clear_error();
  }
  if (tell && on_close_) {
    on_close_(peer);
  }
}

void DtlsSocket::EvictOldestPending() {
  auto oldest = sessions_.end();
  for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
    if (!it->second->held &&
        (oldest == sessions_.end() || it->second->started < oldest->second->started)) {
      oldest = it;
    }
  }
  if (oldest == sessions_.end()) {
    return;
  }
  TK_LOG_WARN_EVERY(std::chrono::seconds(10),
                    "dtls {}: {} associations without an allocation; ending the oldest, with {}",
                    local_address().ToString(), pending_, oldest->first.client.ToString());
  End(Peer(oldest->first), /*tell=*/true, /*notify_client=*/true);
}

void DtlsSocket::OnTick() {
  if (sessions_.empty()) {
    return;
  }
  const base::MonoTime now = base::SystemClock::Instance().Now();
  std::vector<Peer> ended;
  for (auto& [peer, session] : sessions_) {
    const bool expired = session->held ? now - session->last_input >= session->idle
                                       : now - session->started >= options_.setup_timeout;
    if (expired) {
      ended.push_back(peer);
    } else if (!session->established) {
      // Retransmits the last flight when its timer ran out (RFC 6347
      // section 4.2.4); a handshake that gives up ends.
      ERR_clear_error();
      if (DTLSv1_handle_timeout(session->ssl) < 0) {
        ended.push_back(peer);
      }
      ERR_clear_error();
    }
  }
  for (const Peer& peer : ended) {
    TK_LOG_DEBUG("dtls {}: association with {} timed out", local_address().ToString(),
                 peer.client.ToString());
    End(peer, /*tell=*/true, /*notify_client=*/true);
  }
  if (!ended.empty() && on_batch_done_) {
    on_batch_done_();
  }
}

}  // namespace turnkey::net
