#include "net/stream_listener.h"

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <utility>
#include <vector>

#include "base/log.h"
#include "net/connection_budget.h"
#include "net/event_loop.h"
#include "net/socket_util.h"
#include "net/tls_context.h"

namespace turnkey::net {

namespace {

// How long to stop accepting after the process ran out of descriptors. A
// level-triggered listener would otherwise spin on the same error.
constexpr std::chrono::milliseconds kAcceptBackoff{100};

}  // namespace

void StreamListener::ListenerDeleter::operator()(evconnlistener* listener) const {
  evconnlistener_free(listener);
}

base::Result<std::unique_ptr<StreamListener>> StreamListener::Create(
    EventLoop& loop, const base::SocketAddress& bind_address, const StreamListenerOptions& options,
    std::shared_ptr<TlsContext> tls, AcceptCallback on_accept) {
  if (!on_accept) {
    return base::InvalidArgument("stream listener needs an accept callback");
  }
  if (tls != nullptr && !tls->is_server()) {
    return base::InvalidArgument("stream listener needs a server TLS context");
  }
  if (options.connection.max_input_bytes == 0) {
    return base::InvalidArgument("max_input_bytes must be positive");
  }
  BindOptions bind_options;
  bind_options.reuse_addr = true;
  bind_options.reuse_port = options.reuse_port;
  bind_options.v6_only = options.v6_only;
  auto fd = CreateBoundSocket(bind_address, SOCK_STREAM, bind_options);
  if (!fd) {
    return std::unexpected(fd.error());
  }
  if (::listen(fd->get(), options.backlog > 0 ? options.backlog : SOMAXCONN) != 0) {
    return base::Unavailable(ErrnoMessage("listen", errno));
  }
  auto local = LocalAddressOf(fd->get());
  if (!local) {
    return std::unexpected(local.error());
  }
  std::unique_ptr<StreamListener> listener(new StreamListener(loop, options));
  listener->tls_ = std::move(tls);
  listener->on_accept_ = std::move(on_accept);
  listener->local_address_ = *local;
  // Backlog 0: the socket is already listening. The listener owns the fd from
  // here on (LEV_OPT_CLOSE_ON_FREE).
  evconnlistener* raw =
      evconnlistener_new(loop.base(), &StreamListener::OnAcceptEvent, listener.get(),
                         LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd->get());
  if (raw == nullptr) {
    return base::Unavailable("evconnlistener_new failed");
  }
  fd->Release();
  listener->listener_.reset(raw);
  evconnlistener_set_error_cb(raw, &StreamListener::OnAcceptErrorEvent);
  return listener;
}

StreamListener::StreamListener(EventLoop& loop, const StreamListenerOptions& options)
    : loop_(loop), options_(options), resume_timer_(loop, [this] { ResumeAccepting(); }) {}

StreamListener::~StreamListener() {
  // Connections go before the listening socket; their destructors call
  // nothing back.
  if (options_.budget != nullptr) {
    for (const auto& [id, connection] : connections_) {
      options_.budget->Give(connection->peer_address());
    }
  }
  connections_.clear();
}

base::Status StreamListener::SetTlsContext(std::shared_ptr<TlsContext> tls) {
  if (tls_ == nullptr) {
    return base::InvalidArgument("listener was created without TLS");
  }
  if (tls == nullptr || !tls->is_server()) {
    return base::InvalidArgument("listener needs a server TLS context");
  }
  tls_ = std::move(tls);
  return base::Ok();
}

void StreamListener::StopAccepting() {
  accepting_ = false;
  resume_timer_.Stop();
  if (listener_) {
    evconnlistener_disable(listener_.get());
  }
}

void StreamListener::ResumeAccepting() {
  if (!listener_) {
    return;
  }
  accepting_ = true;
  evconnlistener_enable(listener_.get());
}

void StreamListener::CloseListeningSocket() {
  accepting_ = false;
  resume_timer_.Stop();
  listener_.reset();
}

void StreamListener::CloseAll() {
  // Close() never calls back synchronously, so iterating the map is safe.
  for (auto& [id, connection] : connections_) {
    connection->Close();
  }
}

void StreamListener::OnAcceptEvent(evconnlistener* /*listener*/, int fd, sockaddr* address,
                                   int length, void* arg) noexcept {
  static_cast<StreamListener*>(arg)->OnAccept(fd, address, length);
}

void StreamListener::OnAcceptErrorEvent(evconnlistener* /*listener*/, void* arg) noexcept {
  static_cast<StreamListener*>(arg)->OnAcceptError();
}

void StreamListener::OnAcceptError() noexcept {
  int err = EVUTIL_SOCKET_ERROR();
  ++accept_errors_;
  // Out of descriptors, this repeats every kAcceptBackoff on every listener
  // with a client waiting: the log says so once in a while, not each time.
  TK_LOG_WARN_EVERY(std::chrono::seconds(10), "accept on {}: {}", local_address_.ToString(),
                    std::strerror(err));
  if ((err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) && listener_) {
    evconnlistener_disable(listener_.get());
    if (accepting_) {
      resume_timer_.Start(kAcceptBackoff);
    }
  }
}

void StreamListener::OnAccept(int fd, const sockaddr* address, int length) noexcept {
  ScopedFd owned(fd);
  ++accepted_;
  if (accept_errors_ > 0) {
    TK_LOG_INFO("accept on {}: accepting again after {} failed attempts", local_address_.ToString(),
                std::exchange(accept_errors_, 0));
  }
  auto peer = base::SocketAddress::FromSockaddr(address, static_cast<socklen_t>(length));
  if (!peer) {
    ++rejected_;
    return;
  }
  // A dual-stack socket (v6_only off) sees IPv4 clients as ::ffff:a.b.c.d;
  // limits, logs and trusted proxy lists know them as a.b.c.d.
  *peer = peer->Unmapped();
  if (options_.budget != nullptr) {
    const ConnectionBudget::Verdict verdict = options_.budget->TryTake(*peer);
    if (verdict != ConnectionBudget::Verdict::kTaken) {
      ++rejected_;
      // Once per thousand: a flood must not flood the log too.
      if (rejected_budget_++ % 1000 == 0) {
        TK_LOG_WARN("{}: connection from {} closed at once: {} ({} so far)",
                    local_address_.ToString(), peer->ToString(),
                    verdict == ConnectionBudget::Verdict::kClientFull
                        ? "that client holds as many connections as it may"
                        : "the process holds as many connections as its file limit allows",
                    rejected_budget_);
      }
      return;
    }
  }
  // From here every early return gives the place back.
  bool placed = options_.budget != nullptr;
  struct GiveBack {
    StreamListener* self;
    const base::SocketAddress& peer;
    bool& placed;
    ~GiveBack() {
      if (placed) {
        self->options_.budget->Give(peer);
      }
    }
  } give_back{this, *peer, placed};
  // Small request/response messages (STUN, HTTP, WebSocket frames): do not
  // let Nagle hold them back.
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

  bufferevent* bev = nullptr;
  if (tls_ != nullptr) {
    SSL* ssl = SSL_new(tls_->native());
    if (ssl == nullptr) {
      ERR_clear_error();
      ++rejected_;
      return;
    }
    SetAlpnPolicy(ssl, options_.alpn);
    if (options_.connection.tls_record_per_write && !UseRecordWriteBio(ssl, fd)) {
      SSL_free(ssl);
      ++rejected_;
      return;
    }
    bev = bufferevent_openssl_socket_new(loop_.base(), fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    if (bev == nullptr) {
      // Only when out of memory; whether libevent freed `ssl` on that path
      // differs between versions, so it is left alone (a leak beats a double
      // free). The descriptor is still ours.
      ++rejected_;
      return;
    }
    // Many clients close TCP without a TLS close_notify; treat it as EOF.
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    owned.Release();  // the bufferevent closes it now
  }

  const uint64_t id = next_id_++;
  auto connection = StreamConnection::Create(
      loop_, fd, bev, id, tls_, *peer, options_.connection,
      [this](StreamConnection& finished) { OnConnectionFinished(finished); });
  if (!connection) {
    if (bev != nullptr) {
      bufferevent_free(bev);
    }
    ++rejected_;
    return;
  }
  // A plain connection owns its socket from here (its destructor closes it),
  // and its place in the budget until OnConnectionFinished.
  owned.Release();
  placed = false;
  StreamConnection& ref = *connection;
  connections_.emplace(id, std::move(connection));
  try {
    on_accept_(ref);
  } catch (const std::exception& e) {
    TK_LOG_ERROR("accept handler threw: {}", e.what());
    ref.Abort();
  } catch (...) {
    TK_LOG_ERROR("accept handler threw a non-standard exception");
    ref.Abort();
  }
  if (ref.state_ != StreamConnection::State::kClosed) {
    ref.Start();
  }
}

void StreamListener::OnConnectionFinished(StreamConnection& connection) {
  auto node = connections_.extract(connection.id());
  if (!node.empty()) {
    if (options_.budget != nullptr) {
      options_.budget->Give(connection.peer_address());
    }
    loop_.DeleteLater(std::move(node.mapped()));
  }
}

}  // namespace turnkey::net
