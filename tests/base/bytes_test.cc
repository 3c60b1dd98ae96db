#include "base/bytes.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>

namespace turnkey::base {
namespace {

TEST(BytesTest, LoadBigEndian) {
  const uint8_t b[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0xff};
  EXPECT_EQ(LoadBe16(b), 0x0102);
  EXPECT_EQ(LoadBe32(b), 0x01020304u);
  EXPECT_EQ(LoadBe64(b), 0x0102030405060708ull);
  // Unaligned and high-bit values.
  EXPECT_EQ(LoadBe16(b + 7), 0x08ff);
  EXPECT_EQ(LoadBe32(b + 5), 0x060708ffu);
}

TEST(BytesTest, StoreBigEndian) {
  uint8_t b[9] = {};
  StoreBe16(b + 1, 0xabcd);
  EXPECT_EQ(b[0], 0);
  EXPECT_EQ(b[1], 0xab);
  EXPECT_EQ(b[2], 0xcd);
  StoreBe32(b + 1, 0xdeadbeef);
  EXPECT_EQ(LoadBe32(b + 1), 0xdeadbeefu);
  StoreBe64(b + 1, 0x1122334455667788ull);
  EXPECT_EQ(b[1], 0x11);
  EXPECT_EQ(b[8], 0x88);
  EXPECT_EQ(LoadBe64(b + 1), 0x1122334455667788ull);
}

TEST(BytesTest, Append) {
  Bytes out = {0x99};
  AppendBe16(out, 0x0102);
  AppendBe32(out, 0x03040506);
  const uint8_t extra[] = {0x07, 0x08};
  AppendBytes(out, extra);
  EXPECT_EQ(out, (Bytes{0x99, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08}));
  AppendBytes(out, {});
  EXPECT_EQ(out.size(), 9u);
}

TEST(BytesTest, StringViews) {
  const std::string s("a\0b", 3);
  ByteView v = AsBytes(s);
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[1], 0);
  EXPECT_EQ(AsString(v), s);
  EXPECT_TRUE(AsBytes("").empty());
}

TEST(HexTest, Encode) {
  EXPECT_EQ(HexEncode({}), "");
  const uint8_t b[] = {0x00, 0x0a, 0x1b, 0xff};
  EXPECT_EQ(HexEncode(b), "000a1bff");
}

TEST(HexTest, DecodeBothCases) {
  Bytes out;
  ASSERT_TRUE(HexDecode("000A1bFf", out));
  EXPECT_EQ(out, (Bytes{0x00, 0x0a, 0x1b, 0xff}));
  ASSERT_TRUE(HexDecode("", out));
  EXPECT_TRUE(out.empty());
}

TEST(HexTest, RoundTrip) {
  Bytes all;
  for (int i = 0; i < 256; ++i) {
    all.push_back(static_cast<uint8_t>(i));
  }
  Bytes back;
  ASSERT_TRUE(HexDecode(HexEncode(all), back));
  EXPECT_EQ(back, all);
}

TEST(HexTest, RejectsBadInputAndKeepsOutput) {
  Bytes out = {0x42};
  EXPECT_FALSE(HexDecode("abc", out));  // odd length
  EXPECT_FALSE(HexDecode("zz", out));   // not hex
  EXPECT_FALSE(HexDecode("0g", out));
  EXPECT_FALSE(HexDecode("0x12", out));  // no prefix allowed
  EXPECT_FALSE(HexDecode("12 3", out));
  EXPECT_FALSE(HexDecode(std::string_view("1\0", 2), out));
  // A failed decode leaves the output as it was.
  EXPECT_EQ(out, Bytes{0x42});
}

TEST(PercentDecodeTest, Table) {
  struct Case {
    const char* in;
    bool plus_is_space;
    std::optional<std::string> out;
  };
  const Case cases[] = {
      {"plain", false, "plain"},
      {"a%20b", false, "a b"},
      {"%2f%2F", false, "//"},
      {"a+b", false, "a+b"},
      {"a+b", true, "a b"},
      {"%e2%82%ac", false, "\xe2\x82\xac"},
      {"%00", false, std::string(1, '\0')},
      {"%", false, std::nullopt},
      {"%4", false, std::nullopt},
      {"%zz", false, std::nullopt},
      {"abc%4g", false, std::nullopt},
      {"", false, ""},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(PercentDecode(c.in, c.plus_is_space), c.out) << c.in;
  }
}

TEST(PercentNormalizeTest, Table) {
  const std::pair<const char*, std::optional<std::string>> cases[] = {
      {"plain", "plain"},
      {"%75sers", "users"},  // unreserved: decoded
      {"%41%7a%2D%2e%5F%7E", "Az-._~"},
      {"a%2fb", "a%2Fb"},  // a delimiter stays escaped, hex upper-cased
      {"%20%E2%82%ac", "%20%E2%82%AC"},
      {"a+b", "a+b"},
      {"%", std::nullopt},
      {"%4", std::nullopt},
      {"x%zz", std::nullopt},
      {"", ""},
  };
  for (const auto& [in, out] : cases) {
    EXPECT_EQ(PercentNormalize(in), out) << in;
  }
}

}  // namespace
}  // namespace turnkey::base
