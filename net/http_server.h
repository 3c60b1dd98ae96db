// HttpServer: an HTTP/1.1 server on one StreamListener (plain TCP or TLS).
//
// Every complete request goes to one handler (typically Router::Dispatch)
// with a Responder that may answer later (see responder.h). Per connection:
// keep-alive, pipelined requests answered strictly in order (the next
// request is not read until the current one is answered), Expect:
// 100-continue, HEAD, limits and timeouts from HttpServerOptions, and an
// upgrade hook (Responder::TakeOver) so WebSocket code can take a connection
// over. Requests that fail to parse are answered (400, 413, 414, 417, 431,
// 501, 505) and the connection is closed; see HttpRequestParser.
//
// Threads: everything on the loop thread, including the handler and
// stats(). `loop` must outlive the server.
//
// Shutdown: Stop() stops accepting, closes idle connections and lets
// requests in flight be answered (with "Connection: close"). Taken-over
// connections are their owners' to end (a WebSocket sends its close frame);
// CloseAll() closes everything that is left. Run the loop until
// connection_count() is 0 (or a deadline), then destroy the server.
// Destroying it destroys whatever is left without callbacks: pending
// Responders become no-ops, and owners of taken-over connections must not
// touch them any more (see Responder::TakeOver). Stop() closes the listening
// socket, so new connection attempts are refused at once. Do not destroy the
// server from inside one of its callbacks (use DeleteLater).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/address.h"
#include "base/cidr.h"
#include "base/status.h"
#include "net/http_request.h"
#include "net/http_request_parser.h"
#include "net/http_response.h"
#include "net/responder.h"
#include "net/stream_listener.h"

