#include "base/json_parse.h"

#include <vector>

namespace turnkey::base {

std::optional<nlohmann::json> ParseJsonUniqueNames(std::string_view text) {
  using nlohmann::json;
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
  if (value.is_discarded() || repeated) {
    return std::nullopt;
  }
  return value;
}

}  // namespace turnkey::base
