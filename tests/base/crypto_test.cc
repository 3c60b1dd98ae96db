#include "base/crypto.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <set>
#include <string>

#include "base/bytes.h"

namespace turnkey::base {
namespace {

Bytes FromHex(std::string_view hex) {
  Bytes out;
  EXPECT_TRUE(HexDecode(hex, out)) << hex;
  return out;
}

template <size_t N>
std::string Hex(const std::array<uint8_t, N>& a) {
  return HexEncode(ByteView(a.data(), a.size()));
}

// RFC 2202 section 3: HMAC-SHA1 test cases.
TEST(HmacSha1Test, Rfc2202Vectors) {
  EXPECT_EQ(Hex(HmacSha1(Bytes(20, 0x0b), AsBytes("Hi There"))),
            "b617318655057264e28bc0b6fb378c8ef146be00");
  EXPECT_EQ(Hex(HmacSha1(AsBytes("Jefe"), AsBytes("what do ya want for nothing?"))),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
  EXPECT_EQ(Hex(HmacSha1(Bytes(20, 0xaa), Bytes(50, 0xdd))),
            "125d7342b9ac11cd91a39af48aa17b4f63f175d3");
  EXPECT_EQ(
      Hex(HmacSha1(FromHex("0102030405060708090a0b0c0d0e0f10111213141516171819"), Bytes(50, 0xcd))),
      "4c9007f4026250c6bc8414f9bf50c86c2d7235da");
  // Test case 6: a key longer than the block size is hashed first.
  EXPECT_EQ(Hex(HmacSha1(Bytes(80, 0xaa),
                         AsBytes("Test Using Larger Than Block-Size Key - Hash Key First"))),
            "aa4ae5e15272d00e95705637ce8a3b55ed402112");
}

// RFC 4231 section 4: HMAC-SHA256 test cases.
TEST(HmacSha256Test, Rfc4231Vectors) {
  EXPECT_EQ(Hex(HmacSha256(Bytes(20, 0x0b), AsBytes("Hi There"))),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(Hex(HmacSha256(AsBytes("Jefe"), AsBytes("what do ya want for nothing?"))),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(Hex(HmacSha256(Bytes(20, 0xaa), Bytes(50, 0xdd))),
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
  // Test case 6: 131-byte key.
  EXPECT_EQ(Hex(HmacSha256(Bytes(131, 0xaa),
                           AsBytes("Test Using Larger Than Block-Size Key - Hash Key First"))),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(HmacTest, EmptyKeyAndData) {
  // Well-known values for HMAC with an empty key over an empty message.
  EXPECT_EQ(Hex(HmacSha1({}, {})), "fbdb1d1b18aa6c08324b7d64b71fb76370690e1d");
  EXPECT_EQ(Hex(HmacSha256({}, {})),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
  // An empty key must still produce a real MAC, never all zeros: a zeroed
  // output would let an all-zero MESSAGE-INTEGRITY verify.
  const Sha1Digest zero{};
  EXPECT_NE(HmacSha1(ByteView(), AsBytes("data")), zero);
  EXPECT_EQ(HmacSha1(ByteView(), AsBytes("data")), HmacSha1(AsBytes(""), AsBytes("data")));
  EXPECT_EQ(HmacSha1(AsBytes("k"), ByteView()), HmacSha1(AsBytes("k"), AsBytes("")));
}

TEST(DigestTest, EmptyViewsWithNullData) {
  EXPECT_EQ(Hex(Md5(ByteView())), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(Hex(Sha256(ByteView())),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

// RFC 1321 appendix A.5.
TEST(Md5Test, Rfc1321Vectors) {
  EXPECT_EQ(Hex(Md5(AsBytes(""))), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(Hex(Md5(AsBytes("a"))), "0cc175b9c0f1b6a831c399e269772661");
  EXPECT_EQ(Hex(Md5(AsBytes("abc"))), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(Hex(Md5(AsBytes("message digest"))), "f96b697d7cb7938d525a2f31aaf161d0");
  EXPECT_EQ(Hex(Md5(AsBytes("12345678901234567890123456789012345678901234567890123456789012345678"
                            "901234567890"))),
            "57edf4a22be3c955ac49da2e2107b67a");
}

// The RFC 5769 s2.4 long-term key, which the STUN tests depend on.
TEST(Md5Test, StunLongTermKey) {
  EXPECT_EQ(
      Hex(Md5(AsBytes("\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf\xe3\x82\xb9"
                      ":example.org:TheMatrIX"))),
      "e8ca7ad59d5eb0518e312911d2dab2a9");
}

// FIPS 180-2 appendix B.
TEST(Sha256Test, FipsVectors) {
  EXPECT_EQ(Hex(Sha256(AsBytes(""))),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Hex(Sha256(AsBytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Hex(Sha256(AsBytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Hex(Sha256(Bytes(1000000, 'a'))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Crc32Test, CheckValue) {
  // The CRC-32/ISO-HDLC check value.
  EXPECT_EQ(Crc32(AsBytes("123456789")), 0xCBF43926u);
  EXPECT_EQ(Crc32({}), 0u);
  EXPECT_EQ(Crc32(AsBytes("The quick brown fox jumps over the lazy dog")), 0x414FA339u);
}

TEST(Crc32Test, ChainsOverPieces) {
  const std::string_view all = "123456789";
  for (size_t split = 0; split <= all.size(); ++split) {
    const uint32_t first = Crc32(AsBytes(all.substr(0, split)));
    EXPECT_EQ(Crc32(AsBytes(all.substr(split)), first), 0xCBF43926u) << split;
  }
}

TEST(ConstantTimeEqualTest, Compares) {
  EXPECT_TRUE(ConstantTimeEqual(AsBytes("abc"), AsBytes("abc")));
  EXPECT_FALSE(ConstantTimeEqual(AsBytes("abc"), AsBytes("abd")));
  EXPECT_FALSE(ConstantTimeEqual(AsBytes("abc"), AsBytes("xbc")));
  EXPECT_FALSE(ConstantTimeEqual(AsBytes("abc"), AsBytes("abcd")));
  EXPECT_FALSE(ConstantTimeEqual(AsBytes(""), AsBytes("a")));
  EXPECT_TRUE(ConstantTimeEqual(AsBytes(""), AsBytes("")));
  EXPECT_TRUE(ConstantTimeEqual(ByteView(), ByteView()));
}

TEST(RandomTest, FillsAndDiffers) {
  Bytes a(32);
  Bytes b(32);
  ASSERT_TRUE(RandomBytes(a));
  ASSERT_TRUE(RandomBytes(b));
  EXPECT_NE(a, b);  // 2^-256 chance of a false failure
  EXPECT_TRUE(RandomBytes(MutableByteView()));

  const std::string h = RandomHex(16);
  EXPECT_EQ(h.size(), 32u);
  EXPECT_EQ(h.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(RandomHex(16), h);
}

TEST(RandomTest, TimeOrderedIdsLeadWithTheTimeAndSortByIt) {
  // Unix milliseconds of 2026-11-21T00:00:00.001Z.
  const int64_t ms = 1'795'219'200'001;
  const std::string id = TimeOrderedId(ms);
  ASSERT_EQ(id.size(), 32u);
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos);
  char prefix[13];
  std::snprintf(prefix, sizeof prefix, "%012llx", static_cast<unsigned long long>(ms));
  EXPECT_EQ(id.substr(0, 12), prefix);
  EXPECT_NE(TimeOrderedId(ms), id);  // the 80 random bits differ
  EXPECT_LT(id, TimeOrderedId(ms + 1));
  EXPECT_LT(TimeOrderedId(ms - 1), id);
  EXPECT_EQ(TimeOrderedId(0).substr(0, 12), "000000000000");
}

// Calls made in one millisecond list in the order they were made: ids of the
// same millisecond ascend, yet differ by more than a counter would.
TEST(RandomTest, TimeOrderedIdsOfOneMillisecondAscend) {
  const int64_t ms = 1'800'000'000'123;
  std::string previous = TimeOrderedId(ms);
  for (int i = 0; i < 1000; ++i) {
    const std::string next = TimeOrderedId(ms);
    ASSERT_LT(previous, next) << i;
    EXPECT_EQ(next.substr(0, 12), previous.substr(0, 12));
    previous = next;
  }
  EXPECT_LT(previous, TimeOrderedId(ms + 1));
}

TEST(RandomTest, SmallRequestsStayDistinctAcrossRefills) {
  // 10-byte requests come from a 512-byte per-thread block: 400 of them span
  // several refills, and no value may repeat across a block boundary.
  std::set<std::string> seen;
  for (int i = 0; i < 400; ++i) {
    EXPECT_TRUE(seen.insert(RandomHex(10)).second) << "repeated at " << i;
  }
  // Either side of the pooled limit.
  Bytes pooled(64);
  Bytes direct(65);
  ASSERT_TRUE(RandomBytes(pooled));
  ASSERT_TRUE(RandomBytes(direct));
  EXPECT_NE(Bytes(pooled.begin(), pooled.end()), Bytes(direct.begin(), direct.begin() + 64));
}

TEST(RandomTest, ForkedChildDoesNotRepeatTheParentsBytes) {
  (void)RandomHex(10);  // the parent's block now holds unused bytes
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const std::string mine = RandomHex(16);
    const ssize_t written = ::write(fds[1], mine.data(), mine.size());
    ::_exit(written == static_cast<ssize_t>(mine.size()) ? 0 : 1);
  }
  ::close(fds[1]);
  const std::string parents = RandomHex(16);
  std::string childs(32, '\0');
  size_t got = 0;
  while (got < childs.size()) {
    const ssize_t n = ::read(fds[0], childs.data() + got, childs.size() - got);
    if (n <= 0) {
      break;
    }
    got += static_cast<size_t>(n);
  }
  ::close(fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_EQ(got, childs.size());
  EXPECT_NE(childs, parents);
}

// RFC 4648 section 10 test vectors.
TEST(Base64Test, Rfc4648Vectors) {
  const std::pair<const char*, const char*> kVectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : kVectors) {
    EXPECT_EQ(Base64Encode(AsBytes(plain)), encoded);
    auto decoded = Base64Decode(encoded);
    ASSERT_TRUE(decoded.has_value()) << encoded;
    EXPECT_EQ(AsString(*decoded), plain);
  }
}

TEST(Base64Test, RoundTripsAllLengthsAndBytes) {
  Bytes data;
  for (int n = 0; n < 300; ++n) {
    const std::string std_text = Base64Encode(data);
    const std::string url_text = Base64UrlEncode(data);
    EXPECT_EQ(std_text.size() % 4, 0u);
    EXPECT_EQ(url_text.find_first_of("+/="), std::string::npos);
    auto a = Base64Decode(std_text);
    auto b = Base64UrlDecode(url_text);
    ASSERT_TRUE(a.has_value()) << n;
    ASSERT_TRUE(b.has_value()) << n;
    EXPECT_EQ(*a, data);
    EXPECT_EQ(*b, data);
    // Nothing reserved beyond the text: a text that fits the string's
    // inline buffer (a 15-character id from 11 bytes) stays there.
    const size_t inline_capacity = std::string().capacity();
    for (const std::string* text : {&std_text, &url_text}) {
      if (text->size() <= inline_capacity) {
        EXPECT_EQ(text->capacity(), inline_capacity) << n;
      }
    }
    data.push_back(static_cast<uint8_t>(n * 37 + 11));
  }
}

TEST(Base64Test, UrlAlphabet) {
  const Bytes data = {0xfb, 0xff, 0xbf};
  EXPECT_EQ(Base64Encode(data), "+/+/");
  EXPECT_EQ(Base64UrlEncode(data), "-_-_");
  EXPECT_EQ(Base64UrlEncode(AsBytes("f")), "Zg");
  EXPECT_EQ(Base64UrlEncode(AsBytes("fo")), "Zm8");
}

TEST(Base64Test, RejectsBadInput) {
  const char* kBad[] = {
      "Zg",        // padding required for standard base64
      "Zg=",       // wrong padding count
      "Z===",      // too much padding
      "====",      // only padding
      "Zm9v!",     // bad character
      "Zm9 v",     // whitespace
      "Zm9v\n",    // newline
      "Zh==",      // non-zero leftover bits (non-canonical)
      "Zm=v",      // padding in the middle
      "-_-_",      // URL alphabet in standard decoder
      "Zg==Zg==",  // padding then more data
  };
  for (const char* text : kBad) {
    EXPECT_FALSE(Base64Decode(text).has_value()) << text;
  }
  const char* kBadUrl[] = {
      "Zg==",   // padding not used in the URL form
      "+/+/",   // standard alphabet
      "Z",      // a single leftover character cannot encode a byte
      "Zh",     // non-zero leftover bits
      "Zm9v.",  // bad character
  };
  for (const char* text : kBadUrl) {
    EXPECT_FALSE(Base64UrlDecode(text).has_value()) << text;
  }
}

TEST(Base64Test, OptionalPaddingTakesBothFormsAndNothingElse) {
  constexpr auto kOptional = Base64Padding::kOptional;
  const std::pair<const char*, const char*> kGood[] = {
      {"", ""},           {"Zg", "f"},          {"Zg==", "f"},
      {"Zm8", "fo"},      {"Zm8=", "fo"},       {"Zm9v", "foo"},
      {"Zm9vYg", "foob"}, {"Zm9vYmE", "fooba"}, {"+/+/", "\xfb\xff\xbf"},
  };
  for (const auto& [text, plain] : kGood) {
    auto decoded = Base64Decode(text, kOptional);
    ASSERT_TRUE(decoded.has_value()) << text;
    EXPECT_EQ(AsString(*decoded), plain) << text;
  }
  const char* kBad[] = {
      "Z",       // a single leftover character cannot encode a byte
      "Zm9vY",   // the same after a whole quantum
      "Zg=",     // padding, but not enough of it
      "Zm8==",   // too much
      "Z===",    // too much
      "====",    // only padding
      "Zm=v",    // padding in the middle
      "Zg==Zg",  // padding then more data
      "Zh",      // non-zero leftover bits
      "Zm9v!",   // bad character
      "Zm9 v",   // whitespace
      "Zm9v\n",  // newline
      "-_-_",    // URL alphabet
  };
  for (const char* text : kBad) {
    EXPECT_FALSE(Base64Decode(text, kOptional).has_value()) << text;
  }
}

}  // namespace
}  // namespace turnkey::base
