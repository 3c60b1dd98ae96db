#include "base/json_parse.h"

#include <gtest/gtest.h>

#include <string>

namespace turnkey::base {
namespace {

TEST(JsonParseTest, ParsesValidJson) {
  std::optional<nlohmann::json> value =
      ParseJsonUniqueNames(R"({"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]})");
  ASSERT_TRUE(value.has_value());
  EXPECT_EQ((*value)["b"]["a"], 2);
  EXPECT_EQ((*value)["c"][1]["a"], 4);
  EXPECT_TRUE(ParseJsonUniqueNames("[1,2,3]").has_value());
  EXPECT_TRUE(ParseJsonUniqueNames("\"text\"").has_value());
  EXPECT_TRUE(ParseJsonUniqueNames("{}").has_value());
  // The same name in sibling or nested objects is no repeat.
  EXPECT_TRUE(ParseJsonUniqueNames(R"({"a":{"a":{"a":null}}})").has_value());
}

TEST(JsonParseTest, RefusesInvalidJson) {
  EXPECT_FALSE(ParseJsonUniqueNames("").has_value());
  EXPECT_FALSE(ParseJsonUniqueNames("{not json").has_value());
  EXPECT_FALSE(ParseJsonUniqueNames(R"({"a":1} trailing)").has_value());
}

TEST(JsonParseTest, RefusesANulByteAnywhere) {
  // nlohmann's lexer reads NUL as the end of the input: what follows one
  // would be ignored ({...}\0{...} read as its first object).
  using namespace std::string_literals;
  EXPECT_FALSE(ParseJsonUniqueNames("{\"a\":1}\0{\"a\":2}"s).has_value());
  EXPECT_FALSE(ParseJsonUniqueNames("{\"a\":1}\0"s).has_value());
  EXPECT_FALSE(ParseJsonUniqueNames("{\"a\":\"x\0y\"}"s).has_value());
  EXPECT_FALSE(ParseJson<nlohmann::ordered_json>("[1]\0junk"s).has_value());
  // Escaped, it is a character like any other.
  std::optional<nlohmann::json> escaped = ParseJsonUniqueNames(R"({"a":"x\u0000y"})");
  ASSERT_TRUE(escaped.has_value());
  EXPECT_EQ((*escaped)["a"].get<std::string>(), "x\0y"s);
}

TEST(JsonParseTest, ReadsALoneSurrogateEscapeAsAReplacementCharacter) {
  // As JSON.parse does: JSON.stringify writes one for a string cut inside
  // an emoji. U+FFFD is EF BF BD in UTF-8.
  std::optional<nlohmann::json> value = ParseJsonUniqueNames(R"({"name":"Ada \ud83d"})");
  ASSERT_TRUE(value.has_value());
  EXPECT_EQ((*value)["name"].get<std::string>(), "Ada \xEF\xBF\xBD");
  // A whole pair stays one character; a repeat is still found after repair.
  value = ParseJsonUniqueNames(R"({"a":"\ud83d\ude00"})");
  ASSERT_TRUE(value.has_value());
  EXPECT_EQ((*value)["a"].get<std::string>(), "\xF0\x9F\x98\x80");
  EXPECT_FALSE(ParseJsonUniqueNames(R"({"a":"\ud800","a":1})").has_value());
  EXPECT_FALSE(ParseJsonUniqueNames(R"({"a":"\ud800"} x)").has_value());
}

TEST(JsonParseTest, ReadsANumberTooLargeForADoubleAsNull) {
  // JSON.parse reads Infinity, which JSON.stringify writes as null.
  auto value = ParseJson<nlohmann::json>(R"(["message",1e400,-1E+999,{"n":1e400},"1e400",2])");
  ASSERT_TRUE(value.has_value());
  EXPECT_EQ(value->dump(), R"(["message",null,null,{"n":null},"1e400",2])");
  // 400 digits overflow too; a tiny one is zero, as in JavaScript.
  value = ParseJson<nlohmann::json>("[" + std::string(400, '9') + ",1e-400]");
  ASSERT_TRUE(value.has_value());
  EXPECT_EQ(value->dump(), "[null,0.0]");
  EXPECT_EQ(ParseJsonUniqueNames(R"({"a":1e400})")->dump(), R"({"a":null})");
  // Together with a lone surrogate; inside strings nothing changes.
  value = ParseJson<nlohmann::json>(R"(["\ud800 1e400 \"",1e400])");
  ASSERT_TRUE(value.has_value());
  EXPECT_EQ((*value)[0].get<std::string>(), "\xEF\xBF\xBD 1e400 \"");
  EXPECT_TRUE((*value)[1].is_null());
  // What is not a JSON number stays invalid.
  for (const char* bad :
       {"[1e400e1]", "[01e400]", "[1e400.5]", "[+1e400]", "[1e400", "1e400 x", "[-]", "[1.e400]"}) {
    EXPECT_FALSE(ParseJson<nlohmann::json>(bad).has_value()) << bad;
  }
}

TEST(JsonParseTest, RefusesAMemberNamedTwice) {
  EXPECT_FALSE(ParseJsonUniqueNames(R"({"role":"user","role":"admin"})").has_value());
  // At any depth, with the same or different values, after other members.
  EXPECT_FALSE(ParseJsonUniqueNames(R"({"x":{"a":1,"b":2,"a":1}})").has_value());
  EXPECT_FALSE(ParseJsonUniqueNames(R"([{"ok":1},{"a":[],"a":{}}])").has_value());
  // Spelled differently, the same name once decoded.
  EXPECT_FALSE(ParseJsonUniqueNames(R"({"sub":"u1","\u0073ub":"u2"})").has_value());
  // Names that differ only in case are different names.
  EXPECT_TRUE(ParseJsonUniqueNames(R"({"Email":"a","email":"b"})").has_value());
}

TEST(JsonParseTest, FindsARepeatAmongManyMembers) {
  std::string text = "{";
  for (int i = 0; i < 20000; ++i) {
    text += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":" + std::to_string(i);
  }
  text += "}";
  ASSERT_TRUE(ParseJsonUniqueNames(text).has_value());
  text.back() = ',';
  text += "\"k7\":0}";
  EXPECT_FALSE(ParseJsonUniqueNames(text).has_value());
}

}  // namespace
}  // namespace turnkey::base
