// StreamListener: accepts TCP or TLS connections on one address and owns
// them (StreamConnection).
//
// With a TlsContext the listener speaks TLS: each accepted socket gets an
// SSL from the context current at accept time. SetTlsContext() swaps the
// context for new connections (certificate reload); established connections
// keep theirs. Loop thread only; other threads Post() to the loop.
//
// Destroying the listener closes the listening socket and destroys every
// connection it owns without calling their close callbacks (the owner is
// going away). Do not destroy it from inside one of its own or its
// connections' callbacks; use EventLoop::DeleteLater.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>

#include "base/address.h"
#include "base/status.h"
#include "net/stream_connection.h"
#include "net/timer.h"
#include "net/tls_context.h"

struct evconnlistener;

namespace turnkey::net {

class ConnectionBudget;
class EventLoop;
class TlsContext;

struct StreamListenerOptions {
  // SO_REUSEPORT: one listening socket per worker on the same port. Default off.
  bool reuse_port = false;
  // IPV6_V6ONLY for IPv6 binds. Default on. Off, IPv4 clients of an "::"
  // bind are reported by their IPv4 address (unmapped).
  bool v6_only = true;
  // listen() backlog. Default 1024.
  int backlog = 1024;
  // Where each connection takes a place (see ConnectionBudget); one without
  // a place is accepted and closed at once. May be shared between listeners
  // and threads. Null = none.
  std::shared_ptr<ConnectionBudget> budget;
  // Applied to every accepted connection.
  StreamConnectionOptions connection;
  // TLS listeners: the ALPN protocol the service speaks. Default none.
  AlpnPolicy alpn = AlpnPolicy::kNone;
};

class StreamListener {
 public:
  // Called once per accepted connection, before any of its input is read.
  // Install the connection's callbacks here (StreamConnection::SetCallbacks).
  using AcceptCallback = std::function<void(StreamConnection& connection)>;

  // Binds and starts listening. `tls` null = plain TCP; else TLS with a
  // server context. `loop` must outlive the listener.
  static base::Result<std::unique_ptr<StreamListener>> Create(
      EventLoop& loop, const base::SocketAddress& bind_address,
      const StreamListenerOptions& options, std::shared_ptr<TlsContext> tls,
      AcceptCallback on_accept);
  ~StreamListener();
  StreamListener(const StreamListener&) = delete;
  StreamListener& operator=(const StreamListener&) = delete;

  // Uses `tls` for connections accepted from now on. Must be a server context;
  // only for listeners created with TLS (returns an error otherwise).
  base::Status SetTlsContext(std::shared_ptr<TlsContext> tls);
  const std::shared_ptr<TlsContext>& tls_context() const { return tls_; }

  // Stop / resume accepting (drain). Existing connections are untouched.
  void StopAccepting();
  void ResumeAccepting();
  // Closes the listening socket for good (server shutdown): new connection
  // attempts are refused by the kernel at once instead of waiting in the
  // backlog of a socket nobody accepts from. Existing connections stay;
  // Resume/StopAccepting do nothing afterwards.
  void CloseListeningSocket();
  // Close() on every connection (graceful; close callbacks run later).
  void CloseAll();

  const base::SocketAddress& local_address() const { return local_address_; }
  size_t connection_count() const { return connections_.size(); }
  uint64_t accepted_count() const { return accepted_; }
  // Accepted but closed at once because of the budget or an error.
  uint64_t rejected_count() const { return rejected_; }

 private:
  struct ListenerDeleter {
    void operator()(evconnlistener* listener) const;
  };

  StreamListener(EventLoop& loop, const StreamListenerOptions& options);
  void OnAccept(int fd, const sockaddr* address, int length) noexcept;
  void OnAcceptError() noexcept;
  void OnConnectionFinished(StreamConnection& connection);
  static void OnAcceptEvent(evconnlistener* listener, int fd, sockaddr* address, int length,
                            void* arg) noexcept;
  static void OnAcceptErrorEvent(evconnlistener* listener, void* arg) noexcept;

  EventLoop& loop_;
  StreamListenerOptions options_;
  std::shared_ptr<TlsContext> tls_;
  AcceptCallback on_accept_;
  base::SocketAddress local_address_;
  std::unique_ptr<evconnlistener, ListenerDeleter> listener_;
  // Re-enables accepting after running out of descriptors (see OnAcceptError).
  Timer resume_timer_;
  bool accepting_ = true;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, std::unique_ptr<StreamConnection>> connections_;
  uint64_t accepted_ = 0;
  uint64_t rejected_ = 0;
  uint64_t rejected_budget_ = 0;
  // accept() failures since the last connection accepted.
  uint64_t accept_errors_ = 0;
};

}  // namespace turnkey::net
