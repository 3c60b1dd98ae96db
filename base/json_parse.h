// JSON parsing with nlohmann/json, made to read what JavaScript's JSON.parse
// reads and nothing else. No exceptions escape.
//
// - A NUL byte is refused: it is never valid JSON (RFC 8259 section 7: a
//   string escapes every control character, and none may stand outside
//   one), but nlohmann's lexer takes it for the end of the input and would
//   ignore what follows ("{...}\0{...}"), so a proxy and turnkey could read
//   one request differently.
// - A "\uXXXX" escape of a UTF-16 surrogate that is not half of a pair is
//   read as U+FFFD. JSON.parse accepts such escapes (RFC 8259 section 8.2
//   allows them), and JSON.stringify writes them for a JS string cut inside a
//   surrogate pair ("hi \ud83d" from an emoji sliced in half), but a UTF-8
//   string cannot hold them, so nlohmann refuses the whole text.
// - A number too large for a double ("1e400") is read as null. JSON.parse
//   reads it as Infinity, which JSON.stringify writes as null, so an echo
//   matches; nlohmann refuses the whole text.
//
// ParseJsonUniqueNames also refuses an object naming a member twice. RFC
// 8259 section 4 leaves the meaning of such an object to each receiver (most
// keep the last value, some the first, some fail), so two parsers of one
// request or token -- a proxy's and ours -- could read it differently.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace turnkey::base {

// `json` with every lone surrogate escape rewritten as "\ufffd"; nullopt
// when it has none.
std::optional<std::string> ReplaceLoneSurrogateEscapes(std::string_view json);
// For a text nlohmann refused: lone surrogate escapes rewritten as above,
// and every number (outside strings) that overflows a double rewritten as
// null; nullopt when neither changed anything (the text is not valid JSON).
std::optional<std::string> RepairForJsonParse(std::string_view json);

// `text` parsed as one JSON value, or nullopt when it is not valid JSON (see
// above). Json is nlohmann::json or nlohmann::ordered_json.
template <typename Json>
std::optional<Json> ParseJson(std::string_view text) {
  if (text.find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  Json parsed = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    // Only a failed parse pays for this.
    if (std::optional<std::string> repaired = RepairForJsonParse(text)) {
      parsed = Json::parse(*repaired, nullptr, /*allow_exceptions=*/false);
    }
  }
  if (parsed.is_discarded()) {
    return std::nullopt;
  }
  return parsed;
}

// ParseJson, also nullopt when an object in `text` names a member more than
// once (at any depth).
std::optional<nlohmann::json> ParseJsonUniqueNames(std::string_view text);

}  // namespace turnkey::base
