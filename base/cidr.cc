#include "base/cidr.h"

#include <charconv>
#include <cstring>

namespace turnkey::base {
namespace {

Result<Cidr> Bad(std::string_view text, std::string_view why) {
  std::string message = "bad CIDR \"";
  message.append(text);
  message.append("\" (");
  message.append(why);
  message.append(")");
  return InvalidArgument(std::move(message));
}

// True if every bit of `bytes` past the first `prefix_length` bits is zero.
bool HostBitsZero(const uint8_t* bytes, size_t size, unsigned prefix_length) {
  for (size_t i = 0; i < size; ++i) {
    const unsigned first_bit = static_cast<unsigned>(i) * 8;
    uint8_t host_mask = 0xff;
    if (first_bit + 8 <= prefix_length) {
      host_mask = 0;
    } else if (first_bit < prefix_length) {
      host_mask = static_cast<uint8_t>(0xff >> (prefix_length - first_bit));
    }
    if ((bytes[i] & host_mask) != 0) {
      return false;
    }
  }
  return true;
}

// Copy of `address` with the host bits cleared, for the "did you mean" hint.
SocketAddress Masked(const SocketAddress& address, unsigned prefix_length) {
  std::array<uint8_t, 16> bytes{};
  std::memcpy(bytes.data(), address.bytes(), address.size());
  for (size_t i = 0; i < address.size(); ++i) {
    const unsigned first_bit = static_cast<unsigned>(i) * 8;
    if (first_bit >= prefix_length) {
      bytes[i] = 0;
    } else if (first_bit + 8 > prefix_length) {
      bytes[i] &= static_cast<uint8_t>(0xff << (8 - (prefix_length - first_bit)));
    }
  }
  if (address.is_v4()) {
    return SocketAddress::V4({bytes[0], bytes[1], bytes[2], bytes[3]}, 0);
  }
  return SocketAddress::V6(bytes, 0);
}

}  // namespace

Result<Cidr> ParseCidr(std::string_view text) {
  if (text.find('\0') != std::string_view::npos) {
    return Bad("", "contains a NUL byte");
  }
  const size_t slash = text.find('/');
  std::string_view ip_text = text.substr(0, slash);
  std::optional<SocketAddress> address = SocketAddress::ParseIp(ip_text);
  if (!address) {
    return Bad(text, "not an IPv4 or IPv6 address");
  }
  const unsigned max_prefix = address->is_v4() ? 32 : 128;
  unsigned prefix_length = max_prefix;
  if (slash != std::string_view::npos) {
    std::string_view prefix_text = text.substr(slash + 1);
    // from_chars alone would accept a leading '-' for signed types and stop
    // at junk; insist on 1-3 plain digits covering the whole suffix.
    if (prefix_text.empty() || prefix_text.size() > 3 ||
        prefix_text.find_first_not_of("0123456789") != std::string_view::npos) {
      return Bad(text, "prefix length must be a number");
    }
    std::from_chars(prefix_text.data(), prefix_text.data() + prefix_text.size(), prefix_length);
    if (prefix_length > max_prefix) {
      return Bad(text,
                 address->is_v4() ? "prefix length must be 0-32" : "prefix length must be 0-128");
    }
  }
  if (!HostBitsZero(address->bytes(), address->size(), prefix_length)) {
    std::string hint = "host bits set; did you mean ";
    hint += Masked(*address, prefix_length).IpString();
    hint += "/" + std::to_string(prefix_length) + "?";
    return Bad(text, hint);
  }
  Cidr cidr;
  cidr.network = *address;
  cidr.network.set_port(0);
  cidr.prefix_length = static_cast<uint8_t>(prefix_length);
  return cidr;
}

std::string CidrToString(const Cidr& cidr) {
  return cidr.network.IpString() + "/" + std::to_string(cidr.prefix_length);
}

bool CidrContains(const Cidr& cidr, const SocketAddress& address) {
  if (cidr.network.family() != address.family() || address.family() == Family::kNone) {
    return false;
  }
  const uint8_t* net = cidr.network.bytes();
  const uint8_t* addr = address.bytes();
  unsigned remaining = cidr.prefix_length;
  for (size_t i = 0; i < address.size() && remaining > 0; ++i) {
    const unsigned bits = remaining >= 8 ? 8 : remaining;
    const uint8_t mask = static_cast<uint8_t>(0xff << (8 - bits));
    if ((net[i] & mask) != (addr[i] & mask)) {
      return false;
    }
    remaining -= bits;
  }
  return true;
}

bool CidrsOverlap(const Cidr& a, const Cidr& b) {
  const bool a_wider = a.prefix_length <= b.prefix_length;
  return CidrContains(a_wider ? a : b, a_wider ? b.network : a.network);
}

}  // namespace turnkey::base
