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
