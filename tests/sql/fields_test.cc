#include "sql/fields.h"

#include <gtest/gtest.h>

#include <string>

#include "sql/store.h"

namespace turnkey::sql {
namespace {

TEST(FieldsTest, ValidIds) {
  EXPECT_TRUE(IsValidId("abc"));
  EXPECT_TRUE(IsValidId("A-Z_0-9"));
  EXPECT_TRUE(IsValidId(std::string(kMaxIdBytes, 'a')));
  EXPECT_TRUE(IsValidId(GenerateId()));
  EXPECT_EQ(GenerateId().size(), 32u);
  EXPECT_NE(GenerateId(), GenerateId());
  const std::string early = GenerateTimeOrderedId(1'700'000'000'000);
  const std::string late = GenerateTimeOrderedId(1'700'000'000'001);
  EXPECT_EQ(early.size(), 32u);
  EXPECT_TRUE(IsValidId(early));
  EXPECT_EQ(early.substr(0, 12), "018bcfe56800");
  EXPECT_LT(early, late);
  EXPECT_NE(GenerateTimeOrderedId(5), GenerateTimeOrderedId(5));
  for (const std::string& bad :
       {std::string(), std::string(kMaxIdBytes + 1, 'a'), std::string("a b"), std::string("a'"),
        std::string("a;b"), std::string("a.b"), std::string("\xC3\xA9"), std::string("a\0b", 3)}) {
    EXPECT_FALSE(IsValidId(bad)) << bad;
  }
  EXPECT_TRUE(CheckId("id", "ok"));
  EXPECT_EQ(CheckId("call_id", "no way").error().message.substr(0, 8), "call_id:");
}

TEST(FieldsTest, Utf8) {
  const std::string good[] = {
      "",
      "plain ascii",
      "\xC3\xA9",          // U+00E9
      "\xE2\x82\xAC",      // U+20AC
      "\xED\x9F\xBF",      // U+D7FF, last before the surrogates
      "\xEE\x80\x80",      // U+E000, first after them
      "\xF0\x9F\x98\x80",  // U+1F600
      "\xF4\x8F\xBF\xBF",  // U+10FFFF
  };
  for (const std::string& s : good) {
    EXPECT_TRUE(IsValidUtf8(s)) << s;
  }
  const std::string bad[] = {
      std::string("nul\0", 4),
      "\x80",                  // lone continuation byte
      "\xC3",                  // truncated
      "\xC3\x28",              // bad continuation
      "\xC0\xAF",              // overlong '/'
      "\xE0\x80\xAF",          // overlong, 3 bytes
      "\xF0\x80\x80\xAF",      // overlong, 4 bytes
      "\xED\xA0\x80",          // U+D800 surrogate
      "\xED\xBF\xBF",          // U+DFFF surrogate
      "\xF4\x90\x80\x80",      // U+110000
      "\xF8\x88\x80\x80\x80",  // 5-byte form
      "\xFF",
      "ok then \xE2\x82",  // truncated at the end
  };
  for (const std::string& s : bad) {
    EXPECT_FALSE(IsValidUtf8(s)) << testing::PrintToString(s);
  }
}

TEST(FieldsTest, CheckText) {
  EXPECT_TRUE(CheckText("f", "", 3, false));
  EXPECT_FALSE(CheckText("f", "", 3, true));
  EXPECT_TRUE(CheckText("f", "abc", 3, true));
  EXPECT_FALSE(CheckText("f", "abcd", 3, true));
  EXPECT_EQ(CheckText("handle", "\xFF", 3, true).error().message, "handle: not valid UTF-8 text");
}

TEST(FieldsTest, AsciiLowerOnlyTouchesAsciiLetters) {
  EXPECT_EQ(AsciiLower("Hello_World-09"), "hello_world-09");
  EXPECT_EQ(AsciiLower("\xC3\x84Z"), "\xC3\x84z");  // Ä stays
  EXPECT_EQ(AsciiLower("@[`{"), "@[`{");
}

TEST(FieldsTest, LikePrefixPatternEscapesWildcards) {
  EXPECT_EQ(LikePrefixPattern("abc"), "abc%");
  EXPECT_EQ(LikePrefixPattern(""), "%");
  EXPECT_EQ(LikePrefixPattern("a_b%c!d"), "a!_b!%c!!d%");
  EXPECT_EQ(LikePrefixPattern("a\\b'"), "a\\b'%");  // only LIKE's own specials
}

TEST(FieldsTest, EnumNames) {
  for (CallStatus s :
       {CallStatus::kRinging, CallStatus::kActive, CallStatus::kCompleted, CallStatus::kMissed,
        CallStatus::kRejected, CallStatus::kCancelled, CallStatus::kBusy, CallStatus::kFailed}) {
    EXPECT_EQ(ParseCallStatus(CallStatusName(s)), s);
  }
  EXPECT_EQ(ParseCallType("video"), CallType::kVideo);
  EXPECT_EQ(CallTypeName(CallType::kAudio), "audio");
  EXPECT_FALSE(ParseCallType("Audio"));
  EXPECT_FALSE(ParseCallStatus("done"));
  EXPECT_EQ(CallSideName(CallSide::kCallee), "callee");
}

}  // namespace
}  // namespace turnkey::sql
