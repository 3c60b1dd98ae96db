// Typed attribute decoders on hand-written values.
#include "stun/attributes.h"

#include <gtest/gtest.h>

#include "tests/stun/test_util.h"

namespace turnkey::stun {
namespace {

using testing::Hex;
using testing::ToHex;

const TransactionId kTxid = {0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
                             0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};

TEST(AttributesTest, PlainAddress) {
  auto v4 = DecodeAddress(Hex("0001 0d96 c0000201"));
  ASSERT_TRUE(v4.has_value());
  EXPECT_EQ(v4->ToString(), "192.0.2.1:3478");
  // The reserved first byte is ignored on receipt (RFC 8489 s14.1).
  EXPECT_EQ(DecodeAddress(Hex("ff01 0d96 c0000201")), v4);
  auto v6 = DecodeAddress(Hex("0002 0001 20010db8000000000000000000000001"));
  ASSERT_TRUE(v6.has_value());
  EXPECT_EQ(v6->ToString(), "[2001:db8::1]:1");
}

TEST(AttributesTest, XorAddressFromRfc5769) {
  auto v4 = DecodeXorAddress(Hex("0001a147e112a643"), kTxid);
  ASSERT_TRUE(v4.has_value());
  EXPECT_EQ(v4->ToString(), "192.0.2.1:32853");
  auto v6 = DecodeXorAddress(Hex("0002a1470113a9faa5d3f179bc25f4b5bed2b9d9"), kTxid);
  ASSERT_TRUE(v6.has_value());
  EXPECT_EQ(v6->ToString(), "[2001:db8:1234:5678:11:2233:4455:6677]:32853");
  // A different transaction id gives a different IPv6 address but the same IPv4.
  TransactionId other = kTxid;
  other[0] ^= 0xff;
  EXPECT_EQ(DecodeXorAddress(Hex("0001a147e112a643"), other), v4);
  EXPECT_NE(DecodeXorAddress(Hex("0002a1470113a9faa5d3f179bc25f4b5bed2b9d9"), other), v6);
}

TEST(AttributesTest, TextLimits) {
  EXPECT_TRUE(DecodeUsername(base::Bytes(512, 'u')).has_value());
  EXPECT_FALSE(DecodeUsername(base::Bytes(513, 'u')).has_value());
  EXPECT_TRUE(DecodeRealm(base::Bytes(763, 'r')).has_value());
  EXPECT_FALSE(DecodeRealm(base::Bytes(764, 'r')).has_value());
  EXPECT_TRUE(DecodeNonce(base::Bytes(763, 'n')).has_value());
  EXPECT_TRUE(DecodeSoftware({}).has_value());
  EXPECT_FALSE(DecodeAlternateDomain(base::Bytes(764, 'd')).has_value());
  // Bytes pass through untouched (no SASLprep), NULs included.
  EXPECT_EQ(DecodeUsername(Hex("610062")), std::string_view("a\0b", 3));
}

TEST(AttributesTest, IntegrityValues) {
  EXPECT_TRUE(DecodeMessageIntegrity(base::Bytes(20, 0)).has_value());
  EXPECT_FALSE(DecodeMessageIntegrity(base::Bytes(21, 0)).has_value());
  for (size_t n = 0; n <= 40; ++n) {
    const bool ok = n >= 16 && n <= 32 && n % 4 == 0;
    EXPECT_EQ(DecodeMessageIntegritySha256(base::Bytes(n, 0)).has_value(), ok) << n;
  }
  EXPECT_EQ(DecodeFingerprint(Hex("e57a3bcf")), 0xe57a3bcfu);
  EXPECT_TRUE(DecodeUserhash(base::Bytes(32, 0)).has_value());
  EXPECT_FALSE(DecodeUserhash(base::Bytes(33, 0)).has_value());
}

TEST(AttributesTest, ErrorCode) {
  const base::Bytes unauth = Hex("00000401 556e");
  auto ec = DecodeErrorCode(unauth);
  ASSERT_TRUE(ec.has_value());
  EXPECT_EQ(ec->code, 401);
  EXPECT_EQ(ec->reason, "Un");
  // Reserved bits are ignored; the class is the low 3 bits of byte 2.
  EXPECT_EQ(DecodeErrorCode(Hex("fffffe63"))->code, 699);
  EXPECT_EQ(DecodeErrorCode(Hex("00000300"))->code, 300);
  EXPECT_EQ(DecodeErrorCode(Hex("00000300"))->reason, "");
  EXPECT_FALSE(DecodeErrorCode(Hex("00000700")).has_value());
  EXPECT_FALSE(DecodeErrorCode(Hex("00000264")).has_value());
}

TEST(AttributesTest, AddressErrorCode) {
  const base::Bytes value = Hex("02000428 78");
  auto v = DecodeAddressErrorCode(value);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->family, AddressFamily::kIpv6);
  EXPECT_EQ(v->code, 440);
  EXPECT_EQ(v->reason, "x");
  EXPECT_FALSE(DecodeAddressErrorCode(Hex("020004")).has_value());
}

TEST(AttributesTest, UnknownAttributes) {
  const base::Bytes value = Hex("00770078");
  auto list = DecodeUnknownAttributes(value);
  ASSERT_TRUE(list.has_value());
  EXPECT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[1], 0x0078);
  EXPECT_TRUE(DecodeUnknownAttributes({}).has_value());
  EXPECT_FALSE(DecodeUnknownAttributes(Hex("007700")).has_value());
}

