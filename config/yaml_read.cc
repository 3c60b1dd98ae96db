#include "config/yaml_read.h"

namespace turnkey::config::yaml_read {
namespace {

// An IPv4 address written as IPv4-mapped IPv6 (::ffff:a.b.c.d) cannot be
// bound, is no IPv6 relay address and no IPv6 address to tell clients:
// refused, naming the IPv4 form.
bool RefuseMapped(const base::SocketAddress& address, const std::string& text, const Where& at) {
  if (address.Unmapped() == address) {
    return false;
  }
  // With the port when the text had one ("[::ffff:127.0.0.1]:9641").
  const base::SocketAddress plain = address.Unmapped();
  at.Fail("bad IP address " + QuoteForMessage(text) + " (an IPv4 address in IPv6 form; write " +
          (plain.port() != 0 ? plain.ToString() : plain.IpString()) + ")");
  return true;
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

}  // namespace

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

std::optional<base::Md5Digest> DecodeLongTermKey(const Node& node, const Where& at) {
  return DecodeHexKey(node, at, &ParseHexMd5,
                      "expected 32 hex digits (MD5 of name:realm:password)");
}

std::optional<base::Sha256Digest> DecodeLongTermKeySha256(const Node& node, const Where& at) {
  return DecodeHexKey(node, at, &ParseHexSha256,
                      "expected 64 hex digits (SHA-256 of name:realm:password)");
}

}  // namespace turnkey::config::yaml_read
