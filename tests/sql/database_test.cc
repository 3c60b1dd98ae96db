#include "sql/database.h"

#include <gtest/gtest.h>

namespace turnkey::sql {
namespace {

// (lost, rolled_back, commit_sent) -> may the op run again?
TEST(SafeToRerunTest, ReadsRerunAfterAnyBreak) {
  const OpOptions read{OpKind::kRead, true};
  EXPECT_TRUE(SafeToRerun(read, true, false, false));
  EXPECT_TRUE(SafeToRerun(read, false, true, false));
  EXPECT_FALSE(SafeToRerun(read, false, false, false));  // an ordinary error
}

TEST(SafeToRerunTest, WritesRerunOnlyIfTheyCannotHaveCommitted) {
  const OpOptions write{OpKind::kWrite, false};
  EXPECT_TRUE(SafeToRerun(write, true, false, false));  // lost before COMMIT
  EXPECT_FALSE(SafeToRerun(write, true, false, true));  // lost during COMMIT: unknown
  EXPECT_TRUE(SafeToRerun(write, false, true, false));  // deadlock, server rolled back
  EXPECT_TRUE(SafeToRerun(write, false, true, true));   // deadlock at COMMIT: rolled back
  EXPECT_FALSE(SafeToRerun(write, false, false, false));
  EXPECT_FALSE(SafeToRerun(write, false, false, true));
}

TEST(SafeToRerunTest, IdempotentWritesRerunEvenAfterCommitWasSent) {
  const OpOptions write{OpKind::kWrite, true};
  EXPECT_TRUE(SafeToRerun(write, true, false, true));
  EXPECT_FALSE(SafeToRerun(write, false, false, true));
}

TEST(SafeToRerunTest, SessionsNeverRerun) {
  const OpOptions session{OpKind::kSession, true};
  EXPECT_FALSE(SafeToRerun(session, true, false, false));
  EXPECT_FALSE(SafeToRerun(session, false, true, false));
}

}  // namespace
}  // namespace turnkey::sql
