// SignalMetricsCallSink: the CallMetricsSink app/ wires to the exported
// metrics (metrics::SignalMetrics, DESIGN.md section 7).
//
// `metrics` and `shard` must outlive it; use it on the thread that owns
// `shard` (the signaling loop's, from Registry::AcquireShard()).
#pragma once

#include "metrics/shard.h"
#include "metrics/turnkey_metrics.h"
#include "signal/call_sinks.h"

namespace turnkey::signal {

class SignalMetricsCallSink final : public CallMetricsSink {
 public:
  SignalMetricsCallSink(const metrics::SignalMetrics& metrics, metrics::Shard& shard)
      : metrics_(metrics), shard_(shard) {}

  void CallEnded(metrics::CallType type, metrics::CallStatus status) override;
  void CallSetup(base::Duration setup, base::Duration since_answer) override;
  void IceReport(metrics::IceResult result, metrics::CandidateType local,
                 metrics::CandidateType remote, std::optional<int64_t> rtt_ms) override;
  void IceFailure(metrics::IceFailureCause cause) override;

 private:
  const metrics::SignalMetrics& metrics_;
  metrics::Shard& shard_;
};

}  // namespace turnkey::signal
