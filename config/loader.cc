#include "config/loader.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <utility>

#include "base/cidr.h"
#include "config/diagnostics.h"
#include "config/duration.h"
#include "config/field_checks.h"
#include "config/secret_files.h"
#include "config/validate.h"

namespace turnkey::config {
namespace {

using YAML::Node;

// A config file is a few kilobytes; refusing big ones early bounds the
// parser's memory on a mistaken path such as a log file.
constexpr std::uintmax_t kMaxConfigBytes = 4 * 1024 * 1024;

int MarkLine(const YAML::Mark& mark) { return mark.line >= 0 ? mark.line + 1 : 0; }

std::string KindName(const Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return "a single value";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

std::string JoinPath(const std::string& path, std::string_view key) {
  std::string out = path;
  if (!out.empty()) {
    out += ".";
  }
  out.append(key);
  return out;
}

// Where a value sits in the file, and how to complain about it.
struct Where {
  Diagnostics& diag;
  std::string path;
  int line;

  void Fail(std::string_view what) const { diag.Error(line, path, what); }
};

// ---- Scalar decoders. Each reports through `at` and returns nullopt on error.

std::optional<std::string> ScalarText(const Node& node, const Where& at,
                                      std::string_view expected) {
  if (node.IsScalar()) {
    return node.Scalar();
  }
  std::string what;
  if (node.IsNull()) {
    what = "missing value (expected ";
    what.append(expected);
    what += ")";
  } else {
    what = "expected ";
    what.append(expected);
    what += ", found " + KindName(node);
  }
  at.Fail(what);
  return std::nullopt;
}

// Strings may be anything printable; the value is never echoed, since the
// same decoder reads secrets.
std::optional<std::string> DecodeString(const Node& node, const Where& at) {
  std::optional<std::string> text = ScalarText(node, at, "a string");
  if (text && text->find('\0') != std::string::npos) {
    at.Fail("must not contain a NUL character");
    return std::nullopt;
  }
  return text;
}

std::optional<std::string> DecodeNonEmptyString(const Node& node, const Where& at) {
  std::optional<std::string> text = DecodeString(node, at);
  if (text && text->empty()) {
    at.Fail("must not be empty");
    return std::nullopt;
  }
  return text;
}

std::optional<bool> DecodeBool(const Node& node, const Where& at) {
  std::optional<std::string> text = ScalarText(node, at, "true or false");
  if (!text) {
    return std::nullopt;
  }
  // YAML 1.2 booleans only: yaml-cpp's own conversion also takes YAML 1.1's
  // yes/no/on/off, which famously turns a country code "no" into false.
  if (*text == "true" || *text == "True" || *text == "TRUE") {
    return true;
  }
  if (*text == "false" || *text == "False" || *text == "FALSE") {
    return false;
  }
  at.Fail("expected true or false, found " + QuoteForMessage(*text));
  return std::nullopt;
}

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
auto AsNumber(double min, double max) {
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

std::optional<uint16_t> DecodePort(const Node& node, const Where& at) {
  std::optional<std::string> text = ScalarText(node, at, "a port number");
  if (!text) {
    return std::nullopt;
  }
  uint64_t value = 0;
  const bool digits = !text->empty() && text->find_first_not_of("0123456789") == std::string::npos;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (!digits) {
    const bool negative = text->size() > 1 && text->front() == '-' &&
                          text->find_first_not_of("0123456789", 1) == std::string::npos;
    at.Fail(negative ? "port " + *text + " is out of range (1-65535)"
                     : "expected a port number, found " + QuoteForMessage(*text));
    return std::nullopt;
  }
  if (ec != std::errc() || value < 1 || value > 65535) {
    at.Fail("port " + *text + " is out of range (1-65535)");
    return std::nullopt;
  }
  return static_cast<uint16_t>(value);
}

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

// An IPv4 address written as IPv4-mapped IPv6 (::ffff:a.b.c.d) cannot be
// bound, is no IPv6 relay address and no IPv6 address to tell clients:
// refused, naming the IPv4 form.
bool RefuseMapped(const base::SocketAddress& address, const std::string& text, const Where& at) {
  if (address.Unmapped() == address) {
    return false;
  }
  at.Fail("bad IP address " + QuoteForMessage(text) + " (an IPv4 address in IPv6 form; write " +
          address.Unmapped().IpString() + ")");
  return true;
}

// A numeric IP address, no port, no host name: binding and advertising
// must not depend on DNS at startup.
std::optional<base::SocketAddress> DecodeIp(const Node& node, const Where& at) {
  std::optional<std::string> text = ScalarText(node, at, "an IP address");
  if (!text) {
    return std::nullopt;
  }
  std::optional<base::SocketAddress> address;
  if (text->find('\0') == std::string::npos) {
    address = base::SocketAddress::ParseIp(*text);
  }
  if (!address) {
    std::string what = "bad IP address " + QuoteForMessage(*text);
    if (base::SocketAddress::ParseIpPort(*text)) {
      what += " (give the port separately)";
    } else {
      what += " (expected a numeric IPv4 or IPv6 address)";
    }
    at.Fail(what);
    return std::nullopt;
  }
  if (RefuseMapped(*address, *text, at)) {
    return std::nullopt;
  }
  return address;
}

// DecodeIp, or "" for none.
std::optional<std::optional<base::SocketAddress>> DecodeOptionalIp(const Node& node,
                                                                   const Where& at) {
  if (node.IsScalar() && node.Scalar().empty()) {
    return std::optional<base::SocketAddress>();
  }
  std::optional<base::SocketAddress> address = DecodeIp(node, at);
  if (!address) {
    return std::nullopt;
  }
  return address;
}

// "IP:port" / "[IPv6]:port" with a port of 1-65535.
std::optional<base::SocketAddress> DecodeIpPort(const Node& node, const Where& at) {
  std::optional<std::string> text = ScalarText(node, at, "an IP:port address");
  if (!text) {
    return std::nullopt;
  }
  std::optional<base::SocketAddress> address;
  if (text->find('\0') == std::string::npos) {
    address = base::SocketAddress::ParseIpPort(*text);
  }
  if (!address || address->port() == 0) {
    at.Fail("bad address " + QuoteForMessage(*text) +
            " (expected IPv4:port or [IPv6]:port with a port of 1-65535)");
    return std::nullopt;
  }
  if (RefuseMapped(*address, *text, at)) {
    return std::nullopt;
  }
  return address;
}

std::optional<base::Cidr> DecodeCidr(const Node& node, const Where& at) {
  std::optional<std::string> text = ScalarText(node, at, "a CIDR such as 192.0.2.0/24");
  if (!text) {
    return std::nullopt;
  }
  base::Result<base::Cidr> cidr = base::ParseCidr(*text);
  if (!cidr) {
    at.Fail(cidr.error().message);
    return std::nullopt;
  }
  // An IPv4 range in IPv4-mapped form (::ffff:a.b.c.d/96+n) would match only
  // peers and clients written that way, never the IPv4 addresses it names
  // (both arrive unmapped): refused, naming the IPv4 form.
  if (cidr->network.Unmapped() != cidr->network) {
    at.Fail("bad CIDR " + QuoteForMessage(*text) + " (an IPv4 range in IPv6 form; write " +
            cidr->network.Unmapped().IpString() + "/" + std::to_string(cidr->prefix_length - 96) +
            ")");
    return std::nullopt;
  }
  return *cidr;
}

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

constexpr EnumName<Transport> kTransports[] = {
    {"udp", Transport::kUdp}, {"tcp", Transport::kTcp}, {"tls", Transport::kTls}};
constexpr EnumName<base::LogLevel> kLogLevels[] = {
    {"trace", base::LogLevel::kTrace}, {"debug", base::LogLevel::kDebug},
    {"info", base::LogLevel::kInfo},   {"warn", base::LogLevel::kWarn},
    {"error", base::LogLevel::kError}, {"off", base::LogLevel::kOff}};
constexpr EnumName<base::LogFormat> kLogFormats[] = {{"text", base::LogFormat::kText},
                                                     {"json", base::LogFormat::kJson}};
constexpr EnumName<Registration> kRegistrations[] = {{"open", Registration::kOpen},
                                                     {"closed", Registration::kClosed}};
constexpr EnumName<DatabaseDriver> kDrivers[] = {{"sqlite", DatabaseDriver::kSqlite},
                                                 {"mysql", DatabaseDriver::kMysql}};

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

// A long-term key written as hex: `parse` it, or say what was expected. The
// key is password-equivalent: say what is wrong, never what it was.
template <typename Digest>
std::optional<Digest> DecodeHexKey(const Node& node, const Where& at,
                                   std::optional<Digest> (*parse)(std::string_view),
                                   const char* expected) {
  std::optional<std::string> text = DecodeString(node, at);
  if (!text) {
    return std::nullopt;
  }
  std::optional<Digest> key = parse(*text);
  if (!key) {
    at.Fail(expected);
  }
  return key;
}

std::optional<base::Md5Digest> DecodeLongTermKey(const Node& node, const Where& at) {
  return DecodeHexKey(node, at, &ParseHexMd5,
                      "expected 32 hex digits (MD5 of name:realm:password)");
}

std::optional<base::Sha256Digest> DecodeLongTermKeySha256(const Node& node, const Where& at) {
  return DecodeHexKey(node, at, &ParseHexSha256,
                      "expected 64 hex digits (SHA-256 of name:realm:password)");
}

// ---- Sections.

constexpr std::chrono::seconds kOneSecond{1};
constexpr std::chrono::milliseconds kOneMilli{1};
constexpr std::chrono::milliseconds kZeroMillis{0};
constexpr std::chrono::milliseconds kTenSeconds{10000};
constexpr std::chrono::milliseconds kOneSecondMs{1000};
constexpr std::chrono::milliseconds kSixtySeconds{60000};

void DecodeListener(Section& s, ListenerOptions& listener, const Where& at) {
  std::optional<Transport> transport;
  s.Read("transport", transport, AsEnum(kTransports, "transport"));
  if (!s.Has("transport")) {
    at.diag.Error(at.line, JoinPath(at.path, "transport"), "missing (expected udp, tcp or tls)");
  }
  listener.transport = transport.value_or(Transport::kUdp);
  base::SocketAddress address = base::SocketAddress::V4({0, 0, 0, 0}, 0);
  s.Read("address", address, DecodeIp);
  // The usual port of the transport when none is given (RFC 8656 section 4).
  uint16_t port = listener.transport == Transport::kTls ? 5349 : 3478;
  s.Read("port", port, DecodePort);
  address.set_port(port);
  listener.address = address;
}

void DecodeRelay(Section& s, RelayOptions& relay) {
  s.Read("addresses", relay.addresses, AsListOf(DecodeIp));
  s.Read("external_addresses", relay.external_addresses, AsListOf(DecodeIp));
  s.Nested("ports", [&](Section& ports) {
    ports.Read("min", relay.ports.min, DecodePort);
    ports.Read("max", relay.ports.max, DecodePort);
  });
}

void DecodeAuth(Section& s, AuthOptions& auth) {
  s.Read("secrets", auth.secrets, AsListOf(DecodeNonEmptyString));
  s.Read("secrets_file", auth.secrets_file, DecodeString);
  s.Read("static_users", auth.static_users, AsListOf([](const Node& node, const Where& at) {
           return DecodeItemMapping<StaticUser>(
               node, at, [](Section& user, StaticUser& out, const Where& item_at) {
                 user.Read("name", out.name, DecodeNonEmptyString);
                 user.Read("key", out.key, DecodeLongTermKey);
                 user.Read("key_sha256", out.key_sha256, DecodeLongTermKeySha256);
                 for (std::string_view required : {"name", "key"}) {
                   if (!user.Has(required)) {
                     item_at.diag.Error(item_at.line, JoinPath(item_at.path, required), "missing");
                   }
                 }
               });
         }));
  s.Read("nonce_lifetime", auth.nonce_lifetime, AsDuration(kOneSecond));
}

void DecodeTurn(Section& s, TurnOptions& turn) {
  s.Read("enabled", turn.enabled, DecodeBool);
  s.Read("threads", turn.threads, AsUnsigned<uint32_t>(0, 1024));
  s.Read("connections_per_address", turn.connections_per_address,
         AsUnsigned<uint32_t>(0, std::numeric_limits<uint32_t>::max()));
  s.Read("pending_connections", turn.pending_connections,
         AsUnsigned<uint32_t>(0, std::numeric_limits<uint32_t>::max()));
  s.Read("listeners", turn.listeners, AsListOf([](const Node& node, const Where& at) {
           return DecodeItemMapping<ListenerOptions>(node, at, DecodeListener);
         }));
  s.Nested("relay", [&](Section& relay) { DecodeRelay(relay, turn.relay); });
  s.Nested("auth", [&](Section& auth) { DecodeAuth(auth, turn.auth); });
  s.Nested("lifetimes", [&](Section& l) {
    l.Read("allocation_default", turn.lifetimes.allocation_default, AsDuration(kOneSecond));
    l.Read("allocation_max", turn.lifetimes.allocation_max, AsDuration(kOneSecond));
    l.Read("permission", turn.lifetimes.permission, AsDuration(kOneSecond));
    l.Read("channel", turn.lifetimes.channel, AsDuration(kOneSecond));
  });
  s.Nested("quotas", [&](Section& q) {
    constexpr uint32_t kMax32 = std::numeric_limits<uint32_t>::max();
    q.Read("allocations_per_user", turn.quotas.allocations_per_user,
           AsUnsigned<uint32_t>(0, kMax32));
    q.Read("allocations_total", turn.quotas.allocations_total, AsUnsigned<uint32_t>(0, kMax32));
    q.Read("permissions_per_allocation", turn.quotas.permissions_per_allocation,
           AsUnsigned<uint32_t>(0, kMax32));
    q.Read("bandwidth_per_allocation", turn.quotas.bandwidth_per_allocation,
           AsUnsigned<uint64_t>(0, std::numeric_limits<uint64_t>::max()));
  });
  s.Nested("peers", [&](Section& p) {
    p.Read("deny", turn.peers.deny, AsListOf(DecodeCidr));
    p.Read("allow", turn.peers.allow, AsListOf(DecodeCidr));
  });
  s.Read("alternate_servers", turn.alternate_servers, AsListOf(DecodeIpPort));
  s.Read("alternate_tls_servers", turn.alternate_tls_servers, AsListOf(DecodeIpPort));
  s.Read("alternate_domain", turn.alternate_domain,
         Checked(DecodeString, [](std::string_view text) -> base::Status {
           return text.empty() ? base::Ok() : CheckDomainName(text);  // "" = none
         }));
  s.Nested("nat_discovery", [&](Section& n) {
    n.Read("enabled", turn.nat_discovery.enabled, DecodeBool);
    n.Read("alternate_address", turn.nat_discovery.alternate_address, DecodeOptionalIp);
    n.Read("alternate_port", turn.nat_discovery.alternate_port, AsUnsigned<uint16_t>(0, 65535));
  });
  s.Read("software", turn.software, Checked(DecodeString, CheckSoftware));
}

void DecodeSignal(Section& s, SignalOptions& signal) {
  s.Read("enabled", signal.enabled, DecodeBool);
  s.Nested("listen", [&](Section& l) {
    base::SocketAddress address = signal.listen.address;
    l.Read("address", address, DecodeIp);
    uint16_t port = signal.listen.address.port();
    l.Read("port", port, DecodePort);
    address.set_port(port);
    signal.listen.address = address;
    l.Read("tls", signal.listen.tls, DecodeBool);
  });
  s.Read("allowed_origins", signal.allowed_origins,
         AsListOf(Checked(DecodeNonEmptyString, CheckOrigin)));
  s.Read("trusted_proxies", signal.trusted_proxies, AsListOf(DecodeCidr));
  s.Read("connections_per_address", signal.connections_per_address,
         AsUnsigned<uint32_t>(0, std::numeric_limits<uint32_t>::max()));
  s.Read("pending_connections", signal.pending_connections,
         AsUnsigned<uint32_t>(0, std::numeric_limits<uint32_t>::max()));
  s.Read("sockets_per_user", signal.sockets_per_user,
         AsUnsigned<uint32_t>(0, std::numeric_limits<uint32_t>::max()));
  s.Read("registration", signal.registration, AsEnum(kRegistrations, "registration"));
  s.Nested("jwt", [&](Section& j) {
    j.Read("secret_file", signal.jwt.secret_file, DecodeString);
    j.Read("access_ttl", signal.jwt.access_ttl, AsDuration(kOneSecond));
    j.Read("refresh_ttl", signal.jwt.refresh_ttl, AsDuration(kOneSecond));
  });
  s.Read("ring_timeout", signal.ring_timeout, AsDuration(kOneMilli));
  s.Read("reconnect_grace", signal.reconnect_grace, AsDuration(kZeroMillis));
  s.Read("connection_recovery", signal.connection_recovery, DecodeBool);
  s.Nested("ice_servers", [&](Section& i) {
    i.Read("urls", signal.ice_servers.urls, AsListOf(Checked(DecodeNonEmptyString, CheckIceUrl)));
    i.Read("credential_ttl", signal.ice_servers.credential_ttl, AsDuration(kOneSecond));
  });
  s.Nested("engineio", [&](Section& e) {
    e.Read("ping_interval", signal.engineio.ping_interval, AsDuration(kOneMilli));
    e.Read("ping_timeout", signal.engineio.ping_timeout, AsDuration(kOneMilli));
    e.Read("max_payload", signal.engineio.max_payload, AsUnsigned<uint64_t>(1, 1u << 30));
    e.Read("connect_timeout", signal.engineio.connect_timeout, AsDuration(kOneMilli));
    e.Read("max_pending_per_address", signal.engineio.max_pending_per_address,
           AsUnsigned<uint32_t>(0, 1000000));
  });
  s.Nested("rate_limits", [&](Section& r) {
    for (auto [key, limit] :
         {std::pair{"events", &signal.rate_limits.events},
          std::pair{"initiate_per_socket", &signal.rate_limits.initiate_per_socket},
          std::pair{"initiate_per_user", &signal.rate_limits.initiate_per_user},
          std::pair{"register_per_address", &signal.rate_limits.register_per_address}}) {
      r.Nested(key, [&](Section& b) {
        b.Read("rate", limit->rate, AsNumber(0, 1e6));
        b.Read("burst", limit->burst, AsNumber(1, 1e6));
      });
    }
  });
  s.Nested("history", [&](Section& h) {
    h.Read("commit_delay", signal.history.commit_delay, AsDuration(kZeroMillis, kTenSeconds));
  });
  s.Read("protocol_test_mode", signal.protocol_test_mode, DecodeBool);
  s.Read("web_root", signal.web_root, DecodeString);
}

void DecodeDatabase(Section& s, DatabaseOptions& db) {
  s.Read("driver", db.driver, AsEnum(kDrivers, "database driver"));
  s.Nested("sqlite", [&](Section& l) { l.Read("path", db.sqlite.path, DecodeNonEmptyString); });
  s.Nested("mysql", [&](Section& m) {
    m.Read("host", db.mysql.host, DecodeNonEmptyString);
    m.Read("port", db.mysql.port, DecodePort);
    m.Read("user", db.mysql.user, DecodeNonEmptyString);
    m.Read("password_file", db.mysql.password_file, DecodeString);
    m.Read("database", db.mysql.database, DecodeNonEmptyString);
    m.Read("pool_size", db.mysql.pool_size, AsUnsigned<uint32_t>(1, 256));
    m.Read("tls", db.mysql.tls, DecodeBool);
    m.Read("tls_ca_file", db.mysql.tls_ca_file, DecodeString);
  });
}

void DecodeCluster(Section& s, ClusterOptions& cluster) {
  s.Read("enabled", cluster.enabled, DecodeBool);
  s.Read("name", cluster.name, Checked(DecodeNonEmptyString, CheckClusterName));
  s.Read("node_timeout", cluster.node_timeout, AsDuration(kOneSecondMs, kSixtySeconds));
  s.Nested("redis", [&](Section& r) {
    r.Read("host", cluster.redis.host, DecodeNonEmptyString);
    r.Read("port", cluster.redis.port, DecodePort);
    r.Read("username", cluster.redis.username, DecodeString);
    r.Read("password_file", cluster.redis.password_file, DecodeString);
  });
}

void DecodeConfig(Section& root, Config& cfg) {
  root.Read("realm", cfg.realm, Checked(DecodeNonEmptyString, CheckRealm));
  root.Read("state_dir", cfg.state_dir, DecodeNonEmptyString);
  root.Read("drain_timeout", cfg.drain_timeout, AsDuration(kOneMilli));
  root.Nested("log", [&](Section& s) {
    s.Read("level", cfg.log.level, AsEnum(kLogLevels, "log level"));
    s.Read("format", cfg.log.format, AsEnum(kLogFormats, "log format"));
  });
  root.Nested("tls", [&](Section& s) {
    s.Read("certificate", cfg.tls.certificate, DecodeString);
    s.Read("private_key", cfg.tls.private_key, DecodeString);
  });
  root.Nested("turn", [&](Section& s) { DecodeTurn(s, cfg.turn); });
  root.Nested("signal", [&](Section& s) { DecodeSignal(s, cfg.signal); });
  root.Nested("database", [&](Section& s) { DecodeDatabase(s, cfg.database); });
  root.Nested("metrics", [&](Section& s) {
    s.Read("enabled", cfg.metrics.enabled, DecodeBool);
    s.Read("listen", cfg.metrics.listen, DecodeIpPort);
    s.Read("path", cfg.metrics.path, Checked(DecodeString, CheckUrlPath));
  });
  root.Nested("cluster", [&](Section& s) { DecodeCluster(s, cfg.cluster); });
}

// Parses and decodes; everything yaml-cpp throws is turned into a message.
void Decode(std::string_view yaml, Diagnostics& diag, Config& cfg) {
  std::vector<Node> documents;
  try {
    std::string text(yaml);
    documents = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    diag.RawError(MarkLine(e.mark), "syntax error: " + e.msg);
    return;
  }
  if (documents.size() > 1) {
    diag.RawError(MarkLine(documents[1].Mark()),
                  "syntax error: more than one YAML document (a second \"---\")");
    return;
  }
  if (documents.empty() || documents[0].IsNull()) {
    return;
  }
  const Node& doc = documents[0];
  if (!doc.IsMap()) {
    diag.Error(MarkLine(doc.Mark()), "", "expected a mapping of settings, found " + KindName(doc));
    return;
  }
  Section root(diag, doc, "");
  DecodeConfig(root, cfg);
  root.Finish();
}

base::Result<Config> LoadImpl(std::string_view yaml, std::string_view name,
                              const std::string& base_dir, const std::string& config_path,
                              std::vector<std::string>* warnings) {
  Diagnostics diag{std::string(name)};
  Config cfg;
  try {
    Decode(yaml, diag, cfg);
    if (diag.has_errors()) {
      return std::unexpected(diag.ToError());
    }
    ResolvePaths(cfg, base_dir);
    ReadSecretFiles(cfg, diag);
    CheckConsistency(cfg, diag);
    CheckExposure(cfg, diag);
    CheckSecretFileModes(cfg, config_path, diag);
  } catch (const YAML::Exception& e) {
    diag.RawError(MarkLine(e.mark), "cannot load: " + e.msg);
  } catch (const std::exception& e) {
    diag.RawError(0, std::string("cannot load: ") + e.what());
  } catch (...) {
    diag.RawError(0, "cannot load: unknown error");
  }
  if (diag.has_errors()) {
    return std::unexpected(diag.ToError());
  }
  if (warnings != nullptr) {
    *warnings = diag.Warnings();
  }
  return cfg;
}

}  // namespace

base::Result<Config> LoadConfigString(std::string_view yaml, std::string_view name_for_errors,
                                      const std::string& base_dir,
                                      std::vector<std::string>* warnings) {
  return LoadImpl(yaml, name_for_errors, base_dir, "", warnings);
}

base::Result<Config> LoadConfigFile(const std::string& path, std::vector<std::string>* warnings) {
  try {
    std::error_code ec;
    const std::filesystem::path file(path);
    const std::uintmax_t size = std::filesystem::file_size(file, ec);
    if (ec) {
      return base::InvalidArgument(path + ": cannot read: " + ec.message());
    }
    if (size > kMaxConfigBytes) {
      return base::InvalidArgument(path + ": cannot read: larger than 4 MiB");
    }
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      return base::InvalidArgument(path + ": cannot read: cannot open");
    }
    std::string contents{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (in.bad()) {
      return base::InvalidArgument(path + ": cannot read: I/O error");
    }
    std::filesystem::path dir = std::filesystem::absolute(file, ec).parent_path();
    if (ec) {
      dir = file.parent_path();
    }
    return LoadImpl(contents, path, dir.string(), path, warnings);
  } catch (const std::exception& e) {
    return base::InvalidArgument(path + ": cannot read: " + e.what());
  }
}

}  // namespace turnkey::config
