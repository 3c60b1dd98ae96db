// Validation of the payloads of the client's call events (DESIGN.md
// section 5). Pure functions over the event's first argument; anything a
// client sends is either accepted or answered with one of the error strings
// of signal/call.h, never trusted further.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include "metrics/turnkey_metrics.h"
#include "signal/call.h"

namespace turnkey::signal {

// initiateCall {receiverId or receiverHandle, callType: "audio" | "video"}.
struct InitiateRequest {
  // Exactly one is non-empty: receiverId when the payload has a non-empty
  // string receiverId (it wins if both are given), else receiverHandle.
  std::string receiver_id;
  std::string receiver_handle;
  metrics::CallType type = metrics::CallType::kAudio;

  friend bool operator==(const InitiateRequest&, const InitiateRequest&) = default;
};

// kErrReceiverIdRequired when neither receiverId nor receiverHandle is a
// non-empty string (or the payload is not an object); kErrInvalidCallType
// unless callType is exactly "audio" or "video".
std::expected<InitiateRequest, std::string_view> ParseInitiateCall(const Json& payload);

// The payload's callId if it is a non-empty string, else nullopt (which the
// caller answers with kErrCallIdRequired). The view points into `payload`.
std::optional<std::string_view> PayloadCallId(const Json& payload);

// reportIce {callId, state, localCandidateType, remoteCandidateType,
// relayProtocol, rttMs} without the callId. Only `state` is required.
struct IceReportFields {
  metrics::IceResult result = metrics::IceResult::kConnected;
  metrics::CandidateType local_candidate_type = metrics::CandidateType::kUnknown;
  metrics::CandidateType remote_candidate_type = metrics::CandidateType::kUnknown;
  std::string relay_protocol;
  std::optional<int64_t> rtt_ms;
  // For a failed report: why, from `localCandidates` (candidates this side
  // gathered, by type: {"host": 2, "relay": 0, ...}) and `iceErrors` (the
  // ICE server errors it got: [{"url": "turn:...", "errorCode": 701}, ...],
  // as RTCPeerConnection's icecandidateerror events give them).
  metrics::IceFailureCause cause = metrics::IceFailureCause::kUnknown;
};

// kErrInvalidIceState unless state is "connected" or "failed". Candidate
// types go through metrics::ParseCandidateType (absent or not a string:
// kUnknown); relayProtocol is kept only if "udp", "tcp" or "tls"; rttMs only
// if a finite number in 0..600000 (rounded to a whole number).
std::expected<IceReportFields, std::string_view> ParseIceReport(const Json& payload);

}  // namespace turnkey::signal
