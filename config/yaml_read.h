// Reading YAML config values: where a value sits (Where), decoders that
// turn a node into a typed value or report why not (each returns nullopt
// after reporting through `at`), and Section, one mapping being read, which
// reports the keys nobody asked for. What config/loader.cc reads the file
// with; not for other users.
#pragma once

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "base/address.h"
#include "base/cidr.h"
#include "base/crypto.h"
#include "base/status.h"
#include "config/diagnostics.h"
#include "config/duration.h"
#include "config/field_checks.h"

namespace turnkey::config::yaml_read {

using YAML::Node;

int MarkLine(const YAML::Mark& mark);

std::string KindName(const Node& node);

std::string JoinPath(const std::string& path, std::string_view key);

// Where a value sits in the file, and how to complain about it.
struct Where {
  Diagnostics& diag;
  std::string path;
  int line;

  void Fail(std::string_view what) const { diag.Error(line, path, what); }
};

// ---- Scalar decoders. Each reports through `at` and returns nullopt on error.

std::optional<std::string> ScalarText(const Node& node, const Where& at, std::string_view expected);

// Strings may be anything printable; the value is never echoed, since the
// same decoder reads secrets.
std::optional<std::string> DecodeString(const Node& node, const Where& at);

std::optional<std::string> DecodeNonEmptyString(const Node& node, const Where& at);

std::optional<bool> DecodeBool(const Node& node, const Where& at);

// A decimal whole number in [min, max].
template <typename T>
auto AsUnsigned(T min, T max) {
  return [min, max](const Node& node, const Where& at) -> std::optional<T> {
    std::optional<std::string> text = ScalarText(node, at, "a whole number");
    if (!text) {
      return std::nullopt;
    }
    if (!text->empty() && text->front() == '-' && text->size() > 1 &&
        text->find_first_not_of("0123456789", 1) == std::string::npos) {
      at.Fail("must not be negative, found " + *text);
      return std::nullopt;
    }
    if (text->empty() || text->find_first_not_of("0123456789") != std::string::npos) {
      at.Fail("expected a whole number, found " + QuoteForMessage(*text));
      return std::nullopt;
    }
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
    if (ec != std::errc() || value < min || value > max) {
      at.Fail(*text + " is out of range (" + std::to_string(min) + "-" + std::to_string(max) + ")");
      return std::nullopt;
    }
    return static_cast<T>(value);
  };
}

// A finite decimal number in [min, max] ("0.5", "100", "1e3").
inline auto AsNumber(double min, double max) {
  return [min, max](const Node& node, const Where& at) -> std::optional<double> {
    std::optional<std::string> text = ScalarText(node, at, "a number");
    if (!text) {
      return std::nullopt;
    }
    double value = 0;
    const char* begin = text->data();
    const char* end = begin + text->size();
    auto [stop, ec] = std::from_chars(begin, end, value, std::chars_format::general);
    if (text->empty() || ec != std::errc() || stop != end || !std::isfinite(value)) {
      at.Fail("expected a number, found " + QuoteForMessage(*text));
      return std::nullopt;
    }
    if (value < min || value > max) {
      at.Fail(fmt::format("{} is out of range ({:.10g}-{:.10g})", *text, min, max));
      return std::nullopt;
    }
    return value;
  };
}

std::optional<uint16_t> DecodePort(const Node& node, const Where& at);

// A duration of at least `min` and at most `max`. A std::chrono::seconds
// field also needs a whole number of seconds: STUN LIFETIME and JWT times
// have no finer unit, and rounding "1500ms" silently would hide a
// misunderstanding.
template <typename D>
auto AsDuration(D min, D max = D::max()) {
  return [min, max](const Node& node, const Where& at) -> std::optional<D> {
    std::optional<std::string> text = ScalarText(node, at, "a duration such as 30s");
    if (!text) {
      return std::nullopt;
    }
    base::Result<std::chrono::milliseconds> parsed = ParseDuration(*text);
    if (!parsed) {
      at.Fail(parsed.error().message);
      return std::nullopt;
    }
    if constexpr (std::is_same_v<D, std::chrono::seconds>) {
      if (parsed->count() % 1000 != 0) {
        at.Fail("bad duration " + QuoteForMessage(*text) + " (must be a whole number of seconds)");
        return std::nullopt;
      }
    }
    const D value = std::chrono::duration_cast<D>(*parsed);
    if (value < min) {
      if (min.count() <= 0) {
        at.Fail("must not be negative");
      } else if (min.count() == 1) {
        at.Fail("must be longer than 0s, found " + QuoteForMessage(*text));
      } else {
        at.Fail("must be at least " +
                FormatDuration(std::chrono::duration_cast<std::chrono::milliseconds>(min)) +
                ", found " + QuoteForMessage(*text));
      }
      return std::nullopt;
    }
    if (value > max) {
      at.Fail("must be at most " +
              FormatDuration(std::chrono::duration_cast<std::chrono::milliseconds>(max)) +
              ", found " + QuoteForMessage(*text));
      return std::nullopt;
    }
    return value;
  };
}

// A numeric IP address, no port, no host name: binding and advertising
// must not depend on DNS at startup.
std::optional<base::SocketAddress> DecodeIp(const Node& node, const Where& at);

// DecodeIp, or "" for none.
std::optional<std::optional<base::SocketAddress>> DecodeOptionalIp(const Node& node,
                                                                   const Where& at);

// "IP:port" / "[IPv6]:port" with a port of 1-65535.
std::optional<base::SocketAddress> DecodeIpPort(const Node& node, const Where& at);

std::optional<base::Cidr> DecodeCidr(const Node& node, const Where& at);

template <typename E>
struct EnumName {
  std::string_view name;
  E value;
};

// One of the names in `table`; `what` names the kind in messages.
template <typename E, size_t N>
auto AsEnum(const EnumName<E> (&table)[N], std::string_view what) {
  return [&table, what](const Node& node, const Where& at) -> std::optional<E> {
    std::string expected = std::string(what) + " (";
    for (size_t i = 0; i < N; ++i) {
      if (i > 0) {
        expected += i + 1 == N ? " or " : ", ";
      }
      expected.append(table[i].name);
    }
    expected += ")";
    std::optional<std::string> text = ScalarText(node, at, expected);
    if (!text) {
      return std::nullopt;
    }
    for (const EnumName<E>& entry : table) {
      if (*text == entry.name) {
        return entry.value;
      }
    }
    std::string message = "bad ";
    message.append(what);
    message += " " + QuoteForMessage(*text) + " (expected ";
    message += expected.substr(what.size() + 2);
    at.Fail(message);
    return std::nullopt;
  };
}

// A list whose items `decode_item` reads; an empty value is an empty list.
// The result is nullopt if any item was bad, so a half-read list never
// replaces the default.
template <typename Fn>
auto AsListOf(Fn decode_item) {
  return [decode_item](const Node& node, const Where& at)
             -> std::optional<std::vector<
                 typename std::invoke_result_t<Fn, const Node&, const Where&>::value_type>> {
    using Item = typename std::invoke_result_t<Fn, const Node&, const Where&>::value_type;
    std::vector<Item> items;
    if (node.IsNull()) {
      return items;
    }
    if (!node.IsSequence()) {
      at.Fail("expected a list, found " + KindName(node));
      return std::nullopt;
    }
    bool ok = true;
    for (size_t i = 0; i < node.size(); ++i) {
      const Node item = node[i];
      const int line = MarkLine(item.Mark());
      Where item_at{at.diag, at.path + "[" + std::to_string(i) + "]", line > 0 ? line : at.line};
      at.diag.NoteLine(item_at.path, item_at.line);
      std::optional<Item> value = decode_item(item, item_at);
      if (value) {
        items.push_back(std::move(*value));
      } else {
        ok = false;
      }
    }
    if (!ok) {
      return std::nullopt;
    }
    return items;
  };
}

// One mapping being decoded. Every key the code asks for is "known"; Finish()
// reports the keys of the mapping nobody asked for.
class Section {
 public:
  // `node` is a mapping, or null for a section written with no content.
  Section(Diagnostics& diag, const Node& node, std::string path)
      : diag_(diag), path_(std::move(path)) {
    if (!node.IsMap()) {
      return;
    }
    for (auto it = node.begin(); it != node.end(); ++it) {
      const int key_line = MarkLine(it->first.Mark());
      if (!it->first.IsScalar()) {
        diag_.Error(key_line, path_, "keys must be plain names, found " + KindName(it->first));
        continue;
      }
      std::string key = it->first.Scalar();
      auto previous = std::find_if(entries_.begin(), entries_.end(),
                                   [&](const Entry& e) { return e.key == key; });
      if (previous != entries_.end()) {
        diag_.Error(key_line, JoinPath(path_, key),
                    "duplicate key (first on line " + std::to_string(previous->line) + ")");
        continue;
      }
      diag_.NoteLine(JoinPath(path_, key), key_line);
      entries_.push_back({std::move(key), it->second, key_line, false});
    }
  }

