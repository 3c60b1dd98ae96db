#include "app/jwt_key.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace turnkey::app {
namespace {

class JwtKeyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/tk-jwtkey-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
};

TEST_F(JwtKeyTest, GeneratesOnceAndReuses) {
  const std::string state_dir = dir_ + "/state/nested";
  auto first = LoadOrCreateJwtKey(state_dir);
  ASSERT_TRUE(first.has_value()) << first.error().message;
  EXPECT_EQ(first->size(), 64u);
  EXPECT_EQ(first->find_first_not_of("0123456789abcdef"), std::string::npos);

  struct stat st {};
  ASSERT_EQ(::stat((state_dir + "/jwt.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(state_dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  auto second = LoadOrCreateJwtKey(state_dir);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(*second, *first);
  // No temporary files are left behind.
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(state_dir)) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 1u);
}

TEST_F(JwtKeyTest, RefusesAShortKeyAndKeepsIt) {
  {
    std::ofstream out(dir_ + "/jwt.key");
    out << "too-short\n";
  }
  auto key = LoadOrCreateJwtKey(dir_);
  ASSERT_FALSE(key.has_value());
  EXPECT_NE(key.error().message.find("at least 32 bytes"), std::string::npos);
  std::ifstream in(dir_ + "/jwt.key");
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "too-short");
}

TEST_F(JwtKeyTest, ReadsAnOperatorProvidedKey) {
  const std::string operator_key(40, 'Z');
  {
    std::ofstream out(dir_ + "/jwt.key");
    out << operator_key << "\r\nsecond line ignored\n";
  }
  auto key = LoadOrCreateJwtKey(dir_);
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(*key, operator_key);
}

}  // namespace
}  // namespace turnkey::app
