// Helpers for driving TurnServer without sockets.
//
// TurnTestEnv owns a TurnServer with a FakeClock, a recording FakeRelayIo,
// shared port pools and a NonceIssuer. Test fixtures derive from it (and from
// ::testing::Test) and call Start() with the options they need.
//
// TurnTestClient speaks to that server the way a TURN client does: it sends
// a request without credentials, learns REALM, NONCE and PASSWORD-ALGORITHMS
// from the 401 (RFC 8489 section 9.2.3), then repeats the request with
// USERNAME, REALM, NONCE and MESSAGE-INTEGRITY and/or
// MESSAGE-INTEGRITY-SHA256, retrying once after a 438. Every reply's
// integrity is checked with the same long-term key.
//
// Single-threaded; the env must outlive its clients.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth/nonce.h"
#include "auth/turn_rest.h"
#include "base/address.h"
#include "base/bytes.h"
#include "base/clock.h"
#include "relay/relay_shared.h"
#include "relay/turn_server.h"
#include "stun/attributes.h"
#include "stun/channel_data.h"
#include "stun/integrity.h"
#include "stun/message.h"
#include "stun/message_builder.h"
#include "tests/relay/fake_relay_io.h"

namespace turnkey::relay {

struct TurnCredentials {
  std::string username;
  std::string password;
};

// One answer from the server, owning its bytes; empty when none came.
struct StunReply {
  base::Bytes bytes;
  // The reply's MESSAGE-INTEGRITY-SHA256 (or, without it, MESSAGE-INTEGRITY)
  // checked with the client's key; kAbsent when it carries neither.
  stun::IntegrityResult integrity = stun::IntegrityResult::kAbsent;

  bool received() const { return !bytes.empty(); }
  bool authenticated() const { return integrity == stun::IntegrityResult::kValid; }
  // The decoded reply; views into `bytes`, so it must not outlive this.
  std::optional<stun::Message> message() const {
    auto decoded = stun::Message::Decode(bytes);
    if (!decoded) {
      return std::nullopt;
    }
    return *decoded;
  }
  bool success() const {
    auto m = message();
    return m && m->message_class() == stun::MessageClass::kSuccessResponse;
  }
  // The ERROR-CODE of an error response, 0 otherwise.
  uint16_t error_code() const {
    auto m = message();
    if (!m || m->message_class() != stun::MessageClass::kErrorResponse) {
      return 0;
    }
    auto value = m->FindValue(stun::AttributeType::kErrorCode);
    if (!value) {
      return 0;
    }
    auto code = stun::DecodeErrorCode(*value);
    return code ? code->code : 0;
  }
  // Every occurrence of an XOR address attribute, decoded.
  std::vector<base::SocketAddress> XorAddresses(stun::AttributeType type) const {
    std::vector<base::SocketAddress> out;
    auto m = message();
    if (!m) {
      return out;
    }
    for (const stun::Attribute& a : *m) {
      if (a.Is(type)) {
        if (auto address = stun::DecodeXorAddress(a.value, m->transaction_id())) {
          out.push_back(*address);
        }
      }
    }
    return out;
  }
  std::optional<base::SocketAddress> XorAddress(stun::AttributeType type) const {
    auto all = XorAddresses(type);
    if (all.empty()) {
      return std::nullopt;
    }
    return all.front();
  }
  std::optional<uint32_t> lifetime() const {
    auto m = message();
    if (!m) {
      return std::nullopt;
    }
    auto value = m->FindValue(stun::AttributeType::kLifetime);
    return value ? stun::DecodeLifetime(*value) : std::nullopt;
  }
  std::optional<uint64_t> reservation_token() const {
    auto m = message();
    if (!m) {
      return std::nullopt;
    }
    auto value = m->FindValue(stun::AttributeType::kReservationToken);
    return value ? stun::DecodeReservationToken(*value) : std::nullopt;
  }
  // ADDRESS-ERROR-CODE as (family, code).
  std::optional<std::pair<stun::AddressFamily, uint16_t>> address_error() const {
    auto m = message();
    if (!m) {
      return std::nullopt;
    }
    auto value = m->FindValue(stun::AttributeType::kAddressErrorCode);
    if (!value) {
      return std::nullopt;
    }
    auto decoded = stun::DecodeAddressErrorCode(*value);
    if (!decoded) {
      return std::nullopt;
    }
    return std::make_pair(decoded->family, decoded->code);
  }
  bool Has(stun::AttributeType type) const {
    auto m = message();
    return m && m->Has(type);
  }
  // A text attribute (REALM, NONCE, ...) as a string; empty when absent.
  std::string Text(stun::AttributeType type) const {
    auto m = message();
    if (!m) {
      return {};
    }
    auto value = m->FindValue(type);
    return value ? std::string(base::AsString(*value)) : std::string();
  }
};

class TurnTestEnv {
 public:
  static constexpr std::string_view kRealm = "turnkey.test";
  static constexpr std::string_view kSecret = "secret-one";
  static constexpr uint16_t kPortMin = 50000;
  static constexpr uint16_t kPortMax = 50099;
  static constexpr std::chrono::seconds kNonceLifetime{600};

