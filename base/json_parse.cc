#include "base/json_parse.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <utility>
#include <vector>

namespace turnkey::base {
namespace {

// The UTF-16 code unit of the "\uXXXX" escape at json[i], if there is one.
std::optional<uint16_t> EscapedCodeUnit(std::string_view json, size_t i) {
  if (i + 6 > json.size() || json[i] != '\\' || json[i + 1] != 'u') {
    return std::nullopt;
  }
  uint16_t unit = 0;
  for (size_t k = i + 2; k < i + 6; ++k) {
    const char c = json[k];
    uint16_t digit = 0;
    if (c >= '0' && c <= '9') {
      digit = static_cast<uint16_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<uint16_t>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      digit = static_cast<uint16_t>(c - 'A' + 10);
    } else {
      return std::nullopt;
    }
    unit = static_cast<uint16_t>(unit << 4 | digit);
  }
  return unit;
}

// The length of the JSON number (RFC 8259 section 6:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?) that starts at json[i];
// 0 if none does. What follows it is the parser's business.
size_t JsonNumberLength(std::string_view json, size_t i) {
  const size_t start = i;
  auto at = [&](auto... chars) { return i < json.size() && ((json[i] == chars) || ...); };
  auto digits = [&] {
    const size_t first = i;
    while (i < json.size() && json[i] >= '0' && json[i] <= '9') {
      ++i;
    }
    return i > first;
  };
  if (at('-')) {
    ++i;
  }
  if (at('0')) {
    ++i;
  } else if (!digits()) {
    return 0;
  }
  if (at('.')) {
    ++i;
    if (!digits()) {
      return 0;
    }
  }
  if (at('e', 'E')) {
    ++i;
    if (at('+', '-')) {
      ++i;
    }
    if (!digits()) {
      return 0;
    }
  }
  return i - start;
}

// `json` with every number (outside strings) that overflows a double
// rewritten as null; nullopt when it has none.
std::optional<std::string> ReplaceOverflowingNumbers(std::string_view json) {
  std::string out;
  size_t copied = 0;  // json[0, copied) is in `out` already
  bool in_string = false;
  for (size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character ends nothing
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
      continue;
    }
    const size_t length = JsonNumberLength(json, i);
    if (length == 0) {
      continue;
    }
    const std::string number(json.substr(i, length));
    if (std::isinf(std::strtod(number.c_str(), nullptr))) {
      out.append(json.substr(copied, i - copied)).append("null");
      copied = i + length;
    }
    i += length - 1;
  }
  if (copied == 0) {
    return std::nullopt;
  }
  out.append(json.substr(copied));
  return out;
}

bool IsHighSurrogate(uint16_t unit) { return unit >= 0xD800 && unit <= 0xDBFF; }
bool IsLowSurrogate(uint16_t unit) { return unit >= 0xDC00 && unit <= 0xDFFF; }

}  // namespace

std::optional<std::string> ReplaceLoneSurrogateEscapes(std::string_view json) {
  std::string out;
  size_t copied = 0;  // json[0, copied) is in `out` already
  bool replaced = false;
  // Backslashes occur only inside strings, each starting one escape; an
  // escape other than \u is two characters long.
  for (size_t i = 0; i < json.size(); ++i) {
    if (json[i] != '\\') {
      continue;
    }
    const std::optional<uint16_t> unit = EscapedCodeUnit(json, i);
    if (!unit) {
      ++i;  // e.g. "\\": its second backslash starts nothing
      continue;
    }
    if (IsHighSurrogate(*unit)) {
      const std::optional<uint16_t> next = EscapedCodeUnit(json, i + 6);
      if (next && IsLowSurrogate(*next)) {
        i += 11;  // a whole pair
        continue;
      }
    } else if (!IsLowSurrogate(*unit)) {
      i += 5;
      continue;
    }
    out.append(json.substr(copied, i - copied));
    out.append("\\ufffd");
    copied = i + 6;
    i += 5;
    replaced = true;
  }
  if (!replaced) {
    return std::nullopt;
  }
  out.append(json.substr(copied));
  return out;
}

std::optional<std::string> RepairForJsonParse(std::string_view json) {
  std::optional<std::string> repaired = ReplaceLoneSurrogateEscapes(json);
  if (std::optional<std::string> numbers =
          ReplaceOverflowingNumbers(repaired ? std::string_view(*repaired) : json)) {
    repaired = std::move(numbers);
  }
  return repaired;
}

std::optional<nlohmann::json> ParseJsonUniqueNames(std::string_view text) {
  using nlohmann::json;
  if (text.find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  // Names read per open object; a closed object holding fewer members than
  // that kept one value of a repeated name.
  std::vector<size_t> names;
  bool repeated = false;
  json::parser_callback_t count = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        names.push_back(0);
        break;
      case json::parse_event_t::key:
        if (!names.empty()) {
          ++names.back();
        }
        break;
      case json::parse_event_t::object_end:
        if (!names.empty()) {
          repeated = repeated || parsed.size() != names.back();
          names.pop_back();
        }
        break;
      default:
        break;
    }
    return true;
  };
  json value = json::parse(text.begin(), text.end(), count, /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    if (std::optional<std::string> repaired = RepairForJsonParse(text)) {
      names.clear();
      repeated = false;
      value = json::parse(*repaired, count, /*allow_exceptions=*/false);
    }
  }
  if (value.is_discarded() || repeated) {
    return std::nullopt;
  }
  return value;
}

}  // namespace turnkey::base
