// MetricsService: the Prometheus endpoint on its own listener
// (metrics.listen, metrics.path) and its own small event-loop thread, so a
// scrape never runs on a relay or signaling thread.
//
// Before each render the `collect` hook runs (e.g. RelayMetricsBridge), so
// the numbers are current at every scrape. Only GET and HEAD of the path are
// answered; anything else is 404 / 405, with a body or without (a body on a
// GET or HEAD of the path is 413).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "base/address.h"
#include "base/status.h"
#include "metrics/registry.h"
#include "metrics/turnkey_metrics.h"

namespace turnkey::net {
class EventLoop;
class HttpServer;
}  // namespace turnkey::net

namespace turnkey::app {

class MetricsService {
 public:
  // Binds now (so a taken port fails at start); serving starts with Start().
  // `registry` must outlive the service. `collect` runs on the service's
  // thread before every render. Besides `path` it answers GET /healthz (200
  // while the process serves) and GET /readyz (200, or 503 while `draining`
  // is not 0, i.e. turnkey_draining):
  // health checks for a node without the signaling port (TURN only).
  static base::Result<std::unique_ptr<MetricsService>> Create(const base::SocketAddress& listen,
                                                              std::string path,
                                                              metrics::Registry& registry,
                                                              std::function<void()> collect,
                                                              metrics::Gauge draining);
  ~MetricsService();

  void Start();
  void Stop();
  base::SocketAddress local_address() const;
  // The service's loop, for work posted from other threads (the watchdog's
  // liveness beats).
  net::EventLoop& loop() { return *loop_; }

 private:
  MetricsService() = default;

  std::unique_ptr<net::EventLoop> loop_;
  std::unique_ptr<net::HttpServer> server_;
  std::thread thread_;
};

// The process gauges: SetProcessStartTime once at start, SampleProcess
// before each render (the `collect` hook) to read descriptors and resident
// memory from /proc. Listing /proc/self/fd takes milliseconds with many
// connections open, so it runs there, not in a gauge callback under the
// registry's mutex, which the serving threads take too.
void SetProcessStartTime(const metrics::ProcessMetrics& metrics);
void SampleProcess(const metrics::ProcessMetrics& metrics);
// The outcome of a config load: at start (applied) and after each SIGHUP.
// A refused one sets turnkey_config_last_reload_successful to 0 and leaves
// the time of the last applied one.
void RecordConfigLoad(const metrics::ProcessMetrics& metrics, bool applied);

}  // namespace turnkey::app
