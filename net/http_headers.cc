#include "net/http_headers.h"

#include <algorithm>

namespace turnkey::net {

namespace {

char LowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

std::string_view TrimOws(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
    text.remove_suffix(1);
  }
  return text;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (LowerAscii(a[i]) != LowerAscii(b[i])) {
      return false;
    }
  }
  return true;
}

bool IsHttpTokenChar(char c) {
  // RFC 9110 section 5.6.2: tchar.
  static constexpr std::string_view kSpecials = "!#$%&'*+-.^_`|~";
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         kSpecials.find(c) != std::string_view::npos;
}

bool IsHttpToken(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), &IsHttpTokenChar);
}

std::optional<std::string_view> HttpHeaders::Get(std::string_view name) const {
  for (const auto& [field, value] : fields_) {
    if (EqualsIgnoreCase(field, name)) {
      return std::string_view(value);
    }
  }
  return std::nullopt;
}

size_t HttpHeaders::Count(std::string_view name) const {
  return static_cast<size_t>(std::count_if(fields_.begin(), fields_.end(), [name](const Field& f) {
    return EqualsIgnoreCase(f.first, name);
  }));
}

bool HttpHeaders::HasToken(std::string_view name, std::string_view token) const {
  return AnyListElement(
      name, [token](std::string_view element) { return EqualsIgnoreCase(element, token); });
}

void HttpHeaders::Add(std::string name, std::string value) {
  fields_.emplace_back(std::move(name), std::move(value));
}

void HttpHeaders::Set(std::string_view name, std::string value) {
  Remove(name);
  fields_.emplace_back(std::string(name), std::move(value));
}

size_t HttpHeaders::Remove(std::string_view name) {
  auto removed = std::remove_if(fields_.begin(), fields_.end(),
                                [name](const Field& f) { return EqualsIgnoreCase(f.first, name); });
  size_t count = static_cast<size_t>(fields_.end() - removed);
  fields_.erase(removed, fields_.end());
  return count;
}

}  // namespace turnkey::net
