// Engine.IO v4 packet codec: the byte forms of reference/socketio.md
// sections 1.2-1.4, 1.6 and 1.10, malformed input, round trips.
#include "signal/engineio_packet.h"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

namespace turnkey::signal {

// Readable failure messages (found by argument-dependent lookup).
void PrintTo(const EngineIoPacket& packet, std::ostream* os) {
  *os << EngineIoPacketTypeName(packet.type) << (packet.binary ? " binary " : " ") << '"'
      << packet.data << '"';
}

namespace {

using Type = EngineIoPacketType;

EngineIoPacket Text(Type type, std::string_view data = {}) {
  return EngineIoPacket::Text(type, data);
}

EngineIoPacket Binary(std::vector<uint8_t> bytes) { return EngineIoPacket::Binary(bytes); }

TEST(EngineIoPacketTest, DecodesEveryTextPacketType) {
  struct Case {
    std::string_view wire;
    EngineIoPacket packet;
  };
  const Case cases[] = {
      {"0{\"sid\":\"x\"}", Text(Type::kOpen, "{\"sid\":\"x\"}")},
      {"1", Text(Type::kClose)},
      {"2", Text(Type::kPing)},
      {"2probe", Text(Type::kPing, "probe")},
      {"3", Text(Type::kPong)},
      {"3probe", Text(Type::kPong, "probe")},
      {"4hello", Text(Type::kMessage, "hello")},
      {"4", Text(Type::kMessage)},
      {"42[\"x\"]", Text(Type::kMessage, "2[\"x\"]")},
      {"5", Text(Type::kUpgrade)},
      {"6", Text(Type::kNoop)},
      {"4h\xC3\xA9llo \x1f", Text(Type::kMessage, "h\xC3\xA9llo \x1f")},
      {"bAQIDBA==", Binary({1, 2, 3, 4})},
      {"b", Binary({})},
      {"bAA==", Binary({0})},
  };
  for (const Case& c : cases) {
    auto packet = DecodeEngineIoText(c.wire);
    ASSERT_TRUE(packet.has_value()) << c.wire;
    EXPECT_EQ(*packet, c.packet) << c.wire;
    // The text form is canonical: encoding gives the same bytes back.
    EXPECT_EQ(EncodeEngineIoText(*packet), c.wire);
  }
}

TEST(EngineIoPacketTest, EncodesBinaryAsBase64WithPadding) {
  // Section 1.4: bytes 01 02 03 04 -> "bAQIDBA==".
  EXPECT_EQ(EncodeEngineIoText(Binary({1, 2, 3, 4})), "bAQIDBA==");
  EXPECT_EQ(EncodeEngineIoText(Binary({1, 2, 3})), "bAQID");
  EXPECT_EQ(EncodeEngineIoText(Binary({0xFF, 0x1E})), "b/x4=");
  const std::vector<uint8_t> raw = {0x00, 0x1E, 0xFF};
  EngineIoPacket frame = DecodeEngineIoBinary(raw);
  EXPECT_TRUE(frame.binary);
  EXPECT_EQ(frame.type, Type::kMessage);
  EXPECT_EQ(frame.data, std::string("\x00\x1E\xFF", 3));
}

TEST(EngineIoPacketTest, TextSizeIsTheLengthOfTheTextForm) {
  std::vector<EngineIoPacket> packets = {Text(Type::kNoop), Text(Type::kMessage, "hello"),
                                         Text(Type::kPing, "probe")};
  std::vector<uint8_t> bytes;
  for (int n = 0; n < 8; ++n) {
    packets.push_back(Binary(bytes));
    bytes.push_back(static_cast<uint8_t>(n));
  }
  for (const EngineIoPacket& packet : packets) {
    EXPECT_EQ(EngineIoTextSize(packet), EncodeEngineIoText(packet).size())
        << EncodeEngineIoText(packet);
  }
}

TEST(EngineIoPacketTest, DecodesUnpaddedBase64) {
  // The reference decodes with Buffer.from(s, "base64"), which takes text
  // without its '=' padding; the answer is padded all the same.
  const struct {
    std::string_view wire;
    std::vector<uint8_t> bytes;
  } cases[] = {
      {"bAQIDBA", {1, 2, 3, 4}},
      {"bAQIDBA==", {1, 2, 3, 4}},
      {"b/x4", {0xFF, 0x1E}},
      {"bAQIDBAU", {1, 2, 3, 4, 5}},
      {"b", {}},
  };
  for (const auto& c : cases) {
    auto packet = DecodeEngineIoText(c.wire);
    ASSERT_TRUE(packet.has_value()) << c.wire;
    EXPECT_EQ(*packet, Binary(c.bytes)) << c.wire;
  }
  std::vector<EngineIoPacket> packets;
  ASSERT_TRUE(DecodePollingPayload("bAQIDBA\x1e"
                                   "4x",
                                   packets)
                  .has_value());
  ASSERT_EQ(packets.size(), 2u);
  EXPECT_EQ(EncodePollingPayload(packets),
            "bAQIDBA==\x1e"
            "4x");
}

TEST(EngineIoPacketTest, RejectsMalformedTextPackets) {
  struct Case {
    std::string_view wire;
    EngineIoError error;
  };
  const Case cases[] = {
      {"", EngineIoError::kEmpty},
      {"abc", EngineIoError::kUnknownType},  // tested by the reference: closes the session
      {"7", EngineIoError::kUnknownType},
      {"9hello", EngineIoError::kUnknownType},
      {"/", EngineIoError::kUnknownType},
      {":", EngineIoError::kUnknownType},
      {" 4", EngineIoError::kUnknownType},
      {"B", EngineIoError::kUnknownType},
      {std::string_view("\x00", 1), EngineIoError::kUnknownType},
      {"bA", EngineIoError::kBadBase64},
      {"bAQIDB", EngineIoError::kBadBase64},    // 5 characters cannot end a quantum
      {"bAQIDBA=", EngineIoError::kBadBase64},  // padding, but not enough
      {"bAQI=DBA", EngineIoError::kBadBase64},
      {"bAQIDBB", EngineIoError::kBadBase64},  // non-zero leftover bits, unpadded
      {"bAQID BA==", EngineIoError::kBadBase64},
      {"bAQID BA", EngineIoError::kBadBase64},
      {"bAQ-_BA", EngineIoError::kBadBase64},  // the URL alphabet
      {"b!!!!", EngineIoError::kBadBase64},
      {"bAQIDBB==", EngineIoError::kBadBase64},
  };
  for (const Case& c : cases) {
    auto packet = DecodeEngineIoText(c.wire);
    ASSERT_FALSE(packet.has_value()) << c.wire;
    EXPECT_EQ(packet.error(), c.error) << c.wire;
    EXPECT_STRNE(EngineIoErrorText(packet.error()), "") << c.wire;
  }
}

TEST(EngineIoPacketTest, PollingPayloadVectors) {
  struct Case {
    std::string_view body;
    std::vector<EngineIoPacket> packets;
  };
  const Case cases[] = {
      {"4hello\x1e"
       "2\x1e"
       "4world",
       {Text(Type::kMessage, "hello"), Text(Type::kPing), Text(Type::kMessage, "world")}},
      {"4hello\x1e"
       "bAQIDBA==",
       {Text(Type::kMessage, "hello"), Binary({1, 2, 3, 4})}},
      {"6\x1e"
       "1",
       {Text(Type::kNoop), Text(Type::kClose)}},
      {"40{\"sid\":\"abc\"}\x1e"
       "42[\"auth\",{}]",
       {Text(Type::kMessage, "0{\"sid\":\"abc\"}"), Text(Type::kMessage, "2[\"auth\",{}]")}},
      {"451-[\"upload\",{\"_placeholder\":true,\"num\":0}]\x1e"
       "bAQIDBA==",
       {Text(Type::kMessage, "51-[\"upload\",{\"_placeholder\":true,\"num\":0}]"),
        Binary({1, 2, 3, 4})}},
      {"1", {Text(Type::kClose)}},
      {"4", {Text(Type::kMessage)}},
  };
  for (const Case& c : cases) {
    std::vector<EngineIoPacket> packets;
    ASSERT_TRUE(DecodePollingPayload(c.body, packets).has_value()) << c.body;
    EXPECT_EQ(packets, c.packets) << c.body;
    EXPECT_EQ(EncodePollingPayload(c.packets), c.body);
  }
  EXPECT_EQ(EncodePollingPayload({}), "");
}

TEST(EngineIoPacketTest, PollingPayloadStopsAtTheFirstBadRecord) {
  struct Case {
    std::string_view body;
    size_t decoded_before_error;
    EngineIoError error;
  };
  const Case cases[] = {
      {"", 0, EngineIoError::kEmpty},
      {"\x1e", 0, EngineIoError::kEmpty},
      {"4a\x1e", 1, EngineIoError::kEmpty},
      {"\x1e"
       "4a",
       0, EngineIoError::kEmpty},
      {"4a\x1e\x1e"
       "4b",
       1, EngineIoError::kEmpty},
      {"abc", 0, EngineIoError::kUnknownType},
      {"4a\x1e"
       "abc\x1e"
       "4b",
       1, EngineIoError::kUnknownType},
      {"42[\"x\"]\x1e"
       "b%%%%",
       1, EngineIoError::kBadBase64},
  };
  for (const Case& c : cases) {
    std::vector<EngineIoPacket> packets;
    auto result = DecodePollingPayload(c.body, packets);
    ASSERT_FALSE(result.has_value()) << c.body;
    EXPECT_EQ(result.error(), c.error) << c.body;
    EXPECT_EQ(packets.size(), c.decoded_before_error) << c.body;
  }
}

TEST(EngineIoPacketTest, OpenPacketHasExactlyTheReferenceKeysInOrder) {
  EngineIoOpen open;
  open.sid = "lv_VI97HAXpY6yYWAAAC";
  open.upgrades = {"websocket"};
  EXPECT_EQ(EncodeOpenPacket(open),
            "0{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[\"websocket\"],"
            "\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}");
  open.upgrades.clear();
  open.ping_interval_ms = 300;
  open.ping_timeout_ms = 200;
  open.max_payload = 100000000;
  EXPECT_EQ(EncodeOpenPacket(open),
            "0{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[],"
            "\"pingInterval\":300,\"pingTimeout\":200,\"maxPayload\":100000000}");
  // The open packet decodes as an ordinary text packet.
  auto packet = DecodeEngineIoText(EncodeOpenPacket(open));
  ASSERT_TRUE(packet.has_value());
  EXPECT_EQ(packet->type, Type::kOpen);
}

TEST(EngineIoPacketTest, RequestErrorBodies) {
  // Section 1.2 and 1.10 D, byte for byte.
  EXPECT_EQ(EncodeEngineIoRequestError(EngineIoRequestError::kUnknownTransport),
            "{\"code\":0,\"message\":\"Transport unknown\"}");
  EXPECT_EQ(EncodeEngineIoRequestError(EngineIoRequestError::kUnknownSid),
            "{\"code\":1,\"message\":\"Session ID unknown\"}");
  EXPECT_EQ(EncodeEngineIoRequestError(EngineIoRequestError::kBadHandshakeMethod),
            "{\"code\":2,\"message\":\"Bad handshake method\"}");
  EXPECT_EQ(EncodeEngineIoRequestError(EngineIoRequestError::kBadRequest),
            "{\"code\":3,\"message\":\"Bad request\"}");
  EXPECT_EQ(EncodeEngineIoRequestError(EngineIoRequestError::kForbidden),
            "{\"code\":4,\"message\":\"Forbidden\"}");
  EXPECT_EQ(EncodeEngineIoRequestError(EngineIoRequestError::kUnsupportedProtocolVersion),
            "{\"code\":5,\"message\":\"Unsupported protocol version\"}");
  EXPECT_EQ(EngineIoRequestErrorStatus(EngineIoRequestError::kForbidden), 403);
  EXPECT_EQ(EngineIoRequestErrorStatus(EngineIoRequestError::kUnknownSid), 400);
}

TEST(EngineIoPacketTest, TypeNames) {
  EXPECT_STREQ(EngineIoPacketTypeName(Type::kOpen), "open");
  EXPECT_STREQ(EngineIoPacketTypeName(Type::kNoop), "noop");
  EXPECT_STREQ(EngineIoPacketTypeName(Type::kMessage), "message");
}

TEST(EngineIoPacketTest, RoundTripsEveryByteValueInBinaryAndText) {
  std::vector<uint8_t> all(256);
  for (size_t i = 0; i < all.size(); ++i) {
    all[i] = static_cast<uint8_t>(i);
  }
  for (size_t length = 0; length <= 7; ++length) {
    std::vector<uint8_t> prefix(all.begin(), all.begin() + static_cast<ptrdiff_t>(length));
    const std::vector<EngineIoPacket> packets = {Binary(prefix), Binary(all),
                                                 Text(Type::kMessage, "x"), Text(Type::kPong)};
    std::vector<EngineIoPacket> decoded;
    ASSERT_TRUE(DecodePollingPayload(EncodePollingPayload(packets), decoded).has_value());
    EXPECT_EQ(decoded, packets);
  }
}

}  // namespace
}  // namespace turnkey::signal