  TurnTestEnv() : nonces(auth::NonceIssuer::Key{7, 7, 7}, kNonceLifetime) {}

  // One TURN REST secret, an IPv4 relay on 192.0.2.1 and, with `ipv6`, an
  // IPv6 relay on 2001:db8::1. Unauthenticated answers are not rate limited
  // (tests of the limiter set their own rates).
  static TurnServerOptions Options(bool ipv6 = false) {
    TurnServerOptions options;
    options.auth.realm = std::string(kRealm);
    options.auth.secrets = {std::string(kSecret)};
    auto v4 = *base::SocketAddress::ParseIp("192.0.2.1");
    options.relay[0] = RelayAddress{v4, v4};
    if (ipv6) {
      auto v6 = *base::SocketAddress::ParseIp("2001:db8::1");
      options.relay[1] = RelayAddress{v6, v6};
    }
    options.challenge_rate = 1e9;
    options.challenge_burst = 1e9;
    options.failure_rate = 1e9;
    options.failure_burst = 1e9;
    return options;
  }

  static StaticUserKey StaticUser(std::string_view name, std::string_view password,
                                  bool with_sha256_key = false) {
    StaticUserKey user{std::string(name), stun::LongTermKeyMd5(name, kRealm, password), {}};
    if (with_sha256_key) {
      user.key_sha256 = stun::LongTermKeySha256(name, kRealm, password);
    }
    return user;
  }

  // (Re)creates the port pools of the families `options` relays and the
  // server. Allocations of a previous server are freed first.
  void Start(const TurnServerOptions& options, PortRange v4 = {kPortMin, kPortMax},
             PortRange v6 = {kPortMin, kPortMax}) {
    server.reset();
    shared.ports[0].reset();
    shared.ports[1].reset();
    if (options.relay[0]) {
      auto pools = SharedPortPools::Create(v4.first, v4.last, 1);
      ASSERT_TRUE(pools);
      shared.ports[0] = std::move(*pools);
    }
    if (options.relay[1]) {
      auto pools = SharedPortPools::Create(v6.first, v6.last, 1);
      ASSERT_TRUE(pools);
      shared.ports[1] = std::move(*pools);
    }
    server = std::make_unique<TurnServer>(0, options, io, shared, nonces, clock);
  }

  // A TURN REST credential for `user` expiring `ttl` seconds from now.
  TurnCredentials Rest(std::string_view user, int64_t ttl = 3600,
                       std::string_view secret = kSecret) const {
    TurnCredentials c;
    c.username = std::to_string(clock.UnixSeconds() + ttl) + ":" + std::string(user);
    c.password = auth::TurnRestPassword(secret, c.username);
    return c;
  }

  // Client `n`'s 5-tuple: 100.64.x.y:40000+n to the listener 192.0.2.10:3478.
  static FiveTuple Tuple(unsigned n, ClientTransport transport = ClientTransport::kUdp) {
    FiveTuple t;
    t.transport = transport;
    t.client = base::SocketAddress::V4(
        {100, 64, static_cast<uint8_t>(n / 250), static_cast<uint8_t>(n % 250 + 1)},
        static_cast<uint16_t>(40000 + n % 20000));
    t.server = *base::SocketAddress::ParseIp("192.0.2.10", 3478);
    return t;
  }

  void Feed(const FiveTuple& from, base::ByteView bytes) {
    server->OnClientMessage(clock.Now(), from, bytes);
  }

  // `peer` sends `data` to the relayed address `relayed`.
  void PeerSends(const base::SocketAddress& relayed, const base::SocketAddress& peer,
                 base::ByteView data) {
    RelayHandle handle = io.HandleFor(relayed);
    ASSERT_NE(handle, 0u) << "no relay socket for " << relayed.ToString();
    server->OnPeerData(clock.Now(), io.sockets[handle].context, peer, data);
  }

