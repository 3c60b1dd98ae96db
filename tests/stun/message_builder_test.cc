// MessageBuilder: every attribute round-trips through the decoders, the
// header length stays right, padding is zero, and misuse is refused.
#include "stun/message_builder.h"

#include <gtest/gtest.h>

#include "stun/attributes.h"
#include "stun/integrity.h"
#include "stun/message.h"
#include "tests/stun/test_util.h"

namespace turnkey::stun {
namespace {

using testing::Hex;
using testing::ToHex;

const TransactionId kTxid = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

base::SocketAddress Addr(const char* text) { return *base::SocketAddress::ParseIpPort(text); }

// Decodes what `b` built; fails the test if it does not decode.
Message Decoded(const MessageBuilder& b) {
  EXPECT_TRUE(b.ok()) << BuildErrorText(b.error());
  auto msg = Message::Decode(b.message());
  EXPECT_TRUE(msg.has_value()) << DecodeErrorText(msg.error());
  EXPECT_EQ(msg->size(), b.size());
  return *msg;
}

TEST(MessageBuilderTest, HeaderOnly) {
  base::Bytes out;
  MessageBuilder b(out, Method::kAllocate, MessageClass::kRequest, kTxid);
  EXPECT_EQ(ToHex(out), "000300002112a442" + ToHex(kTxid));
  Message m = Decoded(b);
  EXPECT_EQ(m.method(), Method::kAllocate);
  EXPECT_TRUE(m.IsRequest());
  EXPECT_EQ(m.transaction_id(), kTxid);
}

TEST(MessageBuilderTest, AppendsAfterExistingBytes) {
  base::Bytes out = {0xde, 0xad};
  MessageBuilder b(out, Method::kBinding, MessageClass::kRequest, kTxid);
  b.AddSoftware("x");
  EXPECT_EQ(out[0], 0xde);
  EXPECT_EQ(b.size(), 28u);
  EXPECT_EQ(out.size(), 30u);
  EXPECT_EQ(b.message().data(), out.data() + 2);
  Decoded(b);
  // A second message in the same buffer.
  MessageBuilder c(out, Method::kBinding, MessageClass::kIndication, kTxid);
  c.AddFingerprint();
  Message m = Decoded(c);
  EXPECT_EQ(VerifyFingerprint(m), IntegrityResult::kValid);
  EXPECT_EQ(out.size(), 30u + 28u);
}

TEST(MessageBuilderTest, AddressesRoundTrip) {
  for (const char* text :
       {"192.0.2.1:32853", "0.0.0.0:0", "255.255.255.255:65535",
        "[2001:db8:1234:5678:11:2233:4455:6677]:32853", "[::1]:1", "[::ffff:10.0.0.1]:3478"}) {
    SCOPED_TRACE(text);
    const base::SocketAddress addr = Addr(text);
    base::Bytes out;
    MessageBuilder b(out, Method::kAllocate, MessageClass::kSuccessResponse, kTxid);
    b.AddXorMappedAddress(addr);
    b.AddXorRelayedAddress(addr);
    b.AddXorPeerAddress(addr);
    b.AddMappedAddress(addr);
    b.AddAlternateServer(addr);
    b.AddAddress(AttributeType::kResponseOrigin, addr);
    Message m = Decoded(b);
    const auto& t = m.transaction_id();
    EXPECT_EQ(DecodeXorAddress(*m.FindValue(AttributeType::kXorMappedAddress), t), addr);
    EXPECT_EQ(DecodeXorAddress(*m.FindValue(AttributeType::kXorRelayedAddress), t), addr);
    EXPECT_EQ(DecodeXorAddress(*m.FindValue(AttributeType::kXorPeerAddress), t), addr);
    EXPECT_EQ(DecodeAddress(*m.FindValue(AttributeType::kMappedAddress)), addr);
    EXPECT_EQ(DecodeAddress(*m.FindValue(AttributeType::kAlternateServer)), addr);
    EXPECT_EQ(DecodeAddress(*m.FindValue(AttributeType::kResponseOrigin)), addr);
    // The XOR form really is XORed: it differs from the plain form on the wire
    // (the port always differs because the cookie's top half is non-zero).
    EXPECT_NE(ToHex(*m.FindValue(AttributeType::kXorMappedAddress)),
              ToHex(*m.FindValue(AttributeType::kMappedAddress)));
  }
}

TEST(MessageBuilderTest, XorAddressMatchesRfc5769Encoding) {
  // RFC 5769 s2.2 / s2.3: the same address encodes to the vector's bytes.
  const TransactionId txid = {0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
                              0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};
  base::Bytes out;
  MessageBuilder b(out, Method::kBinding, MessageClass::kSuccessResponse, txid);
  b.AddXorMappedAddress(Addr("192.0.2.1:32853"));
  b.AddXorMappedAddress(Addr("[2001:db8:1234:5678:11:2233:4455:6677]:32853"));
  Message m = Decoded(b);
  EXPECT_EQ(ToHex(m.attribute(0).value), "0001a147e112a643");
  EXPECT_EQ(ToHex(m.attribute(1).value), "0002a1470113a9faa5d3f179bc25f4b5bed2b9d9");
}

TEST(MessageBuilderTest, TextAndOpaqueAttributesRoundTrip) {
  base::Bytes out;
  MessageBuilder b(out, Method::kAllocate, MessageClass::kRequest, kTxid);
  const base::Sha256Digest hash = Userhash("user", "realm");
  const uint8_t data[] = {0, 1, 2, 3, 4, 5, 6};
  b.AddUsername("1700000000:alice");
  b.AddRealm("turnkey.local");
  b.AddNonce("nonce-value");
  b.AddSoftware("turnkey 0.1");
  b.AddAlternateDomain("turn.example.org");
  b.AddUserhash(hash);
  b.AddData(data);
  Message m = Decoded(b);
  EXPECT_EQ(DecodeUsername(*m.FindValue(AttributeType::kUsername)), "1700000000:alice");
  EXPECT_EQ(DecodeRealm(*m.FindValue(AttributeType::kRealm)), "turnkey.local");
  EXPECT_EQ(DecodeNonce(*m.FindValue(AttributeType::kNonce)), "nonce-value");
  EXPECT_EQ(DecodeSoftware(*m.FindValue(AttributeType::kSoftware)), "turnkey 0.1");
  EXPECT_EQ(DecodeAlternateDomain(*m.FindValue(AttributeType::kAlternateDomain)),
            "turn.example.org");
  EXPECT_EQ(ToHex(*DecodeUserhash(*m.FindValue(AttributeType::kUserhash))), ToHex(hash));
  EXPECT_EQ(ToHex(DecodeData(*m.FindValue(AttributeType::kData))), "00010203040506");
}

TEST(MessageBuilderTest, NatDiscoveryAttributesRoundTrip) {
  base::Bytes out;
  MessageBuilder b(out, Method::kBinding, MessageClass::kRequest, kTxid);
  b.AddChangeRequest(true, false);
  b.AddResponsePort(5000);
  const uint8_t padding[5] = {};
  b.AddAttribute(AttributeType::kPadding, padding);
  b.AddResponseOrigin(Addr("192.0.2.1:3478"));
  b.AddOtherAddress(Addr("[2001:db8::2]:3479"));
  Message m = Decoded(b);
  auto change = DecodeChangeRequest(*m.FindValue(AttributeType::kChangeRequest));
  ASSERT_TRUE(change.has_value());
  EXPECT_TRUE(change->change_ip);
  EXPECT_FALSE(change->change_port);
  EXPECT_EQ(ToHex(*m.FindValue(AttributeType::kChangeRequest)), "00000004");
  EXPECT_EQ(DecodeResponsePort(*m.FindValue(AttributeType::kResponsePort)), 5000);
  EXPECT_EQ(ToHex(*m.FindValue(AttributeType::kPadding)), "0000000000");
  EXPECT_EQ(DecodeAddress(*m.FindValue(AttributeType::kResponseOrigin)), Addr("192.0.2.1:3478"));
  EXPECT_EQ(DecodeAddress(*m.FindValue(AttributeType::kOtherAddress)), Addr("[2001:db8::2]:3479"));
  // The three request attributes are unknown to the codec (the TURN core
  // knows them per listener).
  ASSERT_EQ(m.unknown_required().size(), 3u);
}

TEST(MessageBuilderTest, UnknownAttributesResponseListsWhatItIsGiven) {
  base::Bytes request_bytes;
  MessageBuilder request(request_bytes, Method::kBinding, MessageClass::kRequest, kTxid);
  request.AddChangeRequest(true, true);
  const uint8_t value[4] = {};
  request.AddAttribute(0x7ffe, value);
  Message parsed = Decoded(request);
  ASSERT_EQ(parsed.unknown_required().size(), 2u);
  base::Bytes out;
  const uint16_t only[] = {0x7ffe};
  MessageBuilder b = MessageBuilder::UnknownAttributesResponse(out, parsed, only);
  Message m = Decoded(b);
  EXPECT_EQ(m.message_class(), MessageClass::kErrorResponse);
  EXPECT_EQ(DecodeErrorCode(*m.FindValue(AttributeType::kErrorCode))->code, 420);
  EXPECT_EQ(ToHex(*m.FindValue(AttributeType::kUnknownAttributes)), "7ffe");
}

TEST(MessageBuilderTest, EmptyValues) {
  base::Bytes out;
  MessageBuilder b(out, Method::kSend, MessageClass::kIndication, kTxid);
  b.AddData({});
  b.AddDontFragment();
  b.AddUsername("");
  Message m = Decoded(b);
  EXPECT_EQ(m.size(), 32u);
  EXPECT_TRUE(m.FindValue(AttributeType::kData)->empty());
  EXPECT_TRUE(DecodeDontFragment(*m.FindValue(AttributeType::kDontFragment)));
  EXPECT_EQ(DecodeUsername(*m.FindValue(AttributeType::kUsername)), "");
}

TEST(MessageBuilderTest, TurnAttributesRoundTrip) {
  base::Bytes out;
  MessageBuilder b(out, Method::kAllocate, MessageClass::kRequest, kTxid);
  b.AddLifetime(3600);
  b.AddRequestedTransport(kTransportUdp);
  b.AddRequestedAddressFamily(AddressFamily::kIpv6);
  b.AddAdditionalAddressFamily(AddressFamily::kIpv6);
  b.AddAddressErrorCode(AddressFamily::kIpv4, error_code::kInsufficientCapacity);
  b.AddChannelNumber(0x4001);
  b.AddEvenPort(true);
  b.AddReservationToken(0x0102030405060708ull);
  b.AddDontFragment();
  b.AddIcmp(3, 4, 1400);
  Message m = Decoded(b);
  EXPECT_EQ(DecodeLifetime(*m.FindValue(AttributeType::kLifetime)), 3600u);
  EXPECT_EQ(DecodeRequestedTransport(*m.FindValue(AttributeType::kRequestedTransport)), 17);
  EXPECT_EQ(DecodeRequestedAddressFamily(*m.FindValue(AttributeType::kRequestedAddressFamily)),
            AddressFamily::kIpv6);
  EXPECT_EQ(DecodeAdditionalAddressFamily(*m.FindValue(AttributeType::kAdditionalAddressFamily)),
            AddressFamily::kIpv6);
  auto aec = DecodeAddressErrorCode(*m.FindValue(AttributeType::kAddressErrorCode));
  ASSERT_TRUE(aec.has_value());
  EXPECT_EQ(aec->family, AddressFamily::kIpv4);
  EXPECT_EQ(aec->code, 508);
  EXPECT_EQ(aec->reason, "Insufficient Capacity");
  EXPECT_EQ(DecodeChannelNumber(*m.FindValue(AttributeType::kChannelNumber)), 0x4001);
  EXPECT_EQ(DecodeEvenPort(*m.FindValue(AttributeType::kEvenPort)), true);
  EXPECT_EQ(DecodeReservationToken(*m.FindValue(AttributeType::kReservationToken)),
            0x0102030405060708ull);
  EXPECT_TRUE(DecodeDontFragment(*m.FindValue(AttributeType::kDontFragment)));
  auto icmp = DecodeIcmp(*m.FindValue(AttributeType::kIcmp));
  ASSERT_TRUE(icmp.has_value());
  EXPECT_EQ(icmp->type, 3);
  EXPECT_EQ(icmp->code, 4);
  EXPECT_EQ(icmp->error_data, 1400u);

  // Wire details: EVEN-PORT is one byte plus padding, RFFU bits are zero.
  EXPECT_EQ(ToHex(*m.FindValue(AttributeType::kEvenPort)), "80");
  EXPECT_EQ(ToHex(*m.FindValue(AttributeType::kChannelNumber)), "40010000");
  EXPECT_EQ(ToHex(*m.FindValue(AttributeType::kRequestedTransport)), "11000000");
  EXPECT_EQ(ToHex(*m.FindValue(AttributeType::kIcmp)),
            "000006040000"
            "0578");
}

TEST(MessageBuilderTest, EvenPortWithoutReserve) {
  base::Bytes out;
  MessageBuilder b(out, Method::kAllocate, MessageClass::kRequest, kTxid);
  b.AddEvenPort(false);
  b.AddIcmp(127, 511, 0);
  Message m = Decoded(b);
  EXPECT_EQ(DecodeEvenPort(*m.FindValue(AttributeType::kEvenPort)), false);
  auto icmp = DecodeIcmp(*m.FindValue(AttributeType::kIcmp));
  EXPECT_EQ(icmp->type, 127);
  EXPECT_EQ(icmp->code, 511);
}

TEST(MessageBuilderTest, PasswordAlgorithmsRoundTrip) {
  base::Bytes out;
  MessageBuilder b(out, Method::kAllocate, MessageClass::kErrorResponse, kTxid);
  const uint8_t params[] = {9, 8, 7};
  const PasswordAlgorithm algs[] = {
      {PasswordAlgorithmId::kSha256, {}},
      {PasswordAlgorithmId::kMd5, {}},
      {static_cast<PasswordAlgorithmId>(0x1234), params},
  };
  b.AddPasswordAlgorithms(algs);
  b.AddPasswordAlgorithm(PasswordAlgorithmId::kMd5, params);
  Message m = Decoded(b);
  auto list = DecodePasswordAlgorithms(*m.FindValue(AttributeType::kPasswordAlgorithms));
  ASSERT_TRUE(list.has_value());
  ASSERT_EQ(list->algorithms().size(), 3u);
  EXPECT_EQ(list->algorithms()[0].id, PasswordAlgorithmId::kSha256);
  EXPECT_EQ(list->algorithms()[1].id, PasswordAlgorithmId::kMd5);
  EXPECT_EQ(static_cast<uint16_t>(list->algorithms()[2].id), 0x1234);
  EXPECT_EQ(ToHex(list->algorithms()[2].params), "090807");
  EXPECT_TRUE(list->Contains(PasswordAlgorithmId::kSha256));
  EXPECT_EQ(ToHex(*m.FindValue(AttributeType::kPasswordAlgorithms)),
            "00020000"
            "00010000"
            "12340003"
            "09080700");
  auto one = DecodePasswordAlgorithm(*m.FindValue(AttributeType::kPasswordAlgorithm));
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->id, PasswordAlgorithmId::kMd5);
  EXPECT_EQ(ToHex(one->params), "090807");
}

TEST(MessageBuilderTest, ErrorCodeRoundTripAndDefaultReason) {
  for (uint16_t code : {300, 400, 401, 403, 420, 437, 438, 440, 441, 442, 443, 486, 508, 699}) {
    SCOPED_TRACE(code);
    base::Bytes out;
    MessageBuilder b(out, Method::kAllocate, MessageClass::kErrorResponse, kTxid);
    b.AddErrorCode(code);
    Message m = Decoded(b);
    auto ec = DecodeErrorCode(*m.FindValue(AttributeType::kErrorCode));
    ASSERT_TRUE(ec.has_value());
    EXPECT_EQ(ec->code, code);
    EXPECT_EQ(ec->reason, DefaultReasonPhrase(code));
  }
  base::Bytes out;
  MessageBuilder b(out, Method::kRefresh, MessageClass::kErrorResponse, kTxid);
  b.AddErrorCode(438, "Stale Nonce, try again");
  Message m = Decoded(b);
  EXPECT_EQ(ToHex(m.attribute(0).value).substr(0, 8), "00000426");
  EXPECT_EQ(DecodeErrorCode(m.attribute(0).value)->reason, "Stale Nonce, try again");
}

TEST(MessageBuilderTest, UnknownAttributesRoundTrip) {
  base::Bytes out;
  MessageBuilder b(out, Method::kBinding, MessageClass::kErrorResponse, kTxid);
  const uint16_t types[] = {0x0077, 0x0002, 0x7fff};
  b.AddUnknownAttributes(types);
  Message m = Decoded(b);
  auto list = DecodeUnknownAttributes(*m.FindValue(AttributeType::kUnknownAttributes));
  ASSERT_TRUE(list.has_value());
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0], 0x0077);
  EXPECT_EQ((*list)[2], 0x7fff);
  EXPECT_TRUE(list->Contains(0x0002));
  EXPECT_FALSE(list->Contains(0x0003));
  // 6 bytes of value, 2 bytes of zero padding.
  EXPECT_EQ(ToHex(base::ByteView(out).subspan(20)),
            "000a0006"
            "007700027fff"
            "0000");
}

