#include "config/duration.h"

#include <gtest/gtest.h>

namespace turnkey::config {
namespace {

using std::chrono::milliseconds;

TEST(DurationTest, ParsesEveryUnit) {
  struct Case {
    const char* text;
    int64_t ms;
  };
  const Case cases[] = {
      {"250ms", 250},    {"0ms", 0},
      {"30s", 30000},    {"10m", 600000},
      {"24h", 86400000}, {"30d", 2592000000},
      {"0s", 0},         {"1000ms", 1000},
      {"007s", 7000},    {"36500d", 3153600000000},
      {"0", 0},          {"00", 0},  // zero needs no unit
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    auto parsed = ParseDuration(c.text);
    ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
    EXPECT_EQ(parsed->count(), c.ms);
  }
}

TEST(DurationTest, RejectsMalformed) {
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {"30", "bad duration \"30\" (missing unit; expected a number with unit ms, s, m, h or d)"},
      {"5x", "bad duration \"5x\" (expected a number with unit ms, s, m, h or d)"},
      {"", "bad duration \"\" (expected a number with unit ms, s, m, h or d)"},
      {"s", "bad duration \"s\" (expected a number with unit ms, s, m, h or d)"},
      {"-5s",
       "bad duration \"-5s\" (must not be negative; expected a number with unit ms, s, "
       "m, h or d)"},
      {"1.5h", "bad duration \"1.5h\" (expected a number with unit ms, s, m, h or d)"},
      {"30 s", "bad duration \"30 s\" (expected a number with unit ms, s, m, h or d)"},
      {" 30s", "bad duration \" 30s\" (expected a number with unit ms, s, m, h or d)"},
      {"1h30m", "bad duration \"1h30m\" (expected a number with unit ms, s, m, h or d)"},
      {"30S", "bad duration \"30S\" (expected a number with unit ms, s, m, h or d)"},
      {"10us", "bad duration \"10us\" (expected a number with unit ms, s, m, h or d)"},
      {"36501d",
       "bad duration \"36501d\" (longer than 100 years; expected a number with unit "
       "ms, s, m, h or d)"},
      {"99999999999999999999999ms",
       "bad duration \"99999999999999999999999ms\" (longer than "
       "100 years; expected a number with unit ms, s, m, h or d)"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    auto parsed = ParseDuration(c.text);
    ASSERT_FALSE(parsed.has_value());
    EXPECT_EQ(parsed.error().message, c.message);
    EXPECT_EQ(parsed.error().code, base::ErrorCode::kInvalidArgument);
  }
}

TEST(DurationTest, FormatPicksLargestExactUnit) {
  EXPECT_EQ(FormatDuration(milliseconds(0)), "0s");
  EXPECT_EQ(FormatDuration(milliseconds(250)), "250ms");
  EXPECT_EQ(FormatDuration(milliseconds(1500)), "1500ms");
  EXPECT_EQ(FormatDuration(std::chrono::seconds(90)), "90s");
  EXPECT_EQ(FormatDuration(std::chrono::minutes(10)), "10m");
  EXPECT_EQ(FormatDuration(std::chrono::hours(1)), "1h");
  EXPECT_EQ(FormatDuration(std::chrono::hours(48)), "2d");
}

TEST(DurationTest, FormatRoundTrips) {
  for (int64_t ms : std::initializer_list<int64_t>{1, 999, 1000, 61000, 3600000, 86400001,
                                                   kMaxDuration.count()}) {
    SCOPED_TRACE(ms);
    auto parsed = ParseDuration(FormatDuration(milliseconds(ms)));
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(parsed->count(), ms);
  }
}

}  // namespace
}  // namespace turnkey::config
