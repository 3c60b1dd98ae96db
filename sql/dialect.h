// The SQL dialects the store speaks.
#pragma once

#include <string_view>

namespace turnkey::sql {

enum class Dialect {
  kSqlite,  // SQLite 3 (embedded)
  kMysql,   // MySQL / MariaDB through libmysqlclient
};

// "sqlite", "mysql".
constexpr std::string_view DialectName(Dialect dialect) {
  return dialect == Dialect::kMysql ? "mysql" : "sqlite";
}

}  // namespace turnkey::sql
