#include "signal/account_rules.h"

#include <gtest/gtest.h>

#include <string>

namespace turnkey::signal {
namespace {

TEST(CheckEmailTest, AcceptsRealAddresses) {
  for (const char* good :
       {"alice@example.org", "A.B+tag@sub.example.co", "o'brien@example.ie", "x@localhost",
        "\xC3\xA9lise@example.fr", "robert');DROP/**/TABLE/**/users;--@example.org"}) {
    EXPECT_EQ(CheckEmail(good), std::nullopt) << good;
  }
}

TEST(CheckEmailTest, RejectsWhatCannotBeAnAddress) {
  const std::string long_local(65, 'a');
  const std::string too_long = "a@" + std::string(253, 'b');
  for (const std::string& bad :
       {std::string(""), std::string("alice"), std::string("@example.org"), std::string("alice@"),
        std::string("al ice@example.org"), std::string("a@b@"), std::string("a@@b.org"),
        std::string("a@b@c.org"), std::string("a\tb@example.org"), std::string("a\x01@example.org"),
        long_local + "@example.org", too_long, std::string("\xFF@example.org"),
        // No-break space, line separator, zero-width space, byte order mark,
        // right-to-left override, ideographic space.
        std::string("a\xC2\xA0"
                    "b@example.org"),
        std::string("a\xE2\x80\xA8"
                    "b@example.org"),
        std::string("a\xE2\x80\x8B@example.org"),
        std::string("\xEF\xBB\xBF"
                    "a@example.org"),
        std::string("a@exa\xE2\x80\xAEmple.org"), std::string("a@b\xE3\x80\x80.org"),
        // A left-to-right mark: "x<LRM>@d" looks like "x@d".
        std::string("x\xE2\x80\x8E@example.org")}) {
    EXPECT_TRUE(CheckEmail(bad).has_value()) << bad;
  }
}

TEST(NormalizeEmailTest, LowersAsciiOnly) {
  EXPECT_EQ(NormalizeEmail("Alice@Example.ORG"), "alice@example.org");
  EXPECT_EQ(NormalizeEmail("\xC3\x89LISE@X"), "\xC3\x89lise@x");
}

TEST(CheckPasswordTest, Bounds) {
  EXPECT_TRUE(CheckPassword("").has_value());
  EXPECT_TRUE(CheckPassword("1234567").has_value());
  EXPECT_EQ(CheckPassword("12345678"), std::nullopt);
  EXPECT_EQ(CheckPassword("correct horse battery staple"), std::nullopt);
  // Eight characters, sixteen bytes: characters count, not bytes.
  EXPECT_EQ(CheckPassword("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"),
            std::nullopt);
  EXPECT_TRUE(CheckPassword("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9").has_value());
  EXPECT_EQ(CheckPassword(std::string(1024, 'x')), std::nullopt);
  EXPECT_TRUE(CheckPassword(std::string(1025, 'x')).has_value());
  EXPECT_TRUE(CheckPassword("12345678\xFF").has_value());
  // Every message starts with "password" (the change-password route relies on it).
  EXPECT_EQ(CheckPassword("short")->rfind("password", 0), 0u);
  EXPECT_EQ(CheckPassword(std::string(2000, 'x'))->rfind("password", 0), 0u);
  EXPECT_EQ(CheckPassword("12345678\xFF")->rfind("password", 0), 0u);
}

TEST(CheckHandleTest, Rules) {
  for (const char* good : {"abc", "Alice_B.c-9", "___"}) {
    EXPECT_EQ(CheckHandle(good), std::nullopt) << good;
  }
  EXPECT_EQ(CheckHandle(std::string(32, 'z')), std::nullopt);
  for (const std::string& bad : {std::string(""), std::string("ab"), std::string(33, 'z'),
                                 std::string("al ice"), std::string("al'ice"), std::string("a%b"),
                                 std::string("\xC3\xA9t\xC3\xA9"), std::string("a;DROP")}) {
    EXPECT_TRUE(CheckHandle(bad).has_value()) << bad;
  }
}

TEST(CheckDisplayNameTest, Rules) {
  EXPECT_EQ(CheckDisplayName("Alice O'Brien"), std::nullopt);
  EXPECT_EQ(CheckDisplayName("\xF0\x9F\x98\x80 Z\xC3\xA9"), std::nullopt);
  EXPECT_EQ(CheckDisplayName(std::string(64, 'x')), std::nullopt);
  EXPECT_TRUE(CheckDisplayName(std::string(65, 'x')).has_value());
  EXPECT_TRUE(CheckDisplayName("").has_value());
  EXPECT_TRUE(CheckDisplayName("   ").has_value());
  EXPECT_TRUE(CheckDisplayName("a\nb").has_value());
  EXPECT_TRUE(CheckDisplayName("a\xC2\x85").has_value());  // C1 control NEL
  EXPECT_TRUE(CheckDisplayName("\xFE").has_value());
  // Only characters that show nothing: no-break spaces, ideographic space,
  // zero-width space, byte order mark, a Hangul filler; the blank Braille
  // pattern, a soft hyphen, a tag character.
  for (const char* blank :
       {"\xC2\xA0\xC2\xA0", "\xE3\x80\x80", "\xE2\x80\x8B", "\xEF\xBB\xBF",
        " \xE2\x80\x8B \xE3\x85\xA4", "\xE2\xA0\x80", "\xC2\xAD", "\xF3\xA0\x80\xA1",
        // Direction marks only (LRM; RLM and ALM), a deprecated format
        // character (U+206A), interlinear annotation (U+FFF9), a musical and a
        // shorthand format control (U+1D173, U+1BCA0), a Khmer inherent vowel.
        "\xE2\x80\x8E", "\xE2\x80\x8F\xD8\x9C", "\xE2\x81\xAA", "\xEF\xBF\xB9", "\xF0\x9D\x85\xB3",
        "\xF0\x9B\xB2\xA0", "\xE1\x9E\xB4"}) {
    EXPECT_EQ(CheckDisplayName(blank), "displayName must not be empty") << blank;
  }
  // A name that reads as something else, or breaks over lines.
  EXPECT_TRUE(CheckDisplayName("\xE2\x80\xAE"
                               "evil")
                  .has_value());
  EXPECT_TRUE(CheckDisplayName("a\xE2\x81\xA6"
                               "b")
                  .has_value());
  EXPECT_TRUE(CheckDisplayName("a\xE2\x80\xA8"
                               "b")
                  .has_value());
  // Spaces of any kind between visible characters, and direction marks, are fine.
  EXPECT_EQ(CheckDisplayName("Jean\xC2\xA0"
                             "Dupont"),
            std::nullopt);
  EXPECT_EQ(CheckDisplayName("\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D \xE2\x80\x8E"
                             "42"),
            std::nullopt);
}

TEST(CheckSearchPrefixTest, Rules) {
  EXPECT_EQ(CheckSearchPrefix("a"), std::nullopt);
  EXPECT_EQ(CheckSearchPrefix("%' OR '1'='1"), std::nullopt);
  EXPECT_TRUE(CheckSearchPrefix("").has_value());
  EXPECT_TRUE(CheckSearchPrefix(std::string(33, 'a')).has_value());
  EXPECT_TRUE(CheckSearchPrefix(std::string("a\0b", 3)).has_value());
}

TEST(HandleFromEmailTest, BuildsValidHandles) {
  EXPECT_EQ(HandleFromEmail("alice@example.org", "1234"), "alice1234");
  EXPECT_EQ(HandleFromEmail("o'brien+x@example.org", "07"), "obrienx07");
  EXPECT_EQ(HandleFromEmail("a@b", "55"), "auser55");
  EXPECT_EQ(HandleFromEmail("\xC3\xA9@b", "1234"), "user1234");
  const std::string long_handle = HandleFromEmail(std::string(40, 'q') + "@b", "123456");
  EXPECT_EQ(long_handle, std::string(24, 'q') + "123456");
  for (const std::string& email : {std::string("alice@example.org"), std::string("x@y"),
                                   std::string(60, '.') + "@z", std::string("%%%@z")}) {
    EXPECT_EQ(CheckHandle(HandleFromEmail(email, "123456")), std::nullopt) << email;
  }
}

}  // namespace
}  // namespace turnkey::signal
