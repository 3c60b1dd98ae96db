// TurnServer authentication: the 401 challenge, TURN REST and static users,
// MD5 and SHA-256 password algorithms, both integrity attributes, nonce
// expiry, secret rotation and the per-source limits on 401/438 answers.
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "relay/turn_server.h"
#include "stun/attributes.h"
#include "stun/integrity.h"
#include "stun/message_builder.h"
#include "tests/relay/turn_test_client.h"

namespace turnkey::relay {
namespace {

using stun::AttributeType;
using stun::Method;
using stun::PasswordAlgorithmId;

class TurnAuthTest : public ::testing::Test, public TurnTestEnv {
 protected:
  void SetUp() override { Start(Options()); }

  TurnTestClient Client(unsigned n, TurnCredentials credentials) {
    return TurnTestClient(*this, Tuple(n), std::move(credentials));
  }

  static std::vector<PasswordAlgorithmId> Algorithms(const StunReply& reply) {
    std::vector<PasswordAlgorithmId> ids;
    auto m = reply.message();
    if (!m) {
      return ids;
    }
    auto value = m->FindValue(AttributeType::kPasswordAlgorithms);
    if (!value) {
      return ids;
    }
    auto list = stun::DecodePasswordAlgorithms(*value);
    if (!list) {
      return ids;
    }
    for (const stun::PasswordAlgorithm& a : list->algorithms()) {
      ids.push_back(a.id);
    }
    return ids;
  }
};

TEST_F(TurnAuthTest, BindingNeedsNoCredentials) {
  TurnTestClient client(*this, Tuple(1, ClientTransport::kTcp), {});
  StunReply reply = client.Unauthenticated(Method::kBinding);
  ASSERT_TRUE(reply.success());
  EXPECT_EQ(reply.XorAddress(AttributeType::kXorMappedAddress), client.tuple().client);
  EXPECT_FALSE(reply.Has(AttributeType::kMessageIntegrity));
  EXPECT_EQ(Requests(MethodLabel::kBinding, 200), 1u);
  EXPECT_EQ(AuthFailures(AuthFailure::kNoCredentials), 0u);
}

TEST_F(TurnAuthTest, ChallengeCarriesRealmNonceAndAlgorithmsButNoIntegrity) {
  TurnTestClient client = Client(1, Rest("alice"));
  StunReply reply = client.Unauthenticated(Method::kAllocate, [](stun::MessageBuilder& b) {
    b.AddRequestedTransport(stun::kTransportUdp);
  });
  ASSERT_EQ(reply.error_code(), 401);
  EXPECT_EQ(reply.Text(AttributeType::kRealm), kRealm);
  const std::string nonce = reply.Text(AttributeType::kNonce);
  EXPECT_EQ(nonce.size(), auth::NonceIssuer::kNonceLength);
  EXPECT_EQ(nonce.rfind("obMatJos2", 0), 0u) << nonce;
  // RFC 8489 section 9.2.4: SHA-256 preferred when every key can be derived.
  EXPECT_EQ(Algorithms(reply), (std::vector<PasswordAlgorithmId>{PasswordAlgorithmId::kSha256,
                                                                 PasswordAlgorithmId::kMd5}));
  EXPECT_FALSE(reply.Has(AttributeType::kMessageIntegrity));
  EXPECT_FALSE(reply.Has(AttributeType::kMessageIntegritySha256));
  EXPECT_FALSE(reply.Has(AttributeType::kXorRelayedAddress));
  auto m = reply.message();
  ASSERT_TRUE(m);
  EXPECT_EQ(stun::VerifyFingerprint(*m), stun::IntegrityResult::kValid);
  // Nothing kept for an unauthenticated request.
  EXPECT_EQ(server->allocation_count(), 0u);
  EXPECT_EQ(io.opened, 0u);
  EXPECT_EQ(Requests(MethodLabel::kAllocate, 401), 1u);
  EXPECT_EQ(AuthFailures(AuthFailure::kNoCredentials), 1u);
}

TEST_F(TurnAuthTest, EveryMethodIsChallengedBeforeAnythingElse) {
  TurnTestClient client = Client(1, Rest("alice"));
  // Without an allocation these would be 437: authentication comes first.
  EXPECT_EQ(client.Unauthenticated(Method::kRefresh).error_code(), 401);
  EXPECT_EQ(client.Unauthenticated(Method::kCreatePermission).error_code(), 401);
  EXPECT_EQ(client.Unauthenticated(Method::kChannelBind).error_code(), 401);
  EXPECT_EQ(Requests(MethodLabel::kRefresh, 401), 1u);
  EXPECT_EQ(Requests(MethodLabel::kCreatePermission, 401), 1u);
  EXPECT_EQ(Requests(MethodLabel::kChannelBind, 401), 1u);
}

TEST_F(TurnAuthTest, ChallengeOffersMd5FirstWithStaticUsers) {
  TurnServerOptions options = Options();
  options.auth.static_users = {StaticUser("carol", "pw")};
  Start(options);
  TurnTestClient client = Client(1, {"carol", "pw"});
  StunReply reply = client.Unauthenticated(Method::kAllocate);
  ASSERT_EQ(reply.error_code(), 401);
  EXPECT_EQ(Algorithms(reply), (std::vector<PasswordAlgorithmId>{PasswordAlgorithmId::kMd5,
                                                                 PasswordAlgorithmId::kSha256}));
}

struct AuthStyle {
  const char* name;
  std::optional<PasswordAlgorithmId> algorithm;
  bool sha1;
  bool sha256;
};

void PrintTo(const AuthStyle& s, std::ostream* os) { *os << s.name; }

class TurnAuthStyleTest : public TurnAuthTest, public ::testing::WithParamInterface<AuthStyle> {};

TEST_P(TurnAuthStyleTest, RestCredentialAllocatesAndTheAnswerVerifies) {
  const AuthStyle& style = GetParam();
  TurnTestClient client = Client(1, Rest("alice"));
  client.set_algorithm(style.algorithm);
  client.set_integrity(style.sha1, style.sha256);
  StunReply reply = client.Allocate();
  ASSERT_TRUE(reply.success()) << reply.error_code();
  EXPECT_TRUE(reply.authenticated());
  // RFC 8489 section 9.2.4, last paragraph: MESSAGE-INTEGRITY-SHA256 when the
  // request named an algorithm, MESSAGE-INTEGRITY when it was processed as
  // MD5 for want of one, whatever integrity the request carried; never both.
  const bool sha256 = style.algorithm.has_value();
  EXPECT_EQ(reply.Has(AttributeType::kMessageIntegritySha256), sha256);
  EXPECT_EQ(reply.Has(AttributeType::kMessageIntegrity), !sha256);
  // It verifies with exactly the key the client derived, not another one.
  auto m = reply.message();
  ASSERT_TRUE(m);
  base::Bytes other = client.Key();
  other[0] ^= 1;
  EXPECT_EQ(sha256 ? stun::VerifyMessageIntegritySha256(*m, other)
                   : stun::VerifyMessageIntegrity(*m, other),
            stun::IntegrityResult::kMismatch);
  EXPECT_EQ(server->allocation_count(), 1u);
  EXPECT_EQ(Requests(MethodLabel::kAllocate, 200), 1u);
}

INSTANTIATE_TEST_SUITE_P(
    Styles, TurnAuthStyleTest,
    ::testing::Values(AuthStyle{"Rfc5389Md5", std::nullopt, true, false},
                      AuthStyle{"Md5Algorithm", PasswordAlgorithmId::kMd5, true, false},
                      AuthStyle{"Sha256", PasswordAlgorithmId::kSha256, false, true},
                      AuthStyle{"Sha256KeySha1Integrity", PasswordAlgorithmId::kSha256, true,
                                false},
                      AuthStyle{"Md5KeySha256Integrity", std::nullopt, false, true},
                      AuthStyle{"BothIntegrities", PasswordAlgorithmId::kSha256, true, true}),
    [](const ::testing::TestParamInfo<AuthStyle>& info) { return info.param.name; });

// RFC 8489 section 14.6: MESSAGE-INTEGRITY-SHA256 is the full 32 bytes
// unless the STUN usage allows truncation, and TURN does not: a shorter
// value, even a correct prefix, would check 128 bits instead of 256.
TEST_F(TurnAuthTest, ATruncatedSha256IntegrityIsRefused) {
  for (size_t length : {16u, 20u, 28u}) {
    SCOPED_TRACE(length);
    TurnTestClient client = Client(static_cast<unsigned>(length), Rest("alice"));
    client.set_algorithm(PasswordAlgorithmId::kSha256);
    client.set_integrity(false, true);
    client.set_sha256_length(length);
    EXPECT_EQ(client.Allocate().error_code(), 401);
  }
  EXPECT_EQ(server->allocation_count(), 0u);
  TurnTestClient full = Client(1, Rest("alice"));
  full.set_algorithm(PasswordAlgorithmId::kSha256);
  full.set_integrity(false, true);
  EXPECT_TRUE(full.Allocate().success());
}

TEST_F(TurnAuthTest, StaticUserAllocatesWithItsMd5Key) {
  TurnServerOptions options = Options();
  options.auth.static_users = {StaticUser("carol", "correct horse")};
  Start(options);
  TurnTestClient client = Client(1, {"carol", "correct horse"});
  StunReply reply = client.Allocate();
  ASSERT_TRUE(reply.success()) << reply.error_code();
  EXPECT_TRUE(reply.authenticated());

  TurnTestClient md5 = Client(2, {"carol", "correct horse"});
  md5.set_algorithm(PasswordAlgorithmId::kMd5);
  EXPECT_TRUE(md5.Allocate().success());

  // Only the MD5 digest is configured: SHA-256 cannot be checked.
  TurnTestClient sha = Client(3, {"carol", "correct horse"});
  sha.set_algorithm(PasswordAlgorithmId::kSha256);
  EXPECT_EQ(sha.Allocate().error_code(), 401);

  TurnTestClient wrong = Client(4, {"carol", "battery staple"});
  EXPECT_EQ(wrong.Allocate().error_code(), 401);
  EXPECT_EQ(AuthFailures(AuthFailure::kBadIntegrity), 2u);
  EXPECT_EQ(server->allocation_count(), 2u);
}

TEST_F(TurnAuthTest, StaticUserWithASha256KeyAllocatesWithEitherAlgorithm) {
  TurnServerOptions options = Options();
  options.auth.static_users = {StaticUser("carol", "correct horse", true),
                               StaticUser("dave", "staple", true)};
  Start(options);
  // Every static user has a SHA-256 key: SHA-256 is offered first again.
  TurnTestClient first = Client(1, {"carol", "correct horse"});
  EXPECT_EQ(
      Algorithms(first.Unauthenticated(Method::kAllocate)),
      (std::vector<PasswordAlgorithmId>{PasswordAlgorithmId::kSha256, PasswordAlgorithmId::kMd5}));

  TurnTestClient sha = Client(2, {"carol", "correct horse"});
  sha.set_algorithm(PasswordAlgorithmId::kSha256);
  StunReply reply = sha.Allocate();
  ASSERT_TRUE(reply.success()) << reply.error_code();
  EXPECT_TRUE(reply.authenticated());
  EXPECT_TRUE(reply.Has(AttributeType::kMessageIntegritySha256));

  TurnTestClient md5 = Client(3, {"dave", "staple"});
  md5.set_algorithm(PasswordAlgorithmId::kMd5);
  EXPECT_TRUE(md5.Allocate().success());
  TurnTestClient rfc5389 = Client(4, {"dave", "staple"});
  EXPECT_TRUE(rfc5389.Allocate().success());

  TurnTestClient wrong = Client(5, {"carol", "battery"});
  wrong.set_algorithm(PasswordAlgorithmId::kSha256);
  EXPECT_EQ(wrong.Allocate().error_code(), 401);
  EXPECT_EQ(server->allocation_count(), 3u);
}

TEST_F(TurnAuthTest, OneStaticUserWithoutASha256KeyPutsMd5First) {
  TurnServerOptions options = Options();
  options.auth.static_users = {StaticUser("carol", "correct horse", true),
                               StaticUser("dave", "staple")};
  Start(options);
  TurnTestClient client = Client(1, {"dave", "staple"});
  EXPECT_EQ(
      Algorithms(client.Unauthenticated(Method::kAllocate)),
      (std::vector<PasswordAlgorithmId>{PasswordAlgorithmId::kMd5, PasswordAlgorithmId::kSha256}));
}

TEST_F(TurnAuthTest, WrongPasswordGets401WithAFreshChallenge) {
  TurnCredentials credentials = Rest("alice");
  credentials.password = "not-the-password";
  TurnTestClient client = Client(1, credentials);
  StunReply reply = client.Allocate();
  ASSERT_EQ(reply.error_code(), 401);
  EXPECT_EQ(reply.Text(AttributeType::kRealm), kRealm);
  EXPECT_FALSE(reply.Text(AttributeType::kNonce).empty());
  EXPECT_EQ(reply.integrity, stun::IntegrityResult::kAbsent);
  EXPECT_EQ(AuthFailures(AuthFailure::kBadIntegrity), 1u);
  EXPECT_EQ(Requests(MethodLabel::kAllocate, 401), 2u);  // the challenge and this
  EXPECT_EQ(server->allocation_count(), 0u);
  EXPECT_EQ(io.opened, 0u);
}

TEST_F(TurnAuthTest, PasswordOfAnotherSecretGets401) {
  TurnTestClient client = Client(1, Rest("alice", 3600, "some-other-secret"));
  EXPECT_EQ(client.Allocate().error_code(), 401);
  EXPECT_EQ(AuthFailures(AuthFailure::kBadIntegrity), 1u);
}

TEST_F(TurnAuthTest, UnknownUserGets401) {
  // Not "<expiry>:<user>" and no static user of that name.
  TurnTestClient client = Client(1, {"alice", "pw"});
  EXPECT_EQ(client.Allocate().error_code(), 401);
  EXPECT_EQ(AuthFailures(AuthFailure::kUnknownUser), 1u);

  // With static users only, TURN REST names are unknown.
  TurnServerOptions options = Options();
  options.auth.secrets.clear();
  options.auth.static_users = {StaticUser("carol", "pw")};
  Start(options);
  TurnTestClient rest = Client(2, Rest("alice"));
  EXPECT_EQ(rest.Allocate().error_code(), 401);
  EXPECT_EQ(AuthFailures(AuthFailure::kUnknownUser), 1u);
}

TEST_F(TurnAuthTest, ExpiredRestUsernameGets401) {
  TurnTestClient past = Client(1, Rest("alice", -1));
  EXPECT_EQ(past.Allocate().error_code(), 401);
  // The expiry instant itself is already too late.
  TurnTestClient now = Client(2, Rest("alice", 0));
  EXPECT_EQ(now.Allocate().error_code(), 401);
  EXPECT_EQ(AuthFailures(AuthFailure::kExpired), 2u);
  TurnTestClient future = Client(3, Rest("alice", 1));
  EXPECT_TRUE(future.Allocate().success());
}

TEST_F(TurnAuthTest, AllocationOutlivesItsCredentialButCannotBeRefreshed) {
  TurnTestClient client = Client(1, Rest("alice", 60));
  StunReply allocate = client.Allocate();
  ASSERT_TRUE(allocate.success());
  ASSERT_TRUE(client.CreatePermission({*base::SocketAddress::ParseIp("8.8.8.8", 53)}).success());
  Advance(std::chrono::seconds(61));
  EXPECT_EQ(client.Refresh(600).error_code(), 401);
  EXPECT_EQ(AuthFailures(AuthFailure::kExpired), 1u);
  // The allocation keeps relaying until its own lifetime ends.
  const uint8_t payload[] = {1, 2, 3};
  client.Send(*base::SocketAddress::ParseIp("8.8.8.8", 53), payload);
  EXPECT_EQ(io.to_peer.size(), 1u);
  EXPECT_EQ(server->allocation_count(), 1u);
  Advance(std::chrono::seconds(600 - 61));
  EXPECT_EQ(server->allocation_count(), 0u);
}

TEST_F(TurnAuthTest, AnExpiredCredentialStillKeepsItsAllocationWorkingAndCanDeleteIt) {
  // Browsers refresh permissions (5 min) and channels (10 min) with the
  // credentials they allocated with: a call longer than the credential
  // must not lose its permissions before the allocation's own end.
  const base::SocketAddress peer = *base::SocketAddress::ParseIp("8.8.8.8", 53);
  TurnTestClient client = Client(1, Rest("alice", 60));
  ASSERT_TRUE(client.Allocate().success());
  Advance(std::chrono::seconds(61));
  EXPECT_TRUE(client.CreatePermission({peer}).success());
  EXPECT_TRUE(client.ChannelBind(0x4000, peer).success());
  EXPECT_EQ(client.Refresh(600).error_code(), 401);  // no longer than its lifetime
  EXPECT_EQ(AuthFailures(AuthFailure::kExpired), 1u);
  // Another 5-tuple, or a wrong password, with the same expired name: 401.
  TurnTestClient stranger = Client(3, Rest("alice", -1));
  EXPECT_EQ(stranger.CreatePermission({peer}).error_code(), 401);
  TurnTestClient forged(*this, Tuple(1), TurnCredentials{client.credentials().username, "wrong"});
  EXPECT_EQ(forged.CreatePermission({peer}).error_code(), 401);
  // And the allocation may be deleted: its port goes back now.
  EXPECT_TRUE(client.Refresh(0).success());
  EXPECT_EQ(server->allocation_count(), 0u);
}

TEST_F(TurnAuthTest, WrongRealmGets401) {
  TurnTestClient client = Client(1, Rest("alice"));
  ASSERT_EQ(client.Unauthenticated(Method::kAllocate).error_code(), 401);
  client.set_realm("elsewhere.example");
  StunReply reply = client.RequestOnce(Method::kAllocate, [](stun::MessageBuilder& b) {
    b.AddRequestedTransport(stun::kTransportUdp);
  });
  EXPECT_EQ(reply.error_code(), 401);
  EXPECT_EQ(AuthFailures(AuthFailure::kWrongRealm), 1u);
  EXPECT_EQ(server->allocation_count(), 0u);
}

TEST_F(TurnAuthTest, IntegrityWithoutNonceIs400) {
  TurnTestClient client = Client(1, Rest("alice"));
  base::Bytes out;
  stun::TransactionId txid{9, 9, 9};
  stun::MessageBuilder b(out, Method::kAllocate, stun::MessageClass::kRequest, txid);
  b.AddRequestedTransport(stun::kTransportUdp);
  b.AddUsername(client.credentials().username);
  b.AddRealm(kRealm);
  const auto key =
      stun::LongTermKeyMd5(client.credentials().username, kRealm, client.credentials().password);
  b.AddMessageIntegrity(key);
  ASSERT_TRUE(b.ok());
  StunReply reply = client.Exchange(out);
  EXPECT_EQ(reply.error_code(), 400);
  EXPECT_EQ(AuthFailures(AuthFailure::kMalformed), 1u);
  EXPECT_EQ(Requests(MethodLabel::kAllocate, 400), 1u);
}

TEST_F(TurnAuthTest, AlteredPasswordAlgorithmsIs400) {
  TurnTestClient client = Client(1, Rest("alice"));
  ASSERT_EQ(client.Unauthenticated(Method::kAllocate).error_code(), 401);
  const std::vector<stun::PasswordAlgorithm> offered = client.offered_algorithms();
  ASSERT_EQ(offered.size(), 2u);
  // A downgrade attempt: the list echoed without SHA-256.
  client.set_offered_algorithms({stun::PasswordAlgorithm{PasswordAlgorithmId::kMd5, {}}});
  client.set_algorithm(PasswordAlgorithmId::kMd5);
  EXPECT_EQ(client.RequestOnce(Method::kAllocate).error_code(), 400);
  // The list in another order.
  client.set_offered_algorithms({stun::PasswordAlgorithm{PasswordAlgorithmId::kMd5, {}},
                                 stun::PasswordAlgorithm{PasswordAlgorithmId::kSha256, {}}});
  EXPECT_EQ(client.RequestOnce(Method::kAllocate).error_code(), 400);
  // An algorithm nobody offered.
  client.set_offered_algorithms(offered);
  client.set_algorithm(static_cast<PasswordAlgorithmId>(3));
  EXPECT_EQ(client.RequestOnce(Method::kAllocate).error_code(), 400);
  // An offered algorithm with parameters the offer did not have (RFC 8489
  // section 9.2.4: it must match an entry of the list).
  client.set_algorithm(PasswordAlgorithmId::kSha256);
  client.set_algorithm_params({1, 2, 3, 4});
  EXPECT_EQ(client.RequestOnce(Method::kAllocate).error_code(), 400);
  EXPECT_EQ(AuthFailures(AuthFailure::kMalformed), 4u);
  EXPECT_EQ(server->allocation_count(), 0u);
}

TEST_F(TurnAuthTest, PasswordAlgorithmWithoutTheListIs400) {
  TurnTestClient client = Client(1, Rest("alice"));
  StunReply reply = client.Request(Method::kAllocate, [](stun::MessageBuilder& b) {
    b.AddRequestedTransport(stun::kTransportUdp);
    b.AddPasswordAlgorithm(PasswordAlgorithmId::kMd5);
  });
  EXPECT_EQ(reply.error_code(), 400);
  EXPECT_EQ(AuthFailures(AuthFailure::kMalformed), 1u);
}

TEST_F(TurnAuthTest, StaleNonceGets438WithAFreshNonceThatWorks) {
  TurnTestClient client = Client(1, Rest("alice", 7200));
  ASSERT_TRUE(client.Allocate([](stun::MessageBuilder& b) { b.AddLifetime(3600); }).success());
  const std::string first = client.nonce();
  // Exactly at the lifetime the nonce is still good.
  clock.Advance(kNonceLifetime);
  ASSERT_TRUE(client.RequestOnce(Method::kRefresh).success());
  clock.Advance(std::chrono::seconds(1));
  StunReply stale = client.RequestOnce(Method::kRefresh);
  ASSERT_EQ(stale.error_code(), 438);
  EXPECT_EQ(stale.Text(AttributeType::kRealm), kRealm);
  EXPECT_NE(stale.Text(AttributeType::kNonce), first);
  EXPECT_EQ(stale.integrity, stun::IntegrityResult::kAbsent);
  EXPECT_EQ(AuthFailures(AuthFailure::kStaleNonce), 1u);
  EXPECT_EQ(Requests(MethodLabel::kRefresh, 438), 1u);
  // RequestOnce learned the fresh nonce from the 438.
  EXPECT_EQ(client.nonce(), stale.Text(AttributeType::kNonce));
  StunReply again = client.RequestOnce(Method::kRefresh);
  EXPECT_TRUE(again.success());
  EXPECT_TRUE(again.authenticated());
}

// RFC 8489 section 9.2.4 checks user and integrity before the nonce: a
// stale nonce with credentials that do not verify is 401, not 438.
TEST_F(TurnAuthTest, StaleNonceWithBadCredentialsIs401) {
  TurnTestClient client = Client(1, Rest("alice", 7200));
  ASSERT_TRUE(client.Allocate([](stun::MessageBuilder& b) { b.AddLifetime(3600); }).success());
  clock.Advance(kNonceLifetime + std::chrono::seconds(1));
  TurnTestClient wrong(*this, client.tuple(), Rest("alice", 7200, "not-the-secret"));
  wrong.set_realm(std::string(kRealm));
  wrong.set_nonce(client.nonce());
  EXPECT_EQ(wrong.RequestOnce(Method::kRefresh).error_code(), 401);
  EXPECT_EQ(AuthFailures(AuthFailure::kBadIntegrity), 1u);
  EXPECT_EQ(AuthFailures(AuthFailure::kStaleNonce), 0u);
  // The owner's credentials with that nonce: 438.
  EXPECT_EQ(client.RequestOnce(Method::kRefresh).error_code(), 438);
}

// USERHASH names no user here (our nonces do not offer username anonymity):
// a USERHASH is "not valid", 401 with a challenge, not a missing USERNAME.
TEST_F(TurnAuthTest, UserhashInsteadOfUsernameIs401) {
  TurnTestClient client = Client(1, Rest("alice"));
  ASSERT_TRUE(client.Allocate().success());
  base::Bytes out;
  stun::MessageBuilder b(out, Method::kRefresh, stun::MessageClass::kRequest,
                         stun::TransactionId{7, 7, 7});
  const uint8_t hash[32] = {1, 2, 3};
  b.AddAttribute(AttributeType::kUserhash, hash);
  b.AddRealm(kRealm);
  b.AddNonce(client.nonce());
  const uint8_t key[16] = {};
  b.AddMessageIntegrity(key);
  ASSERT_TRUE(b.ok());
  StunReply reply = client.Exchange(out);
  EXPECT_EQ(reply.error_code(), 401);
  EXPECT_TRUE(reply.Has(AttributeType::kRealm));
  EXPECT_TRUE(reply.Has(AttributeType::kNonce));
  EXPECT_EQ(AuthFailures(AuthFailure::kUnknownUser), 1u);
}

TEST_F(TurnAuthTest, NonceIsBoundToTheClientAddress) {
  TurnTestClient a = Client(1, Rest("alice"));
  ASSERT_TRUE(a.Allocate().success());
  // Another IP presenting a's nonce: not ours for it.
  TurnTestClient b = Client(2, Rest("alice"));
  b.set_realm(std::string(kRealm));
  b.set_nonce(a.nonce());
  StunReply reply = b.RequestOnce(Method::kAllocate, [](stun::MessageBuilder& m) {
    m.AddRequestedTransport(stun::kTransportUdp);
  });
  EXPECT_EQ(reply.error_code(), 438);
  EXPECT_EQ(AuthFailures(AuthFailure::kInvalidNonce), 1u);
  // Same IP, another port: not ours for it either (RFC 8489 section 9.2.4:
  // the same NONCE only for the same source IP address and port).
  FiveTuple same_ip = a.tuple();
  same_ip.client.set_port(same_ip.client.port() + 1);
  TurnTestClient c(*this, same_ip, Rest("alice"));
  c.set_realm(std::string(kRealm));
  c.set_nonce(a.nonce());
  EXPECT_EQ(
      c.RequestOnce(Method::kAllocate,
                    [](stun::MessageBuilder& m) { m.AddRequestedTransport(stun::kTransportUdp); })
          .error_code(),
      438);
  EXPECT_EQ(AuthFailures(AuthFailure::kInvalidNonce), 2u);
  // Its own nonce works.
  EXPECT_TRUE(c.Allocate().success());
}

TEST_F(TurnAuthTest, ForgedNonceGets438) {
  TurnTestClient client = Client(1, Rest("alice"));
  client.set_realm(std::string(kRealm));
  client.set_nonce("obMatJos2gAAAnot-a-real-nonce-at-all-0000000");
  EXPECT_EQ(client.RequestOnce(Method::kAllocate).error_code(), 438);
  client.set_nonce("x");
  EXPECT_EQ(client.RequestOnce(Method::kAllocate).error_code(), 438);
  EXPECT_EQ(AuthFailures(AuthFailure::kInvalidNonce), 2u);
  // The 438 carried a real nonce, so the helper's retry succeeds.
  EXPECT_TRUE(client.Allocate().success());
}

TEST_F(TurnAuthTest, SecretRotation) {
  TurnServerOptions options = Options();
  options.auth.secrets = {"new-secret", "old-secret"};
  Start(options);
  TurnTestClient old_user = Client(1, Rest("alice", 3600, "old-secret"));
  TurnTestClient new_user = Client(2, Rest("bob", 3600, "new-secret"));
  old_user.set_algorithm(PasswordAlgorithmId::kSha256);
  old_user.set_integrity(false, true);
  ASSERT_TRUE(old_user.Allocate().success());
  ASSERT_TRUE(new_user.Allocate().success());
  const base::SocketAddress peer = *base::SocketAddress::ParseIp("1.1.1.1", 4000);
  ASSERT_TRUE(old_user.CreatePermission({peer}).success());

  // The old secret is retired (SIGHUP).
  options.auth.secrets = {"new-secret"};
  server->SetOptions(options);
  EXPECT_EQ(old_user.Refresh(600).error_code(), 401);
  EXPECT_EQ(AuthFailures(AuthFailure::kBadIntegrity), 1u);
  EXPECT_TRUE(new_user.Refresh(600).success());
  TurnTestClient late = Client(3, Rest("carol", 3600, "old-secret"));
  EXPECT_EQ(late.Allocate().error_code(), 401);
  TurnTestClient fresh = Client(4, Rest("dave", 3600, "new-secret"));
  EXPECT_TRUE(fresh.Allocate().success());
  // What was granted stays: the old allocation still relays.
  const uint8_t payload[] = {7};
  old_user.Send(peer, payload);
  EXPECT_EQ(io.to_peer.size(), 1u);
  EXPECT_EQ(server->allocation_count(), 3u);
}

TEST_F(TurnAuthTest, ChallengesAreRateLimitedPerSource) {
  TurnServerOptions options = Options();
  options.challenge_rate = 1;
  options.challenge_burst = 3;
  Start(options);
  TurnTestClient client = Client(1, Rest("alice"));
  int answered = 0;
  for (int i = 0; i < 5; ++i) {
    if (client.Unauthenticated(Method::kAllocate).received()) {
      ++answered;
    }
  }
  EXPECT_EQ(answered, 3);
  EXPECT_EQ(Dropped(DropReason::kRateLimited), 2u);
  EXPECT_EQ(Requests(MethodLabel::kAllocate, 401), 3u);
  EXPECT_EQ(AuthFailures(AuthFailure::kNoCredentials), 5u);
  // Another port of the same IP shares the bucket; another IP has its own.
  FiveTuple same_ip = client.tuple();
  same_ip.client.set_port(1);
  TurnTestClient neighbour(*this, same_ip, Rest("alice"));
  EXPECT_FALSE(neighbour.Unauthenticated(Method::kAllocate).received());
  TurnTestClient other = Client(2, Rest("bob"));
  EXPECT_TRUE(other.Unauthenticated(Method::kAllocate).received());
  // One token per second comes back.
  clock.Advance(std::chrono::seconds(1));
  EXPECT_TRUE(client.Unauthenticated(Method::kAllocate).received());
  EXPECT_FALSE(client.Unauthenticated(Method::kAllocate).received());
  // Binding is never limited.
  EXPECT_TRUE(client.Unauthenticated(Method::kBinding).success());
}

// A draining host answers a first Allocate with 300 instead of the 401: the
// same per-source limit holds (no amplifier for spoofed UDP), and it is no
// authenticated Allocate, so turnkey_turn_allocations_total does not count it.
TEST_F(TurnAuthTest, RedirectsBeforeTheChallengeAreRateLimitedLikeIt) {
  TurnServerOptions options = Options();
  options.challenge_rate = 1;
  options.challenge_burst = 2;
  options.draining = true;
  options.alternate_servers = {*base::SocketAddress::ParseIpPort("198.51.100.7:3478")};
  Start(options);
  TurnTestClient client = Client(1, Rest("alice"));
  int answered = 0;
  for (int i = 0; i < 4; ++i) {
    StunReply reply = client.Unauthenticated(
        Method::kAllocate, [](stun::MessageBuilder& b) { b.AddRequestedTransport(17); });
    if (reply.received()) {
      EXPECT_EQ(reply.error_code(), 300);
      ++answered;
    }
  }
  EXPECT_EQ(answered, 2);
  EXPECT_EQ(Dropped(DropReason::kRateLimited), 2u);
  EXPECT_EQ(Requests(MethodLabel::kAllocate, 300), 2u);
  EXPECT_EQ(TotalOf(server->counters().allocations), 0u);
}

TEST_F(TurnAuthTest, FailedAuthenticationsAreLimitedHarderButGoodOnesPass) {
  TurnServerOptions options = Options();
  options.failure_rate = 1;
  options.failure_burst = 2;
  Start(options);
  TurnCredentials bad = Rest("alice");
  bad.password = "guess";
  TurnTestClient guesser = Client(1, bad);
  ASSERT_EQ(guesser.Unauthenticated(Method::kAllocate).error_code(), 401);
  int answered = 0;
  for (int i = 0; i < 5; ++i) {
    if (guesser.RequestOnce(Method::kAllocate).received()) {
      ++answered;
    }
  }
  EXPECT_EQ(answered, 2);
  EXPECT_EQ(Dropped(DropReason::kRateLimited), 3u);
  EXPECT_EQ(AuthFailures(AuthFailure::kBadIntegrity), 5u);
  // The right password from the same address is not limited.
  guesser.set_credentials(Rest("alice"));
  EXPECT_TRUE(guesser.Allocate().success());
}

}  // namespace
}  // namespace turnkey::relay
