#include "signal/call_metrics_sink.h"

#include <chrono>

namespace turnkey::signal {

void SignalMetricsCallSink::CallEnded(metrics::CallType type, metrics::CallStatus status) {
  metrics_.calls[type][status].Inc(shard_);
}

void SignalMetricsCallSink::CallSetup(base::Duration setup) {
  metrics_.call_setup_seconds.Observe(shard_, std::chrono::duration<double>(setup).count());
}

void SignalMetricsCallSink::IceReport(metrics::IceResult result, metrics::CandidateType local,
                                      metrics::CandidateType remote) {
  metrics_.ice_reports[result][local][remote].Inc(shard_);
}

}  // namespace turnkey::signal
