#include "sql/call_queries.h"

#include <fmt/format.h>

#include <array>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "sql/fields.h"
#include "sql/query_util.h"
#include "sql/row_reader.h"

namespace turnkey::sql {

namespace {

// The columns ReadCall() expects, in order (table alias c).
constexpr std::string_view kCallColumns =
    "c.id, c.caller_id, c.callee_id, c.call_type, c.status, c.end_reason, c.created_at, "
    "c.answered_at, c.ended_at, c.duration_seconds, "
    "c.caller_ice_state, c.caller_ice_local, c.caller_ice_remote, c.caller_ice_relay_protocol, "
    "c.caller_ice_rtt_ms, c.caller_ice_reported_at, c.caller_ice_cause, "
    "c.callee_ice_state, c.callee_ice_local, c.callee_ice_remote, c.callee_ice_relay_protocol, "
    "c.callee_ice_rtt_ms, c.callee_ice_reported_at, c.callee_ice_cause";

constexpr std::string_view kInsertCall =
    "INSERT INTO calls (id, caller_id, callee_id, call_type, status, end_reason, created_at, "
    "answered_at, ended_at, duration_seconds, "
    "caller_ice_state, caller_ice_local, caller_ice_remote, caller_ice_relay_protocol, "
    "caller_ice_rtt_ms, caller_ice_reported_at, caller_ice_cause, "
    "callee_ice_state, callee_ice_local, callee_ice_remote, callee_ice_relay_protocol, "
    "callee_ice_rtt_ms, callee_ice_reported_at, callee_ice_cause, cluster) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

constexpr std::string_view kInsertParticipant =
    "INSERT INTO call_participants (call_id, user_id, peer_id, role, hidden, created_at) "
    "VALUES (?, ?, ?, ?, 0, ?)";

// Only a call still going changes: an ended one keeps the end first written
// (an update written after it is older), except an end the database made up
// (kReasonServerRestart, EndUnfinishedCallRows: no times, duration 0), which
// the end of whoever ran the call replaces: a coordinator that wrote its
// history into unwritten-calls.jsonl during an outage and was replaced
// before the database came back, or that woke from a freeze, knows how its
// calls ended. The last parameter is 1 for such an end (a final status whose
// reason is not kReasonServerRestart), else 0.
constexpr std::string_view kUpdateState =
    "UPDATE calls SET status = ?, end_reason = ?, answered_at = ?, ended_at = ?, "
    "duration_seconds = ? WHERE id = ? AND (status IN ('ringing', 'active') OR "
    "(end_reason = 'server_restart' AND ? = 1))";

constexpr std::string_view kSelectEnd = "SELECT status, end_reason FROM calls WHERE id = ?";

constexpr std::string_view kUpdateCallerIce =
    "UPDATE calls SET caller_ice_state = ?, caller_ice_local = ?, caller_ice_remote = ?, "
    "caller_ice_relay_protocol = ?, caller_ice_rtt_ms = ?, caller_ice_reported_at = ?, "
    "caller_ice_cause = ? WHERE id = ?";

constexpr std::string_view kUpdateCalleeIce =
    "UPDATE calls SET callee_ice_state = ?, callee_ice_local = ?, callee_ice_remote = ?, "
    "callee_ice_relay_protocol = ?, callee_ice_rtt_ms = ?, callee_ice_reported_at = ?, "
    "callee_ice_cause = ? WHERE id = ?";

constexpr std::string_view kHide =
    "UPDATE call_participants SET hidden = 1 WHERE call_id = ? AND user_id = ?";

// An item-level outcome (see the header) or a reason to abandon the batch.
// kNotFound comes from a foreign key: a participant does not exist.
base::Result<base::Status> ItemOutcome(const base::Error& error) {
  if (error.code == base::ErrorCode::kAlreadyExists) {
    return base::Status(base::MakeError(base::ErrorCode::kAlreadyExists, std::string(kIdTaken)));
  }
  if (error.code == base::ErrorCode::kNotFound) {
    return base::Status(base::NotFound("caller or callee not found"));
  }
  return std::unexpected(error);
}

base::Status CheckIce(std::string_view side, const IceReport& report) {
  const std::array<std::pair<std::string_view, const std::string*>, 5> fields{{
      {"state", &report.state},
      {"local_candidate_type", &report.local_candidate_type},
      {"remote_candidate_type", &report.remote_candidate_type},
      {"relay_protocol", &report.relay_protocol},
      {"failure_cause", &report.failure_cause},
  }};
  for (const auto& [name, value] : fields) {
    if (auto ok = CheckText(fmt::format("{}_ice.{}", side, name), *value, kMaxLabelBytes,
                            name == "state");
        !ok) {
      return ok;
    }
  }
  if (report.rtt_ms && *report.rtt_ms < 0) {
    return base::InvalidArgument(fmt::format("{}_ice.rtt_ms: negative", side));
  }
  return base::Ok();
}

std::optional<IceReport> ReadIce(RowReader& r) {
  std::optional<std::string> state = r.OptText();
  std::optional<std::string> local = r.OptText();
  std::optional<std::string> remote = r.OptText();
  std::optional<std::string> relay = r.OptText();
  std::optional<int64_t> rtt = r.OptInt();
  std::optional<int64_t> at = r.OptInt();
  std::optional<std::string> cause = r.OptText();
  if (!state) {
    return std::nullopt;
  }
  IceReport report;
  report.state = std::move(*state);
  report.local_candidate_type = local.value_or("");
  report.remote_candidate_type = remote.value_or("");
  report.relay_protocol = relay.value_or("");
  report.rtt_ms = rtt;
  report.reported_at_ms = at.value_or(0);
  report.failure_cause = cause.value_or("");
  return report;
}

// Reads the kCallColumns of a row.
Call ReadCall(RowReader& r) {
  Call call;
  call.id = r.Text();
  call.caller_id = r.Text();
  call.callee_id = r.Text();
  std::optional<CallType> type = ParseCallType(r.Text());
  std::optional<CallStatus> status = ParseCallStatus(r.Text());
  if (!type || !status) {
    r.Fail();
  }
  call.type = type.value_or(CallType::kAudio);
  call.status = status.value_or(CallStatus::kFailed);
  call.end_reason = r.Text();
  call.created_at_ms = r.Int();
  call.answered_at_ms = r.OptInt();
  call.ended_at_ms = r.OptInt();
  call.duration_seconds = r.Int();
  call.caller_ice = ReadIce(r);
  call.callee_ice = ReadIce(r);
  return call;
}

void AppendIceParams(std::vector<Param>& params, const std::optional<IceReport>& ice) {
  if (!ice) {
    params.insert(params.end(), 7, Param{nullptr});
    return;
  }
  params.push_back(std::string_view(ice->state));
  params.push_back(std::string_view(ice->local_candidate_type));
  params.push_back(std::string_view(ice->remote_candidate_type));
  params.push_back(std::string_view(ice->relay_protocol));
  params.push_back(OptionalInt(ice->rtt_ms));
  params.push_back(ice->reported_at_ms);
  params.push_back(TextOrNull(ice->failure_cause));
}

base::Status CheckStatusFields(CallStatus status, std::string_view end_reason,
                               int64_t duration_seconds) {
  if (CallStatusName(status) == "unknown") {
    return base::InvalidArgument("status: unknown value");
  }
  if (auto ok = CheckText("end_reason", end_reason, kMaxLabelBytes, false); !ok) {
    return ok;
  }
  if (duration_seconds < 0) {
    return base::InvalidArgument("duration_seconds: negative");
  }
  return base::Ok();
}

}  // namespace

base::Status ValidateCall(const Call& call) {
  for (const auto& [name, value] : {std::pair<std::string_view, std::string_view>{"id", call.id},
                                    {"caller_id", call.caller_id},
                                    {"callee_id", call.callee_id}}) {
    if (auto ok = CheckId(name, value); !ok) {
      return ok;
    }
  }
  if (call.caller_id == call.callee_id) {
    return base::InvalidArgument("callee_id: must differ from caller_id");
  }
  if (CallTypeName(call.type) == "unknown") {
    return base::InvalidArgument("type: unknown value");
  }
  if (auto ok = CheckStatusFields(call.status, call.end_reason, call.duration_seconds); !ok) {
    return ok;
  }
  if (call.caller_ice) {
    if (auto ok = CheckIce("caller", *call.caller_ice); !ok) {
      return ok;
    }
  }
  if (call.callee_ice) {
    if (auto ok = CheckIce("callee", *call.callee_ice); !ok) {
      return ok;
    }
  }
  return base::Ok();
}

base::Status ValidateCallStateUpdate(const CallStateUpdate& update) {
  if (auto ok = CheckId("call_id", update.call_id); !ok) {
    return ok;
  }
  return CheckStatusFields(update.status, update.end_reason, update.duration_seconds);
}

base::Status ValidateIceUpdate(const IceUpdate& update) {
  if (auto ok = CheckId("call_id", update.call_id); !ok) {
    return ok;
  }
  if (update.side != CallSide::kCaller && update.side != CallSide::kCallee) {
    return base::InvalidArgument("side: unknown value");
  }
  return CheckIce(CallSideName(update.side), update.report);
}

base::Status ValidateHistoryQuery(const HistoryQuery& query) {
  if (query.type && CallTypeName(*query.type) == "unknown") {
    return base::InvalidArgument("type: unknown value");
  }
  if (query.limit < 1 || query.limit > kMaxPageSize) {
    return base::InvalidArgument(fmt::format("limit: must be 1-{}", kMaxPageSize));
  }
  if (query.skip < 0) {
    return base::InvalidArgument("skip: negative");
  }
  return base::Ok();
}

base::Result<base::Status> InsertCallRows(Connection& conn, const Call& call,
                                          std::string_view cluster) {
  std::vector<Param> params = {
      std::string_view(call.id),
      std::string_view(call.caller_id),
      std::string_view(call.callee_id),
      CallTypeName(call.type),
      CallStatusName(call.status),
      std::string_view(call.end_reason),
      call.created_at_ms,
      OptionalInt(call.answered_at_ms),
      OptionalInt(call.ended_at_ms),
      call.duration_seconds,
  };
  AppendIceParams(params, call.caller_ice);
  AppendIceParams(params, call.callee_ice);
  params.emplace_back(cluster);
  if (auto inserted = conn.Exec(kInsertCall, params); !inserted) {
    return ItemOutcome(inserted.error());
  }
  // The call row exists now, so these cannot hit a constraint: any failure
  // abandons the transaction rather than leave a call without history rows.
  const std::array<Param, 5> caller{std::string_view(call.id), std::string_view(call.caller_id),
                                    std::string_view(call.callee_id), "caller", call.created_at_ms};
  const std::array<Param, 5> callee{std::string_view(call.id), std::string_view(call.callee_id),
                                    std::string_view(call.caller_id), "callee", call.created_at_ms};
  for (const auto& row : {caller, callee}) {
    if (auto inserted = conn.Exec(kInsertParticipant, row); !inserted) {
      return std::unexpected(inserted.error());
    }
  }
  return base::Ok();
}

base::Result<base::Status> UpdateCallRow(Connection& conn, const CallStateUpdate& update) {
  const bool replaces_made_up_end =
      IsEndStatus(update.status) && update.end_reason != kReasonServerRestart;
  const std::array<Param, 7> params{CallStatusName(update.status),
                                    std::string_view(update.end_reason),
                                    OptionalInt(update.answered_at_ms),
                                    OptionalInt(update.ended_at_ms),
                                    update.duration_seconds,
                                    std::string_view(update.call_id),
                                    int64_t{replaces_made_up_end ? 1 : 0}};
  auto updated = conn.Exec(kUpdateState, params);
  if (!updated) {
    return ItemOutcome(updated.error());
  }
  if (updated->affected_rows != 0) {
    return base::Ok();
  }
  const std::array<Param, 1> id{std::string_view(update.call_id)};
  auto row = conn.Exec(kSelectEnd, id);
  if (!row) {
    return std::unexpected(row.error());
  }
  if (row->rows.empty()) {
    return base::Status(base::NotFound("call not found"));
  }
  RowReader r(row->rows.front());
  const std::string status = r.Text();
  const std::string reason = r.Text();
  if (status == CallStatusName(update.status) && reason == update.end_reason) {
    return base::Ok();  // the same end again: a retried batch
  }
  return base::Status(
      base::MakeError(base::ErrorCode::kAlreadyExists,
                      fmt::format("call already ended ({}, {}); not rewritten", status, reason)));
}

base::Result<base::Status> UpdateIceRow(Connection& conn, const IceUpdate& update) {
  const IceReport& r = update.report;
  const std::array<Param, 8> params{std::string_view(r.state),
                                    std::string_view(r.local_candidate_type),
                                    std::string_view(r.remote_candidate_type),
                                    std::string_view(r.relay_protocol),
                                    OptionalInt(r.rtt_ms),
                                    r.reported_at_ms,
                                    TextOrNull(r.failure_cause),
                                    std::string_view(update.call_id)};
  auto updated =
      conn.Exec(update.side == CallSide::kCaller ? kUpdateCallerIce : kUpdateCalleeIce, params);
  if (!updated) {
    return ItemOutcome(updated.error());
  }
  if (updated->affected_rows == 0) {
    return base::Status(base::NotFound("call not found"));
  }
  return base::Ok();
}

base::Result<Call> SelectCall(Connection& conn, std::string_view call_id) {
  static const std::string sql = fmt::format("SELECT {} FROM calls c WHERE c.id = ?", kCallColumns);
  const std::array<Param, 1> params{call_id};
  auto result = conn.Exec(sql, params);
  if (!result) {
    return std::unexpected(result.error());
  }
  if (result->rows.empty()) {
    return base::NotFound("call not found");
  }
  RowReader r(result->rows.front());
  Call call = ReadCall(r);
  if (!r.ok()) {
    return base::Internal("calls: unexpected row");
  }
  return call;
}

base::Result<HistoryPage> SelectHistory(Connection& conn, const HistoryQuery& query) {
  // The filters select among a few fixed statement texts; values are always
  // bound, so every variant is a cached prepared statement.
  std::string sql = fmt::format(
      "SELECT {}, p.role, u.id, u.handle, u.display_name "
      "FROM call_participants p "
      "JOIN calls c ON c.id = p.call_id "
      "LEFT JOIN users u ON u.id = p.peer_id "
      "WHERE p.user_id = ? AND p.hidden = 0",
      kCallColumns);
  std::vector<Param> params{std::string_view(query.user_id)};
  if (query.type) {
    sql += " AND c.call_type = ?";
    params.push_back(CallTypeName(*query.type));
  }
  if (query.direction == CallDirection::kIncoming || query.missed_only) {
    sql += " AND p.role = 'callee'";
  }
  if (query.direction == CallDirection::kOutgoing) {
    sql += " AND p.role = 'caller'";
  }
  if (query.missed_only) {
    sql += " AND c.status = 'missed'";
  }
  // One row past the page tells whether there is more.
  sql += " ORDER BY p.created_at DESC, p.call_id DESC LIMIT ? OFFSET ?";
  params.push_back(int64_t{query.limit} + 1);
  params.push_back(int64_t{query.skip});

  auto result = conn.Exec(sql, params);
  if (!result) {
    return std::unexpected(result.error());
  }
  HistoryPage page;
  for (const Row& row : result->rows) {
    if (page.entries.size() == static_cast<size_t>(query.limit)) {
      page.has_more = true;
      break;
    }
    RowReader r(row);
    HistoryEntry entry;
    entry.call = ReadCall(r);
    std::string role = r.Text();
    entry.direction = role == "callee" ? CallDirection::kIncoming : CallDirection::kOutgoing;
    entry.missed =
        entry.direction == CallDirection::kIncoming && entry.call.status == CallStatus::kMissed;
    entry.peer.id = r.OptText().value_or("");
    entry.peer.handle = r.OptText().value_or("");
    entry.peer.display_name = r.OptText().value_or("");
    if (!r.ok()) {
      return base::Internal("call history: unexpected row");
    }
    page.entries.push_back(std::move(entry));
  }
  return page;
}

// Found through the calls_unfinished index (migration 005). The IN term is
// that index's WHERE: SQLite uses a partial index only for a query that
// holds it.
const std::string_view kEndUnfinishedCallsSql =
    "UPDATE calls SET status = ?, end_reason = ?, ended_at = COALESCE(answered_at, created_at), "
    "duration_seconds = 0 WHERE status IN ('ringing', 'active') AND status = ? AND created_at < ? "
    "AND cluster = ?";

namespace {

constexpr std::string_view kEndUnfinishedCallSql =
    "UPDATE calls SET status = ?, end_reason = ?, ended_at = COALESCE(answered_at, created_at), "
    "duration_seconds = 0 WHERE status IN ('ringing', 'active') AND status = ? AND id = ?";

// Runs `sql` (params: new status, reason, old status, then `where`) once for
// ringing calls (which become missed) and once for active ones (failed);
// how many rows it ended.
base::Result<int> EndRows(Connection& conn, std::string_view sql, std::string_view reason,
                          std::span<const Param> where) {
  int ended = 0;
  for (auto [from, to] : {std::pair{CallStatus::kRinging, CallStatus::kMissed},
                          std::pair{CallStatus::kActive, CallStatus::kFailed}}) {
    std::vector<Param> params{CallStatusName(to), reason, CallStatusName(from)};
    params.insert(params.end(), where.begin(), where.end());
    auto updated = conn.Exec(sql, params);
    if (!updated) {
      return std::unexpected(updated.error());
    }
    ended += static_cast<int>(updated->affected_rows);
  }
  return ended;
}

}  // namespace

base::Result<int> EndUnfinishedCallRows(Connection& conn, std::string_view reason,
                                        int64_t created_before_ms, std::string_view cluster) {
  const std::array<Param, 2> where{created_before_ms, cluster};
  return EndRows(conn, kEndUnfinishedCallsSql, reason, where);
}

base::Result<int> EndUnfinishedCallRowsById(Connection& conn, std::string_view reason,
                                            std::span<const std::string> ids) {
  int ended = 0;
  for (const std::string& id : ids) {
    const std::array<Param, 1> where{std::string_view(id)};
    auto rows = EndRows(conn, kEndUnfinishedCallSql, reason, where);
    if (!rows) {
      return std::unexpected(rows.error());
    }
    ended += *rows;
  }
  return ended;
}

base::Status HideCallRow(Connection& conn, std::string_view call_id, std::string_view user_id) {
  const std::array<Param, 2> params{call_id, user_id};
  auto updated = conn.Exec(kHide, params);
  if (!updated) {
    return std::unexpected(updated.error());
  }
  if (updated->affected_rows == 0) {
    return base::NotFound("call not found in this user's history");
  }
  return base::Ok();
}

}  // namespace turnkey::sql
