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
  base::Bytes cookieless = good;
  cookieless[4] = 0;
  bad.push_back(cookieless);
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

}  // namespace
}  // namespace turnkey::relay
