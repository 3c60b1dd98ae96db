// Integrity and FINGERPRINT verification beyond the RFC 5769 vectors.
#include "stun/integrity.h"

#include <gtest/gtest.h>

#include "stun/message_builder.h"
#include "tests/stun/test_util.h"

namespace turnkey::stun {
namespace {

using testing::Hex;
using testing::RawMessage;
using testing::ToHex;

const TransactionId kTxid = {9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};

TEST(IntegrityTest, LongTermKeys) {
  EXPECT_EQ(ToHex(LongTermKeyMd5("user", "realm", "pass")),
            ToHex(base::Md5(base::AsBytes("user:realm:pass"))));
  EXPECT_EQ(ToHex(LongTermKeySha256("user", "realm", "pass")),
            ToHex(base::Sha256(base::AsBytes("user:realm:pass"))));
  EXPECT_EQ(ToHex(Userhash("user", "realm")), ToHex(base::Sha256(base::AsBytes("user:realm"))));
  // Empty parts still contribute their separators.
  EXPECT_EQ(ToHex(LongTermKeyMd5("", "", "")), ToHex(base::Md5(base::AsBytes("::"))));
}

TEST(IntegrityTest, AbsentAndMalformed) {
  const base::Bytes key = {1, 2, 3};
  auto plain = Message::Decode(RawMessage().AttrText(AttributeType::kSoftware, "x").Build());
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(VerifyMessageIntegrity(*plain, key), IntegrityResult::kAbsent);
  EXPECT_EQ(VerifyMessageIntegritySha256(*plain, key), IntegrityResult::kAbsent);
  EXPECT_EQ(VerifyFingerprint(*plain), IntegrityResult::kAbsent);

  const base::Bytes bad_mi =
      RawMessage().Attr(AttributeType::kMessageIntegrity, base::Bytes(16, 0)).Build();
  EXPECT_EQ(VerifyMessageIntegrity(*Message::Decode(bad_mi), key), IntegrityResult::kMalformed);
  const base::Bytes bad_sha =
      RawMessage().Attr(AttributeType::kMessageIntegritySha256, base::Bytes(12, 0)).Build();
  EXPECT_EQ(VerifyMessageIntegritySha256(*Message::Decode(bad_sha), key),
            IntegrityResult::kMalformed);
  const base::Bytes bad_fp =
      RawMessage().Attr(AttributeType::kFingerprint, base::Bytes(2, 0)).Build();
  EXPECT_EQ(VerifyFingerprint(*Message::Decode(bad_fp)), IntegrityResult::kMalformed);
}

TEST(IntegrityTest, AllZeroIntegrityNeverVerifies) {
  // Whatever the key (even empty), a zeroed MAC must not be accepted.
  const base::Bytes zero_mi =
      RawMessage().Attr(AttributeType::kMessageIntegrity, base::Bytes(20, 0)).Build();
  auto msg = Message::Decode(zero_mi);
  ASSERT_TRUE(msg.has_value());
  EXPECT_EQ(VerifyMessageIntegrity(*msg, {}), IntegrityResult::kMismatch);
  EXPECT_EQ(VerifyMessageIntegrity(*msg, base::Bytes{0}), IntegrityResult::kMismatch);
}

TEST(IntegrityTest, EmptyKeyStillAuthenticates) {
  base::Bytes out;
  MessageBuilder b(out, Method::kBinding, MessageClass::kRequest, kTxid);
  b.AddMessageIntegrity({});
  auto msg = Message::Decode(out);
  ASSERT_TRUE(msg.has_value());
  EXPECT_EQ(VerifyMessageIntegrity(*msg, {}), IntegrityResult::kValid);
  // (HMAC pads keys with zeros, so the key "\0" is the same key as "".)
  EXPECT_EQ(VerifyMessageIntegrity(*msg, base::Bytes{1}), IntegrityResult::kMismatch);
}

TEST(IntegrityTest, EveryBitOfTheCoveredPartMatters) {
  const base::Bytes key = base::Bytes(16, 0x33);
  base::Bytes out;
  MessageBuilder b(out, Method::kAllocate, MessageClass::kRequest, kTxid);
  b.AddRequestedTransport(kTransportUdp);
  b.AddUsername("bob");
  b.AddMessageIntegrity(key);
  b.AddFingerprint();
  ASSERT_TRUE(b.ok());
  const size_t mi_offset = out.size() - 8 - 24;
  for (size_t i = 0; i < mi_offset + 24; ++i) {
    if (i == 2 || i == 3) {
      continue;  // the length field: changing it breaks decoding instead
    }
    base::Bytes copy = out;
    copy[i] ^= 0x01;
    auto msg = Message::Decode(copy);
    if (!msg.has_value()) {
      continue;  // e.g. a flipped first bit or cookie: rejected outright
    }
    if (msg->FindValue(AttributeType::kMessageIntegrity).has_value()) {
      EXPECT_NE(VerifyMessageIntegrity(*msg, key), IntegrityResult::kValid) << i;
    }
    EXPECT_NE(VerifyFingerprint(*msg), IntegrityResult::kValid) << i;
  }
}

TEST(IntegrityTest, FingerprintCoversItsOwnHeaderLength) {
  base::Bytes out;
  MessageBuilder b(out, Method::kBinding, MessageClass::kRequest, kTxid);
  b.AddSoftware("abc");
  b.AddFingerprint();
  // Recompute by hand: CRC over everything before FINGERPRINT, XOR constant.
  const uint32_t expected = base::Crc32(base::ByteView(out).first(out.size() - 8)) ^ 0x5354554eu;
  EXPECT_EQ(base::LoadBe32(out.data() + out.size() - 4), expected);
}

TEST(IntegrityTest, IgnoredIntegrityIsAbsent) {
  // A MESSAGE-INTEGRITY after MESSAGE-INTEGRITY-SHA256 is ignored, so the
  // short MI check reports it absent (the caller then falls back to SHA256).
  const base::Bytes key = {7};
  base::Bytes out;
  MessageBuilder b(out, Method::kBinding, MessageClass::kRequest, kTxid);
  b.AddMessageIntegritySha256(key);
  ASSERT_TRUE(b.ok());
  // Append a MESSAGE-INTEGRITY by hand (the builder refuses to).
  const base::Sha1Digest mac = base::HmacSha1(key, out);
  base::AppendBe16(out, static_cast<uint16_t>(AttributeType::kMessageIntegrity));
  base::AppendBe16(out, 20);
  out.insert(out.end(), mac.begin(), mac.end());
  base::StoreBe16(out.data() + 2, static_cast<uint16_t>(out.size() - 20));
  auto msg = Message::Decode(out);
  ASSERT_TRUE(msg.has_value());
  EXPECT_TRUE(msg->has_ignored());
  EXPECT_EQ(VerifyMessageIntegrity(*msg, key), IntegrityResult::kAbsent);
  EXPECT_EQ(VerifyMessageIntegritySha256(*msg, key), IntegrityResult::kValid);
}

TEST(IntegrityTest, LargeMessagesUseTheHeapPath) {
  // Over the 2 KiB stack copy: a TCP-sized message.
  const base::Bytes key = {1, 2, 3, 4};
  for (size_t size : {2000u, 2044u, 2048u, 2052u, 9000u, 65000u}) {
    SCOPED_TRACE(size);
    base::Bytes out;
    MessageBuilder b(out, Method::kSend, MessageClass::kIndication, kTxid);
    b.AddData(base::Bytes(size, 0x61));
    b.AddMessageIntegrity(key);
    b.AddMessageIntegritySha256(key);
    b.AddFingerprint();
    ASSERT_TRUE(b.ok());
    auto msg = Message::Decode(out);
    ASSERT_TRUE(msg.has_value());
    EXPECT_EQ(VerifyMessageIntegrity(*msg, key), IntegrityResult::kValid);
    EXPECT_EQ(VerifyMessageIntegritySha256(*msg, key), IntegrityResult::kValid);
    EXPECT_EQ(VerifyFingerprint(*msg), IntegrityResult::kValid);
    out[30] ^= 1;
    msg = Message::Decode(out);
    EXPECT_EQ(VerifyMessageIntegrity(*msg, key), IntegrityResult::kMismatch);
    EXPECT_EQ(VerifyMessageIntegritySha256(*msg, key), IntegrityResult::kMismatch);
  }
}

TEST(IntegrityTest, ResultNames) {
  EXPECT_STREQ(IntegrityResultName(IntegrityResult::kValid), "valid");
  EXPECT_STREQ(IntegrityResultName(IntegrityResult::kAbsent), "absent");
  EXPECT_STREQ(IntegrityResultName(IntegrityResult::kMalformed), "malformed");
  EXPECT_STREQ(IntegrityResultName(IntegrityResult::kMismatch), "mismatch");
}

}  // namespace
}  // namespace turnkey::stun
