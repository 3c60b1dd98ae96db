#include "base/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace turnkey::base {
namespace {

TEST(Utf8Test, AcceptsWellFormedText) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ASCII {\"callId\":1}"));
  EXPECT_TRUE(IsValidUtf8("\xC2\x80"));          // U+0080, first 2-byte
  EXPECT_TRUE(IsValidUtf8("\xDF\xBF"));          // U+07FF
  EXPECT_TRUE(IsValidUtf8("\xE0\xA0\x80"));      // U+0800, first 3-byte
  EXPECT_TRUE(IsValidUtf8("\xED\x9F\xBF"));      // U+D7FF, below the surrogates
  EXPECT_TRUE(IsValidUtf8("\xEE\x80\x80"));      // U+E000, above them
  EXPECT_TRUE(IsValidUtf8("\xEF\xBF\xBF"));      // U+FFFF
  EXPECT_TRUE(IsValidUtf8("\xF0\x90\x80\x80"));  // U+10000, first 4-byte
  EXPECT_TRUE(IsValidUtf8("\xF4\x8F\xBF\xBF"));  // U+10FFFF, the last
  EXPECT_TRUE(IsValidUtf8("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x93\x9E"));
  EXPECT_TRUE(IsValidUtf8(std::string("a\0b", 3)));  // NUL is a character
}

TEST(Utf8Test, RefusesMalformedText) {
  const char* bad[] = {
      "\x80",              // lone continuation byte
      "\xBF",              //
      "\xC0\x80",          // overlong NUL
      "\xC1\xBF",          // overlong ASCII
      "\xC2",              // truncated
      "\xC2\x41",          // continuation missing
      "\xE0\x80\x80",      // overlong 3-byte
      "\xE0\x9F\xBF",      // overlong, just below U+0800
      "\xED\xA0\x80",      // U+D800, a surrogate
      "\xED\xBF\xBF",      // U+DFFF
      "\xE2\x82",          // truncated 3-byte
      "\xF0\x80\x80\x80",  // overlong 4-byte
      "\xF0\x8F\xBF\xBF",  // overlong, just below U+10000
      "\xF4\x90\x80\x80",  // U+110000
      "\xF5\x80\x80\x80",  // lead byte past U+10FFFF
      "\xFF",              //
      "\xF0\x9F\x93",      // truncated 4-byte
      "ok\xE2\x28\xA1",    // bad second byte after good text
  };
  for (const char* text : bad) {
    EXPECT_FALSE(IsValidUtf8(text)) << testing::PrintToString(std::string(text));
  }
}

TEST(Utf8Test, RepairsMalformedTextOneReplacementPerMaximalSubpart) {
  const std::string kFffd = "\xEF\xBF\xBD";
  // Unicode 15 section 3.9, table 3-8: a truncated 4-byte and 3-byte sequence,
  // a lone lead, lone continuation bytes.
  EXPECT_EQ(ToValidUtf8("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64"),
            "a" + kFffd + kFffd + kFffd + "b" + kFffd + "c" + kFffd + kFffd + "d");
  // Bytes no well-formed sequence starts with stand alone: each is one.
  EXPECT_EQ(ToValidUtf8("\xC0\xAF"), kFffd + kFffd);
  EXPECT_EQ(ToValidUtf8("\xED\xA0\x80"), kFffd + kFffd + kFffd);  // a surrogate
  EXPECT_EQ(ToValidUtf8("\xF4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);
  // Latin-1 text sent as if it were UTF-8 (the é of "héllo").
  EXPECT_EQ(ToValidUtf8("4h\xE9llo"), "4h" + kFffd + "llo");
  EXPECT_EQ(ToValidUtf8("end \xE2\x82"), "end " + kFffd);
  // Well-formed text is unchanged, NUL included.
  const std::string good = "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x93\x9E" + std::string("\0x", 2);
  EXPECT_EQ(ToValidUtf8(good), good);
  EXPECT_EQ(ToValidUtf8(""), "");
}

TEST(Utf8LengthTest, CountsScalarValues) {
  EXPECT_EQ(Utf8Length(""), 0u);
  EXPECT_EQ(Utf8Length("abc"), 3u);
  EXPECT_EQ(Utf8Length("h\xC3\xA9llo"), 5u);      // é
  EXPECT_EQ(Utf8Length("\xE2\x82\xAC"), 1u);      // €
  EXPECT_EQ(Utf8Length("\xF0\x9F\x98\x80"), 1u);  // U+1F600
  EXPECT_EQ(Utf8Length("\xF4\x8F\xBF\xBF"), 1u);  // U+10FFFF
}

TEST(Utf8LengthTest, RejectsMalformedSequences) {
  for (const char* bad :
       {"\x80", "\xC0\xAF", "\xC1\xBF", "\xE0\x80\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80",
        "\xF5\x80\x80\x80", "\xFF", "\xC3", "\xE2\x82", "\xF0\x9F\x98", "a\xC3(b"}) {
    EXPECT_FALSE(Utf8Length(bad).has_value()) << testing::PrintToString(std::string(bad));
  }
}

}  // namespace
}  // namespace turnkey::base
