#include "signal/call_metrics_sink.h"

#include <chrono>

namespace turnkey::signal {

void SignalMetricsCallSink::CallEnded(metrics::CallType type, metrics::CallStatus status) {
  metrics_.calls[type][status].Inc(shard_);
}

void SignalMetricsCallSink::CallSetup(base::Duration setup, base::Duration since_answer) {
  metrics_.call_setup_seconds.Observe(shard_, std::chrono::duration<double>(setup).count());
  metrics_.ice_connect_seconds.Observe(shard_, std::chrono::duration<double>(since_answer).count());
}

void SignalMetricsCallSink::IceReport(metrics::IceResult result, metrics::CandidateType local,
                                      metrics::CandidateType remote,
                                      std::optional<int64_t> rtt_ms) {
  metrics_.ice_reports[result][local][remote].Inc(shard_);
  if (result == metrics::IceResult::kConnected && rtt_ms) {
    metrics_.ice_rtt_seconds.Observe(shard_, static_cast<double>(*rtt_ms) / 1000.0);
  }
}

void SignalMetricsCallSink::IceFailure(metrics::IceFailureCause cause) {
  metrics_.ice_failures[cause].Inc(shard_);
}

}  // namespace turnkey::signal
