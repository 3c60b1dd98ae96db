// The SQL of the calls and call_participants tables, as functions over one
// Connection, for SqlStore. Internal to sql/.
//
// Write functions return Result<Status>: the outer error means the
// transaction must be abandoned (connection lost, a bug); the inner status is
// the outcome of this one write (kNotFound, kAlreadyExists), after which the
// transaction can go on. That is what lets ApplyCallWrites commit a batch in
// which one write failed.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "base/status.h"
#include "sql/database.h"
#include "sql/store.h"

namespace turnkey::sql {

// Field checks (store.h rules); kInvalidArgument naming the field.
base::Status ValidateCall(const Call& call);
base::Status ValidateCallStateUpdate(const CallStateUpdate& update);
base::Status ValidateIceUpdate(const IceUpdate& update);
// Checks type, limit and skip (not the user id: an unknown one has no calls).
base::Status ValidateHistoryQuery(const HistoryQuery& query);

// Preconditions: the write was validated; a transaction is open.
// `cluster`: whose call state the call is in (SqlStore::set_cluster).
base::Result<base::Status> InsertCallRows(Connection& conn, const Call& call,
                                          std::string_view cluster);
base::Result<base::Status> UpdateCallRow(Connection& conn, const CallStateUpdate& update);
base::Result<base::Status> UpdateIceRow(Connection& conn, const IceUpdate& update);

// kNotFound if there is no such call.
base::Result<Call> SelectCall(Connection& conn, std::string_view call_id);
// Precondition: ValidateHistoryQuery(query) passed.
base::Result<HistoryPage> SelectHistory(Connection& conn, const HistoryQuery& query);
// Store::EndUnfinishedCalls with end reason `reason`, for calls created
// before `created_before_ms` (Unix ms); how many calls. It runs
// kEndUnfinishedCallsSql (params: new status, reason, old status, cutoff,
// cluster) once for ringing calls and once for active ones; only the calls
// written with `cluster`.
extern const std::string_view kEndUnfinishedCallsSql;
base::Result<int> EndUnfinishedCallRows(Connection& conn, std::string_view reason,
                                        int64_t created_before_ms, std::string_view cluster);
// The same for the calls `ids` (Store::EndUnfinishedCallsById).
base::Result<int> EndUnfinishedCallRowsById(Connection& conn, std::string_view reason,
                                            std::span<const std::string> ids);
// kNotFound if the user is not a participant.
base::Status HideCallRow(Connection& conn, std::string_view call_id, std::string_view user_id);

}  // namespace turnkey::sql