TEST(AttributesTest, TurnScalars) {
  EXPECT_EQ(DecodeLifetime(Hex("00000e10")), 3600u);
  EXPECT_EQ(DecodeLifetime(Hex("ffffffff")), 0xffffffffu);
  // RFFU bits are ignored on receipt (RFC 8656 s18.8).
  EXPECT_EQ(DecodeRequestedTransport(Hex("11ffffff")), 17);
  EXPECT_EQ(DecodeRequestedTransport(Hex("06000000")), 6);
  EXPECT_EQ(DecodeRequestedAddressFamily(Hex("01000000")), AddressFamily::kIpv4);
  // An unknown family is returned for the caller to answer 440.
  EXPECT_EQ(DecodeRequestedAddressFamily(Hex("03000000")), static_cast<AddressFamily>(3));
  EXPECT_EQ(DecodeAdditionalAddressFamily(Hex("02000000")), AddressFamily::kIpv6);
  // Channel range is policy, not format.
  EXPECT_EQ(DecodeChannelNumber(Hex("40000000")), 0x4000);
  EXPECT_EQ(DecodeChannelNumber(Hex("ffff0000")), 0xffff);
  EXPECT_FALSE(IsValidChannelNumber(0x3fff));
  EXPECT_TRUE(IsValidChannelNumber(0x4000));
  EXPECT_TRUE(IsValidChannelNumber(0x4fff));
  EXPECT_TRUE(IsValidChannelNumber(0x7fff));  // RFC 5766 range
  EXPECT_FALSE(IsValidChannelNumber(0x8000));
  EXPECT_EQ(DecodeEvenPort(Hex("80")), true);
  EXPECT_EQ(DecodeEvenPort(Hex("7f")), false);
  EXPECT_EQ(DecodeReservationToken(Hex("0102030405060708")), 0x0102030405060708ull);
  EXPECT_TRUE(DecodeDontFragment({}));
  EXPECT_FALSE(DecodeDontFragment(Hex("00")));
  auto icmp = DecodeIcmp(Hex("ffff0604000005dc"));
  ASSERT_TRUE(icmp.has_value());
  EXPECT_EQ(icmp->type, 3);
  EXPECT_EQ(icmp->code, 4);
  EXPECT_EQ(icmp->error_data, 1500u);
}

