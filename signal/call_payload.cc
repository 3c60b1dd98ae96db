#include "signal/call_payload.h"

#include <cmath>

namespace turnkey::signal {
namespace {

// Longest round-trip time kept: anything above ten minutes is not a
// measurement.
constexpr double kMaxRttMs = 600'000;

// The member `key` of `payload` if `payload` is an object and the member a
// string; else nullptr.
const std::string* StringMember(const Json& payload, std::string_view key) {
  if (!payload.is_object()) {
    return nullptr;
  }
  auto it = payload.find(key);
  if (it == payload.end() || !it->is_string()) {
    return nullptr;
  }
  return it->get_ptr<const std::string*>();
}

metrics::CandidateType CandidateMember(const Json& payload, std::string_view key) {
  const std::string* text = StringMember(payload, key);
  return text == nullptr ? metrics::CandidateType::kUnknown : metrics::ParseCandidateType(*text);
}

}  // namespace

std::expected<InitiateRequest, std::string_view> ParseInitiateCall(const Json& payload) {
  InitiateRequest request;
  const std::string* id = StringMember(payload, "receiverId");
  const std::string* handle = StringMember(payload, "receiverHandle");
  if (id != nullptr && !id->empty()) {
    request.receiver_id = *id;
  } else if (handle != nullptr && !handle->empty()) {
    // As in user search, "@bob" names bob: handles never contain '@', and
    // people write them with one.
    request.receiver_handle = handle->starts_with('@') ? handle->substr(1) : *handle;
    if (request.receiver_handle.empty()) {
      return std::unexpected(kErrReceiverIdRequired);
    }
  } else {
    return std::unexpected(kErrReceiverIdRequired);
  }
  const std::string* type = StringMember(payload, "callType");
  if (type != nullptr && *type == "audio") {
    request.type = metrics::CallType::kAudio;
  } else if (type != nullptr && *type == "video") {
    request.type = metrics::CallType::kVideo;
  } else {
    return std::unexpected(kErrInvalidCallType);
  }
  return request;
}

std::optional<std::string_view> PayloadCallId(const Json& payload) {
  const std::string* id = StringMember(payload, "callId");
  if (id == nullptr || id->empty()) {
    return std::nullopt;
  }
  return std::string_view(*id);
}

namespace {

// How long a client gathers before a TURN server that never answers can be
// told from one that answers late.
constexpr double kSilentTurnMs = 5000;

// What a failed report's localCandidates and iceErrors say (IceReportFields).
metrics::IceFailureCause FailureCause(const Json& payload) {
  using metrics::IceFailureCause;
  // The call ended (the other side, or the user) before ICE came to a
  // verdict on this side, and after less gathering than a silent TURN
  // server takes to show (browsers retry one for several seconds): what had
  // not come yet may only have been late, and checks had no time to fail.
  auto ended = payload.find("endedBeforeIce");
  auto gathering_ms = payload.find("gatheringMs");
  const bool cut_short = ended != payload.end() && ended->is_boolean() && ended->get<bool>() &&
                         (gathering_ms == payload.end() || !gathering_ms->is_number() ||
                          gathering_ms->get<double>() < kSilentTurnMs);
  auto candidates = payload.find("localCandidates");
  if (candidates != payload.end() && candidates->is_object()) {
    auto relay = candidates->find("relay");
    if (relay != candidates->end() && relay->is_number() && relay->get<double>() >= 1) {
      return cut_short ? IceFailureCause::kUnknown : IceFailureCause::kChecksFailed;
    }
  }
  bool auth = false;
  bool refused = false;
  bool unreachable = false;
  auto errors = payload.find("iceErrors");
  if (errors != payload.end() && errors->is_array()) {
    size_t seen = 0;
    for (const Json& error : *errors) {
      if (++seen > 32) {
        break;  // a client's list, bounded by max_payload anyway
      }
      if (!error.is_object()) {
        continue;
      }
      const std::string* url = StringMember(error, "url");
      auto code = error.find("errorCode");
      if (url == nullptr || !url->starts_with("turn") || code == error.end() ||
          !code->is_number()) {
        continue;  // STUN servers' errors say nothing about the relay
      }
      const double value = code->get<double>();
      if (value == 401 || value == 431 || value == 441) {
        auth = true;  // refused credentials (431/441: integrity, wrong credentials)
      } else if (value >= 700 && value < 800) {
        unreachable = true;  // the browser's own: 701, no answer or no route
      } else {
        refused = true;  // the server's: 403, 437, 486 quota, 508 capacity, ...
      }
    }
  }
  if (auth) {
    return IceFailureCause::kTurnAuth;
  }
  if (refused) {
    return IceFailureCause::kTurnRefused;
  }
  if (unreachable) {
    return IceFailureCause::kTurnUnreachable;
  }
  // No relay candidate and no TURN error: it depends on whether TURN was
  // offered, and on whether gathering had begun when the client gave up.
  auto turn_uris = payload.find("turnUris");
  if (turn_uris == payload.end() || !turn_uris->is_number()) {
    return IceFailureCause::kUnknown;
  }
  if (turn_uris->get<double>() < 1) {
    return IceFailureCause::kNoRelay;
  }
  const std::string* gathering = StringMember(payload, "iceGatheringState");
  if (gathering == nullptr || *gathering == "new") {
    return IceFailureCause::kUnknown;
  }
  // Cut short while still gathering: not unreachable, maybe late. A
  // gathering that completed without a relay candidate is not late.
  if (cut_short && *gathering == "gathering") {
    return IceFailureCause::kUnknown;
  }
  // Offered, gathering, and no answer before the call gave up (a blackholed
  // TURN port, retried for longer than the setup time), or a browser that
  // reports no such errors.
  return IceFailureCause::kTurnUnreachable;
}

}  // namespace

std::expected<IceReportFields, std::string_view> ParseIceReport(const Json& payload) {
  IceReportFields fields;
  const std::string* state = StringMember(payload, "state");
  if (state != nullptr && *state == "connected") {
    fields.result = metrics::IceResult::kConnected;
  } else if (state != nullptr && *state == "failed") {
    fields.result = metrics::IceResult::kFailed;
  } else {
    return std::unexpected(kErrInvalidIceState);
  }
  fields.local_candidate_type = CandidateMember(payload, "localCandidateType");
  fields.remote_candidate_type = CandidateMember(payload, "remoteCandidateType");
  const std::string* protocol = StringMember(payload, "relayProtocol");
  if (protocol != nullptr && (*protocol == "udp" || *protocol == "tcp" || *protocol == "tls")) {
    fields.relay_protocol = *protocol;
  }
  auto rtt = payload.find("rttMs");
  if (rtt != payload.end() && rtt->is_number()) {
    const double value = rtt->get<double>();
    if (std::isfinite(value) && value >= 0 && value <= kMaxRttMs) {
      fields.rtt_ms = static_cast<int64_t>(std::llround(value));
    }
  }
  if (fields.result == metrics::IceResult::kFailed) {
    fields.cause = FailureCause(payload);
  }
  return fields;
}

}  // namespace turnkey::signal