  // Whether `key` was written (for required keys, after Read()).
  bool Has(std::string_view key) {
    known_.emplace_back(key);
    Entry* entry = Lookup(key);
    if (entry == nullptr) {
      return false;
    }
    entry->used = true;
    return true;
  }

  // Decodes `key` with `decode` into `out` if written; leaves `out` (the
  // default) alone if not written or bad.
  template <typename T, typename Fn>
  void Read(std::string_view key, T& out, Fn decode) {
    known_.emplace_back(key);
    Entry* entry = Lookup(key);
    if (entry == nullptr) {
      return;
    }
    entry->used = true;
    // Errors about a value point at its key's line: yaml-cpp marks an empty
    // value on the following line and an alias at its anchor.
    Where at{diag_, JoinPath(path_, key), entry->line};
    if (auto value = decode(entry->value, at)) {
      out = std::move(*value);
    }
  }

  // Runs `fn` on the sub-section `key` (a mapping, or empty), then reports
  // its unknown keys. Not written: `fn` sees an empty section.
  template <typename Fn>
  void Nested(std::string_view key, Fn fn) {
    known_.emplace_back(key);
    Entry* entry = Lookup(key);
    Node value;
    if (entry != nullptr) {
      entry->used = true;
      if (!entry->value.IsMap() && !entry->value.IsNull()) {
        diag_.Error(entry->line, JoinPath(path_, key),
                    "expected a mapping, found " + KindName(entry->value));
        return;
      }
      value = entry->value;
    }
    Section sub(diag_, value, JoinPath(path_, key));
    fn(sub);
    sub.Finish();
  }

