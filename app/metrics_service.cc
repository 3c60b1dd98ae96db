#include "app/metrics_service.h"

#include <utility>

#include "base/log.h"
#include "metrics/registry.h"
#include "net/event_loop.h"
#include "net/http_server.h"
#include "net/responder.h"

namespace turnkey::app {

base::Result<std::unique_ptr<MetricsService>> MetricsService::Create(
    const base::SocketAddress& listen, std::string path, metrics::Registry& registry,
    std::function<void()> collect) {
  std::unique_ptr<MetricsService> service(new MetricsService());
  auto loop = net::EventLoop::Create();
  if (!loop) {
    return std::unexpected(loop.error());
  }
  service->loop_ = std::move(*loop);
  net::HttpServerOptions options;
  options.max_body_bytes = 0;
  auto handler = [&registry, path = std::move(path), collect = std::move(collect)](
                     net::HttpRequest request, net::Responder responder) {
    if (request.path != path) {
      responder.Respond(net::HttpResponse::Error(404));
      return;
    }
    if (request.method != "GET" && request.method != "HEAD") {
      net::HttpResponse response = net::HttpResponse::Error(405);
      response.headers.Set("Allow", "GET, HEAD");
      responder.Respond(std::move(response));
      return;
    }
    if (collect) {
      collect();
    }
    responder.Respond(net::HttpResponse::Text(200, registry.Render(),
                                              std::string(metrics::kExpositionContentType)));
  };
  auto server = net::HttpServer::Create(*service->loop_, listen, nullptr, options, handler);
  if (!server) {
    return base::Unavailable("metrics listener " + listen.ToString() + ": " +
                             server.error().message);
  }
  service->server_ = std::move(*server);
  return service;
}

MetricsService::~MetricsService() { Stop(); }

void MetricsService::Start() {
  thread_ = std::thread([this] { loop_->Run(); });
}

void MetricsService::Stop() {
  if (thread_.joinable()) {
    loop_->Stop();
    thread_.join();
  }
  server_.reset();
}

base::SocketAddress MetricsService::local_address() const { return server_->local_address(); }

}  // namespace turnkey::app
