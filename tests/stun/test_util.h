// Helpers shared by the STUN tests.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "base/bytes.h"
#include "stun/constants.h"

namespace turnkey::stun::testing {

// Decodes hex (spaces allowed for readability); fails the test on bad input.
inline base::Bytes Hex(std::string_view text) {
  std::string compact;
  for (char c : text) {
    if (c != ' ' && c != '\n') {
      compact.push_back(c);
    }
  }
  base::Bytes out;
  EXPECT_TRUE(base::HexDecode(compact, out)) << text;
  return out;
}

inline std::string ToHex(base::ByteView b) { return base::HexEncode(b); }

// Builds raw, possibly malformed, STUN messages byte by byte: the test
// decides every length field.
class RawMessage {
 public:
  explicit RawMessage(uint16_t type = 0x0001) : type_(type) {}

  // Appends an attribute header with `declared` length (value.size() if
  // negative), the value, and zero padding to 4 unless `pad` is false.
  RawMessage& Attr(uint16_t type, base::ByteView value, int declared = -1, bool pad = true) {
    base::AppendBe16(body_, type);
    base::AppendBe16(body_, static_cast<uint16_t>(declared < 0 ? value.size() : declared));
    body_.insert(body_.end(), value.begin(), value.end());
    if (pad) {
      body_.insert(body_.end(), Pad4(value.size()) - value.size(), uint8_t{0});
    }
    return *this;
  }
  RawMessage& Attr(AttributeType type, base::ByteView value, int declared = -1, bool pad = true) {
    return Attr(static_cast<uint16_t>(type), value, declared, pad);
  }
  RawMessage& AttrText(AttributeType type, std::string_view value) {
    return Attr(type, base::AsBytes(value));
  }
  RawMessage& Raw(base::ByteView bytes) {
    body_.insert(body_.end(), bytes.begin(), bytes.end());
    return *this;
  }
  RawMessage& Cookie(uint32_t cookie) {
    cookie_ = cookie;
    return *this;
  }
  // Overrides the header length field (default: the body size).
  RawMessage& Length(uint16_t length) {
    length_ = length;
    length_set_ = true;
    return *this;
  }

  base::Bytes Build() const {
    base::Bytes out;
    base::AppendBe16(out, type_);
    base::AppendBe16(out, length_set_ ? length_ : static_cast<uint16_t>(body_.size()));
    base::AppendBe32(out, cookie_);
    for (int i = 0; i < 12; ++i) {
      out.push_back(static_cast<uint8_t>(0xa0 + i));
    }
    out.insert(out.end(), body_.begin(), body_.end());
    return out;
  }

 private:
  uint16_t type_;
  uint32_t cookie_ = kMagicCookie;
  uint16_t length_ = 0;
  bool length_set_ = false;
  base::Bytes body_;
};

inline TransactionId RawTransactionId() {
  TransactionId t;
  for (int i = 0; i < 12; ++i) {
    t[i] = static_cast<uint8_t>(0xa0 + i);
  }
  return t;
}

}  // namespace turnkey::stun::testing
