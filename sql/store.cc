#include "sql/store.h"

#include <fmt/format.h>

#include <array>
#include <utility>
#include <variant>

#include "base/crypto.h"

namespace turnkey::sql {

namespace {

constexpr std::array<std::pair<CallType, std::string_view>, 2> kCallTypes{{
    {CallType::kAudio, "audio"},
    {CallType::kVideo, "video"},
}};

constexpr std::array<std::pair<CallStatus, std::string_view>, 8> kCallStatuses{{
    {CallStatus::kRinging, "ringing"},
    {CallStatus::kActive, "active"},
    {CallStatus::kCompleted, "completed"},
    {CallStatus::kMissed, "missed"},
    {CallStatus::kRejected, "rejected"},
    {CallStatus::kCancelled, "cancelled"},
    {CallStatus::kBusy, "busy"},
    {CallStatus::kFailed, "failed"},
}};

template <typename Enum, size_t N>
std::string_view NameOf(const std::array<std::pair<Enum, std::string_view>, N>& table, Enum value) {
  for (const auto& [e, name] : table) {
    if (e == value) {
      return name;
    }
  }
  return "unknown";
}

template <typename Enum, size_t N>
std::optional<Enum> Parse(const std::array<std::pair<Enum, std::string_view>, N>& table,
                          std::string_view name) {
  for (const auto& [e, n] : table) {
    if (n == name) {
      return e;
    }
  }
  return std::nullopt;
}

}  // namespace

std::string GenerateId() { return base::RandomHex(16); }

std::string GenerateTimeOrderedId(int64_t now_ms) {
  // 48 bits of milliseconds last until the year 10889.
  const uint64_t ms = static_cast<uint64_t>(now_ms < 0 ? 0 : now_ms) & 0xFFFF'FFFF'FFFFull;
  return base::TimeOrderedId(static_cast<int64_t>(ms));
}

std::string_view CallTypeName(CallType type) { return NameOf(kCallTypes, type); }
std::string_view CallStatusName(CallStatus status) { return NameOf(kCallStatuses, status); }
std::string_view CallWriteKind(const CallWrite& write) {
  if (std::holds_alternative<Call>(write)) {
    return "insert";
  }
  return std::holds_alternative<CallStateUpdate>(write) ? "state" : "ice";
}

const std::string& CallWriteCallId(const CallWrite& write) {
  if (const auto* call = std::get_if<Call>(&write)) {
    return call->id;
  }
  if (const auto* state = std::get_if<CallStateUpdate>(&write)) {
    return state->call_id;
  }
  return std::get<IceUpdate>(write).call_id;
}

std::string_view CallSideName(CallSide side) {
  return side == CallSide::kCaller ? "caller" : "callee";
}
std::optional<CallType> ParseCallType(std::string_view name) { return Parse(kCallTypes, name); }
std::optional<CallStatus> ParseCallStatus(std::string_view name) {
  return Parse(kCallStatuses, name);
}

}  // namespace turnkey::sql