TEST(AttributesTest, NatDiscovery) {
  // RFC 5780 s7.2: A (change IP) is 0x4, B (change port) 0x2 of the last byte.
  auto both = DecodeChangeRequest(Hex("00000006"));
  ASSERT_TRUE(both.has_value());
  EXPECT_TRUE(both->change_ip);
  EXPECT_TRUE(both->change_port);
  auto port_only = DecodeChangeRequest(Hex("fffffff2"));  // other bits ignored
  ASSERT_TRUE(port_only.has_value());
  EXPECT_FALSE(port_only->change_ip);
  EXPECT_TRUE(port_only->change_port);
  EXPECT_FALSE(DecodeChangeRequest(Hex("0004")));
  EXPECT_EQ(DecodeResponsePort(Hex("13880000")), 5000);
  EXPECT_FALSE(DecodeResponsePort(Hex("1388")));
  // Comprehension-required, and unknown to the codec: the TURN core decides
  // per listener.
  for (uint16_t type : {0x0003, 0x0026, 0x0027}) {
    EXPECT_TRUE(IsComprehensionRequired(type));
    EXPECT_FALSE(IsKnownAttribute(type));
    EXPECT_TRUE(IsDiscoveryAttribute(type));
  }
  EXPECT_FALSE(IsDiscoveryAttribute(0x0001));
}

TEST(AttributesTest, PasswordAlgorithm) {
  const base::Bytes sha256 = Hex("00020000");
  auto a = DecodePasswordAlgorithm(sha256);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->id, PasswordAlgorithmId::kSha256);
  EXPECT_TRUE(a->params.empty());
  // Parameters padded inside the value, or left to the attribute padding.
  const base::Bytes padded_value = Hex("00010003 aabbcc00");
  auto padded = DecodePasswordAlgorithm(padded_value);
  ASSERT_TRUE(padded.has_value());
  EXPECT_EQ(ToHex(padded->params), "aabbcc");
  const base::Bytes unpadded_value = Hex("00010003 aabbcc");
  auto unpadded = DecodePasswordAlgorithm(unpadded_value);
  ASSERT_TRUE(unpadded.has_value());
  EXPECT_EQ(ToHex(unpadded->params), "aabbcc");
  EXPECT_FALSE(DecodePasswordAlgorithm(Hex("00010003 aabbcc0000")).has_value());
}

TEST(AttributesTest, PasswordAlgorithms) {
  const base::Bytes two = Hex("00020000 00010000");
  auto list = DecodePasswordAlgorithms(two);
  ASSERT_TRUE(list.has_value());
  ASSERT_EQ(list->algorithms().size(), 2u);
  EXPECT_EQ(list->algorithms()[0].id, PasswordAlgorithmId::kSha256);
  EXPECT_TRUE(list->Contains(PasswordAlgorithmId::kMd5));
  const base::Bytes params_value = Hex("00090001 ee000000 00010000");
  auto with_params = DecodePasswordAlgorithms(params_value);
  ASSERT_TRUE(with_params.has_value());
  ASSERT_EQ(with_params->algorithms().size(), 2u);
  EXPECT_EQ(ToHex(with_params->algorithms()[0].params), "ee");
  EXPECT_FALSE(with_params->Contains(PasswordAlgorithmId::kSha256));
  // The padding of each entry must be inside the value.
  EXPECT_FALSE(DecodePasswordAlgorithms(Hex("00090001 ee")).has_value());
  EXPECT_FALSE(DecodePasswordAlgorithms(Hex("0002")).has_value());
}

TEST(ConstantsTest, NamesAndKnownTypes) {
  EXPECT_STREQ(MethodName(Method::kChannelBind), "ChannelBind");
  EXPECT_STREQ(MethodName(static_cast<Method>(0x0fff)), "unknown");
  EXPECT_STREQ(ClassName(MessageClass::kErrorResponse), "error");
  EXPECT_STREQ(AttributeName(0x0020), "XOR-MAPPED-ADDRESS");
  EXPECT_STREQ(AttributeName(0x7777), "unknown");
  EXPECT_STREQ(DefaultReasonPhrase(437), "Allocation Mismatch");
  EXPECT_STREQ(DefaultReasonPhrase(499), "Error");
  EXPECT_TRUE(IsKnownAttribute(0x0020));
  EXPECT_TRUE(IsKnownAttribute(0x8028));
  EXPECT_FALSE(IsKnownAttribute(0x0002));  // RFC 3489 RESPONSE-ADDRESS
  EXPECT_FALSE(IsKnownAttribute(0x0010));  // RFC 5766 BANDWIDTH, reserved in RFC 8656
  EXPECT_TRUE(IsComprehensionRequired(0x7fff));
  EXPECT_FALSE(IsComprehensionRequired(0x8000));
}

}  // namespace
}  // namespace turnkey::stun
