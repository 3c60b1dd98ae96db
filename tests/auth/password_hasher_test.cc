#include "auth/password_hasher.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace turnkey::auth {
namespace {

using namespace std::string_literals;

// One hasher at the minimum cost for the whole suite: Create() itself hashes.
const PasswordHasher& Hasher() {
  static const PasswordHasher hasher = [] {
    auto h = PasswordHasher::Create();
    if (!h) {
      ADD_FAILURE() << h.error().message;
      std::abort();
    }
    return std::move(*h);
  }();
  return hasher;
}

TEST(PasswordHasherTest, HashAndVerify) {
  auto hash = Hasher().Hash("correct horse battery staple");
  ASSERT_TRUE(hash.has_value()) << hash.error().message;
  auto good = Hasher().Verify("correct horse battery staple", *hash);
  ASSERT_TRUE(good.has_value());
  EXPECT_TRUE(*good);
  auto bad = Hasher().Verify("correct horse battery stapl", *hash);
  ASSERT_TRUE(bad.has_value());
  EXPECT_FALSE(*bad);
}

TEST(PasswordHasherTest, Argon2idWithConfiguredCostAndFreshSalt) {
  auto a = Hasher().Hash("pw");
  auto b = Hasher().Hash("pw");
  ASSERT_TRUE(a && b);
  // m is in KiB: 19 MiB = 19456 KiB; t = passes; libsodium always uses p=1.
  EXPECT_TRUE(a->starts_with("$argon2id$v=19$m=19456,t=2,p=1$")) << *a;
  EXPECT_NE(*a, *b);
  EXPECT_TRUE(*Hasher().Verify("pw", *b));
}

TEST(PasswordHasherTest, BinaryAndUnicodePasswords) {
  const std::string with_nul = "a\0b"s;
  auto hash = Hasher().Hash(with_nul);
  ASSERT_TRUE(hash);
  EXPECT_TRUE(*Hasher().Verify(with_nul, *hash));
  EXPECT_FALSE(*Hasher().Verify("a\0c"s, *hash));
  EXPECT_FALSE(*Hasher().Verify("a", *hash));

  auto unicode = Hasher().Hash("pässwörd 🔑");
  ASSERT_TRUE(unicode);
  EXPECT_TRUE(*Hasher().Verify("pässwörd 🔑", *unicode));
}

TEST(PasswordHasherTest, LengthLimits) {
  const std::string longest(PasswordHasher::kMaxPasswordBytes, 'x');
  auto ok = Hasher().Hash(longest);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_TRUE(*Hasher().Verify(longest, *ok));

  const std::string too_long(PasswordHasher::kMaxPasswordBytes + 1, 'x');
  auto refused = Hasher().Hash(too_long);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, base::ErrorCode::kInvalidArgument);
  EXPECT_EQ(refused.error().message, "password is longer than 1024 bytes");
  auto verify_refused = Hasher().Verify(too_long, *ok);
  ASSERT_FALSE(verify_refused);
  EXPECT_EQ(verify_refused.error().code, base::ErrorCode::kInvalidArgument);

  auto empty = Hasher().Hash("");
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, base::ErrorCode::kInvalidArgument);
  EXPECT_EQ(empty.error().message, "password is empty");
  EXPECT_FALSE(Hasher().Verify("", *ok).has_value());
}

TEST(PasswordHasherTest, CorruptStoredHashIsAnInternalError) {
  auto hash = Hasher().Hash("pw");
  ASSERT_TRUE(hash);
  const std::vector<std::string> corrupt = {
      "",
      "pw",
      "$argon2id$",
      "$argon2id$v=19$m=19456,t=2,p=1$",
      hash->substr(0, hash->rfind('$')),  // no hash part
      "$argon2id$v=19$m=19456,t=2$" + hash->substr(hash->find("p=1$") + 4),
      // argon2i, not argon2id: never made by us.
      "$argon2i$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$" + hash->substr(hash->rfind('$') + 1),
      *hash + std::string(200, 'A'),
      "$argon2id$v=19$m=19456,t=2,p=1$\0"s,
  };
  for (const std::string& stored : corrupt) {
    auto result = Hasher().Verify("pw", stored);
    ASSERT_FALSE(result) << stored;
    EXPECT_EQ(result.error().code, base::ErrorCode::kInternal) << stored;
    EXPECT_TRUE(Hasher().NeedsRehash(stored)) << stored;
  }
}

TEST(PasswordHasherTest, NeedsRehashWhenCostChanges) {
  auto hash = Hasher().Hash("pw");
  ASSERT_TRUE(hash);
  EXPECT_FALSE(Hasher().NeedsRehash(*hash));

  auto stronger = PasswordHasher::Create({.passes = 3, .memory_bytes = 20 * 1024 * 1024});
  ASSERT_TRUE(stronger) << stronger.error().message;
  EXPECT_TRUE(stronger->NeedsRehash(*hash));
  // Old hashes still verify after the cost is raised.
  EXPECT_TRUE(*stronger->Verify("pw", *hash));
  auto rehashed = stronger->Hash("pw");
  ASSERT_TRUE(rehashed);
  EXPECT_TRUE(rehashed->starts_with("$argon2id$v=19$m=20480,t=3,p=1$")) << *rehashed;
  EXPECT_FALSE(stronger->NeedsRehash(*rehashed));
  EXPECT_TRUE(Hasher().NeedsRehash(*rehashed));
}

TEST(PasswordHasherTest, RefusesCostBelowTheFloor) {
  auto weak_passes = PasswordHasher::Create({.passes = 1});
  ASSERT_FALSE(weak_passes);
  EXPECT_EQ(weak_passes.error().code, base::ErrorCode::kInvalidArgument);
  auto weak_memory = PasswordHasher::Create({.memory_bytes = 8 * 1024 * 1024});
  ASSERT_FALSE(weak_memory);
  EXPECT_EQ(weak_memory.error().code, base::ErrorCode::kInvalidArgument);
  auto huge_memory = PasswordHasher::Create({.memory_bytes = PasswordHasher::kMaxMemoryBytes + 1});
  ASSERT_FALSE(huge_memory);
}

TEST(PasswordHasherTest, DummyVerifyAcceptsAnyInput) {
  // Its result is never used; what matters is that it does a full verify at
  // the configured cost and copes with anything a client sends.
  Hasher().DummyVerify("guess");
  Hasher().DummyVerify("");
  Hasher().DummyVerify(std::string(100'000, 'x'));
  Hasher().DummyVerify("\0\xff"s);
}

TEST(PasswordHasherTest, ConcurrentUse) {
  auto hash = Hasher().Hash("shared");
  ASSERT_TRUE(hash);
  std::vector<int> ok(3, 0);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < ok.size(); ++i) {
    threads.emplace_back([&, i] {
      auto mine = Hasher().Hash("thread " + std::to_string(i));
      ok[i] = mine && *Hasher().Verify("thread " + std::to_string(i), *mine) &&
              *Hasher().Verify("shared", *hash);
      Hasher().DummyVerify("x");
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  EXPECT_EQ(ok, std::vector<int>(3, 1));
}

}  // namespace
}  // namespace turnkey::auth
