#include "net/http_request.h"

#include "base/bytes.h"

namespace turnkey::net {

std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> fields;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view field = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (field.empty()) {
      continue;
    }
    size_t eq = field.find('=');
    auto decode = [](std::string_view text) {
      return base::PercentDecode(text, true).value_or(std::string(text));
    };
    fields.emplace_back(
        decode(field.substr(0, eq)),
        decode(eq == std::string_view::npos ? std::string_view() : field.substr(eq + 1)));
  }
  return fields;
}

void SplitRequestTarget(std::string_view target, std::string& path, std::string& query) {
  path.clear();
  query.clear();
  if (size_t hash = target.find('#'); hash != std::string_view::npos) {
    target = target.substr(0, hash);
  }
  if (!target.empty() && target.front() != '/' && target != "*") {
    // absolute-form: skip "scheme://authority".
    size_t scheme_end = target.find("://");
    if (scheme_end != std::string_view::npos) {
      std::string_view rest = target.substr(scheme_end + 3);
      size_t path_start = rest.find_first_of("/?");
      target = path_start == std::string_view::npos ? std::string_view() : rest.substr(path_start);
    }
  }
  size_t question = target.find('?');
  std::string_view raw_path = target.substr(0, question);
  if (question != std::string_view::npos) {
    query.assign(target.substr(question + 1));
  }
  path.assign(raw_path.empty() ? std::string_view("/") : raw_path);
}

std::optional<std::string> HttpRequest::QueryParam(std::string_view name) const {
  for (auto& [key, value] : ParseQuery(query)) {
    if (key == name) {
      return std::move(value);
    }
  }
  return std::nullopt;
}

std::optional<std::string_view> HttpRequest::Param(std::string_view name) const {
  for (const auto& [key, value] : params) {
    if (key == name) {
      return std::string_view(value);
    }
  }
  return std::nullopt;
}

}  // namespace turnkey::net
