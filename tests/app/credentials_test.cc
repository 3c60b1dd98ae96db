// `turnkey credentials --ttl`: seconds, or a duration as the config writes
// them.
#include <gtest/gtest.h>

#include "app/commands.h"

namespace turnkey::app {
namespace {

TEST(CredentialsTtlTest, SecondsOrADurationWithAUnit) {
  EXPECT_EQ(ParseTtlSeconds("600"), 600);
  EXPECT_EQ(ParseTtlSeconds("10m"), 600);
  EXPECT_EQ(ParseTtlSeconds("12h"), 43200);
  EXPECT_EQ(ParseTtlSeconds("2147483647"), 2147483647);
  for (const char* bad : {"", "0", "0s", "1.5s", "500ms", "abc", "-5", "2147483648", "99999999999",
                          "100000000000000000000"}) {
    EXPECT_EQ(ParseTtlSeconds(bad), 0) << bad;
  }
}

}  // namespace
}  // namespace turnkey::app
