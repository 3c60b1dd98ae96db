#include "app/metrics_service.h"

#include <dirent.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <string_view>
#include <utility>

#include "base/log.h"
#include "metrics/registry.h"
#include "net/event_loop.h"
#include "net/http_server.h"
#include "net/responder.h"

namespace turnkey::app {

namespace {

// Entries of /proc/self/fd, less the one the listing itself holds open.
double OpenFileDescriptors() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) {
    return 0;
  }
  double count = 0;
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') {
      ++count;
    }
  }
  ::closedir(dir);
  return count > 0 ? count - 1 : 0;
}

double FileDescriptorLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) {
    return 0;
  }
  return static_cast<double>(limit.rlim_cur);
}

// The second field of /proc/self/statm: resident pages.
double ResidentBytes() {
  std::FILE* file = std::fopen("/proc/self/statm", "re");
  if (file == nullptr) {
    return 0;
  }
  unsigned long size = 0;
  unsigned long resident = 0;
  const int read = std::fscanf(file, "%lu %lu", &size, &resident);
  std::fclose(file);
  if (read != 2) {
    return 0;
  }
  return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE));
}

constexpr std::string_view kHealthPath = "/healthz";
constexpr std::string_view kReadyPath = "/readyz";

// The answer to a request for anything but GET or HEAD of `path` or of the
// health paths (404, or 405 with Allow: RFC 9110 section 15.5.6); nullopt
// for a scrape or a health check.
std::optional<net::HttpResponse> Refusal(const net::HttpRequest& request, std::string_view path) {
  if (request.path != path && request.path != kHealthPath && request.path != kReadyPath) {
    return net::HttpResponse::Error(404);
  }
  if (request.method != "GET" && request.method != "HEAD") {
    net::HttpResponse response = net::HttpResponse::Error(405);
    response.headers.Set("Allow", "GET, HEAD");
    return response;
  }
  return std::nullopt;
}

}  // namespace

base::Result<std::unique_ptr<MetricsService>> MetricsService::Create(
    const base::SocketAddress& listen, std::string path, metrics::Registry& registry,
    std::function<void()> collect, metrics::Gauge draining) {
  std::unique_ptr<MetricsService> service(new MetricsService());
  auto loop = net::EventLoop::Create();
  if (!loop) {
    return std::unexpected(loop.error());
  }
  service->loop_ = std::move(*loop);
  net::HttpServerOptions options;
  options.max_body_bytes = 0;
  // A body is refused by its size (413) as soon as the head is parsed,
  // before the handler runs; but for a method or path not served here no
  // body of any size would do, so the answer is the handler's 404 / 405.
  // A body on a scrape stays 413.
  options.error_response = [path](const net::HttpRequest& head,
                                  int status) -> std::optional<net::HttpResponse> {
    return status == 413 ? Refusal(head, path) : std::nullopt;
  };
  auto handler = [&registry, path = std::move(path), collect = std::move(collect), draining](
                     net::HttpRequest request, net::Responder responder) {
    if (std::optional<net::HttpResponse> refusal = Refusal(request, path)) {
      responder.Respond(std::move(*refusal));
      return;
    }
    if (request.path != path) {
      const bool ready = request.path == kHealthPath || draining.Value() == 0;
      const std::string_view status =
          request.path == kHealthPath ? "ok" : (ready ? "ready" : "draining");
      net::HttpResponse response = net::HttpResponse::Text(
          ready ? 200 : 503, fmt::format("{{\"status\":\"{}\"}}\n", status), "application/json");
      response.headers.Set("Cache-Control", "no-store");
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

void SetProcessStartTime(const metrics::ProcessMetrics& metrics) {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  metrics.start_time_seconds.Set(std::chrono::duration<double>(now).count());
}

void RecordConfigLoad(const metrics::ProcessMetrics& metrics, bool applied) {
  metrics.config_last_reload_successful.Set(applied ? 1 : 0);
  if (applied) {
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    metrics.config_last_reload_success_time.Set(std::chrono::duration<double>(now).count());
  }
}

void SampleProcess(const metrics::ProcessMetrics& metrics) {
  metrics.open_fds.Set(OpenFileDescriptors());
  metrics.max_fds.Set(FileDescriptorLimit());
  metrics.resident_memory_bytes.Set(ResidentBytes());
}

}  // namespace turnkey::app
