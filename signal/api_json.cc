#include "signal/api_json.h"

#include <fmt/format.h>
#include <time.h>

namespace turnkey::signal {

std::string FormatIsoTime(int64_t unix_ms) {
  int64_t seconds = unix_ms / 1000;
  int64_t millis = unix_ms % 1000;
  if (millis < 0) {
    millis += 1000;
    --seconds;
  }
  const time_t t = static_cast<time_t>(seconds);
  struct tm parts {};
  if (gmtime_r(&t, &parts) == nullptr) {
    return "1970-01-01T00:00:00.000Z";
  }
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", parts.tm_year + 1900,
                     parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec,
                     millis);
}

nlohmann::json UserJson(const sql::User& user) {
  return nlohmann::json{{"id", user.id},
                        {"email", user.email},
                        {"handle", user.handle},
                        {"displayName", user.display_name},
                        {"createdAt", FormatIsoTime(user.created_at_ms)},
                        {"updatedAt", FormatIsoTime(user.updated_at_ms)}};
}

nlohmann::json UserSummaryJson(const sql::UserSummary& user) {
  return nlohmann::json{
      {"id", user.id}, {"handle", user.handle}, {"displayName", user.display_name}};
}

nlohmann::json ContactJson(const sql::Contact& contact) {
  nlohmann::json out = UserSummaryJson(contact.user);
  out["addedAt"] = FormatIsoTime(contact.added_at_ms);
  return out;
}

namespace {

// One side's `reportIce`, or null when that side sent none.
nlohmann::json IceJson(const std::optional<sql::IceReport>& report) {
  if (!report) {
    return nullptr;
  }
  auto text_or_null = [](const std::string& text) {
    return text.empty() ? nlohmann::json(nullptr) : nlohmann::json(text);
  };
  return nlohmann::json{
      {"state", report->state},
      {"localCandidateType", text_or_null(report->local_candidate_type)},
      {"remoteCandidateType", text_or_null(report->remote_candidate_type)},
      {"relayProtocol", text_or_null(report->relay_protocol)},
      {"rttMs", report->rtt_ms ? nlohmann::json(*report->rtt_ms) : nlohmann::json(nullptr)},
      {"failureCause", text_or_null(report->failure_cause)},
      {"reportedAt", FormatIsoTime(report->reported_at_ms)}};
}

}  // namespace

nlohmann::json CallJson(const sql::Call& call) {
  auto optional_time = [](const std::optional<int64_t>& ms) -> nlohmann::json {
    return ms ? nlohmann::json(FormatIsoTime(*ms)) : nlohmann::json(nullptr);
  };
  return nlohmann::json{
      {"callId", call.id},
      {"type", sql::CallTypeName(call.type)},
      {"status", sql::CallStatusName(call.status)},
      {"duration", call.duration_seconds},
      {"endReason",
       call.end_reason.empty() ? nlohmann::json(nullptr) : nlohmann::json(call.end_reason)},
      {"callerId", call.caller_id},
      {"receiverId", call.callee_id},
      {"createdAt", FormatIsoTime(call.created_at_ms)},
      {"answeredAt", optional_time(call.answered_at_ms)},
      {"endedAt", optional_time(call.ended_at_ms)},
      {"ice", {{"caller", IceJson(call.caller_ice)}, {"callee", IceJson(call.callee_ice)}}}};
}

nlohmann::json HistoryEntryJson(const sql::HistoryEntry& entry) {
  nlohmann::json out = CallJson(entry.call);
  out["direction"] = entry.direction == sql::CallDirection::kIncoming ? "incoming" : "outgoing";
  out["isMissed"] = entry.missed;
  out["peer"] = entry.peer.id.empty() ? nlohmann::json(nullptr) : UserSummaryJson(entry.peer);
  return out;
}

}  // namespace turnkey::signal
