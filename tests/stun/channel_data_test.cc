#include "stun/channel_data.h"

#include <gtest/gtest.h>

#include "tests/stun/test_util.h"

namespace turnkey::stun {
namespace {

using testing::Hex;
using testing::ToHex;

TEST(ChannelDataTest, DecodesUdpWithoutPadding) {
  const base::Bytes buf = Hex("40000005 0102030405");
  auto cd = DecodeChannelData(buf);
  ASSERT_TRUE(cd.has_value());
  EXPECT_EQ(cd->channel, 0x4000);
  EXPECT_EQ(ToHex(cd->data), "0102030405");
  EXPECT_EQ(cd->data.data(), buf.data() + 4);
  EXPECT_EQ(cd->size, 9u);
}

TEST(ChannelDataTest, DecodesUdpWithPadding) {
  const base::Bytes buf = Hex("4fff0005 0102030405 000000");
  auto cd = DecodeChannelData(buf, ChannelDataPadding::kOptional);
  ASSERT_TRUE(cd.has_value());
  EXPECT_EQ(cd->channel, 0x4fff);
  EXPECT_EQ(cd->data.size(), 5u);
  EXPECT_EQ(cd->size, 12u);
  // Partial padding is fine over UDP too.
  auto partial = DecodeChannelData(Hex("4fff0005 0102030405 00"));
  ASSERT_TRUE(partial.has_value());
  EXPECT_EQ(partial->size, 10u);
}

TEST(ChannelDataTest, StreamsRequirePadding) {
  EXPECT_EQ(DecodeChannelData(Hex("40010005 0102030405"), ChannelDataPadding::kRequired).error(),
            ChannelDataError::kTruncated);
  auto cd =
      DecodeChannelData(Hex("40010005 0102030405 000000 4001"), ChannelDataPadding::kRequired);
  ASSERT_TRUE(cd.has_value());
  EXPECT_EQ(cd->size, 12u);  // the following bytes are the next frame
  auto aligned = DecodeChannelData(Hex("40010004 01020304"), ChannelDataPadding::kRequired);
  ASSERT_TRUE(aligned.has_value());
  EXPECT_EQ(aligned->size, 8u);
}

TEST(ChannelDataTest, EmptyData) {
  const base::Bytes buf = Hex("40000000");
  auto cd = DecodeChannelData(buf);
  ASSERT_TRUE(cd.has_value());
  EXPECT_TRUE(cd->data.empty());
  EXPECT_EQ(cd->size, 4u);
}

TEST(ChannelDataTest, Rejects) {
  struct Case {
    const char* hex;
    ChannelDataError error;
  } cases[] = {
      {"", ChannelDataError::kTooShort},
      {"400000", ChannelDataError::kTooShort},
      {"00010000", ChannelDataError::kNotChannelData},  // STUN
      {"3fff0000", ChannelDataError::kNotChannelData},
      {"80000000", ChannelDataError::kNotChannelData},
      {"c0000000", ChannelDataError::kNotChannelData},
      {"40000001", ChannelDataError::kTruncated},
      {"4000ffff 00000000", ChannelDataError::kTruncated},
      {"40000008 01020304", ChannelDataError::kTruncated},
  };
  for (const Case& c : cases) {
    auto cd = DecodeChannelData(Hex(c.hex));
    ASSERT_FALSE(cd.has_value()) << c.hex;
    EXPECT_EQ(cd.error(), c.error) << c.hex << ": " << ChannelDataErrorText(cd.error());
  }
}

TEST(ChannelDataTest, EncodeRoundTrip) {
  const base::Bytes data = Hex("aabbccddee");
  base::Bytes udp;
  AppendChannelData(udp, 0x4123, data, ChannelDataPadding::kOptional);
  EXPECT_EQ(ToHex(udp), "41230005aabbccddee");
  EXPECT_EQ(udp.size(), ChannelDataSize(5, ChannelDataPadding::kOptional));
  base::Bytes tcp;
  AppendChannelData(tcp, 0x4123, data, ChannelDataPadding::kRequired);
  EXPECT_EQ(ToHex(tcp), "41230005aabbccddee000000");
  EXPECT_EQ(tcp.size(), ChannelDataSize(5, ChannelDataPadding::kRequired));
  for (const base::Bytes* b : {&udp, &tcp}) {
    auto cd = DecodeChannelData(*b, ChannelDataPadding::kOptional);
    ASSERT_TRUE(cd.has_value());
    EXPECT_EQ(cd->channel, 0x4123);
    EXPECT_EQ(ToHex(cd->data), "aabbccddee");
    EXPECT_EQ(cd->size, b->size());
  }
}

TEST(ChannelDataTest, WriteHeaderInPlace) {
  // The relay receives a peer datagram at offset 4 and writes the header.
  base::Bytes buf = Hex("00000000 68656c6c6f");
  WriteChannelDataHeader(buf.data(), 0x4fff, 5);
  auto cd = DecodeChannelData(buf);
  ASSERT_TRUE(cd.has_value());
  EXPECT_EQ(cd->channel, 0x4fff);
  EXPECT_EQ(base::AsString(cd->data), "hello");
}

}  // namespace
}  // namespace turnkey::stun