TEST(MessageBuilderTest, PaddingIsZero) {
  base::Bytes out(3, 0xee);  // unrelated bytes before the message
  MessageBuilder b(out, Method::kBinding, MessageClass::kRequest, kTxid);
  b.AddUsername("a");
  b.AddRealm("ab");
  b.AddNonce("abc");
  EXPECT_EQ(ToHex(b.message().subspan(20)),
            "00060001"
            "61000000"
            "00140002"
            "61620000"
            "00150003"
            "61626300");
}

TEST(MessageBuilderTest, SuccessResponseForBindingRequest) {
  // What the server does for a Binding request: decode, check FINGERPRINT if
  // present, answer with XOR-MAPPED-ADDRESS and FINGERPRINT.
  base::Bytes request_bytes;
  MessageBuilder req(request_bytes, Method::kBinding, MessageClass::kRequest, kTxid);
  req.AddFingerprint();
  auto request = Message::Decode(request_bytes);
  ASSERT_TRUE(request.has_value());
  ASSERT_EQ(VerifyFingerprint(*request), IntegrityResult::kValid);

  base::Bytes out;
  MessageBuilder b = MessageBuilder::SuccessResponse(out, *request);
  b.AddXorMappedAddress(Addr("198.51.100.2:40000"));
  b.AddFingerprint();
  Message m = Decoded(b);
  EXPECT_EQ(m.method(), Method::kBinding);
  EXPECT_EQ(m.message_class(), MessageClass::kSuccessResponse);
  EXPECT_EQ(m.transaction_id(), kTxid);
  EXPECT_EQ(VerifyFingerprint(m), IntegrityResult::kValid);
  EXPECT_EQ(DecodeXorAddress(*m.FindValue(AttributeType::kXorMappedAddress), kTxid),
            Addr("198.51.100.2:40000"));
}

