#include "sql/query_util.h"

#include "sql/row_reader.h"

namespace turnkey::sql {

base::Result<bool> Exists(Connection& conn, std::string_view sql, std::span<const Param> params) {
  auto result = conn.Exec(sql, params);
  if (!result) {
    return ErrorOf(result);
  }
  return !result->rows.empty();
}

base::Result<std::vector<std::string>> QueryIds(Connection& conn, std::string_view sql,
                                                std::span<const Param> params) {
  auto result = conn.Exec(sql, params);
  if (!result) {
    return ErrorOf(result);
  }
  std::vector<std::string> ids;
  ids.reserve(result->rows.size());
  for (const Row& row : result->rows) {
    RowReader r(row);
    ids.push_back(r.Text());
    if (!r.ok()) {
      return base::Internal("unexpected id column");
    }
  }
  return ids;
}

base::Result<int64_t> QueryInt(Connection& conn, std::string_view sql,
                               std::span<const Param> params) {
  auto result = conn.Exec(sql, params);
  if (!result) {
    return ErrorOf(result);
  }
  if (result->rows.size() != 1) {
    return base::Internal("expected one row");
  }
  RowReader r(result->rows.front());
  std::optional<int64_t> value = r.OptInt();
  if (!r.ok()) {
    return base::Internal("expected an integer");
  }
  return value.value_or(0);
}

}  // namespace turnkey::sql