  // The relay socket of `relayed` got an ICMP error about a datagram it sent.
  void IcmpArrives(const base::SocketAddress& relayed, const net::IcmpError& icmp) {
    RelayHandle handle = io.HandleFor(relayed);
    ASSERT_NE(handle, 0u) << "no relay socket for " << relayed.ToString();
    server->OnPeerIcmp(clock.Now(), io.sockets[handle].context, icmp);
  }

  // Moves the clock and runs the server's timer.
  void Advance(std::chrono::seconds d) {
    clock.Advance(d);
    server->OnTimer(clock.Now());
  }

  uint64_t Requests(MethodLabel method, uint16_t code) const {
    return server->counters().requests[static_cast<size_t>(method)][CodeLabelIndex(code)].Get();
  }
  // Every cell of a counter table (requests, allocations, ...) added up.
  template <typename Table>
  static uint64_t TotalOf(const Table& table) {
    uint64_t total = 0;
    for (const auto& row : table) {
      for (const CounterCell& cell : row) {
        total += cell.Get();
      }
    }
    return total;
  }
  uint64_t Dropped(DropReason reason) const {
    return server->counters().dropped[static_cast<size_t>(reason)].Get();
  }
  uint64_t AuthFailures(AuthFailure failure) const {
    return server->counters().auth_failures[static_cast<size_t>(failure)].Get();
  }
  uint64_t Relayed(Direction direction) const {
    return server->counters().relayed_packets[static_cast<size_t>(direction)].Get();
  }
  uint64_t RelayedBytes(Direction direction) const {
    return server->counters().relayed_bytes[static_cast<size_t>(direction)].Get();
  }
  uint64_t ActiveAllocations() const { return server->counters().allocations_active.Get(); }
  uint64_t ActivePermissions() const { return server->counters().permissions_active.Get(); }
  uint64_t ActiveChannels() const { return server->counters().channels_active.Get(); }

  base::FakeClock clock;
  FakeRelayIo io;
  RelayShared shared;
  auth::NonceIssuer nonces;
  std::unique_ptr<TurnServer> server;  // declared last: destroyed first
};

class TurnTestClient {
 public:
  using Attrs = std::function<void(stun::MessageBuilder&)>;

  TurnTestClient(TurnTestEnv& env, FiveTuple tuple, TurnCredentials credentials)
      : env_(env), tuple_(tuple), credentials_(std::move(credentials)) {
    seen_ = env_.io.to_client.size();
    txid_base_ = static_cast<uint32_t>(tuple_.client.Hash());
  }

  // nullopt: RFC 5389 style, the MD5 key and no PASSWORD-ALGORITHM(S).
  // Otherwise the offered PASSWORD-ALGORITHMS are echoed and this one chosen.
  void set_algorithm(std::optional<stun::PasswordAlgorithmId> algorithm) { algorithm_ = algorithm; }
  // Parameters sent with the chosen PASSWORD-ALGORITHM (none are defined).
  void set_algorithm_params(base::Bytes params) { algorithm_params_ = std::move(params); }
  // Which integrity attributes requests carry.
  void set_integrity(bool sha1, bool sha256) {
    sha1_ = sha1;
    sha256_ = sha256;
  }
  // Bytes of MESSAGE-INTEGRITY-SHA256 sent (16-32; 32 unless truncated).
  void set_sha256_length(size_t length) { sha256_length_ = length; }
  void set_fingerprint(bool fingerprint) { fingerprint_ = fingerprint; }
  void set_credentials(TurnCredentials credentials) { credentials_ = std::move(credentials); }
  // Replaces the PASSWORD-ALGORITHMS list echoed back (tampering tests).
  void set_offered_algorithms(std::vector<stun::PasswordAlgorithm> list) {
    offered_ = std::move(list);
  }
  void set_nonce(std::string nonce) { nonce_ = std::move(nonce); }
  void set_realm(std::string realm) { realm_ = std::move(realm); }

  const FiveTuple& tuple() const { return tuple_; }
  const TurnCredentials& credentials() const { return credentials_; }
  const std::string& nonce() const { return nonce_; }
  const std::string& realm() const { return realm_; }
  const std::vector<stun::PasswordAlgorithm>& offered_algorithms() const { return offered_; }
  // The last request sent (for retransmissions).
  const base::Bytes& last_request() const { return last_request_; }
  const stun::TransactionId& last_transaction() const { return last_txid_; }

