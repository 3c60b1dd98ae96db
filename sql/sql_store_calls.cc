// SqlStore: the call history (calls and call_participants rows, through
// sql/call_queries.h). Users, tokens, contacts and the schema are in
// sql_store.cc.
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "sql/call_queries.h"
#include "sql/fields.h"
#include "sql/query_util.h"
#include "sql/sql_store.h"

namespace turnkey::sql {

base::Status ValidateCallWrite(const CallWrite& write) {
  return std::visit(
      [](const auto& w) -> base::Status {
        using T = std::decay_t<decltype(w)>;
        if constexpr (std::is_same_v<T, Call>) {
          return ValidateCall(w);
        } else if constexpr (std::is_same_v<T, CallStateUpdate>) {
          return ValidateCallStateUpdate(w);
        } else {
          return ValidateIceUpdate(w);
        }
      },
      write);
}

namespace {

// The statements of one call-history write, whatever its kind.
base::Result<base::Status> RunCallWrite(Connection& conn, const CallWrite& write,
                                        std::string_view cluster) {
  return std::visit(
      [&conn, cluster](const auto& w) -> base::Result<base::Status> {
        using T = std::decay_t<decltype(w)>;
        if constexpr (std::is_same_v<T, Call>) {
          return InsertCallRows(conn, w, cluster);
        } else if constexpr (std::is_same_v<T, CallStateUpdate>) {
          return UpdateCallRow(conn, w);
        } else {
          return UpdateIceRow(conn, w);
        }
      },
      write);
}

}  // namespace

base::Status SqlStore::WriteCall(const CallWrite& write) {
  if (auto ok = ValidateCallWrite(write); !ok) {
    return ok;
  }
  // Updates set whole state and may be retried after a lost connection; an
  // insert may not (it could have committed).
  const bool idempotent = !std::holds_alternative<Call>(write);
  return Write(idempotent, [&](Connection& conn) -> base::Status {
    auto outcome = RunCallWrite(conn, write, cluster_);
    return outcome ? *outcome : base::Status(ErrorOf(outcome));
  });
}

base::Status SqlStore::InsertCall(const Call& call) { return WriteCall(call); }

base::Status SqlStore::UpdateCallState(const CallStateUpdate& update) { return WriteCall(update); }

base::Status SqlStore::RecordIceReport(const IceUpdate& update) { return WriteCall(update); }

base::Result<std::vector<base::Status>> SqlStore::ApplyCallWrites(
    std::span<const CallWrite> writes) {
  // Checked once up front; the transaction below may run twice.
  std::vector<base::Status> checks;
  checks.reserve(writes.size());
  for (const CallWrite& write : writes) {
    checks.push_back(ValidateCallWrite(write));
  }
  std::vector<base::Status> outcomes;
  if (writes.empty()) {
    return outcomes;
  }
  auto status = Write(false, [&](Connection& conn) -> base::Status {
    outcomes = checks;
    for (size_t i = 0; i < writes.size(); ++i) {
      if (!outcomes[i]) {
        continue;
      }
      auto outcome = RunCallWrite(conn, writes[i], cluster_);
      if (!outcome) {
        return ErrorOf(outcome);
      }
      outcomes[i] = *outcome;
    }
    return base::Ok();
  });
  if (!status) {
    return std::unexpected(status.error());
  }
  return outcomes;
}

base::Result<Call> SqlStore::GetCall(std::string_view call_id) {
  if (!IsValidId(call_id)) {
    return base::NotFound("call not found");
  }
  return ReadValue([&](Connection& conn) { return SelectCall(conn, call_id); });
}

base::Result<HistoryPage> SqlStore::CallHistory(const HistoryQuery& query) {
  if (auto ok = ValidateHistoryQuery(query); !ok) {
    return std::unexpected(ok.error());
  }
  HistoryPage page;
  if (!IsValidId(query.user_id)) {
    return page;
  }
  auto status = Read([&](Connection& conn) -> base::Status {
    auto selected = SelectHistory(conn, query);
    if (!selected) {
      return ErrorOf(selected);
    }
    page = std::move(*selected);
    return base::Ok();
  });
  if (!status) {
    return std::unexpected(status.error());
  }
  return page;
}

base::Result<HistoryPage> SqlStore::MissedCalls(std::string_view user_id, int limit, int skip) {
  HistoryQuery query;
  query.user_id = std::string(user_id);
  query.missed_only = true;
  query.limit = limit;
  query.skip = skip;
  return CallHistory(query);
}

base::Status SqlStore::HideCall(std::string_view call_id, std::string_view user_id) {
  if (!IsValidId(call_id) || !IsValidId(user_id)) {
    return base::NotFound("call not found in this user's history");
  }
  return Write(true, [&](Connection& conn) { return HideCallRow(conn, call_id, user_id); });
}

base::Result<int> SqlStore::EndUnfinishedCallsById(std::span<const std::string> ids) {
  return WriteValue(true, [ids](Connection& conn) {
    return EndUnfinishedCallRowsById(conn, kReasonServerRestart, ids);
  });
}

base::Result<int> SqlStore::EndUnfinishedCalls(std::optional<int64_t> created_before_ms) {
  const int64_t before = created_before_ms.value_or(std::numeric_limits<int64_t>::max());
  return WriteValue(true, [this, before](Connection& conn) {
    return EndUnfinishedCallRows(conn, kReasonServerRestart, before, cluster_);
  });
}

}  // namespace turnkey::sql
