// The plain data of the call flow (DESIGN.md section 5): call states, the
// records CallManager hands to its persistence sink, the error strings of
// `callError`, and the end reasons of `callEnded`.
//
// Times are monotonic (base::MonoTime) because CallManager never reads a
// clock. Every record is handed to its sink synchronously at the `now` of
// the event that produced it, so an adapter that needs wall time (the SQL
// store keeps Unix milliseconds) may stamp it with its own clock then.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "metrics/turnkey_metrics.h"

namespace turnkey::signal {

// Order-preserving JSON, as in socketio_packet.h.
using Json = nlohmann::ordered_json;

// An empty object with room for `members`. An ordered_json object is a
// vector of members that copies them (their strings, their objects) each
// time it grows, so objects filled member by member start with this.
Json JsonObject(size_t members);

// The server-owned state of a call. Every change goes through
// CallManager::Transition, which allows only ringing -> active,
// ringing -> ended and active -> ended.
enum class CallState : uint8_t {
  kRinging,  // offered: every device of the callee rings; nobody answered yet
  kActive,   // accepted on one callee device; the caller's and that device's sockets signal
  kEnded,    // final; the call leaves the live table (a tombstone keeps its id a while)
};
// "ringing", "active", "ended".
std::string_view CallStateName(CallState state);

// Which participant of a call.
enum class CallSide : uint8_t {
  kCaller,  // the user who sent initiateCall
  kCallee,  // the user who was rung
};
// "caller", "callee".
std::string_view CallSideName(CallSide side);

// `callError` / ack error strings. The first six are the apps' integration
// guide's; the others are turnkey's.
inline constexpr std::string_view kErrReceiverIdRequired = "receiverId required";
inline constexpr std::string_view kErrReceiverNotFound = "Receiver not found";
inline constexpr std::string_view kErrCallIdRequired = "callId required";
inline constexpr std::string_view kErrCallNotFound = "Call not found";
inline constexpr std::string_view kErrNotAuthorized = "Not authorized";
inline constexpr std::string_view kErrCallAlreadyProcessed = "Call already processed";
inline constexpr std::string_view kErrUserBusy = "User busy";
inline constexpr std::string_view kErrRateLimited = "Rate limited";
inline constexpr std::string_view kErrUserNotAvailable = "User not available";
inline constexpr std::string_view kErrCannotCallYourself = "Cannot call yourself";
inline constexpr std::string_view kErrInvalidCallType = "Invalid callType";
inline constexpr std::string_view kErrAlreadyInCall = "Already in a call";
inline constexpr std::string_view kErrShuttingDown = "Server is shutting down";
inline constexpr std::string_view kErrOfferRequired = "offer required";
inline constexpr std::string_view kErrAnswerRequired = "answer required";
inline constexpr std::string_view kErrCandidateRequired = "candidate required";
inline constexpr std::string_view kErrInvalidIceState = "Invalid ICE state";
inline constexpr std::string_view kErrCallNotActive = "Call not active";

// `reason` values of callEnded / callRejected and of CallEndRecord.
inline constexpr std::string_view kReasonHangup = "hangup";
inline constexpr std::string_view kReasonRejected = "rejected";
inline constexpr std::string_view kReasonBusy = "busy";
inline constexpr std::string_view kReasonCancelled = "cancelled";
inline constexpr std::string_view kReasonTimeout = "timeout";
inline constexpr std::string_view kReasonUnavailable = "unavailable";
inline constexpr std::string_view kReasonConnectionLost = "connection_lost";
// The history's reason for an answered call whose media never connected (an
// ICE report said failed, none connected); callEnded still says "hangup".
inline constexpr std::string_view kReasonIceFailed = "ice_failed";
inline constexpr std::string_view kReasonServerShutdown = "server_shutdown";
// Told to a participant's old socket when the same user rejoined the call
// from another socket; the call itself goes on.
inline constexpr std::string_view kReasonRejoinedElsewhere = "rejoined_elsewhere";

// What other users see of a user: the `caller` object of incomingCall
// ({id, handle, displayName}).
struct UserInfo {
  std::string id;
  std::string handle;
  std::string display_name;

  friend bool operator==(const UserInfo&, const UserInfo&) = default;
};
// {"id", "handle", "displayName"}.
Json UserInfoJson(const UserInfo& user);

// A call as created: what CallRecorder::CallCreated receives.
struct CallInfo {
  std::string id;
  std::string caller_id;
  std::string callee_id;
  metrics::CallType type = metrics::CallType::kAudio;
  base::MonoTime created_at{};

  friend bool operator==(const CallInfo&, const CallInfo&) = default;
};

// A call's end: its final status, why, and when.
struct CallEndRecord {
  CallInfo call;
  metrics::CallStatus status = metrics::CallStatus::kCompleted;
  std::string reason;    // one of the kReason* values above
  std::string ended_by;  // user id; empty when the server ended it (timeout, shutdown)
  std::optional<base::MonoTime> answered_at;  // nullopt if never accepted
  base::MonoTime ended_at{};
  // Whole seconds from accept to end, rounded down; 0 if never accepted.
  int64_t duration_seconds = 0;

  friend bool operator==(const CallEndRecord&, const CallEndRecord&) = default;
};

// One `reportIce` of one side, validated and normalised.
struct IceReportRecord {
  std::string call_id;
  std::string user_id;
  CallSide side = CallSide::kCaller;
  metrics::IceResult result = metrics::IceResult::kConnected;  // state: connected | failed
  metrics::CandidateType local_candidate_type = metrics::CandidateType::kUnknown;
  metrics::CandidateType remote_candidate_type = metrics::CandidateType::kUnknown;
  std::string relay_protocol;     // "udp", "tcp", "tls", or "" (absent or anything else)
  std::optional<int64_t> rtt_ms;  // a whole number 0..600000, else nullopt
  // Why a failed report failed (see IceReportFields::cause); kUnknown for a
  // connected one, where it means nothing.
  metrics::IceFailureCause cause = metrics::IceFailureCause::kUnknown;
  base::MonoTime reported_at{};

  friend bool operator==(const IceReportRecord&, const IceReportRecord&) = default;
};

}  // namespace turnkey::signal
