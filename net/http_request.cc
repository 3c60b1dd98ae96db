#include "net/http_request.h"

namespace turnkey::net {

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

}  // namespace

std::optional<std::string> PercentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) {
        return std::nullopt;
      }
      int high = HexValue(text[i + 1]);
      int low = HexValue(text[i + 2]);
      if (high < 0 || low < 0) {
        return std::nullopt;
      }
      out.push_back(static_cast<char>((high << 4) | low));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

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
    auto name = PercentDecode(field.substr(0, eq), true);
    auto value = PercentDecode(
        eq == std::string_view::npos ? std::string_view() : field.substr(eq + 1), true);
    if (name && value) {
      fields.emplace_back(std::move(*name), std::move(*value));
    }
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
  std::string_view rest = query;
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view field = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    size_t eq = field.find('=');
    auto decoded_name = PercentDecode(field.substr(0, eq), true);
    if (field.empty() || !decoded_name || *decoded_name != name) {
      continue;
    }
    auto value = PercentDecode(
        eq == std::string_view::npos ? std::string_view() : field.substr(eq + 1), true);
    if (value) {
      return value;
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