TEST(MessageBuilderTest, ErrorResponseWithUnknownAttributes) {
  const base::Bytes request_bytes = testing::RawMessage(0x0003)
                                        .Attr(0x0077, {})
                                        .Attr(AttributeType::kLifetime, Hex("00000258"))
                                        .Attr(0x0042, Hex("01020304"))
                                        .Build();
  auto request = Message::Decode(request_bytes);
  ASSERT_TRUE(request.has_value());
  ASSERT_EQ(request->unknown_required().size(), 2u);

  base::Bytes out;
  MessageBuilder b = MessageBuilder::ErrorResponse(out, *request, error_code::kUnknownAttribute);
  b.AddFingerprint();
  Message m = Decoded(b);
  EXPECT_EQ(m.method(), Method::kAllocate);
  EXPECT_EQ(m.message_class(), MessageClass::kErrorResponse);
  EXPECT_EQ(m.transaction_id(), request->transaction_id());
  auto ec = DecodeErrorCode(*m.FindValue(AttributeType::kErrorCode));
  EXPECT_EQ(ec->code, 420);
  EXPECT_EQ(ec->reason, "Unknown Attribute");
  auto list = DecodeUnknownAttributes(*m.FindValue(AttributeType::kUnknownAttributes));
  ASSERT_TRUE(list.has_value());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0], 0x0077);
  EXPECT_EQ((*list)[1], 0x0042);
}

