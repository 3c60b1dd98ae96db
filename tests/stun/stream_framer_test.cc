#include "stun/stream_framer.h"

#include <gtest/gtest.h>

#include "stun/channel_data.h"
#include "stun/message.h"
#include "stun/message_builder.h"
#include "tests/stun/test_util.h"

namespace turnkey::stun {
namespace {

using testing::Hex;
using Status = FrameResult::Status;

constexpr size_t kMax = 65535 + 20;

TEST(StreamFramerTest, EmptyAndShortHeads) {
  StreamFramer f(kMax);
  FrameResult r = f.Next({});
  EXPECT_EQ(r.status, Status::kNeedMore);
  EXPECT_EQ(r.size, 4u);
  r = f.Next(Hex("00"));
  EXPECT_EQ(r.status, Status::kNeedMore);
  EXPECT_EQ(r.type, FrameType::kStun);
  EXPECT_EQ(r.size, 4u);
  r = f.Next(Hex("4000"));
  EXPECT_EQ(r.status, Status::kNeedMore);
  EXPECT_EQ(r.type, FrameType::kChannelData);
}

TEST(StreamFramerTest, StunFrame) {
  base::Bytes stream;
  MessageBuilder b(stream, Method::kBinding, MessageClass::kRequest, TransactionId{});
  b.AddSoftware("abc");
  b.AddFingerprint();
  const size_t n = stream.size();
  ASSERT_EQ(n, 20u + 8 + 8);
  StreamFramer f(kMax);
  // Every prefix asks for more, with the full size once the length is in.
  for (size_t i = 4; i < n; ++i) {
    FrameResult r = f.Next(base::ByteView(stream).first(i));
    EXPECT_EQ(r.status, Status::kNeedMore) << i;
    EXPECT_EQ(r.size, n) << i;
  }
  stream.push_back(0x40);  // the start of the next frame
  FrameResult r = f.Next(stream);
  EXPECT_EQ(r.status, Status::kFrame);
  EXPECT_EQ(r.type, FrameType::kStun);
  EXPECT_EQ(r.size, n);
  EXPECT_TRUE(Message::Decode(base::ByteView(stream).first(r.size)).has_value());
}

TEST(StreamFramerTest, ChannelDataFramesIncludePadding) {
  StreamFramer f(kMax);
  // RFC 8656 s12.5: 5 bytes of data are followed by 3 bytes of padding.
  FrameResult r = f.Next(Hex("40000005 0102030405"));
  EXPECT_EQ(r.status, Status::kNeedMore);
  EXPECT_EQ(r.size, 12u);
  r = f.Next(Hex("40000005 0102030405 000000"));
  EXPECT_EQ(r.status, Status::kFrame);
  EXPECT_EQ(r.type, FrameType::kChannelData);
  EXPECT_EQ(r.size, 12u);
  r = f.Next(Hex("40000000"));
  EXPECT_EQ(r.status, Status::kFrame);
  EXPECT_EQ(r.size, 4u);
  r = f.Next(Hex("40000004 01020304"));
  EXPECT_EQ(r.status, Status::kFrame);
  EXPECT_EQ(r.size, 8u);
  // The RFC 5766 range up to 0x7FFF is ChannelData too.
  r = f.Next(Hex("50000000"));
  EXPECT_EQ(r.status, Status::kFrame);
}

TEST(StreamFramerTest, SplitsABackToBackStream) {
  base::Bytes stream;
  {
    MessageBuilder b(stream, Method::kAllocate, MessageClass::kRequest, TransactionId{});
    b.AddRequestedTransport(kTransportUdp);
  }
  AppendChannelData(stream, 0x4001, Hex("aabbcc"), ChannelDataPadding::kRequired);
  AppendChannelData(stream, 0x4002, {}, ChannelDataPadding::kRequired);
  {
    MessageBuilder b(stream, Method::kRefresh, MessageClass::kRequest, TransactionId{});
    b.AddLifetime(0);
  }
  StreamFramer f(kMax);
  base::ByteView rest(stream);
  std::vector<FrameType> types;
  while (!rest.empty()) {
    FrameResult r = f.Next(rest);
    ASSERT_EQ(r.status, Status::kFrame);
    const base::ByteView frame = rest.first(r.size);
    if (r.type == FrameType::kStun) {
      EXPECT_TRUE(Message::Decode(frame).has_value());
    } else {
      auto cd = DecodeChannelData(frame, ChannelDataPadding::kRequired);
      ASSERT_TRUE(cd.has_value());
      EXPECT_EQ(cd->size, frame.size());
    }
    types.push_back(r.type);
    rest = rest.subspan(r.size);
  }
  EXPECT_EQ(types, (std::vector<FrameType>{FrameType::kStun, FrameType::kChannelData,
                                           FrameType::kChannelData, FrameType::kStun}));
}

TEST(StreamFramerTest, Errors) {
  StreamFramer f(1024);
  for (const char* hex : {"80", "c0", "ff000000", "8001000021"}) {
    FrameResult r = f.Next(Hex(hex));
    EXPECT_EQ(r.status, Status::kError) << hex;
    EXPECT_EQ(r.error, FramingError::kBadFirstBits) << hex;
  }
  // 20 + 1008 > 1024.
  FrameResult r = f.Next(Hex("000103f0"));
  EXPECT_EQ(r.status, Status::kError);
  EXPECT_EQ(r.error, FramingError::kTooLarge);
  // 20 + 1004 == 1024 is allowed.
  r = f.Next(Hex("000103ec"));
  EXPECT_EQ(r.status, Status::kNeedMore);
  EXPECT_EQ(r.size, 1024u);
  // ChannelData: 4 + Pad4(1017) = 1024 allowed; 4 + Pad4(1021) = 1028 not.
  EXPECT_EQ(f.Next(Hex("400003f9")).status, Status::kNeedMore);
  EXPECT_EQ(f.Next(Hex("400003fd")).error, FramingError::kTooLarge);
  EXPECT_EQ(StreamFramer(kMax).Next(Hex("4000ffff")).size, 4u + 65536u);
  // The largest STUN message (a length of 65,532) and the largest
  // ChannelData both fit kMaxStreamFrame.
  EXPECT_EQ(StreamFramer(kMaxStreamFrame).Next(Hex("0016fffc 2112a442")).size, 65552u);
  EXPECT_EQ(StreamFramer(kMaxStreamFrame).Next(Hex("4000ffff")).status, Status::kNeedMore);
  EXPECT_EQ(ClientFrameLength(Hex("0016fffc 2112a442")).value(), 0u);
  EXPECT_STREQ(FramingErrorText(FramingError::kTooLarge), "frame larger than allowed");
}

TEST(StreamFramerTest, AStreamThatIsNotStunIsRefusedOnceItsCookieWouldBeIn) {
  StreamFramer f(kMax);
  // A TLS ClientHello on the plain port (record type 0x16, version 3.1,
  // length 0x012b): first bits 00, an odd length.
  EXPECT_EQ(f.Next(Hex("16030101 2b")).error, FramingError::kNotStun);
  // A length that is a multiple of 4 is refused once 8 bytes show no cookie.
  EXPECT_EQ(f.Next(Hex("16030100")).status, Status::kNeedMore);
  EXPECT_EQ(f.Next(Hex("16030100 2b0100")).status, Status::kNeedMore);
  EXPECT_EQ(f.Next(Hex("16030100 2b010000")).error, FramingError::kNotStun);
  // The cookie and a length of 4n pass: a Binding request header.
  EXPECT_EQ(f.Next(Hex("00010000 2112a442")).status, Status::kNeedMore);
  EXPECT_EQ(f.Next(Hex("00010000 2112a442 000000000000000000000000")).status, Status::kFrame);
}

}  // namespace
}  // namespace turnkey::stun
