// HttpHeaders: an ordered list of HTTP header fields with case-insensitive
// lookup (RFC 9110 section 5.1: field names are case-insensitive).
//
// A plain value type; duplicates are kept in arrival order so a caller can
// see every value of a repeated field. Not thread-safe (like any value).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace turnkey::net {

// ASCII case-insensitive comparison (header names, tokens, methods).
bool EqualsIgnoreCase(std::string_view a, std::string_view b);
// `text` without leading and trailing spaces and tabs (RFC 9110 s5.6.3 OWS).
std::string_view TrimOws(std::string_view text);

// True if `c` may appear in a token (RFC 9110 section 5.6.2: tchar).
bool IsHttpTokenChar(char c);
// True if `name` is a valid field name (RFC 9110 section 5.1: a token).
bool IsHttpToken(std::string_view name);

class HttpHeaders {
 public:
  using Field = std::pair<std::string, std::string>;

  // The value of the first field named `name`, or nullopt. The view points
  // into this object and is valid until it is modified.
  std::optional<std::string_view> Get(std::string_view name) const;
  bool Has(std::string_view name) const { return Get(name).has_value(); }
  // How many fields are named `name`.
  size_t Count(std::string_view name) const;
  // True if any field named `name` holds `token` in its comma-separated list
  // (case-insensitive), e.g. HasToken("Connection", "close").
  bool HasToken(std::string_view name, std::string_view token) const;
  // Calls `visit(element)` for each element of the comma-separated lists of
  // every field named `name`, in field order, without surrounding whitespace;
  // empty elements are skipped (RFC 9110 section 5.6.1). Stops at the first
  // call that returns true, and returns whether one did.
  template <typename Visit>
  bool AnyListElement(std::string_view name, Visit visit) const {
    for (const auto& [field, value] : fields_) {
      if (!EqualsIgnoreCase(field, name)) {
        continue;
      }
      std::string_view rest = value;
      while (!rest.empty()) {
        const size_t comma = rest.find(',');
        const std::string_view element = TrimOws(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        if (!element.empty() && visit(element)) {
          return true;
        }
      }
    }
    return false;
  }

  // Appends a field; an existing field of that name is kept.
  void Add(std::string name, std::string value);
  // Replaces every field named `name` with one field.
  void Set(std::string_view name, std::string value);
  // Removes every field named `name`; returns how many were removed.
  size_t Remove(std::string_view name);

  const std::vector<Field>& fields() const { return fields_; }
  std::vector<Field>::const_iterator begin() const { return fields_.begin(); }
  std::vector<Field>::const_iterator end() const { return fields_.end(); }
  size_t size() const { return fields_.size(); }
  bool empty() const { return fields_.empty(); }

 private:
  std::vector<Field> fields_;
};

}  // namespace turnkey::net
