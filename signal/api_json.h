// The JSON shapes of the account API's data: users, contacts, call history.
// Pure functions. Times are ISO 8601 UTC strings with milliseconds
// ("2024-05-01T12:00:00.000Z"), what JavaScript's Date parses.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "sql/store.h"

namespace turnkey::signal {

std::string FormatIsoTime(int64_t unix_ms);

// The signed-in user's own view: {id, email, handle, displayName,
// createdAt, updatedAt}. Never the password hash.
nlohmann::json UserJson(const sql::User& user);

// What anyone may see of a user: {id, handle, displayName}.
nlohmann::json UserSummaryJson(const sql::UserSummary& user);

// A contact: the summary plus addedAt.
nlohmann::json ContactJson(const sql::Contact& contact);

// A call as stored: callId, type, status, duration, endReason, callerId,
// receiverId, createdAt, answeredAt, endedAt, ice {caller, callee}.
nlohmann::json CallJson(const sql::Call& call);

// One call of a user's history: {callId, type, status, direction
// ("incoming" | "outgoing"), isMissed, duration (seconds), endReason,
// callerId, receiverId, peer {id, handle, displayName}, createdAt,
// answeredAt, endedAt (null until then)}.
nlohmann::json HistoryEntryJson(const sql::HistoryEntry& entry);

}  // namespace turnkey::signal
