#include "net/http_server.h"

#include "base/clock.h"
#include "base/log.h"
#include "net/event_loop.h"
#include "net/http_connection.h"
#include "net/tls_context.h"

namespace turnkey::net {

base::Result<std::unique_ptr<HttpServer>> HttpServer::Create(
    EventLoop& loop, const base::SocketAddress& bind_address, std::shared_ptr<TlsContext> tls,
    const HttpServerOptions& options, HttpHandler handler) {
  if (!handler) {
    return base::InvalidArgument("http server needs a handler");
  }
  if (options.max_header_bytes == 0 || options.max_target_bytes == 0) {
    return base::InvalidArgument("max_header_bytes and max_target_bytes must be positive");
  }
  std::unique_ptr<HttpServer> server(new HttpServer(loop, options, std::move(handler)));
  StreamListenerOptions listener_options = options.listener;
  listener_options.connection.idle_timeout = std::chrono::milliseconds(0);
  listener_options.alpn = AlpnPolicy::kHttp11;
  // One address per HTTP service (signal.listen, metrics.listen): "::"
  // takes IPv4 clients too, as "all interfaces" promises; they are seen as
  // their IPv4 addresses (StreamListener unmaps them).
  if (bind_address.is_v6() && bind_address.IsUnspecified()) {
    listener_options.v6_only = false;
  }
  // What nginx answers too: "curl http://" against the TLS port learns why.
  listener_options.connection.plain_http_answer =
      "HTTP/1.1 400 Bad Request\r\n"
      "Content-Type: text/plain; charset=utf-8\r\n"
      "Content-Length: 46\r\n"
      "Connection: close\r\n"
      "\r\n"
      "This port speaks HTTPS: use an https:// URL.\r\n";
  HttpServer* raw = server.get();
  auto listener =
      StreamListener::Create(loop, bind_address, listener_options, std::move(tls),
                             [raw](StreamConnection& stream) { raw->OnAccept(stream); });
  if (!listener) {
    return std::unexpected(listener.error());
  }
  server->listener_ = std::move(*listener);
  return server;
}

HttpServer::HttpServer(EventLoop& loop, const HttpServerOptions& options, HttpHandler handler)
    : loop_(loop), options_(options), handler_(std::move(handler)) {}

HttpServer::~HttpServer() {
  // The listener frees the streams without callbacks before our
  // per-connection state (whose callbacks point at it) goes.
  listener_.reset();
  connections_.clear();
}

base::Status HttpServer::SetTlsContext(std::shared_ptr<TlsContext> tls) {
  return listener_->SetTlsContext(std::move(tls));
}

void HttpServer::Stop() {
  if (stopping_) {
    return;
  }
  stopping_ = true;
  // Closed, not just paused: a client connecting during the drain is
  // refused at once rather than left in the kernel's backlog until exit.
  listener_->CloseListeningSocket();
  // Shutdown() never calls back synchronously (stream close callbacks run
  // later), so the map is not modified while iterating.
  for (auto& [id, connection] : connections_) {
    connection->Shutdown();
  }
}

void HttpServer::OnAccept(StreamConnection& stream) {
  if (options_.max_fresh_connections > 0 && fresh_.size() >= options_.max_fresh_connections) {
    // Out of the set now: its close callback (and Forget) runs later.
    const uint64_t oldest = *fresh_.begin();
    fresh_.erase(fresh_.begin());
    if (auto it = connections_.find(oldest); it != connections_.end()) {
      TK_LOG_WARN_EVERY(std::chrono::seconds(10),
                        "http: {} connections have sent no request yet; closing the oldest",
                        fresh_.size() + 1);
      it->second->Evict();
    }
  }
  fresh_.insert(stream.id());
  auto connection = std::make_shared<HttpConnection>(*this, stream);
  connections_[stream.id()] = connection;
  ++stats_.connections;
  connection->Start();
}

void HttpServer::Forget(uint64_t id) {
  fresh_.erase(id);
  auto node = connections_.extract(id);
  if (!node.empty()) {
    // Called from the connection's own callbacks; it goes after them.
    loop_.DeleteLater(std::make_unique<std::shared_ptr<HttpConnection>>(std::move(node.mapped())));
  }
}

void HttpServer::CloseAll() { listener_->CloseAll(); }

std::string_view HttpServer::CurrentDate() {
  const int64_t now = base::SystemClock::Instance().UnixSeconds();
  if (now != date_second_) {
    date_second_ = now;
    date_ = FormatHttpDate(now);
  }
  return date_;
}

}  // namespace turnkey::net