  // The long-term key for the current credentials, realm and algorithm.
  base::Bytes Key() const {
    if (algorithm_ == stun::PasswordAlgorithmId::kSha256) {
      auto k = stun::LongTermKeySha256(credentials_.username, realm_, credentials_.password);
      return base::Bytes(k.begin(), k.end());
    }
    auto k = stun::LongTermKeyMd5(credentials_.username, realm_, credentials_.password);
    return base::Bytes(k.begin(), k.end());
  }

  // `method` with `attrs` and credentials; the first request of a client
  // goes without them to learn REALM and NONCE, and a 438 is retried once
  // with the fresh nonce.
  StunReply Request(stun::Method method, const Attrs& attrs = {}) {
    if (nonce_.empty()) {
      StunReply challenge = Unauthenticated(method, attrs);
      if (!Learn(challenge)) {
        return challenge;
      }
    }
    StunReply reply = RequestOnce(method, attrs);
    if (reply.error_code() == 438 && Learn(reply)) {
      reply = RequestOnce(method, attrs);
    }
    return reply;
  }

  // One request with the credentials and the nonce held now; no retry.
  StunReply RequestOnce(stun::Method method, const Attrs& attrs = {},
                        std::optional<stun::TransactionId> txid = std::nullopt) {
    base::Bytes out;
    stun::MessageBuilder b(out, method, stun::MessageClass::kRequest,
                           txid ? *txid : NextTransaction());
    if (attrs) {
      attrs(b);
    }
    b.AddUsername(credentials_.username);
    b.AddRealm(realm_);
    b.AddNonce(nonce_);
    if (algorithm_) {
      b.AddPasswordAlgorithms(offered_);
      b.AddPasswordAlgorithm(*algorithm_, algorithm_params_);
    }
    const base::Bytes key = Key();
    if (sha1_) {
      b.AddMessageIntegrity(key);
    }
    if (sha256_) {
      b.AddMessageIntegritySha256(key, sha256_length_);
    }
    if (fingerprint_) {
      b.AddFingerprint();
    }
    EXPECT_TRUE(b.ok());
    last_txid_ = b.transaction_id();
    last_request_ = out;
    StunReply reply = Exchange(out);
    if (reply.error_code() == 401 || reply.error_code() == 438) {
      Learn(reply);
    }
    return reply;
  }

  // A request without credentials (the first leg of the handshake); a 401
  // teaches the client REALM, NONCE and PASSWORD-ALGORITHMS.
  StunReply Unauthenticated(stun::Method method, const Attrs& attrs = {}) {
    base::Bytes out;
    stun::MessageBuilder b(out, method, stun::MessageClass::kRequest, NextTransaction());
    if (attrs) {
      attrs(b);
    }
    if (fingerprint_) {
      b.AddFingerprint();
    }
    EXPECT_TRUE(b.ok());
    last_txid_ = b.transaction_id();
    last_request_ = out;
    StunReply reply = Exchange(out);
    Learn(reply);
    return reply;
  }

  // Feeds `bytes` and returns the response the server sent this client.
  StunReply Exchange(base::ByteView bytes) {
    const size_t mark = env_.io.to_client.size();
    env_.Feed(tuple_, bytes);
    StunReply reply;
    for (size_t i = mark; i < env_.io.to_client.size(); ++i) {
      const FakeRelayIo::ToClient& sent = env_.io.to_client[i];
      if (sent.to == tuple_ && IsResponse(sent.bytes)) {
        EXPECT_FALSE(reply.received()) << "more than one response";
        reply.bytes = sent.bytes;
      }
    }
    if (auto m = reply.message()) {
      const base::Bytes key = Key();
      if (m->Has(stun::AttributeType::kMessageIntegritySha256)) {
        reply.integrity = stun::VerifyMessageIntegritySha256(*m, key);
      } else if (m->Has(stun::AttributeType::kMessageIntegrity)) {
        reply.integrity = stun::VerifyMessageIntegrity(*m, key);
      }
    }
    return reply;
  }