TEST(MessageBuilderTest, ErrorResponseUnauthenticated) {
  base::Bytes request_bytes;
  MessageBuilder req(request_bytes, Method::kAllocate, MessageClass::kRequest, kTxid);
  req.AddRequestedTransport(kTransportUdp);
  auto request = Message::Decode(request_bytes);
  ASSERT_TRUE(request.has_value());

  base::Bytes out;
  MessageBuilder b = MessageBuilder::ErrorResponse(out, *request, error_code::kUnauthenticated);
  b.AddRealm("turnkey.local");
  b.AddNonce("abcd");
  const PasswordAlgorithm algs[] = {{PasswordAlgorithmId::kMd5, {}},
                                    {PasswordAlgorithmId::kSha256, {}}};
  b.AddPasswordAlgorithms(algs);
  b.AddFingerprint();
  Message m = Decoded(b);
  EXPECT_EQ(DecodeErrorCode(*m.FindValue(AttributeType::kErrorCode))->code, 401);
  EXPECT_FALSE(m.Has(AttributeType::kUnknownAttributes));
  EXPECT_EQ(VerifyFingerprint(m), IntegrityResult::kValid);
}

TEST(MessageBuilderTest, IntegrityThenFingerprint) {
  const base::Bytes key = {'k', 'e', 'y'};
  base::Bytes out;
  MessageBuilder b(out, Method::kRefresh, MessageClass::kRequest, kTxid);
  b.AddLifetime(0);
  b.AddMessageIntegrity(key);
  b.AddMessageIntegritySha256(key);
  b.AddFingerprint();
  Message m = Decoded(b);
  EXPECT_EQ(VerifyMessageIntegrity(m, key), IntegrityResult::kValid);
  EXPECT_EQ(VerifyMessageIntegritySha256(m, key), IntegrityResult::kValid);
  EXPECT_EQ(VerifyFingerprint(m), IntegrityResult::kValid);
  EXPECT_FALSE(m.has_ignored());
}