namespace turnkey::net {

class EventLoop;
class HttpConnection;
class TlsContext;

// Told that a request's head is parsed while its body is still arriving
// (the handler only ever sees whole requests). Returns a token, or null; the
// connection holds the token until that wait ends: just before the request
// goes to the handler, or when the request fails or its connection closes
// first. For a protocol that must know of a request before its body is
// complete (Engine.IO allows one polling POST per session at a time): it
// keeps a weak_ptr to the token. Loop thread; must not block.
using HttpBodyPendingHook = std::function<std::shared_ptr<void>(const HttpRequest& head)>;

// The request size limits are HttpParserLimits' (max_header_bytes: 431,
// max_target_bytes: 414, max_body_bytes: 413), defined there only.
struct HttpServerOptions : HttpParserLimits {
  // No bytes from the client for this long while waiting for a request:
  // close, after a 408 if part of a request had arrived. 0 = none.
  // Default 60 s. Not applied while a handler works on a request.
  std::chrono::milliseconds idle_timeout{60000};
  // From the first byte of a request until its head is complete (slow
  // header senders); answered 408. 0 = none. Default 30 s.
  std::chrono::milliseconds header_timeout{30000};
  // From the end of a request's head until its body is complete (a body
  // trickled a byte at a time, which keeps idle_timeout from firing);
  // answered 408. 0 = none. Default 120 s: a 1 MB polling payload at 100
  // kbit/s takes 80 s.
  std::chrono::milliseconds body_timeout{120000};
  // Reverse proxies trusted to name the client in X-Forwarded-For: a
  // request from one of them gets as HttpRequest::peer the client it names
  // (net/forwarded.h), so that everything limited per address counts
  // clients, not the proxy. [] = the header is ignored. Default [].
  std::vector<base::Cidr> trusted_proxies;
  // How a request refused after its head was parsed (413 for a body over
  // max_body_bytes, 417) is answered, so an API can keep its error format:
  // given the head and the status, a response (its status is used as is),
  // or nullopt for the plain status page. Unset = always the plain page.
  // The connection closes after it either way.
  std::function<std::optional<HttpResponse>(const HttpRequest& head, int status)> error_response;
  // See HttpBodyPendingHook. Unset = nobody is told.
  HttpBodyPendingHook on_body_pending;
  // The largest body the handler takes for a request, given its head, when
  // that is less than max_body_bytes (an Engine.IO polling POST: its
  // maxPayload): a Content-Length over it is answered 413 (error_response)
  // before the body is read, rather than once it is all in; a chunked body
  // as soon as the part received passes it. Unset = none.
  std::function<uint64_t(const HttpRequest& head)> body_limit;
  // Told the status of every request the server answers itself before a
  // handler sees it (malformed, a head, target or body over its limit, an
  // unsupported method or transfer coding, a timeout), for metrics. Unset =
  // nobody is told.
  std::function<void(int status)> on_refused;
  // Connections that have not sent a whole request yet (a TLS handshake, a
  // head or body on its way), from all clients together: one more closes
  // the oldest of them. A client sends its request within a second or so,
  // so a flood of connections that never do pushes out its own. Bounds
  // their memory (about 47 KB each over TLS). 0 = no limit. Default 0.
  size_t max_fresh_connections = 0;
  // Strict-Transport-Security value (RFC 6797) added to every answer on a
  // TLS connection, e.g. "max-age=31536000"; never over plain HTTP (section
  // 7.2). Empty = none. Default empty.
  std::string strict_transport_security;
  // Listener and connection settings. connection.idle_timeout is ignored
  // (the server runs the timers above); max_input_bytes also bounds what a
  // taken-over connection may leave unconsumed.
  StreamListenerOptions listener;
};

// Counters since creation, for metrics.
struct HttpServerStats {
  uint64_t connections = 0;   // accepted connections
  uint64_t requests = 0;      // complete requests passed to the handler
  uint64_t bad_requests = 0;  // requests answered by the parser's error (4xx/5xx)
  uint64_t timeouts = 0;      // 408 answers
  uint64_t upgrades = 0;      // connections taken over
};

// Handles one request. Runs on the loop thread; must not block (hand
// blocking work to a WorkQueue). An exception escaping it is logged and
// answered 500.
using HttpHandler = std::function<void(HttpRequest request, Responder responder)>;

class HttpServer {
 public:
  // Listens on `bind_address` (port 0 = any; see local_address()). `tls`
  // null = plain HTTP, else a server TlsContext.
  static base::Result<std::unique_ptr<HttpServer>> Create(EventLoop& loop,
                                                          const base::SocketAddress& bind_address,
                                                          std::shared_ptr<TlsContext> tls,
                                                          const HttpServerOptions& options,
                                                          HttpHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // New TLS context for connections accepted from now on (certificate
  // reload). Errors for a plain listener.
  [[nodiscard]] base::Status SetTlsContext(std::shared_ptr<TlsContext> tls);

  // See the shutdown notes above. Idempotent.
  void Stop();
  bool stopping() const { return stopping_; }
  // Close() on every connection, HTTP and taken over, even with a request in
  // flight (its Responder becomes a no-op). Close callbacks run later. The
  // last step of a drain whose deadline passed.
  void CloseAll();

  const base::SocketAddress& local_address() const { return listener_->local_address(); }
  // Open connections, HTTP and taken over, until their close callbacks ran.
  size_t connection_count() const { return listener_->connection_count(); }
  // Connections still speaking HTTP.
  size_t http_connection_count() const { return connections_.size(); }
  const HttpServerStats& stats() const { return stats_; }

 private:
  friend class HttpConnection;

  HttpServer(EventLoop& loop, const HttpServerOptions& options, HttpHandler handler);
  void OnAccept(StreamConnection& stream);
  // Drops the state of a closed or taken-over connection (deferred).
  void Forget(uint64_t id);
  // The Date header value, formatted once per second.
  std::string_view CurrentDate();

  EventLoop& loop_;
  HttpServerOptions options_;
  HttpHandler handler_;
  std::unique_ptr<StreamListener> listener_;
  std::unordered_map<uint64_t, std::shared_ptr<HttpConnection>> connections_;
  // Ids of the connections that have sent no whole request yet; ids grow
  // with the accepts, so the first is the oldest.
  std::set<uint64_t> fresh_;
  HttpServerStats stats_;
  bool stopping_ = false;
  int64_t date_second_ = -1;
  std::string date_;
};

}  // namespace turnkey::net