  StunReply Allocate(const Attrs& extra = {}) {
    return Request(stun::Method::kAllocate, [&](stun::MessageBuilder& b) {
      b.AddRequestedTransport(stun::kTransportUdp);
      if (extra) {
        extra(b);
      }
    });
  }
  StunReply Refresh(std::optional<uint32_t> lifetime, const Attrs& extra = {}) {
    return Request(stun::Method::kRefresh, [&](stun::MessageBuilder& b) {
      if (lifetime) {
        b.AddLifetime(*lifetime);
      }
      if (extra) {
        extra(b);
      }
    });
  }
  StunReply CreatePermission(const std::vector<base::SocketAddress>& peers) {
    return Request(stun::Method::kCreatePermission, [&](stun::MessageBuilder& b) {
      for (const base::SocketAddress& peer : peers) {
        b.AddXorPeerAddress(peer);
      }
    });
  }
  StunReply ChannelBind(uint16_t number, const base::SocketAddress& peer) {
    return Request(stun::Method::kChannelBind, [&](stun::MessageBuilder& b) {
      b.AddChannelNumber(number);
      b.AddXorPeerAddress(peer);
    });
  }

  // A Send indication (never authenticated, RFC 8656 section 11.1).
  // A Send indication; `extra` may add attributes after DATA.
  void Send(const base::SocketAddress& peer, base::ByteView data,
            const std::function<void(stun::MessageBuilder&)>& extra = {}) {
    base::Bytes out;
    stun::MessageBuilder b(out, stun::Method::kSend, stun::MessageClass::kIndication,
                           NextTransaction());
    b.AddXorPeerAddress(peer);
    b.AddData(data);
    if (extra) {
      extra(b);
    }
    EXPECT_TRUE(b.ok());
    env_.Feed(tuple_, out);
  }
  void SendChannelData(uint16_t channel, base::ByteView data) {
    base::Bytes out;
    stun::AppendChannelData(out, channel, data,
                            tuple_.transport == ClientTransport::kUdp
                                ? stun::ChannelDataPadding::kOptional
                                : stun::ChannelDataPadding::kRequired);
    env_.Feed(tuple_, out);
  }

  // Indications and ChannelData the server sent this client since the last
  // call (responses are what the request calls return).
  std::vector<base::Bytes> TakeReceived() {
    std::vector<base::Bytes> out;
    for (size_t i = seen_; i < env_.io.to_client.size(); ++i) {
      const FakeRelayIo::ToClient& sent = env_.io.to_client[i];
      if (sent.to == tuple_ && !IsResponse(sent.bytes)) {
        out.push_back(sent.bytes);
      }
    }
    seen_ = env_.io.to_client.size();
    return out;
  }

 private:
  static bool IsResponse(const base::Bytes& bytes) {
    auto m = stun::Message::Decode(bytes);
    return m && (m->message_class() == stun::MessageClass::kSuccessResponse ||
                 m->message_class() == stun::MessageClass::kErrorResponse);
  }

  // Takes REALM, NONCE and PASSWORD-ALGORITHMS from a 401 or 438.
  bool Learn(const StunReply& reply) {
    const uint16_t code = reply.error_code();
    if (code != 401 && code != 438) {
      return false;
    }
    auto m = reply.message();
    auto realm = m->FindValue(stun::AttributeType::kRealm);
    auto nonce = m->FindValue(stun::AttributeType::kNonce);
    if (!realm || !nonce) {
      return false;
    }
    realm_ = std::string(base::AsString(*realm));
    nonce_ = std::string(base::AsString(*nonce));
    offered_.clear();
    if (auto list = m->FindValue(stun::AttributeType::kPasswordAlgorithms)) {
      if (auto decoded = stun::DecodePasswordAlgorithms(*list)) {
        for (const stun::PasswordAlgorithm& a : decoded->algorithms()) {
          offered_.push_back(stun::PasswordAlgorithm{a.id, {}});
        }
      }
    }
    return true;
  }

  stun::TransactionId NextTransaction() {
    ++counter_;
    stun::TransactionId id{};
    base::StoreBe32(id.data(), txid_base_);
    base::StoreBe64(id.data() + 4, counter_);
    return id;
  }

  TurnTestEnv& env_;
  FiveTuple tuple_;
  TurnCredentials credentials_;
  std::optional<stun::PasswordAlgorithmId> algorithm_;
  base::Bytes algorithm_params_;
  bool sha1_ = true;
  bool sha256_ = false;
  size_t sha256_length_ = stun::kMessageIntegritySha256Size;
  bool fingerprint_ = true;
  std::string realm_;
  std::string nonce_;
  std::vector<stun::PasswordAlgorithm> offered_;
  base::Bytes last_request_;
  stun::TransactionId last_txid_{};
  size_t seen_ = 0;
  uint32_t txid_base_ = 0;
  uint64_t counter_ = 0;
};

}  // namespace turnkey::relay
