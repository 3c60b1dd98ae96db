#include "sql/migrations.h"

#include <cctype>
#include <cstddef>

namespace turnkey::sql {

// Defined in the generated embedded_migrations.cc.
namespace generated {
extern const Migration kSqliteMigrations[];
extern const size_t kSqliteMigrationCount;
extern const Migration kMysqlMigrations[];
extern const size_t kMysqlMigrationCount;
}  // namespace generated

std::span<const Migration> EmbeddedMigrations(Dialect dialect) {
  if (dialect == Dialect::kMysql) {
    return {generated::kMysqlMigrations, generated::kMysqlMigrationCount};
  }
  return {generated::kSqliteMigrations, generated::kSqliteMigrationCount};
}

namespace {

void Flush(std::string& current, std::vector<std::string>& out) {
  size_t begin = 0;
  size_t end = current.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(current[begin]))) {
    ++begin;
  }
  while (end > begin && std::isspace(static_cast<unsigned char>(current[end - 1]))) {
    --end;
  }
  if (end > begin) {
    out.push_back(current.substr(begin, end - begin));
  }
  current.clear();
}

}  // namespace

std::vector<std::string> SplitSqlStatements(std::string_view script) {
  std::vector<std::string> out;
  std::string current;
  size_t i = 0;
  while (i < script.size()) {
    char c = script[i];
    if (c == '\'' || c == '"' || c == '`') {
      // A quote ends at the next same quote; a doubled quote stays inside.
      size_t j = i + 1;
      while (j < script.size()) {
        if (script[j] == c) {
          if (j + 1 < script.size() && script[j + 1] == c) {
            j += 2;
            continue;
          }
          break;
        }
        ++j;
      }
      size_t stop = j < script.size() ? j + 1 : j;
      current.append(script.substr(i, stop - i));
      i = stop;
    } else if (c == '-' && i + 1 < script.size() && script[i + 1] == '-') {
      while (i < script.size() && script[i] != '\n') {
        ++i;
      }
    } else if (c == '/' && i + 1 < script.size() && script[i + 1] == '*') {
      size_t close = script.find("*/", i + 2);
      i = close == std::string_view::npos ? script.size() : close + 2;
      current += ' ';
    } else if (c == ';') {
      Flush(current, out);
      ++i;
    } else {
      current += c;
      ++i;
    }
  }
  Flush(current, out);
  return out;
}

}  // namespace turnkey::sql
