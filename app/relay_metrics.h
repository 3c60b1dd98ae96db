// RelayMetricsBridge: carries the relay workers' counters into the metrics
// registry at scrape time.
//
// The relay keeps its own single-writer counters (relay/turn_counters.h) so
// its per-packet path touches nothing else. Before every render the bridge
// sums them over the workers and adds what changed since the last scrape to
// the registry's counters, and sets the gauges: the exported numbers are
// live (bytes of a running allocation count now) without the relay knowing
// about metrics at all.
//
// Collect() is called on the metrics thread only; the RelayService and the
// TurnMetrics must outlive the bridge.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "metrics/registry.h"
#include "metrics/turnkey_metrics.h"
#include "relay/relay_service.h"

namespace turnkey::app {

class RelayMetricsBridge {
 public:
  RelayMetricsBridge(const relay::RelayService& service, const metrics::TurnMetrics& metrics,
                     metrics::Registry& registry);
  void Collect();

 private:
  // Adds value - last to `counter` and remembers value.
  void Feed(const metrics::Counter& counter, uint64_t value, uint64_t& last);

  const relay::RelayService& service_;
  const metrics::TurnMetrics& metrics_;
  metrics::Shard& shard_;
  std::vector<uint64_t> last_;  // one slot per fed counter, in Collect() order
  size_t cursor_ = 0;
};

}  // namespace turnkey::app
