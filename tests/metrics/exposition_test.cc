#include "metrics/exposition.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace turnkey::metrics {
namespace {

std::string Double(double value) {
  std::string out;
  AppendDouble(out, value);
  return out;
}

TEST(ExpositionTest, MetricNames) {
  EXPECT_TRUE(IsValidMetricName("turnkey_turn_requests_total"));
  EXPECT_TRUE(IsValidMetricName("a:b_c9"));
  EXPECT_TRUE(IsValidMetricName("_x"));
  EXPECT_TRUE(IsValidMetricName(":x"));
  EXPECT_FALSE(IsValidMetricName(""));
  EXPECT_FALSE(IsValidMetricName("9lives"));
  EXPECT_FALSE(IsValidMetricName("a-b"));
  EXPECT_FALSE(IsValidMetricName("a b"));
  EXPECT_FALSE(IsValidMetricName("caf\xc3\xa9"));
}

TEST(ExpositionTest, LabelNames) {
  EXPECT_TRUE(IsValidLabelName("method"));
  EXPECT_TRUE(IsValidLabelName("_private"));
  EXPECT_TRUE(IsValidLabelName("le"));
  EXPECT_FALSE(IsValidLabelName(""));
  EXPECT_FALSE(IsValidLabelName("__name__"));
  EXPECT_FALSE(IsValidLabelName("a:b"));
  EXPECT_FALSE(IsValidLabelName("1a"));
  EXPECT_FALSE(IsValidLabelName("a-b"));
}

TEST(ExpositionTest, EscapesLabelValues) {
  std::string out;
  AppendEscapedLabelValue(out, "a\\b\"c\nd\te");
  EXPECT_EQ(out, "a\\\\b\\\"c\\nd\te");
}

TEST(ExpositionTest, EscapesHelpButNotQuotes) {
  std::string out;
  AppendEscapedHelp(out, "say \"hi\"\\\nbye");
  EXPECT_EQ(out, "say \"hi\"\\\\\\nbye");
}

TEST(ExpositionTest, SpellsDoublesAsPrometheusReadsThem) {
  EXPECT_EQ(Double(0), "0");
  EXPECT_EQ(Double(1), "1");
  EXPECT_EQ(Double(-2), "-2");
  EXPECT_EQ(Double(0.25), "0.25");
  EXPECT_EQ(Double(0.1), "0.1");
  EXPECT_EQ(Double(0.005), "0.005");
  EXPECT_EQ(Double(1e21), "1e+21");
  EXPECT_EQ(Double(1e-5), "1e-05");
  EXPECT_EQ(Double(1.7e9), "1700000000");
  EXPECT_EQ(Double(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(Double(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(Double(std::numeric_limits<double>::quiet_NaN()), "NaN");
}

TEST(ExpositionTest, SpellsIntegersExactly) {
  std::string out;
  AppendUint(out, std::numeric_limits<uint64_t>::max());
  out += ' ';
  AppendInt(out, std::numeric_limits<int64_t>::min());
  EXPECT_EQ(out, "18446744073709551615 -9223372036854775808");
}

}  // namespace
}  // namespace turnkey::metrics