  void Finish() {
    for (const Entry& entry : entries_) {
      if (entry.used) {
        continue;
      }
      std::string what = "unknown key";
      const std::string* best = nullptr;
      size_t best_distance = 3;  // suggest only close misspellings
      for (const std::string& candidate : known_) {
        const size_t d = EditDistance(entry.key, candidate);
        if (d < best_distance) {
          best_distance = d;
          best = &candidate;
        }
      }
      if (best != nullptr) {
        what += " (did you mean " + JoinPath(path_, *best) + "?)";
      }
      diag_.Error(entry.line, JoinPath(path_, entry.key), what);
    }
  }

 private:
  struct Entry {
    std::string key;
    Node value;
    int line;
    bool used;
  };

  Entry* Lookup(std::string_view key) {
    for (Entry& entry : entries_) {
      if (entry.key == key) {
        return &entry;
      }
    }
    return nullptr;
  }

  Diagnostics& diag_;
  std::string path_;
  std::vector<Entry> entries_;
  std::vector<std::string> known_;
};

// Runs `fn` on a list item that must be a mapping.
template <typename T, typename Fn>
std::optional<T> DecodeItemMapping(const Node& node, const Where& at, Fn fn) {
  if (!node.IsMap()) {
    at.Fail("expected a mapping, found " + KindName(node));
    return std::nullopt;
  }
  Section section(at.diag, node, at.path);
  const size_t errors_before = at.diag.error_count();
  T value{};
  fn(section, value, at);
  section.Finish();
  if (at.diag.error_count() != errors_before) {
    return std::nullopt;
  }
  return value;
}

// ---- Values checked by config/field_checks.h.

// `decode` followed by `check` on the decoded string.
template <typename Decode>
auto Checked(Decode decode, base::Status (*check)(std::string_view)) {
  return [decode, check](const Node& node, const Where& at) -> std::optional<std::string> {
    std::optional<std::string> text = decode(node, at);
    if (!text) {
      return std::nullopt;
    }
    if (base::Status ok = check(*text); !ok) {
      at.Fail(ok.error().message);
      return std::nullopt;
    }
    return text;
  };
}

std::optional<base::Md5Digest> DecodeLongTermKey(const Node& node, const Where& at);

std::optional<base::Sha256Digest> DecodeLongTermKeySha256(const Node& node, const Where& at);

}  // namespace turnkey::config::yaml_read
