#include "relay/turn_server.h"

#include <gtest/gtest.h>

#include <vector>

#include "auth/nonce.h"
#include "relay/relay_shared.h"
#include "stun/attributes.h"
#include "stun/integrity.h"
#include "stun/message.h"
#include "stun/message_builder.h"
#include "tests/relay/fake_relay_io.h"

namespace turnkey::relay {
namespace {

class TurnServerTest : public ::testing::Test {
 protected:
  TurnServerTest()
      : nonces_(auth::NonceIssuer::Key{}, std::chrono::seconds(600)),
        server_(0, TurnServerOptions{}, io_, shared_, nonces_, clock_) {
    tuple_.transport = ClientTransport::kUdp;
    tuple_.client = *base::SocketAddress::ParseIp("192.0.2.7", 40000);
    tuple_.server = *base::SocketAddress::ParseIp("198.51.100.1", 3478);
  }

  base::Bytes Binding(bool fingerprint, uint16_t extra_attr = 0) {
    base::Bytes out;
    stun::TransactionId txid{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    stun::MessageBuilder b(out, stun::Method::kBinding, stun::MessageClass::kRequest, txid);
    if (extra_attr != 0) {
      const uint8_t value[4] = {1, 2, 3, 4};
      b.AddAttribute(extra_attr, value);
    }
    if (fingerprint) {
      b.AddFingerprint();
    }
    return out;
  }

  void Feed(const base::Bytes& bytes) { server_.OnClientMessage(clock_.Now(), tuple_, bytes); }

  uint64_t Dropped(DropReason reason) const {
    return server_.counters().dropped[static_cast<size_t>(reason)].Get();
  }

  base::FakeClock clock_;
  FakeRelayIo io_;
  RelayShared shared_;
  auth::NonceIssuer nonces_;
  TurnServer server_;
  FiveTuple tuple_;
};

TEST_F(TurnServerTest, BindingGetsXorMappedAddressAndFingerprint) {
  base::Bytes request = Binding(true);
  Feed(request);
  ASSERT_EQ(io_.to_client.size(), 1u);
  EXPECT_EQ(io_.to_client[0].to, tuple_);
  auto msg = stun::Message::Decode(io_.to_client[0].bytes);
  ASSERT_TRUE(msg);
  EXPECT_EQ(msg->method(), stun::Method::kBinding);
  EXPECT_EQ(msg->message_class(), stun::MessageClass::kSuccessResponse);
  auto xma = msg->FindValue(stun::AttributeType::kXorMappedAddress);
  ASSERT_TRUE(xma);
  EXPECT_EQ(stun::DecodeXorAddress(*xma, msg->transaction_id()), tuple_.client);
  EXPECT_TRUE(msg->has_fingerprint());
  EXPECT_EQ(stun::VerifyFingerprint(*msg), stun::IntegrityResult::kValid);
  EXPECT_FALSE(msg->Has(stun::AttributeType::kSoftware));
  EXPECT_EQ(server_.counters()
                .requests[static_cast<size_t>(MethodLabel::kBinding)][CodeLabelIndex(200)]
                .Get(),
            1u);
}

TEST_F(TurnServerTest, NoFingerprintWhenTheRequestHadNone) {
  Feed(Binding(false));
  ASSERT_EQ(io_.to_client.size(), 1u);
  auto msg = stun::Message::Decode(io_.to_client[0].bytes);
  ASSERT_TRUE(msg);
  EXPECT_FALSE(msg->has_fingerprint());
}

TEST_F(TurnServerTest, Ipv6Client) {
  tuple_.client = *base::SocketAddress::ParseIp("2001:db8::5", 1234);
  Feed(Binding(true));
  ASSERT_EQ(io_.to_client.size(), 1u);
  auto msg = stun::Message::Decode(io_.to_client[0].bytes);
  ASSERT_TRUE(msg);
  auto xma = msg->FindValue(stun::AttributeType::kXorMappedAddress);
  ASSERT_TRUE(xma);
  EXPECT_EQ(stun::DecodeXorAddress(*xma, msg->transaction_id()), tuple_.client);
}

TEST_F(TurnServerTest, SoftwareWhenConfigured) {
  TurnServerOptions options;
  options.software = "turnkey-test";
  server_.SetOptions(options);
  Feed(Binding(false));
  ASSERT_EQ(io_.to_client.size(), 1u);
  auto msg = stun::Message::Decode(io_.to_client[0].bytes);
  ASSERT_TRUE(msg);
  auto software = msg->FindValue(stun::AttributeType::kSoftware);
  ASSERT_TRUE(software);
  EXPECT_EQ(base::AsString(*software), "turnkey-test");
}

TEST_F(TurnServerTest, UnknownComprehensionRequiredGets420) {
  Feed(Binding(true, 0x7ffe));
  ASSERT_EQ(io_.to_client.size(), 1u);
  auto msg = stun::Message::Decode(io_.to_client[0].bytes);
  ASSERT_TRUE(msg);
  EXPECT_EQ(msg->message_class(), stun::MessageClass::kErrorResponse);
  auto code = stun::DecodeErrorCode(*msg->FindValue(stun::AttributeType::kErrorCode));
  ASSERT_TRUE(code);
  EXPECT_EQ(code->code, 420);
  auto unknown = msg->FindValue(stun::AttributeType::kUnknownAttributes);
  ASSERT_TRUE(unknown);
  ASSERT_EQ(unknown->size(), 2u);
  EXPECT_EQ(base::LoadBe16(unknown->data()), 0x7ffe);
  EXPECT_EQ(stun::VerifyFingerprint(*msg), stun::IntegrityResult::kValid);
}

TEST_F(TurnServerTest, UnknownComprehensionOptionalIsIgnored) {
  Feed(Binding(true, 0xfffe));
  ASSERT_EQ(io_.to_client.size(), 1u);
  auto msg = stun::Message::Decode(io_.to_client[0].bytes);
  ASSERT_TRUE(msg);
  EXPECT_EQ(msg->message_class(), stun::MessageClass::kSuccessResponse);
}

TEST_F(TurnServerTest, GarbageGetsNoAnswer) {
  base::Bytes good = Binding(true);
  std::vector<base::Bytes> bad = {
      {},
      {0x00},
      base::Bytes(good.begin(), good.begin() + 19),
      base::Bytes(good.begin(), good.end() - 1),
  };
  base::Bytes cookieless = good;  // an RFC 3489 Binding is answered (below); other methods not
  cookieless[1] = 0x03;
  cookieless[4] = 0;
  bad.push_back(cookieless);
  base::Bytes cookieless_short = Binding(false);
  cookieless_short[4] = 0;
  cookieless_short.push_back(0);  // a length that does not match
  bad.push_back(cookieless_short);
  base::Bytes bad_fingerprint = good;
  bad_fingerprint.back() ^= 1;
  bad.push_back(bad_fingerprint);
  base::Bytes trailing = good;
  trailing.push_back(0);
  bad.push_back(trailing);
  base::Bytes response = Binding(false);
  response[0] = 0x01;  // success class
  response[1] = 0x01;
  bad.push_back(response);
  base::Bytes indication = Binding(false);
  indication[1] = 0x11;  // Binding indication: a keepalive
  bad.push_back(indication);
  bad.push_back({0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4});  // ChannelData, no allocation
  for (const base::Bytes& b : bad) {
    Feed(b);
  }
  EXPECT_TRUE(io_.to_client.empty());
  EXPECT_EQ(Dropped(DropReason::kMalformed) + Dropped(DropReason::kFingerprint) +
                Dropped(DropReason::kUnexpected) + Dropped(DropReason::kNoAllocation),
            bad.size() - 1);  // the Binding indication is a keepalive, not a drop
  EXPECT_EQ(Dropped(DropReason::kFingerprint), 1u);
  EXPECT_EQ(Dropped(DropReason::kNoAllocation), 1u);
  // And it still answers afterwards.
  Feed(good);
  EXPECT_EQ(io_.to_client.size(), 1u);
}

// RFC 8489 section 11.2 (RFC 3489 clients): a Binding request without the
// magic cookie gets MAPPED-ADDRESS, and its own 16 bytes of transaction id
// back, cookie field included.
TEST_F(TurnServerTest, ABindingWithoutTheMagicCookieGetsMappedAddress) {
  base::Bytes request = Binding(false);
  const uint8_t classic[4] = {0xde, 0xad, 0xbe, 0xef};
  std::copy(std::begin(classic), std::end(classic), request.begin() + 4);
  Feed(request);
  ASSERT_EQ(io_.to_client.size(), 1u);
  EXPECT_EQ(io_.to_client[0].to, tuple_);
  const base::Bytes& answer = io_.to_client[0].bytes;
  ASSERT_EQ(answer.size(), 32u);  // header + MAPPED-ADDRESS (IPv4)
  EXPECT_EQ(base::LoadBe16(answer.data()), 0x0101);
  EXPECT_EQ(base::LoadBe16(answer.data() + 2), 12);
  EXPECT_TRUE(std::equal(answer.begin() + 4, answer.begin() + 20, request.begin() + 4));
  EXPECT_EQ(base::LoadBe16(answer.data() + 20), 0x0001);  // MAPPED-ADDRESS
  EXPECT_EQ(base::LoadBe16(answer.data() + 22), 8);
  EXPECT_EQ(stun::DecodeAddress(base::ByteView(answer.data() + 24, 8)), tuple_.client);
  // RFC 3489 is UDP: on a stream (which the cookie frames) it is not answered.
  tuple_.transport = ClientTransport::kTcp;
  Feed(request);
  EXPECT_EQ(io_.to_client.size(), 1u);
}

TEST_F(TurnServerTest, UnservedMethodGets400) {
  base::Bytes out;
  stun::TransactionId txid{};
  stun::MessageBuilder b(out, static_cast<stun::Method>(0x0ff), stun::MessageClass::kRequest, txid);
  Feed(out);
  ASSERT_EQ(io_.to_client.size(), 1u);
  auto msg = stun::Message::Decode(io_.to_client[0].bytes);
  ASSERT_TRUE(msg);
  auto code = stun::DecodeErrorCode(*msg->FindValue(stun::AttributeType::kErrorCode));
  ASSERT_TRUE(code);
  EXPECT_EQ(code->code, 400);
}

// RFC 5780 NAT behavior discovery: one IPv6 listener paired with a second
// address, the core told where each of its four sockets is.
class NatDiscoveryTest : public TurnServerTest {
 protected:
  NatDiscoveryTest() {
    const char* ips[2] = {"2001:db8::1", "2001:db8::2"};
    for (int ip = 0; ip < 2; ++ip) {
      for (int port = 0; port < 2; ++port) {
        addresses_[ip][port] = *base::SocketAddress::ParseIp(ips[ip], port == 0 ? 3478 : 3479);
      }
    }
    TurnServerOptions options;
    options.nat_discovery = {addresses_};
    server_.SetOptions(options);
    tuple_.client = *base::SocketAddress::ParseIp("2001:db8::77", 40000);
  }

