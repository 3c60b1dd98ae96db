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

// What a failed report's localCandidates and iceErrors say (IceReportFields).
metrics::IceFailureCause FailureCause(const Json& payload) {
  auto candidates = payload.find("localCandidates");
  auto errors = payload.find("iceErrors");
  const bool has_candidates = candidates != payload.end() && candidates->is_object();
  const bool has_errors = errors != payload.end() && errors->is_array();
  if (!has_candidates && !has_errors) {
    return metrics::IceFailureCause::kUnknown;
  }
  if (has_candidates) {
    auto relay = candidates->find("relay");
    if (relay != candidates->end() && relay->is_number() && relay->get<double>() >= 1) {
      return metrics::IceFailureCause::kChecksFailed;
    }
  }
  bool auth = false;
  bool unreachable = false;
  if (has_errors) {
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
      } else {
        unreachable = true;  // 701 (no answer, no route), 403, 437, 486, 508, ...
      }
    }
  }
  if (auth) {
    return metrics::IceFailureCause::kTurnAuth;
  }
  if (unreachable) {
    return metrics::IceFailureCause::kTurnUnreachable;
  }
  return metrics::IceFailureCause::kNoRelay;
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
