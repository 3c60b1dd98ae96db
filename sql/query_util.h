// Small helpers for running queries over a Connection. Internal to sql/.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "sql/database.h"

namespace turnkey::sql {

// The error of a failed Result, to return from a function of another type.
template <typename T>
std::unexpected<base::Error> ErrorOf(const base::Result<T>& result) {
  return std::unexpected(result.error());
}

// True if the query returns a row.
base::Result<bool> Exists(Connection& conn, std::string_view sql, std::span<const Param> params);

// The first column of every row, as text.
base::Result<std::vector<std::string>> QueryIds(Connection& conn, std::string_view sql,
                                                std::span<const Param> params);

// The single integer a COUNT(*)-style query returns (NULL reads as 0).
base::Result<int64_t> QueryInt(Connection& conn, std::string_view sql,
                               std::span<const Param> params = {});

// A parameter that is NULL when `value` is nullopt.
inline Param OptionalInt(const std::optional<int64_t>& value) {
  return value ? Param{*value} : Param{nullptr};
}
inline Param OptionalText(const std::optional<std::string>& value) {
  return value ? Param{std::string_view(*value)} : Param{nullptr};
}
// A parameter that is NULL when `value` is empty.
inline Param TextOrNull(const std::string& value) {
  return value.empty() ? Param{nullptr} : Param{std::string_view(value)};
}

}  // namespace turnkey::sql