  // A Binding request to [ip][port] with `add`'s attributes; the one answer
  // (its bytes and where it went in sent_, valid until the next Ask).
  template <typename Add>
  stun::Message Ask(int ip, int port, Add add) {
    tuple_.server = addresses_[ip][port];
    request_.clear();
    stun::TransactionId txid{9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2};
    stun::MessageBuilder b(request_, stun::Method::kBinding, stun::MessageClass::kRequest, txid);
    add(b);
    b.AddFingerprint();
    io_.to_client.clear();
    Feed(request_);
    EXPECT_EQ(io_.to_client.size(), 1u);
    sent_ = io_.to_client.at(0);
    auto msg = stun::Message::Decode(sent_.bytes);
    EXPECT_TRUE(msg);
    return *msg;
  }

  static uint16_t Code(const stun::Message& msg) {
    auto value = msg.FindValue(stun::AttributeType::kErrorCode);
    return value ? stun::DecodeErrorCode(*value)->code : 0;
  }

  NatDiscoveryAddresses addresses_;
  base::Bytes request_;
  FakeRelayIo::ToClient sent_;
};

TEST_F(NatDiscoveryTest, ChangeRequestPicksTheSourceAndEveryAnswerNamesBoth) {
  for (int ip = 0; ip < 2; ++ip) {
    for (int port = 0; port < 2; ++port) {
      for (int flags = 0; flags < 4; ++flags) {
        const bool change_ip = (flags & 1) != 0;
        const bool change_port = (flags & 2) != 0;
        const stun::Message msg = Ask(ip, port, [&](stun::MessageBuilder& b) {
          if (flags != 0) {
            b.AddChangeRequest(change_ip, change_port);
          }
        });
        SCOPED_TRACE(testing::Message() << ip << port << " flags " << flags);
        ASSERT_EQ(msg.message_class(), stun::MessageClass::kSuccessResponse);
        const base::SocketAddress& want =
            addresses_[change_ip ? 1 - ip : ip][change_port ? 1 - port : port];
        EXPECT_EQ(sent_.to.server, want);
        EXPECT_EQ(sent_.to.client, tuple_.client);
        EXPECT_EQ(stun::DecodeAddress(*msg.FindValue(stun::AttributeType::kResponseOrigin)), want);
        EXPECT_EQ(stun::DecodeAddress(*msg.FindValue(stun::AttributeType::kOtherAddress)),
                  addresses_[1 - ip][1 - port]);
        EXPECT_EQ(stun::DecodeAddress(*msg.FindValue(stun::AttributeType::kMappedAddress)),
                  tuple_.client);
        EXPECT_EQ(stun::DecodeXorAddress(*msg.FindValue(stun::AttributeType::kXorMappedAddress),
                                         msg.transaction_id()),
                  tuple_.client);
        EXPECT_EQ(stun::VerifyFingerprint(msg), stun::IntegrityResult::kValid);
      }
    }
  }
}

TEST_F(NatDiscoveryTest, ResponsePortAndPadding) {
  const stun::Message msg = Ask(0, 0, [](stun::MessageBuilder& b) { b.AddResponsePort(5000); });
  EXPECT_EQ(msg.message_class(), stun::MessageClass::kSuccessResponse);
  EXPECT_EQ(sent_.to.client.port(), 5000);
  EXPECT_EQ(sent_.to.client.IpString(), tuple_.client.IpString());
  // The mapped address is where the request came from, not where it goes.
  EXPECT_EQ(stun::DecodeAddress(*msg.FindValue(stun::AttributeType::kMappedAddress)),
            tuple_.client);

  const std::vector<uint8_t> padding(1400, 0xab);
  const stun::Message padded = Ask(0, 0, [&](stun::MessageBuilder& b) {
    b.AddAttribute(stun::AttributeType::kPadding, padding);
  });
  EXPECT_EQ(sent_.to, tuple_);
  ASSERT_TRUE(padded.FindValue(stun::AttributeType::kPadding));
  EXPECT_EQ(padded.FindValue(stun::AttributeType::kPadding)->size(), 1400u);
  EXPECT_LT(padded.size(), request_.size() + 100);
}

TEST_F(NatDiscoveryTest, BadRequests) {
  const uint8_t padding[4] = {};
  EXPECT_EQ(Code(Ask(0, 0,
                     [&](stun::MessageBuilder& b) {
                       b.AddAttribute(stun::AttributeType::kPadding, padding);
                       b.AddResponsePort(5000);
                     })),
            400);
  EXPECT_EQ(sent_.to, tuple_);
  const uint8_t short_value[2] = {0, 6};
  EXPECT_EQ(Code(Ask(0, 0,
                     [&](stun::MessageBuilder& b) {
                       b.AddAttribute(stun::AttributeType::kChangeRequest, short_value);
                     })),
            400);
  EXPECT_EQ(Code(Ask(0, 0, [](stun::MessageBuilder& b) { b.AddResponsePort(0); })), 400);
  // Another unknown comprehension-required attribute: 420 naming it alone.
  const stun::Message unknown = Ask(1, 1, [](stun::MessageBuilder& b) {
    b.AddChangeRequest(true, true);
    const uint8_t value[4] = {1, 2, 3, 4};
    b.AddAttribute(0x7ffe, value);
  });
  EXPECT_EQ(Code(unknown), 420);
  EXPECT_EQ(sent_.to.server, addresses_[1][1]);
  auto list =
      stun::DecodeUnknownAttributes(*unknown.FindValue(stun::AttributeType::kUnknownAttributes));
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0], 0x7ffe);
}

TEST_F(NatDiscoveryTest, OtherListenersAndTransportsAreNotPaired) {
  // Over TCP, and on a socket no quad names, the attributes are unknown.
  for (ClientTransport transport : {ClientTransport::kTcp, ClientTransport::kUdp}) {
    tuple_.transport = transport;
    tuple_.server = transport == ClientTransport::kTcp
                        ? addresses_[0][0]
                        : *base::SocketAddress::ParseIp("2001:db8::9", 3478);
    request_.clear();
    stun::TransactionId txid{};
    stun::MessageBuilder b(request_, stun::Method::kBinding, stun::MessageClass::kRequest, txid);
    b.AddChangeRequest(true, false);
    io_.to_client.clear();
    Feed(request_);
    ASSERT_EQ(io_.to_client.size(), 1u);
    auto msg = stun::Message::Decode(io_.to_client[0].bytes);
    ASSERT_TRUE(msg);
    EXPECT_EQ(Code(*msg), 420);
    EXPECT_EQ(io_.to_client[0].to, tuple_);
  }
  // A plain Binding there carries no RFC 5780 attributes.
  tuple_.transport = ClientTransport::kUdp;
  Feed(Binding(true));
  auto msg = stun::Message::Decode(io_.to_client.back().bytes);
  ASSERT_TRUE(msg);
  EXPECT_FALSE(msg->Has(stun::AttributeType::kOtherAddress));
  EXPECT_FALSE(msg->Has(stun::AttributeType::kResponseOrigin));
}

}  // namespace
}  // namespace turnkey::relay
