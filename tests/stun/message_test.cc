// Message::Decode: header and TLV checks, findings, and a table of malformed
// inputs, each with the finding it must produce.
#include "stun/message.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "stun/attributes.h"
#include "tests/stun/test_util.h"

namespace turnkey::stun {
namespace {

using testing::Hex;
using testing::RawMessage;
using testing::RawTransactionId;

constexpr uint16_t T(AttributeType t) { return static_cast<uint16_t>(t); }

base::Bytes Zeros(size_t n) { return base::Bytes(n, 0); }

// Runs the typed decoder for `type`; true if the value is well formed.
bool TypedValueIsValid(uint16_t type, base::ByteView v, const TransactionId& txid) {
  switch (static_cast<AttributeType>(type)) {
    case AttributeType::kMappedAddress:
    case AttributeType::kAlternateServer:
    case AttributeType::kResponseOrigin:
    case AttributeType::kOtherAddress: return DecodeAddress(v).has_value();
    case AttributeType::kXorMappedAddress:
    case AttributeType::kXorPeerAddress:
    case AttributeType::kXorRelayedAddress: return DecodeXorAddress(v, txid).has_value();
    case AttributeType::kUsername: return DecodeUsername(v).has_value();
    case AttributeType::kRealm: return DecodeRealm(v).has_value();
    case AttributeType::kNonce: return DecodeNonce(v).has_value();
    case AttributeType::kSoftware: return DecodeSoftware(v).has_value();
    case AttributeType::kAlternateDomain: return DecodeAlternateDomain(v).has_value();
    case AttributeType::kUserhash: return DecodeUserhash(v).has_value();
    case AttributeType::kMessageIntegrity: return DecodeMessageIntegrity(v).has_value();
    case AttributeType::kMessageIntegritySha256: return DecodeMessageIntegritySha256(v).has_value();
    case AttributeType::kFingerprint: return DecodeFingerprint(v).has_value();
    case AttributeType::kPasswordAlgorithm: return DecodePasswordAlgorithm(v).has_value();
    case AttributeType::kPasswordAlgorithms: return DecodePasswordAlgorithms(v).has_value();
    case AttributeType::kErrorCode: return DecodeErrorCode(v).has_value();
    case AttributeType::kUnknownAttributes: return DecodeUnknownAttributes(v).has_value();
    case AttributeType::kLifetime: return DecodeLifetime(v).has_value();
    case AttributeType::kRequestedTransport: return DecodeRequestedTransport(v).has_value();
    case AttributeType::kRequestedAddressFamily: return DecodeRequestedAddressFamily(v).has_value();
    case AttributeType::kAdditionalAddressFamily:
      return DecodeAdditionalAddressFamily(v).has_value();
    case AttributeType::kAddressErrorCode: return DecodeAddressErrorCode(v).has_value();
    case AttributeType::kChannelNumber: return DecodeChannelNumber(v).has_value();
    case AttributeType::kEvenPort: return DecodeEvenPort(v).has_value();
    case AttributeType::kReservationToken: return DecodeReservationToken(v).has_value();
    case AttributeType::kDontFragment: return DecodeDontFragment(v);
    case AttributeType::kIcmp: return DecodeIcmp(v).has_value();
    default: return true;
  }
}

enum class Outcome {
  kDecodeError,      // Decode fails with `error`
  kDuplicate,        // decodes; a later occurrence of `type` is flagged duplicate
  kUnknownRequired,  // decodes; `type` is in unknown_required()
  kIgnored,          // decodes; an occurrence of `type` is flagged ignored
  kBadValue,         // decodes; the typed decoder rejects the first `type`
};

struct Case {
  std::string name;
  base::Bytes bytes;
  Outcome outcome;
  DecodeError error = DecodeError::kTooShort;
  uint16_t type = 0;
};

Case Err(std::string name, base::Bytes bytes, DecodeError e) {
  return Case{std::move(name), std::move(bytes), Outcome::kDecodeError, e, 0};
}
Case Finding(std::string name, base::Bytes bytes, Outcome o, uint16_t type) {
  return Case{std::move(name), std::move(bytes), o, DecodeError::kTooShort, type};
}
Case Bad(std::string name, AttributeType type, base::ByteView value) {
  return Finding(std::move(name), RawMessage().Attr(type, value).Build(), Outcome::kBadValue,
                 T(type));
}

std::vector<Case> MalformedCases() {
  const base::Bytes mi(20, 0x11);
  const base::Bytes fp(4, 0x22);
  const base::Bytes four(4, 0);
  std::vector<Case> cases;
  // Header.
  cases.push_back(Err("empty", {}, DecodeError::kTooShort));
  {
    base::Bytes header = RawMessage().Build();
    header.pop_back();
    cases.push_back(Err("19 bytes", header, DecodeError::kTooShort));
  }
  cases.push_back(
      Err("first bits 01 (ChannelData)", RawMessage(0x4001).Build(), DecodeError::kNotStun));
  cases.push_back(Err("first bits 10", RawMessage(0x8001).Build(), DecodeError::kNotStun));
  cases.push_back(Err("first bits 11", RawMessage(0xC001).Build(), DecodeError::kNotStun));
  cases.push_back(Err("no magic cookie (RFC 3489)", RawMessage().Cookie(0x01020304).Build(),
                      DecodeError::kNoMagicCookie));
  cases.push_back(Err("byte-swapped cookie", RawMessage().Cookie(0x42A41221).Build(),
                      DecodeError::kNoMagicCookie));
  cases.push_back(Err("cookie-less with body",
                      RawMessage().Cookie(0).AttrText(AttributeType::kSoftware, "x").Build(),
                      DecodeError::kNoMagicCookie));
  cases.push_back(
      Err("length 1", RawMessage().Raw(four).Length(1).Build(), DecodeError::kBadLength));
  cases.push_back(
      Err("length 6", RawMessage().Raw(Zeros(8)).Length(6).Build(), DecodeError::kBadLength));
  cases.push_back(Err("length 0xFFFF", RawMessage().Raw(Zeros(8)).Length(0xFFFF).Build(),
                      DecodeError::kBadLength));
  cases.push_back(
      Err("length 4, no body", RawMessage().Length(4).Build(), DecodeError::kTruncated));
  cases.push_back(Err("length 0xFFFC, 8-byte body",
                      RawMessage().Raw(Zeros(8)).Length(0xFFFC).Build(), DecodeError::kTruncated));
  cases.push_back(Err("length past end by 4",
                      RawMessage().Attr(AttributeType::kLifetime, four).Length(12).Build(),
                      DecodeError::kTruncated));
  // Attribute TLVs.
  cases.push_back(Err("attribute value missing",
                      RawMessage().Attr(AttributeType::kLifetime, {}, 4).Build(),
                      DecodeError::kAttributeTruncated));
  cases.push_back(Err("attribute length 0xFFFF",
                      RawMessage().Attr(AttributeType::kSoftware, four, 0xFFFF).Build(),
                      DecodeError::kAttributeTruncated));
  cases.push_back(Err("attribute length 0xFFFF, unknown type",
                      RawMessage().Attr(0x7777, Zeros(8), 0xFFFF).Build(),
                      DecodeError::kAttributeTruncated));
  cases.push_back(Err("padding missing (len 5 in 8)",
                      RawMessage().Attr(AttributeType::kUsername, Zeros(4), 5).Build(),
                      DecodeError::kAttributeTruncated));
  cases.push_back(Err("padding missing (len 3 in 4)",
                      RawMessage().Attr(AttributeType::kUsername, {}, 3).Build(),
                      DecodeError::kAttributeTruncated));
  cases.push_back(Err("second attribute truncated",
                      RawMessage()
                          .Attr(AttributeType::kDontFragment, {})
                          .Attr(AttributeType::kLifetime, {}, 4)
                          .Build(),
                      DecodeError::kAttributeTruncated));
  cases.push_back(Err("header length cuts an attribute",
                      RawMessage().Attr(AttributeType::kSoftware, Zeros(8)).Length(8).Build(),
                      DecodeError::kAttributeTruncated));
  cases.push_back(Err("attribute after FINGERPRINT",
                      RawMessage()
                          .Attr(AttributeType::kFingerprint, fp)
                          .AttrText(AttributeType::kSoftware, "x")
                          .Build(),
                      DecodeError::kAttributeAfterFingerprint));
  cases.push_back(Err("two FINGERPRINTs",
                      RawMessage()
                          .Attr(AttributeType::kFingerprint, fp)
                          .Attr(AttributeType::kFingerprint, fp)
                          .Build(),
                      DecodeError::kAttributeAfterFingerprint));
  cases.push_back(Err("MESSAGE-INTEGRITY after FINGERPRINT",
                      RawMessage()
                          .Attr(AttributeType::kFingerprint, fp)
                          .Attr(AttributeType::kMessageIntegrity, mi)
                          .Build(),
                      DecodeError::kAttributeAfterFingerprint));
  {
    RawMessage m;
    for (size_t i = 0; i <= Message::kMaxAttributes; ++i) {
      m.Attr(AttributeType::kDontFragment, {});
    }
    cases.push_back(Err("129 attributes", m.Build(), DecodeError::kTooManyAttributes));
  }
  // Findings on messages that decode.
  cases.push_back(Finding("duplicate USERNAME",
                          RawMessage()
                              .AttrText(AttributeType::kUsername, "alice")
                              .AttrText(AttributeType::kUsername, "mallory")
                              .Build(),
                          Outcome::kDuplicate, T(AttributeType::kUsername)));
  cases.push_back(Finding("duplicate XOR-PEER-ADDRESS apart",
                          RawMessage()
                              .Attr(AttributeType::kXorPeerAddress, Zeros(8))
                              .Attr(AttributeType::kLifetime, four)
                              .Attr(AttributeType::kXorPeerAddress, Zeros(8))
                              .Build(),
                          Outcome::kDuplicate, T(AttributeType::kXorPeerAddress)));
  cases.push_back(Finding("unknown comprehension-required 0x0077",
                          RawMessage().Attr(0x0077, four).Build(), Outcome::kUnknownRequired,
                          0x0077));
  cases.push_back(Finding("unknown comprehension-required 0x0000",
                          RawMessage().Attr(0x0000, {}).Build(), Outcome::kUnknownRequired, 0));
  cases.push_back(Finding("RESPONSE-ADDRESS (RFC 3489, not known)",
                          RawMessage().Attr(0x0002, Zeros(8)).Build(), Outcome::kUnknownRequired,
                          0x0002));
  cases.push_back(Finding("USERNAME after MESSAGE-INTEGRITY",
                          RawMessage()
                              .Attr(AttributeType::kMessageIntegrity, mi)
                              .AttrText(AttributeType::kUsername, "mallory")
                              .Build(),
                          Outcome::kIgnored, T(AttributeType::kUsername)));
  cases.push_back(Finding("MESSAGE-INTEGRITY after MESSAGE-INTEGRITY-SHA256",
                          RawMessage()
                              .Attr(AttributeType::kMessageIntegritySha256, Zeros(32))
                              .Attr(AttributeType::kMessageIntegrity, mi)
                              .Build(),
                          Outcome::kIgnored, T(AttributeType::kMessageIntegrity)));
  cases.push_back(Finding("second MESSAGE-INTEGRITY",
                          RawMessage()
                              .Attr(AttributeType::kMessageIntegrity, mi)
                              .Attr(AttributeType::kMessageIntegrity, mi)
                              .Build(),
                          Outcome::kIgnored, T(AttributeType::kMessageIntegrity)));
  // Typed values with a bad length or format.
  const uint8_t xor_family3[] = {0, 3, 0x12, 0x34, 1, 2, 3, 4};
  const uint8_t xor_v4_as_v6[] = {0, 2, 0x12, 0x34, 1, 2, 3, 4};
  const uint8_t xor_short[] = {0, 1, 0x12, 0x34};
  const uint8_t mapped_family0[] = {0, 0, 0x12, 0x34, 1, 2, 3, 4};
  base::Bytes v4_long = {0, 1, 0x12, 0x34};
  v4_long.resize(20, 7);
  cases.push_back(
      Bad("XOR-MAPPED-ADDRESS family 3", AttributeType::kXorMappedAddress, xor_family3));
  cases.push_back(Bad("XOR-MAPPED-ADDRESS 4 bytes", AttributeType::kXorMappedAddress, xor_short));
  cases.push_back(Bad("XOR-MAPPED-ADDRESS empty", AttributeType::kXorMappedAddress, {}));
  cases.push_back(Bad("XOR-MAPPED-ADDRESS IPv6 with 4 address bytes",
                      AttributeType::kXorMappedAddress, xor_v4_as_v6));
  cases.push_back(
      Bad("XOR-PEER-ADDRESS IPv4 with 16 address bytes", AttributeType::kXorPeerAddress, v4_long));
  const uint8_t xor_v4_7_bytes[] = {0, 1, 0x12, 0x34, 1, 2, 3};
  cases.push_back(
      Bad("XOR-RELAYED-ADDRESS 7 bytes", AttributeType::kXorRelayedAddress, xor_v4_7_bytes));
  cases.push_back(Bad("MAPPED-ADDRESS family 0", AttributeType::kMappedAddress, mapped_family0));
  cases.push_back(Bad("ALTERNATE-SERVER 3 bytes", AttributeType::kAlternateServer, Zeros(3)));
  cases.push_back(Bad("MESSAGE-INTEGRITY 19 bytes", AttributeType::kMessageIntegrity, Zeros(19)));
  cases.push_back(Bad("MESSAGE-INTEGRITY 32 bytes", AttributeType::kMessageIntegrity, Zeros(32)));
  cases.push_back(
      Bad("MESSAGE-INTEGRITY-SHA256 12 bytes", AttributeType::kMessageIntegritySha256, Zeros(12)));
  cases.push_back(
      Bad("MESSAGE-INTEGRITY-SHA256 18 bytes", AttributeType::kMessageIntegritySha256, Zeros(18)));
  cases.push_back(
      Bad("MESSAGE-INTEGRITY-SHA256 36 bytes", AttributeType::kMessageIntegritySha256, Zeros(36)));
  cases.push_back(Bad("FINGERPRINT 3 bytes", AttributeType::kFingerprint, Zeros(3)));
  cases.push_back(Bad("FINGERPRINT 8 bytes", AttributeType::kFingerprint, Zeros(8)));
  const uint8_t class7[] = {0, 0, 7, 0};
  const uint8_t class2[] = {0, 0, 2, 0};
  const uint8_t number100[] = {0, 0, 4, 100};
  cases.push_back(Bad("ERROR-CODE class 7", AttributeType::kErrorCode, class7));
  cases.push_back(Bad("ERROR-CODE class 2", AttributeType::kErrorCode, class2));
  cases.push_back(Bad("ERROR-CODE number 100", AttributeType::kErrorCode, number100));
  cases.push_back(Bad("ERROR-CODE 3 bytes", AttributeType::kErrorCode, Zeros(3)));
  base::Bytes long_reason = {0, 0, 4, 0};
  long_reason.resize(4 + 764, 'a');
  cases.push_back(Bad("ERROR-CODE reason 764 bytes", AttributeType::kErrorCode, long_reason));
  cases.push_back(
      Bad("UNKNOWN-ATTRIBUTES odd length", AttributeType::kUnknownAttributes, Zeros(3)));
  cases.push_back(Bad("LIFETIME 3 bytes", AttributeType::kLifetime, Zeros(3)));
  cases.push_back(Bad("LIFETIME 8 bytes", AttributeType::kLifetime, Zeros(8)));
  cases.push_back(Bad("REQUESTED-TRANSPORT 1 byte", AttributeType::kRequestedTransport, Zeros(1)));
  cases.push_back(
      Bad("REQUESTED-ADDRESS-FAMILY 8 bytes", AttributeType::kRequestedAddressFamily, Zeros(8)));
  cases.push_back(
      Bad("ADDITIONAL-ADDRESS-FAMILY 1 byte", AttributeType::kAdditionalAddressFamily, Zeros(1)));
  const uint8_t addr_err_class0[] = {1, 0, 0, 40};
  cases.push_back(
      Bad("ADDRESS-ERROR-CODE class 0", AttributeType::kAddressErrorCode, addr_err_class0));
  cases.push_back(Bad("CHANNEL-NUMBER 2 bytes", AttributeType::kChannelNumber, Zeros(2)));
  cases.push_back(Bad("EVEN-PORT 4 bytes", AttributeType::kEvenPort, Zeros(4)));
  cases.push_back(Bad("EVEN-PORT empty", AttributeType::kEvenPort, {}));
  cases.push_back(Bad("RESERVATION-TOKEN 4 bytes", AttributeType::kReservationToken, Zeros(4)));
  cases.push_back(Bad("DONT-FRAGMENT with a value", AttributeType::kDontFragment, Zeros(4)));
  cases.push_back(Bad("ICMP 4 bytes", AttributeType::kIcmp, Zeros(4)));
  cases.push_back(Bad("USERHASH 31 bytes", AttributeType::kUserhash, Zeros(31)));
  cases.push_back(Bad("USERNAME 513 bytes", AttributeType::kUsername, base::Bytes(513, 'u')));
  cases.push_back(Bad("REALM 764 bytes", AttributeType::kRealm, base::Bytes(764, 'r')));
  cases.push_back(Bad("NONCE 764 bytes", AttributeType::kNonce, base::Bytes(764, 'n')));
  cases.push_back(Bad("SOFTWARE 764 bytes", AttributeType::kSoftware, base::Bytes(764, 's')));
  const uint8_t alg_params_past_end[] = {0, 1, 0, 8, 1, 2, 3, 4};
  const uint8_t alg_short[] = {0, 1, 0};
  const uint8_t algs_truncated[] = {0, 1, 0, 0, 0, 2, 0, 4, 9, 9};
  cases.push_back(Bad("PASSWORD-ALGORITHM params past end", AttributeType::kPasswordAlgorithm,
                      alg_params_past_end));
  cases.push_back(Bad("PASSWORD-ALGORITHM 3 bytes", AttributeType::kPasswordAlgorithm, alg_short));
  cases.push_back(Bad("PASSWORD-ALGORITHMS truncated entry", AttributeType::kPasswordAlgorithms,
                      algs_truncated));
  cases.push_back(Bad("PASSWORD-ALGORITHMS empty", AttributeType::kPasswordAlgorithms, {}));
  {
    base::Bytes nine;
    for (int i = 0; i < 9; ++i) {
      const uint8_t entry[] = {0, 1, 0, 0};
      nine.insert(nine.end(), entry, entry + 4);
    }
    cases.push_back(Bad("PASSWORD-ALGORITHMS 9 entries", AttributeType::kPasswordAlgorithms, nine));
  }
  return cases;
}

TEST(MessageMalformedTest, EachInputProducesItsFinding) {
  const std::vector<Case> cases = MalformedCases();
  ASSERT_GE(cases.size(), 30u);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto msg = Message::Decode(c.bytes);
    if (c.outcome == Outcome::kDecodeError) {
      ASSERT_FALSE(msg.has_value());
      EXPECT_EQ(msg.error(), c.error)
          << "got " << DecodeErrorText(msg.error()) << ", want " << DecodeErrorText(c.error);
      continue;
    }
    ASSERT_TRUE(msg.has_value()) << DecodeErrorText(msg.error());
    switch (c.outcome) {
      case Outcome::kDuplicate: {
        EXPECT_TRUE(msg->has_duplicates());
        int seen = 0;
        for (Attribute a : *msg) {
          if (a.type == c.type) {
            EXPECT_EQ(a.duplicate, seen > 0);
            ++seen;
          }
        }
        EXPECT_GE(seen, 2);
        // Find returns the first occurrence.
        auto first = msg->Find(static_cast<AttributeType>(c.type));
        ASSERT_TRUE(first.has_value());
        EXPECT_FALSE(first->duplicate);
        break;
      }
      case Outcome::kUnknownRequired: {
        auto unknown = msg->unknown_required();
        ASSERT_EQ(unknown.size(), 1u);
        EXPECT_EQ(unknown[0], c.type);
        break;
      }
      case Outcome::kIgnored: {
        EXPECT_TRUE(msg->has_ignored());
        bool found = false;
        for (Attribute a : *msg) {
          if (a.type == c.type && a.ignored) {
            found = true;
            EXPECT_FALSE(a.covered_by_integrity());
          }
        }
        EXPECT_TRUE(found);
        break;
      }
      case Outcome::kBadValue: {
        auto a = msg->Find(static_cast<AttributeType>(c.type));
        ASSERT_TRUE(a.has_value());
        EXPECT_FALSE(TypedValueIsValid(c.type, a->value, msg->transaction_id()));
        EXPECT_FALSE(msg->has_duplicates());
        EXPECT_TRUE(msg->unknown_required().empty());
        break;
      }
      case Outcome::kDecodeError: break;
    }
  }
}

TEST(MessageTest, DecodesHeaderFields) {
  const base::Bytes buf = RawMessage(0x0113).Build();  // Allocate error response
  auto msg = Message::Decode(buf);
  ASSERT_TRUE(msg.has_value());
  EXPECT_EQ(msg->type(), 0x0113);
  EXPECT_EQ(msg->method(), Method::kAllocate);
  EXPECT_EQ(msg->message_class(), MessageClass::kErrorResponse);
  EXPECT_EQ(msg->transaction_id(), RawTransactionId());
  EXPECT_EQ(msg->size(), 20u);
  EXPECT_EQ(msg->attribute_count(), 0u);
  EXPECT_FALSE(msg->Find(AttributeType::kErrorCode).has_value());
}

TEST(MessageTest, MessageTypeEncodingCoversAllMethodsAndClasses) {
  // RFC 8489 s5 figure 3 worked examples and RFC 8656 method values.
  EXPECT_EQ(MessageType(Method::kBinding, MessageClass::kRequest), 0x0001);
  EXPECT_EQ(MessageType(Method::kBinding, MessageClass::kIndication), 0x0011);
  EXPECT_EQ(MessageType(Method::kBinding, MessageClass::kSuccessResponse), 0x0101);
  EXPECT_EQ(MessageType(Method::kBinding, MessageClass::kErrorResponse), 0x0111);
  EXPECT_EQ(MessageType(Method::kAllocate, MessageClass::kRequest), 0x0003);
  EXPECT_EQ(MessageType(Method::kSend, MessageClass::kIndication), 0x0016);
  EXPECT_EQ(MessageType(Method::kData, MessageClass::kIndication), 0x0017);
  EXPECT_EQ(MessageType(Method::kChannelBind, MessageClass::kSuccessResponse), 0x0109);
  for (uint16_t m = 0; m < 0x1000; ++m) {
    for (uint8_t c = 0; c < 4; ++c) {
      const uint16_t t = MessageType(static_cast<Method>(m), static_cast<MessageClass>(c));
      ASSERT_EQ(t & 0xC000, 0);
      ASSERT_EQ(static_cast<uint16_t>(MethodOf(t)), m);
      ASSERT_EQ(static_cast<uint8_t>(ClassOf(t)), c);
    }
  }
}

TEST(MessageTest, IgnoresBytesAfterTheMessage) {
  base::Bytes buf = RawMessage().AttrText(AttributeType::kSoftware, "abc").Build();
  const size_t n = buf.size();
  buf.push_back(0xff);
  buf.push_back(0xfe);
  auto msg = Message::Decode(buf);
  ASSERT_TRUE(msg.has_value());
  EXPECT_EQ(msg->size(), n);
  EXPECT_EQ(msg->bytes().data(), buf.data());
}

TEST(MessageTest, PaddingContentIsIgnored) {
  base::Bytes buf = RawMessage().AttrText(AttributeType::kUsername, "ab").Build();
  buf[26] = 0x20;
  buf[27] = 0xff;
  auto msg = Message::Decode(buf);
  ASSERT_TRUE(msg.has_value());
  EXPECT_EQ(DecodeUsername(*msg->FindValue(AttributeType::kUsername)), "ab");
}

TEST(MessageTest, AttributeViewsAndOffsets) {
  const base::Bytes buf = RawMessage()
                              .AttrText(AttributeType::kUsername, "alice")
                              .Attr(AttributeType::kLifetime, Hex("00000258"))
                              .Build();
  auto msg = Message::Decode(buf);
  ASSERT_TRUE(msg.has_value());
  ASSERT_EQ(msg->attribute_count(), 2u);
  Attribute a = msg->attribute(0);
  EXPECT_EQ(a.offset, 20u);
  EXPECT_EQ(a.value.size(), 5u);
  EXPECT_EQ(a.value.data(), buf.data() + 24);
  Attribute b = msg->attribute(1);
  EXPECT_EQ(b.offset, 32u);
  EXPECT_EQ(DecodeLifetime(b.value), 600u);
  int n = 0;
  for (Attribute x : *msg) {
    EXPECT_FALSE(x.ignored);
    ++n;
  }
  EXPECT_EQ(n, 2);
}

TEST(MessageTest, AttributesAfterIntegrityAreReportedNotCovered) {
  const base::Bytes mi(20, 1);
  const base::Bytes buf = RawMessage()
                              .AttrText(AttributeType::kUsername, "alice")
                              .Attr(AttributeType::kMessageIntegrity, mi)
                              .Attr(AttributeType::kLifetime, Hex("00000000"))
                              .AttrText(AttributeType::kUsername, "mallory")
                              .Attr(0x0077, {})  // unknown, but ignored: no 420
                              .Attr(AttributeType::kMessageIntegritySha256, base::Bytes(32, 2))
                              .Attr(AttributeType::kFingerprint, base::Bytes(4, 3))
                              .Build();
  auto msg = Message::Decode(buf);
  ASSERT_TRUE(msg.has_value());
  ASSERT_EQ(msg->attribute_count(), 7u);
  EXPECT_FALSE(msg->attribute(0).ignored);
  EXPECT_FALSE(msg->attribute(1).ignored);  // MESSAGE-INTEGRITY itself
  EXPECT_TRUE(msg->attribute(2).ignored);
  EXPECT_TRUE(msg->attribute(3).ignored);
  EXPECT_TRUE(msg->attribute(3).duplicate);
  EXPECT_TRUE(msg->attribute(4).ignored);
  EXPECT_FALSE(msg->attribute(5).ignored);  // MI-SHA256 may follow MI
  EXPECT_FALSE(msg->attribute(6).ignored);  // so may FINGERPRINT
  EXPECT_TRUE(msg->has_ignored());
  EXPECT_TRUE(msg->unknown_required().empty());
  EXPECT_FALSE(msg->Has(AttributeType::kLifetime));
  EXPECT_EQ(DecodeUsername(*msg->FindValue(AttributeType::kUsername)), "alice");
  EXPECT_TRUE(msg->has_fingerprint());
}

TEST(MessageTest, UnknownRequiredAreListedOnceInOrder) {
  const base::Bytes buf = RawMessage()
                              .Attr(0x0079, {})
                              .Attr(0x8077, {})  // comprehension-optional: fine
                              .Attr(0x0078, {})
                              .Attr(0x0079, {})
                              .AttrText(AttributeType::kSoftware, "x")
                              .Build();
  auto msg = Message::Decode(buf);
  ASSERT_TRUE(msg.has_value());
  ASSERT_EQ(msg->unknown_required().size(), 2u);
  EXPECT_EQ(msg->unknown_required()[0], 0x0079);
  EXPECT_EQ(msg->unknown_required()[1], 0x0078);
  EXPECT_TRUE(msg->has_duplicates());
}

TEST(MessageTest, ExactlyMaxAttributesDecode) {
  RawMessage m;
  for (size_t i = 0; i < Message::kMaxAttributes; ++i) {
    m.Attr(AttributeType::kDontFragment, {});
  }
  auto msg = Message::Decode(m.Build());
  ASSERT_TRUE(msg.has_value());
  EXPECT_EQ(msg->attribute_count(), Message::kMaxAttributes);
}

TEST(MessageTest, LargestMessageDecodes) {
  // One DATA attribute filling the 16-bit length exactly.
  const base::Bytes data(0xFFFC - 4, 0x5a);
  const base::Bytes buf = RawMessage(0x0016).Attr(AttributeType::kData, data).Build();
  ASSERT_EQ(buf.size(), 20u + 0xFFFC);
  auto msg = Message::Decode(buf);
  ASSERT_TRUE(msg.has_value());
  EXPECT_EQ(msg->FindValue(AttributeType::kData)->size(), data.size());
}

TEST(MessageTest, EveryTruncationOfAValidMessageFailsCleanly) {
  const base::Bytes buf = RawMessage()
                              .AttrText(AttributeType::kUsername, "alice")
                              .Attr(AttributeType::kMessageIntegrity, base::Bytes(20, 1))
                              .Attr(AttributeType::kFingerprint, base::Bytes(4, 2))
                              .Build();
  ASSERT_TRUE(Message::Decode(buf).has_value());
  for (size_t n = 0; n < buf.size(); ++n) {
    auto msg = Message::Decode(base::ByteView(buf).first(n));
    ASSERT_FALSE(msg.has_value()) << n;
    EXPECT_EQ(msg.error(), n < 20 ? DecodeError::kTooShort : DecodeError::kTruncated) << n;
  }
}

TEST(MessageTest, LooksLikeStun) {
  EXPECT_TRUE(LooksLikeStun(RawMessage().Build()));
  EXPECT_FALSE(LooksLikeStun(RawMessage().Cookie(0).Build()));
  EXPECT_FALSE(LooksLikeStun(RawMessage(0x4000).Build()));
  EXPECT_FALSE(LooksLikeStun(base::ByteView(RawMessage().Build()).first(19)));
}

TEST(MessageTest, ErrorTextsAreStatic) {
  for (auto e : {DecodeError::kTooShort, DecodeError::kNotStun, DecodeError::kNoMagicCookie,
                 DecodeError::kBadLength, DecodeError::kTruncated, DecodeError::kAttributeTruncated,
                 DecodeError::kTooManyAttributes, DecodeError::kAttributeAfterFingerprint}) {
    EXPECT_STRNE(DecodeErrorText(e), "unknown decode error");
  }
}

}  // namespace
}  // namespace turnkey::stun