TEST(MessageBuilderTest, TruncatedSha256Integrity) {
  const base::Bytes key(32, 0x42);
  for (size_t len : {16u, 20u, 24u, 28u, 32u}) {
    SCOPED_TRACE(len);
    base::Bytes out;
    MessageBuilder b(out, Method::kAllocate, MessageClass::kRequest, kTxid);
    b.AddUsername("u");
    b.AddMessageIntegritySha256(key, len);
    Message m = Decoded(b);
    EXPECT_EQ(m.FindValue(AttributeType::kMessageIntegritySha256)->size(), len);
    // Valid for a usage that allows truncation to 16 bytes; TURN does not
    // (the default), so a shorter value is malformed there.
    EXPECT_EQ(VerifyMessageIntegritySha256(m, key, 16), IntegrityResult::kValid);
    EXPECT_EQ(VerifyMessageIntegritySha256(m, base::Bytes(32, 0x43), 16),
              IntegrityResult::kMismatch);
    EXPECT_EQ(VerifyMessageIntegritySha256(m, key),
              len == 32 ? IntegrityResult::kValid : IntegrityResult::kMalformed);
  }
}

TEST(MessageBuilderTest, RefusesMisuse) {
  const base::Bytes key = {1};
  {
    base::Bytes out;
    MessageBuilder b(out, Method::kBinding, MessageClass::kRequest, kTxid);
    b.AddMessageIntegrity(key);
    const size_t n = out.size();
    b.AddUsername("late");  // would be ignored by receivers
    EXPECT_EQ(b.error(), BuildError::kAfterIntegrity);
    EXPECT_EQ(out.size(), n);
    b.AddFingerprint();  // sticky: nothing more is added
    EXPECT_EQ(out.size(), n);
  }
  {
    base::Bytes out;
    MessageBuilder b(out, Method::kBinding, MessageClass::kRequest, kTxid);
    b.AddFingerprint();
    b.AddFingerprint();
    EXPECT_EQ(b.error(), BuildError::kAfterFingerprint);
  }
  {
    base::Bytes out;
    MessageBuilder b(out, Method::kBinding, MessageClass::kRequest, kTxid);
    b.AddMessageIntegritySha256(key);
    b.AddMessageIntegrity(key);
    EXPECT_EQ(b.error(), BuildError::kAfterIntegrity);
  }
  {
    base::Bytes out;
    MessageBuilder b(out, Method::kBinding, MessageClass::kRequest, kTxid);
    b.AddMessageIntegrity(key);
    b.AddMessageIntegrity(key);
    EXPECT_EQ(b.error(), BuildError::kAfterIntegrity);
  }
  for (size_t bad_len : {0u, 12u, 18u, 36u}) {
    base::Bytes out;
    MessageBuilder b(out, Method::kBinding, MessageClass::kRequest, kTxid);
    b.AddMessageIntegritySha256(key, bad_len);
    EXPECT_EQ(b.error(), BuildError::kBadValue) << bad_len;
    EXPECT_EQ(out.size(), 20u);
  }
  for (uint16_t bad_code : {0, 299, 700, 999}) {
    base::Bytes out;
    MessageBuilder b(out, Method::kBinding, MessageClass::kErrorResponse, kTxid);
    b.AddErrorCode(bad_code);
    EXPECT_EQ(b.error(), BuildError::kBadValue) << bad_code;
  }
  {
    base::Bytes out;
    MessageBuilder b(out, Method::kBinding, MessageClass::kSuccessResponse, kTxid);
    b.AddXorMappedAddress(base::SocketAddress());
    EXPECT_EQ(b.error(), BuildError::kBadValue);
  }
  {
    base::Bytes out;
    MessageBuilder b(out, Method::kBinding, MessageClass::kRequest, kTxid);
    b.AddUserhash(base::Bytes(31, 0));
    EXPECT_EQ(b.error(), BuildError::kBadValue);
  }
  {
    base::Bytes out;
    MessageBuilder b(out, Method::kBinding, MessageClass::kRequest, kTxid);
    b.AddIcmp(128, 0, 0);
    EXPECT_EQ(b.error(), BuildError::kBadValue);
  }
  {
    base::Bytes out;
    MessageBuilder b(out, Method::kBinding, MessageClass::kErrorResponse, kTxid);
    b.AddErrorCode(400, std::string(764, 'x'));
    EXPECT_EQ(b.error(), BuildError::kTooLong);
  }
}

