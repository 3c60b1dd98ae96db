// RowReader: reads the columns of a result row in order, remembering whether
// any had an unexpected type (a schema or driver bug, reported as kInternal).
// Internal to sql/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "sql/database.h"

namespace turnkey::sql {

class RowReader {
 public:
  // `row` must outlive the reader.
  explicit RowReader(const Row& row) : row_(row) {}

  int64_t Int() {
    const Cell* cell = Next();
    if (cell != nullptr && std::holds_alternative<int64_t>(*cell)) {
      return std::get<int64_t>(*cell);
    }
    ok_ = false;
    return 0;
  }
  std::optional<int64_t> OptInt() {
    const Cell* cell = Next();
    if (cell != nullptr && std::holds_alternative<std::nullptr_t>(*cell)) {
      return std::nullopt;
    }
    if (cell != nullptr && std::holds_alternative<int64_t>(*cell)) {
      return std::get<int64_t>(*cell);
    }
    ok_ = false;
    return std::nullopt;
  }
  std::string Text() {
    const Cell* cell = Next();
    if (cell != nullptr && std::holds_alternative<std::string>(*cell)) {
      return std::get<std::string>(*cell);
    }
    ok_ = false;
    return {};
  }
  // NULL reads as nullopt.
  std::optional<std::string> OptText() {
    const Cell* cell = Next();
    if (cell != nullptr && std::holds_alternative<std::nullptr_t>(*cell)) {
      return std::nullopt;
    }
    if (cell != nullptr && std::holds_alternative<std::string>(*cell)) {
      return std::get<std::string>(*cell);
    }
    ok_ = false;
    return std::nullopt;
  }
  void Fail() { ok_ = false; }
  // False if a column was missing or of the wrong type.
  bool ok() const { return ok_; }

 private:
  const Cell* Next() {
    if (next_ >= row_.size()) {
      return nullptr;
    }
    return &row_[next_++];
  }

  const Row& row_;
  size_t next_ = 0;
  bool ok_ = true;
};

}  // namespace turnkey::sql
