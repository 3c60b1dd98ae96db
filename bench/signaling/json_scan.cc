#include "bench/signaling/json_scan.h"

namespace turnkey::bench {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// The position just past `"key":` (and any blanks), or npos.
size_t ValueStart(std::string_view json, std::string_view key) {
  size_t from = 0;
  while (true) {
    size_t at = json.find(key, from);
    if (at == std::string_view::npos) {
      return at;
    }
    from = at + key.size();
    // A key is quoted on both sides; "callId" inside "xcallId" is not it.
    if (at == 0 || json[at - 1] != '"' || from >= json.size() || json[from] != '"') {
      continue;
    }
    size_t i = from + 1;
    while (i < json.size() && IsSpace(json[i])) {
      ++i;
    }
    if (i >= json.size() || json[i] != ':') {
      continue;  // a string value equal to the key, not the key
    }
    ++i;
    while (i < json.size() && IsSpace(json[i])) {
      ++i;
    }
    return i;
  }
}

}  // namespace

std::optional<std::string_view> JsonStringField(std::string_view json, std::string_view key) {
  size_t i = ValueStart(json, key);
  if (i == std::string_view::npos || i >= json.size() || json[i] != '"') {
    return std::nullopt;
  }
  ++i;
  size_t end = i;
  while (end < json.size() && json[end] != '"') {
    end += json[end] == '\\' ? 2 : 1;
  }
  if (end >= json.size()) {
    return std::nullopt;
  }
  return json.substr(i, end - i);
}

bool JsonTrueField(std::string_view json, std::string_view key) {
  size_t i = ValueStart(json, key);
  return i != std::string_view::npos && json.substr(i, 4) == "true";
}

}  // namespace turnkey::bench
