#include "base/json_depth.h"

#include <gtest/gtest.h>

#include <string>

namespace turnkey::base {
namespace {

TEST(JsonDepthTest, CountsNestingOutsideStrings) {
  EXPECT_EQ(JsonDepth("", 10), 0u);
  EXPECT_EQ(JsonDepth("1", 10), 0u);
  EXPECT_EQ(JsonDepth("[]", 10), 1u);
  EXPECT_EQ(JsonDepth(R"({"a":[1,{"b":[]}]})", 10), 4u);
  EXPECT_EQ(JsonDepth(R"(["[[[[", "\"[{"])", 10), 1u);  // brackets and an escaped quote in strings
  EXPECT_EQ(JsonDepth("[][][]", 10), 1u);
  EXPECT_EQ(JsonDepth("]]][", 10), 1u);  // stray closers do not go negative
}

TEST(JsonDepthTest, StopsOncePastTheLimit) {
  const std::string deep(100000, '[');
  EXPECT_EQ(JsonDepth(deep, 32), 33u);
  EXPECT_EQ(JsonDepth(std::string(32, '['), 32), 32u);
}

}  // namespace
}  // namespace turnkey::base
