#include "base/json_parse.h"

#include <cctype>
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

// RFC 8259 section 6: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool IsJsonNumber(std::string_view token) {
  size_t i = 0;
  auto digits = [&] {
    const size_t start = i;
    while (i < token.size() && token[i] >= '0' && token[i] <= '9') {
      ++i;
    }
    return i - start;
  };
  if (i < token.size() && token[i] == '-') {
    ++i;
  }
  if (i < token.size() && token[i] == '0') {
    ++i;
  } else if (digits() == 0) {
    return false;
  }
  if (i < token.size() && token[i] == '.') {
    ++i;
    if (digits() == 0) {
      return false;
    }
  }
  if (i < token.size() && (token[i] == 'e' || token[i] == 'E')) {
    ++i;
    if (i < token.size() && (token[i] == '+' || token[i] == '-')) {
      ++i;
    }
    if (digits() == 0) {
      return false;
    }
  }
  return i == token.size();
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

std::optional<std::string> ReplaceOverflowingNumbers(std::string_view json) {
  std::string out;
  size_t copied = 0;  // json[0, copied) is in `out` already
  bool replaced = false;
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
    if (c != '-' && (c < '0' || c > '9')) {
      continue;
    }
    // A number token, or what the parser will refuse anyway.
    size_t end = i + 1;
    while (end < json.size() &&
           (std::isdigit(static_cast<unsigned char>(json[end])) != 0 || json[end] == '.' ||
            json[end] == 'e' || json[end] == 'E' || json[end] == '+' || json[end] == '-')) {
      ++end;
    }
    const std::string token(json.substr(i, end - i));
    if (IsJsonNumber(token) && std::isinf(std::strtod(token.c_str(), nullptr))) {
      out.append(json.substr(copied, i - copied));
      out.append("null");
      copied = end;
      replaced = true;
    }
    i = end - 1;
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