TEST(MessageBuilderTest, RefusesMessagesOver64k) {
  base::Bytes out;
  MessageBuilder b(out, Method::kSend, MessageClass::kIndication, kTxid);
  b.AddData(base::Bytes(0xFFFF, 1));  // value fits, but 4 + 65536 padded does not
  EXPECT_EQ(b.error(), BuildError::kTooLong);
  EXPECT_EQ(out.size(), 20u);

  base::Bytes out2;
  MessageBuilder c(out2, Method::kSend, MessageClass::kIndication, kTxid);
  c.AddData(base::Bytes(0xFFFF - 8, 1));  // 4 + 65528 = 65532 body: fits
  EXPECT_TRUE(c.ok());
  c.AddDontFragment();  // 65536: does not
  EXPECT_EQ(c.error(), BuildError::kTooLong);
  EXPECT_EQ(c.size(), 20u + 65532u);
  Message m = *Message::Decode(c.message());
  EXPECT_EQ(m.FindValue(AttributeType::kData)->size(), 0xFFFFu - 8);
}

TEST(MessageBuilderTest, RawAttribute) {
  base::Bytes out;
  MessageBuilder b(out, Method::kBinding, MessageClass::kRequest, kTxid);
  b.AddAttribute(0x8077, Hex("0102030405"));
  Message m = Decoded(b);
  ASSERT_EQ(m.attribute_count(), 1u);
  EXPECT_EQ(m.attribute(0).type, 0x8077);
  EXPECT_EQ(ToHex(m.attribute(0).value), "0102030405");
  EXPECT_EQ(m.size(), 32u);
}

}  // namespace
}  // namespace turnkey::stun
