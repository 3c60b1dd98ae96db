// The interfaces CallManager talks to the rest of the daemon through: where
// events go (CallEmitter), where calls are persisted (CallRecorder), what is
// counted (CallMetricsSink) and how a callee is looked up (UserDirectory).
//
// All are called on the thread that drives the CallManager (the signaling
// loop), synchronously, from inside a CallManager method. An implementation
// must not call back into the CallManager (queue the work instead: e.g. a
// failed socket write that closes the socket reports OnSocketDisconnected
// after the current call returned) and must not block (CallRecorder
// implementations hand the record to a work queue).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "base/clock.h"
#include "metrics/turnkey_metrics.h"
#include "signal/call.h"

namespace turnkey::signal {

// Sends one Socket.IO event to one socket.
class CallEmitter {
 public:
  virtual ~CallEmitter() = default;
  // Emits `event` with the single argument `payload` to `socket`. A socket
  // that has gone meanwhile is the implementation's to ignore.
  virtual void Emit(uint64_t socket, std::string_view event, Json payload) = 0;
};

// Persistence of the call history. For every call: CallCreated once, then at
// most one CallAnswered, then exactly one CallEnded; IceReported only after
// CallAnswered, also after CallEnded for up to ended_call_retention (a side's
// report that follows the other side's endCall, CallManagerOptions).
class CallRecorder {
 public:
  virtual ~CallRecorder() = default;
  virtual void CallCreated(const CallInfo& call) = 0;
  virtual void CallAnswered(const CallInfo& call, base::MonoTime answered_at) = 0;
  virtual void CallEnded(const CallEndRecord& end) = 0;
  virtual void IceReported(const IceReportRecord& report) = 0;
};

// Counting (metrics::SignalMetrics; see SignalMetricsCallSink).
class CallMetricsSink {
 public:
  virtual ~CallMetricsSink() = default;
  // A call ended with its final status (turnkey_calls_total{type,status}).
  virtual void CallEnded(metrics::CallType type, metrics::CallStatus status) = 0;
  // The first reportIce with state "connected" of an answered call arrived,
  // `setup` after initiateCall, ringing included (turnkey_call_setup_seconds),
  // and `since_answer` after acceptCall (turnkey_ice_connect_seconds). Once
  // per call at most.
  virtual void CallSetup(base::Duration setup, base::Duration since_answer) = 0;
  // A side's first accepted reportIce (turnkey_ice_reports_total{result,
  // local,remote}; its rttMs, when connected, turnkey_ice_rtt_seconds).
  virtual void IceReport(metrics::IceResult result, metrics::CandidateType local,
                         metrics::CandidateType remote, std::optional<int64_t> rtt_ms) = 0;
  // A side's first report of a call, when it is failed: why
  // (turnkey_ice_failures_total{cause}).
  virtual void IceFailure(metrics::IceFailureCause /*cause*/) {}
};

// Synchronous user lookups for CallManager::OnInitiateCall. Meant to be
// answered from memory (a cache the app keeps); an app whose lookups need
// the database uses BeginInitiateCall / FinishInitiateCall instead and
// resolves on its work queue in between.
class UserDirectory {
 public:
  virtual ~UserDirectory() = default;
  virtual std::optional<UserInfo> FindById(std::string_view user_id) = 0;
  // Handles compare case-insensitively for ASCII letters (as sql::Store).
  virtual std::optional<UserInfo> FindByHandle(std::string_view handle) = 0;
};

}  // namespace turnkey::signal
