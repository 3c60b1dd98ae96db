// Stateful libFuzzer target for the sans-I/O TURN core (relay::TurnServer).
//
// The input is a program: a sequence of operations read by a small byte
// reader. Each run builds a fresh server (fake clock, recording RelayIo, port
// pools, nonce issuer) so a crash reproduces from its input alone. The
// operations are what a public TURN host sees: raw client datagrams and
// stream bytes (cut by stun::StreamFramer, as the worker does), requests the
// harness signs itself with the long-term credentials of a few users and the
// NONCE the server last sent that client (so the authenticated paths are
// reached, not only the 401), Send indications and ChannelData, peer
// datagrams and ICMP errors on the relay sockets the server opened, clock
// jumps, option reloads, connection closes and failures of the fake I/O.
//
// Invariants the code promises are checked after every operation and trap
// when broken (see Check* below); at the end, the clock jumps far ahead and
// every allocation, socket, port and quota must be back.
//
// Build: -DTURNKEY_FUZZ=ON with clang (tests/fuzz/CMakeLists.txt).
// Run:   ./turn_fuzz -max_total_time=60 /tmp/turn_corpus tests/fuzz/corpus/turn_fuzz
#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth/nonce.h"
#include "auth/turn_rest.h"
#include "base/address.h"
#include "base/bytes.h"
#include "base/cidr.h"
#include "base/clock.h"
#include "net/mmsg_batch.h"
#include "relay/allocation.h"
#include "relay/peer_policy.h"
#include "relay/relay_io.h"
#include "relay/relay_shared.h"
#include "relay/turn_server.h"
#include "stun/attributes.h"
#include "stun/channel_data.h"
#include "stun/constants.h"
#include "stun/integrity.h"
#include "stun/message.h"
#include "stun/message_builder.h"
#include "stun/stream_framer.h"
#include "tests/fuzz/fuzz_reader.h"

namespace turnkey::relay {
namespace {

using stun::AttributeType;

void Check(bool ok) {
  if (!ok) {
    __builtin_trap();
  }
}

using Reader = fuzz::FuzzReader;

// A RelayIo that records what the core sends and traps on misuse of the
// sockets it hands out (a port bound twice, an unknown handle closed).
class FuzzRelayIo : public RelayIo {
 public:
  struct ToClient {
    FiveTuple to;
    base::Bytes bytes;
    bool data = false;  // through SendDataToClient
  };
  struct Socket {
    base::SocketAddress bound;
    void* context = nullptr;
  };

  void SendToClient(const FiveTuple& to, base::ByteView bytes) override {
    to_client.push_back({to, base::Bytes(bytes.begin(), bytes.end()), false});
  }
  bool SendDataToClient(const FiveTuple& to, base::ByteView bytes) override {
    if (client_backlogged) {
      return false;
    }
    to_client.push_back({to, base::Bytes(bytes.begin(), bytes.end()), true});
    return true;
  }
  void AllocationEnded(const FiveTuple& /*tuple*/) override { ++allocations_ended; }

  OpenResult OpenRelay(const base::SocketAddress& bind, void* context) override {
    if (std::optional<OpenResult> refused = Refusal(bind, fail_open)) {
      return *refused;
    }
    const RelayHandle handle = next_handle++;
    sockets[handle] = Socket{bind, context};
    return OpenResult{.handle = handle, .local = bind};
  }
  void CloseRelay(RelayHandle handle) override { Check(sockets.erase(handle) == 1); }
  OpenResult HoldRelay(const base::SocketAddress& bind) override {
    if (std::optional<OpenResult> refused = Refusal(bind, fail_hold)) {
      return *refused;
    }
    const HeldSocket handle = next_handle++;
    held[handle] = bind;
    return OpenResult{.handle = handle, .local = bind};
  }
  RelayHandle AdoptRelay(HeldSocket handle, void* context) override {
    auto it = held.find(handle);
    Check(it != held.end());
    const base::SocketAddress bound = it->second;
    held.erase(it);
    if (fail_open) {
      return 0;
    }
    sockets[handle] = Socket{bound, context};
    return handle;
  }
  void CloseHeld(HeldSocket handle) override { Check(held.erase(handle) == 1); }
  SendOutcome SendToPeer(RelayHandle handle, const base::SocketAddress& peer, base::ByteView data,
                         bool /*dont_fragment*/) override {
    Check(sockets.contains(handle));
    Check(peer.port() != 0);
    // The peer policy holds on every path to a peer, ChannelData included
    // (TurnServer::SetOptions drops what a reload denies).
    Check(policy == nullptr || policy->IsAllowed(peer));
    if (fail_send) {
      return SendOutcome::kRefused;
    }
    ++to_peer;
    to_peer_bytes += data.size();
    if (queue_sends) {
      ++queued;
      queued_bytes += data.size();
      return SendOutcome::kQueued;
    }
    return SendOutcome::kSent;
  }

  // The pools never hand out a port that one of our sockets still binds.
  // What an open or hold of `bind` answers when it does not take place:
  // the port is busy, or the fake was told to fail (`fail`); else nullopt.
  std::optional<OpenResult> Refusal(const base::SocketAddress& bind, bool fail) const {
    CheckPortFree(bind);
    if (busy_ports.contains(bind.port())) {
      return OpenResult{.address_in_use = true};
    }
    if (fail) {
      return OpenResult{};
    }
    return std::nullopt;
  }
  void CheckPortFree(const base::SocketAddress& bind) const {
    for (const auto& [handle, socket] : sockets) {
      Check(socket.bound.family() != bind.family() || socket.bound.port() != bind.port());
    }
    for (const auto& [handle, bound] : held) {
      Check(bound.family() != bind.family() || bound.port() != bind.port());
    }
  }

  const PeerPolicy* policy = nullptr;  // the server's current rules
  std::vector<ToClient> to_client;
  std::map<RelayHandle, Socket> sockets;
  std::map<HeldSocket, base::SocketAddress> held;
  std::set<uint16_t> busy_ports;
  bool client_backlogged = false;
  bool fail_open = false;
  bool fail_hold = false;
  bool fail_send = false;
  bool queue_sends = false;
  RelayHandle next_handle = 1;
  size_t allocations_ended = 0;
  uint64_t to_peer = 0;
  uint64_t to_peer_bytes = 0;
  uint64_t queued = 0;
  uint64_t queued_bytes = 0;
};

constexpr std::string_view kRealm = "turnkey.fuzz";
constexpr std::string_view kSecret = "fuzz-secret";
constexpr uint16_t kPortMin = 50000;
constexpr uint16_t kPortMaxV4 = 50009;
constexpr uint16_t kPortMaxV6 = 50005;
constexpr int64_t kStartUnix = 1'700'000'000;  // FakeClock's default start

base::SocketAddress Ip(std::string_view text, uint16_t port = 0) {
  return *base::SocketAddress::ParseIp(text, port);
}

// One set of credentials the harness can sign with.
struct Credential {
  std::string username;
  std::string password;
  base::Md5Digest md5{};
  base::Sha256Digest sha256{};
};

Credential MakeCredential(std::string username, std::string password) {
  Credential c;
  c.username = std::move(username);
  c.password = std::move(password);
  c.md5 = stun::LongTermKeyMd5(c.username, kRealm, c.password);
  c.sha256 = stun::LongTermKeySha256(c.username, kRealm, c.password);
  return c;
}

// Static user alice (with a SHA-256 key), static user erin (MD5 only, when
// configured), TURN REST bob (long-lived) and carol (expires in two
// minutes), and mallory with a wrong password.
const std::vector<Credential>& Credentials() {
  static const std::vector<Credential> all = [] {
    std::vector<Credential> v;
    v.push_back(MakeCredential("alice", "alice-password"));
    v.push_back(MakeCredential("erin", "erin-password"));
    const std::string bob = std::to_string(kStartUnix + 86400) + ":bob";
    v.push_back(MakeCredential(bob, auth::TurnRestPassword(kSecret, bob)));
    const std::string carol = std::to_string(kStartUnix + 120) + ":carol";
    v.push_back(MakeCredential(carol, auth::TurnRestPassword(kSecret, carol)));
    const std::string mallory = std::to_string(kStartUnix + 86400) + ":mallory";
    v.push_back(MakeCredential(mallory, "guessed"));
    return v;
  }();
  return all;
}

// Peers a request or a datagram may name: public ones of both families, a
// mapped IPv6 form, denied ones (private, loopback, our own relay address).
const std::vector<base::SocketAddress>& Peers() {
  static const std::vector<base::SocketAddress> all = {
      Ip("8.8.8.8", 5000),       Ip("1.1.1.1", 53),        Ip("8.8.4.4", 7000),
      Ip("2606:4700::1111", 53), Ip("2a00:1450::1", 3478), Ip("::ffff:8.8.8.8", 5000),
      Ip("10.0.0.1", 80),        Ip("127.0.0.1", 22),      Ip("192.0.2.1", kPortMin),
      Ip("8.8.8.8", 5001),       Ip("2606:4700::1111", 0), Ip("9.9.9.9", 0),
  };
  return all;
}

struct Client {
  FiveTuple tuple;
  std::string realm;
  std::string nonce;
  base::Bytes algorithms;  // PASSWORD-ALGORITHMS of the last 401/438, raw
  base::Bytes stream;      // stream bytes not framed yet (TCP/TLS)
  std::vector<uint16_t> channels;
};

class Harness {
 public:
  explicit Harness(Reader& in)
      : in_(in), nonces_(auth::NonceIssuer::Key{1, 2, 3}, std::chrono::seconds(600)) {
    const uint8_t config = in_.U8();
    options_ = BaseOptions(config);
    auto v4 = SharedPortPools::Create(kPortMin, kPortMaxV4, 1);
    auto v6 = SharedPortPools::Create(kPortMin, kPortMaxV6, 1);
    Check(v4.has_value() && v6.has_value());
    shared_.ports[0] = std::move(*v4);
    shared_.ports[1] = std::move(*v6);
    server_ = std::make_unique<TurnServer>(0, options_, io_, shared_, nonces_, clock_);
    policy_ = std::make_unique<PeerPolicy>(options_.peers);
    io_.policy = policy_.get();

    const base::SocketAddress udp_listener = Ip("192.0.2.10", 3478);
    const base::SocketAddress discovery_listener = Ip("192.0.2.20", 3478);
    auto add = [&](ClientTransport t, base::SocketAddress client, base::SocketAddress server) {
      Client c;
      c.tuple.transport = t;
      c.tuple.client = client;
      c.tuple.server = server;
      clients_.push_back(std::move(c));
    };
    add(ClientTransport::kUdp, Ip("100.64.0.1", 40000), udp_listener);
    add(ClientTransport::kUdp, Ip("100.64.0.2", 40001), discovery_listener);
    add(ClientTransport::kUdp, Ip("2001:db8:5::1", 40002), Ip("2001:db8::10", 3478));
    add(ClientTransport::kTcp, Ip("100.64.0.3", 40003), udp_listener);
    add(ClientTransport::kTls, Ip("100.64.0.4", 40004), Ip("192.0.2.10", 5349));
    // Same IP as client 0, another port: nonces are bound to the port too.
    add(ClientTransport::kUdp, Ip("100.64.0.1", 40005), udp_listener);
  }

  void Run() {
    for (int ops = 0; ops < 256 && !in_.empty(); ++ops) {
      Step();
      CheckGlobal();
    }
    Finish();
  }

  // How far a run got, for the coverage report (TURN_FUZZ_STATS).
  struct Stats {
    uint64_t allocations = 0;
    uint64_t permissions = 0;
    uint64_t channels = 0;
    uint64_t to_peer = 0;
    uint64_t to_client = 0;
    uint64_t auth_ok = 0;  // non-401/438/400 answers to signed TURN requests
    // Which answers (method x code), drops and auth failures the run saw.
    bool answered[static_cast<size_t>(MethodLabel::kCount)][kCodeLabelCount] = {};
    bool dropped[static_cast<size_t>(DropReason::kCount)] = {};
    bool auth_failed[static_cast<size_t>(AuthFailure::kCount)] = {};
  };
  Stats stats() const {
    Stats s;
    const TurnCounters& c = server_->counters();
    for (const auto& by_transport : c.allocations) {
      s.allocations += by_transport[static_cast<size_t>(AllocationResult::kSuccess)].Get();
    }
    s.permissions = c.requests[static_cast<size_t>(MethodLabel::kCreatePermission)][0].Get();
    s.channels = c.requests[static_cast<size_t>(MethodLabel::kChannelBind)][0].Get();
    s.to_peer = io_.to_peer;
    s.to_client = c.relayed_packets[static_cast<size_t>(Direction::kPeerToClient)].Get();
    s.auth_ok = auth_ok_;
    for (size_t m = 0; m < std::size(s.answered); ++m) {
      for (size_t k = 0; k < kCodeLabelCount; ++k) {
        s.answered[m][k] = c.requests[m][k].Get() != 0;
      }
    }
    for (size_t d = 0; d < std::size(s.dropped); ++d) {
      s.dropped[d] = c.dropped[d].Get() != 0;
    }
    for (size_t a = 0; a < std::size(s.auth_failed); ++a) {
      s.auth_failed[a] = c.auth_failures[a].Get() != 0;
    }
    return s;
  }

 private:
  static TurnServerOptions BaseOptions(uint8_t config) {
    TurnServerOptions o;
    o.auth.realm = std::string(kRealm);
    o.auth.secrets = {std::string(kSecret)};
    o.auth.static_users.push_back(
        StaticUserKey{Credentials()[0].username, Credentials()[0].md5, Credentials()[0].sha256});
    if ((config & 1) != 0) {
      // A static user without a SHA-256 key puts MD5 first in
      // PASSWORD-ALGORITHMS.
      o.auth.static_users.push_back(
          StaticUserKey{Credentials()[1].username, Credentials()[1].md5, std::nullopt});
    }
    if ((config & 2) != 0) {
      o.software = "turnkey-fuzz";
    }
    auto v4 = Ip("192.0.2.1");
    o.relay[0] = RelayAddress{v4, v4};
    if ((config & 4) == 0) {
      auto v6 = Ip("2001:db8::1");
      o.relay[1] = RelayAddress{v6, Ip("2001:db8::2")};
    }
    o.allocations_per_user = 3;
    o.allocations_total = (config & 8) != 0 ? 4 : 0;
    o.permissions_per_allocation = 4;
    o.channels_per_allocation = 3;
    o.challenge_rate = 1e9;
    o.challenge_burst = 1e9;
    if ((config & 16) != 0) {
      o.failure_rate = 1e9;
      o.failure_burst = 1e9;
    }
    if ((config & 32) != 0) {
      o.alternate_servers = {Ip("203.0.113.5", 3478), Ip("2001:db8::5", 3478)};
      o.alternate_tls_servers = {Ip("203.0.113.5", 5349)};
      o.alternate_domain = "turn.example";
    }
    o.peers.own_addresses = {Ip("192.0.2.1"), Ip("2001:db8::1"), Ip("192.0.2.10")};
    o.peers.relay_port_min = kPortMin;
    o.peers.relay_port_max = kPortMaxV4;
    o.nat_discovery.push_back(NatDiscoveryAddresses{{
        {Ip("192.0.2.20", 3478), Ip("192.0.2.20", 3479)},
        {Ip("192.0.2.21", 3478), Ip("192.0.2.21", 3479)},
    }});
    return o;
  }

  Client& PickClient() { return clients_[in_.U8() % clients_.size()]; }

  base::SocketAddress PickPeer() {
    const uint8_t choice = in_.U8();
    const auto& peers = Peers();
    if (choice < 0xF0) {
      return peers[choice % peers.size()];
    }
    // An arbitrary one, IPv4 or IPv6.
    if ((choice & 1) != 0) {
      std::array<uint8_t, 4> ip{};
      for (uint8_t& b : ip) {
        b = in_.U8();
      }
      return base::SocketAddress::V4(ip, in_.U16());
    }
    std::array<uint8_t, 16> ip{};
    for (uint8_t& b : ip) {
      b = in_.U8();
    }
    return base::SocketAddress::V6(ip, in_.U16());
  }

  void Step() {
    switch (in_.U8() % 16) {
      case 0:
        RawDatagram();
        break;
      case 1:
        StreamBytes();
        break;
      case 2:
        CloseConnection();
        break;
      case 3:
      case 4:
        PeerDatagram();
        break;
      case 5:
        PeerIcmp();
        break;
      case 6:
        Advance(std::chrono::milliseconds(in_.U8() * 20));
        break;
      case 7:
        Advance(std::chrono::seconds(in_.U16() % 4000));
        break;
      case 8:
      case 9:
      case 10:
        SignedRequest();
        break;
      case 11:
        SendIndication();
        break;
      case 12:
        ChannelData();
        break;
      case 13:
        Reload();
        break;
      case 14:
        IoKnobs();
        break;
      case 15:
        Unauthenticated();
        break;
    }
  }

  // --- Client traffic ------------------------------------------------------

  // Feeds one client message and checks every answer it drew.
  void Feed(const Client& client, base::ByteView bytes, const Credential* signer = nullptr) {
    const size_t mark = io_.to_client.size();
    server_->OnClientMessage(clock_.Now(), client.tuple, bytes);
    CheckAnswers(client, bytes, mark, signer);
    Learn(mark);
  }

  void RawDatagram() {
    Client& client = PickClient();
    Feed(client, in_.Prefixed(1200));
  }

  // Stream bytes on a TCP/TLS client, framed as the worker frames them; a
  // framing error closes the connection.
  void StreamBytes() {
    Client& client = PickClient();
    if (client.tuple.transport == ClientTransport::kUdp) {
      return;
    }
    base::ByteView bytes = in_.Prefixed(600);
    client.stream.insert(client.stream.end(), bytes.begin(), bytes.end());
    const stun::StreamFramer framer(2048);
    size_t used = 0;
    while (true) {
      const base::ByteView rest = base::ByteView(client.stream).subspan(used);
      const stun::FrameResult r = framer.Next(rest);
      if (r.status == stun::FrameResult::Status::kNeedMore) {
        break;
      }
      if (r.status == stun::FrameResult::Status::kError) {
        Close(client);
        return;
      }
      const base::Bytes frame(rest.begin(), rest.begin() + static_cast<ptrdiff_t>(r.size));
      used += r.size;
      Feed(client, frame);
    }
    client.stream.erase(client.stream.begin(),
                        client.stream.begin() + static_cast<ptrdiff_t>(used));
  }

  void Close(Client& client) {
    client.stream.clear();
    client.channels.clear();
    server_->OnClientClosed(client.tuple);
    Check(!server_->HasAllocation(client.tuple));
  }

  void CloseConnection() {
    Client& client = PickClient();
    if (client.tuple.transport != ClientTransport::kUdp) {
      Close(client);
    }
  }

  void Unauthenticated() {
    Client& client = PickClient();
    base::Bytes out;
    stun::MessageBuilder b(out, PickMethod(), stun::MessageClass::kRequest, NextTransaction());
    AddAttributes(b, client);
    const uint8_t fingerprint = in_.U8();
    if ((fingerprint & 1) != 0) {
      b.AddFingerprint();
    }
    if (!b.ok()) {
      return;
    }
    if ((fingerprint & 3) == 3) {
      out.back() ^= 1;  // a FINGERPRINT that does not match: dropped unanswered
    }
    Feed(client, out);
  }

  stun::Method PickMethod() {
    static constexpr stun::Method kMethods[] = {
        stun::Method::kAllocate,         stun::Method::kRefresh,
        stun::Method::kCreatePermission, stun::Method::kChannelBind,
        stun::Method::kBinding,          stun::Method::kAllocate,
        stun::Method::kCreatePermission, stun::Method::kChannelBind,
        stun::Method::kConnect,
    };
    const uint8_t choice = in_.U8();
    if (choice == 0xFF) {
      return static_cast<stun::Method>(in_.U16() & 0x0FFF);
    }
    return kMethods[choice % std::size(kMethods)];
  }

  // Attributes chosen by the input, before any credentials.
  void AddAttributes(stun::MessageBuilder& b, const Client& client) {
    const size_t count = in_.U8() % 8;
    for (size_t i = 0; i < count; ++i) {
      switch (in_.U8() % 16) {
        case 0:
          b.AddRequestedTransport(in_.Bit() ? stun::kTransportUdp : in_.U8());
          break;
        case 1: {
          const uint8_t kind = in_.U8() % 4;
          b.AddLifetime(kind == 0 ? 0 : kind == 1 ? in_.U16() % 7200 : in_.U32());
          break;
        }
        case 2:
        case 3:
          b.AddXorPeerAddress(PickPeer());
          break;
        case 4:
          b.AddChannelNumber(in_.Bit() ? static_cast<uint16_t>(0x4000 + in_.U8() % 4) : in_.U16());
          break;
        case 5:
          b.AddData(in_.Prefixed(300));
          break;
        case 6:
          b.AddEvenPort(in_.Bit());
          break;
        case 7:
          b.AddReservationToken(in_.Bit() && last_token_ != 0 ? last_token_ : in_.U64());
          break;
        case 8:
          b.AddDontFragment();
          break;
        case 9:
          b.AddRequestedAddressFamily(static_cast<stun::AddressFamily>(in_.Bit() ? 1 : 2));
          break;
        case 10:
          b.AddAdditionalAddressFamily(
              static_cast<stun::AddressFamily>(in_.Bit() ? 2 : in_.U8() % 4));
          break;
        case 11: {
          // A raw attribute of any type.
          const uint16_t type = in_.U16();
          b.AddAttribute(type, in_.Prefixed(64));
          break;
        }
        case 12: {
          // A known TURN or discovery attribute with an arbitrary value.
          static constexpr uint16_t kTypes[] = {0x000C, 0x000D, 0x0012, 0x0013, 0x0017,
                                                0x0018, 0x0019, 0x001A, 0x0022, 0x8000,
                                                0x0003, 0x0027, 0x0026, 0x0020};
          b.AddAttribute(kTypes[in_.U8() % std::size(kTypes)], in_.Prefixed(24));
          break;
        }
        case 13: {
          const bool change_ip = in_.Bit();
          b.AddChangeRequest(change_ip, in_.Bit());
          break;
        }
        case 14:
          b.AddResponsePort(in_.U16());
          break;
        case 15:
          if (!client.channels.empty()) {
            b.AddChannelNumber(client.channels[in_.U8() % client.channels.size()]);
          }
          break;
      }
    }
  }

  // A request the harness signs: method attributes (the ones the method
  // needs when the input asks for them, then arbitrary ones), USERNAME,
  // REALM, NONCE as the client learnt them, PASSWORD-ALGORITHMS and
  // PASSWORD-ALGORITHM sometimes, MESSAGE-INTEGRITY and/or
  // MESSAGE-INTEGRITY-SHA256, FINGERPRINT sometimes.
  void SignedRequest() {
    Client& client = PickClient();
    const Credential& cred = Credentials()[in_.U8() % Credentials().size()];
    const stun::Method method = PickMethod();
    const uint8_t flags = in_.U8();
    if (client.nonce.empty()) {
      // The first leg of the handshake, as a client does it.
      base::Bytes out;
      stun::MessageBuilder b(out, method, stun::MessageClass::kRequest, NextTransaction());
      Feed(client, b.message());
    }
    base::Bytes out;
    stun::MessageBuilder b(out, method, stun::MessageClass::kRequest, NextTransaction());
    if ((flags & 1) != 0) {
      switch (method) {
        case stun::Method::kAllocate:
          b.AddRequestedTransport(stun::kTransportUdp);
          break;
        case stun::Method::kCreatePermission:
          b.AddXorPeerAddress(PickPeer());
          break;
        case stun::Method::kChannelBind:
          b.AddChannelNumber(static_cast<uint16_t>(0x4000 + in_.U8() % 4));
          b.AddXorPeerAddress(PickPeer());
          break;
        default:
          break;
      }
    }
    AddAttributes(b, client);
    b.AddUsername(cred.username);
    b.AddRealm((flags & 2) != 0 ? std::string_view("other.realm") : std::string_view(client.realm));
    // Another client's nonce: ours, but not for this address and port.
    b.AddNonce((flags & 0x80) != 0
                   ? clients_[(&client - clients_.data() + 1) % clients_.size()].nonce
                   : client.nonce);
    // Algorithm negotiation (RFC 8489 section 9.2.4): none (MD5), or the
    // list as the server sent it with MD5 or SHA-256 chosen.
    const uint8_t algorithm = (flags >> 2) % 3;
    base::ByteView key(cred.md5.data(), cred.md5.size());
    if (algorithm != 0 && !client.algorithms.empty()) {
      b.AddAttribute(AttributeType::kPasswordAlgorithms, client.algorithms);
      if (algorithm == 2) {
        b.AddPasswordAlgorithm(stun::PasswordAlgorithmId::kSha256);
        key = base::ByteView(cred.sha256.data(), cred.sha256.size());
      } else {
        b.AddPasswordAlgorithm(stun::PasswordAlgorithmId::kMd5);
      }
    }
    const uint8_t integrity = (flags >> 4) % 3;
    if (integrity != 1) {
      b.AddMessageIntegrity(key);
    }
    if (integrity != 0) {
      b.AddMessageIntegritySha256(key);
    }
    if ((flags & 0x40) != 0) {
      b.AddFingerprint();
    }
    if (!b.ok()) {
      return;
    }
    const size_t mark = io_.to_client.size();
    Feed(client, out, &cred);
    // Remember the channels bound, for ChannelData.
    if (method == stun::Method::kChannelBind) {
      for (size_t i = mark; i < io_.to_client.size(); ++i) {
        auto m = stun::Message::Decode(io_.to_client[i].bytes);
        if (m && m->message_class() == stun::MessageClass::kSuccessResponse) {
          auto request = stun::Message::Decode(out);
          if (auto v = request->FindValue(AttributeType::kChannelNumber)) {
            if (auto n = stun::DecodeChannelNumber(*v); n && client.channels.size() < 8) {
              client.channels.push_back(*n);
            }
          }
        }
      }
    }
  }

  void SendIndication() {
    Client& client = PickClient();
    base::Bytes out;
    stun::MessageBuilder b(out, stun::Method::kSend, stun::MessageClass::kIndication,
                           NextTransaction());
    b.AddXorPeerAddress(PickPeer());
    b.AddData(in_.Prefixed(1000));
    const uint8_t flags = in_.U8();
    if ((flags & 1) != 0) {
      b.AddDontFragment();
    }
    if ((flags & 2) != 0) {
      AddAttributes(b, client);
    }
    if ((flags & 4) != 0) {
      b.AddFingerprint();
    }
    if (b.ok()) {
      Feed(client, out);
    }
  }

  void ChannelData() {
    Client& client = PickClient();
    uint16_t number = 0;
    if (!client.channels.empty() && in_.Bit()) {
      number = client.channels[in_.U8() % client.channels.size()];
    } else {
      number = static_cast<uint16_t>(0x4000 | (in_.U16() & 0x3FFF));
    }
    const base::ByteView data = in_.Prefixed(1000);
    base::Bytes out;
    stun::AppendChannelData(
        out, number, data,
        in_.Bit() ? stun::ChannelDataPadding::kRequired : stun::ChannelDataPadding::kOptional);
    Feed(client, out);
  }

  // Takes REALM, NONCE and PASSWORD-ALGORITHMS from every 401/438 just sent,
  // and RESERVATION-TOKEN from every success.
  void Learn(size_t mark) {
    for (size_t i = mark; i < io_.to_client.size(); ++i) {
      const FuzzRelayIo::ToClient& sent = io_.to_client[i];
      auto m = stun::Message::Decode(sent.bytes);
      if (!m) {
        continue;
      }
      if (auto token = m->FindValue(AttributeType::kReservationToken)) {
        if (auto t = stun::DecodeReservationToken(*token)) {
          last_token_ = *t;
        }
      }
      auto code_value = m->FindValue(AttributeType::kErrorCode);
      auto code = code_value ? stun::DecodeErrorCode(*code_value) : std::nullopt;
      if (!code || (code->code != 401 && code->code != 438)) {
        continue;
      }
      for (Client& c : clients_) {
        if (c.tuple == sent.to) {
          auto realm = m->FindValue(AttributeType::kRealm);
          auto nonce = m->FindValue(AttributeType::kNonce);
          Check(realm.has_value() && nonce.has_value());
          c.realm = std::string(base::AsString(*realm));
          c.nonce = std::string(base::AsString(*nonce));
          c.algorithms.clear();
          if (auto list = m->FindValue(AttributeType::kPasswordAlgorithms)) {
            c.algorithms.assign(list->begin(), list->end());
          }
        }
      }
    }
  }

  // Every answer to a client message: only requests are answered, once, by a
  // response of the same method and transaction to the same client
  // (RFC 5780 RESPONSE-PORT may change its port); 401 and 438 carry REALM
  // and NONCE and no integrity; every other answer to a TURN request that
  // the harness signed carries the integrity the request asked for, valid
  // with the user's key (RFC 8489 section 9.2.4).
  // A Binding request without the magic cookie, well formed (RFC 3489).
  static bool IsClassicBinding(base::ByteView bytes) {
    return bytes.size() >= stun::kHeaderSize && bytes.size() % 4 == 0 &&
           base::LoadBe16(bytes.data()) == 0x0001 &&
           base::LoadBe16(bytes.data() + 2) == bytes.size() - stun::kHeaderSize &&
           base::LoadBe32(bytes.data() + 4) != stun::kMagicCookie;
  }

  void CheckAnswers(const Client& client, base::ByteView bytes, size_t mark,
                    const Credential* signer) {
    const size_t answers = io_.to_client.size() - mark;
    auto request = stun::Message::Decode(bytes);
    const bool is_request = request && request->size() == bytes.size() && request->IsRequest() &&
                            !(request->has_fingerprint() &&
                              stun::VerifyFingerprint(*request) != stun::IntegrityResult::kValid);
    if (!is_request) {
      if (client.tuple.transport == ClientTransport::kUdp && IsClassicBinding(bytes)) {
        // RFC 3489 Binding: MAPPED-ADDRESS, and the request's 16-byte id back.
        Check(answers == 1);
        const FuzzRelayIo::ToClient& sent = io_.to_client[mark];
        Check(!sent.data && sent.to == client.tuple);
        Check(sent.bytes.size() == stun::kHeaderSize + 12 ||
              sent.bytes.size() == stun::kHeaderSize + 24);
        Check(base::LoadBe16(sent.bytes.data()) == 0x0101);
        Check(base::LoadBe16(sent.bytes.data() + 2) == sent.bytes.size() - stun::kHeaderSize);
        Check(std::equal(sent.bytes.begin() + 4, sent.bytes.begin() + 20, bytes.begin() + 4));
        Check(stun::DecodeAddress(base::ByteView(sent.bytes).subspan(24)) == client.tuple.client);
        return;
      }
      Check(answers == 0);
      return;
    }
    Check(answers <= 1);
    if (answers == 0) {
      return;
    }
    const FuzzRelayIo::ToClient& sent = io_.to_client[mark];
    Check(!sent.data);
    Check(sent.to.transport == client.tuple.transport);
    Check(sent.to.client.IpString() == client.tuple.client.IpString());
    auto answer = stun::Message::Decode(sent.bytes);
    Check(answer.has_value() && answer->size() == sent.bytes.size());
    Check(answer->transaction_id() == request->transaction_id());
    Check(answer->method() == request->method());
    const bool success = answer->message_class() == stun::MessageClass::kSuccessResponse;
    Check(success || answer->message_class() == stun::MessageClass::kErrorResponse);
    // FINGERPRINT when the request had one (RFC 8489 section 7.3).
    Check(answer->has_fingerprint() == request->has_fingerprint());
    if (answer->has_fingerprint()) {
      Check(stun::VerifyFingerprint(*answer) == stun::IntegrityResult::kValid);
    }
    uint16_t code = 200;
    if (!success) {
      auto value = answer->FindValue(AttributeType::kErrorCode);
      Check(value.has_value());
      auto decoded = stun::DecodeErrorCode(*value);
      Check(decoded.has_value());
      code = decoded->code;
    }
    const stun::Method method = request->method();
    const bool turn_method =
        method == stun::Method::kAllocate || method == stun::Method::kRefresh ||
        method == stun::Method::kCreatePermission || method == stun::Method::kChannelBind;
    if (code == 401 || code == 438) {
      Check(turn_method);
      Check(answer->Has(AttributeType::kRealm) && answer->Has(AttributeType::kNonce));
      Check(!answer->Has(AttributeType::kMessageIntegrity) &&
            !answer->Has(AttributeType::kMessageIntegritySha256));
      return;
    }
    if (!turn_method) {
      // Binding and unknown methods are never authenticated.
      Check(!answer->Has(AttributeType::kMessageIntegrity) &&
            !answer->Has(AttributeType::kMessageIntegritySha256));
      return;
    }
    if (success) {
      // Only an authenticated request succeeds.
      Check(answer->Has(AttributeType::kMessageIntegrity) ||
            answer->Has(AttributeType::kMessageIntegritySha256));
      if (method == stun::Method::kAllocate) {
        // The allocation exists, with a relayed address in the port range.
        Check(server_->HasAllocation(client.tuple));
        auto relayed = answer->FindValue(AttributeType::kXorRelayedAddress);
        Check(relayed.has_value() && answer->Has(AttributeType::kLifetime));
        auto address = stun::DecodeXorAddress(*relayed, answer->transaction_id());
        Check(address.has_value() && address->port() >= kPortMin && address->port() <= kPortMaxV4);
      }
    }
    if (code == 400 || signer == nullptr) {
      return;  // 400 may come before authentication
    }
    // The request authenticated with the harness' key unless a raw
    // attribute the input added came first and changed who it names.
    for (const stun::Attribute& a : *request) {
      if (a.Is(AttributeType::kUsername)) {
        if (base::AsString(a.value) != signer->username) {
          return;
        }
        break;
      }
    }
    ++auth_ok_;
    // The request's own (first) PASSWORD-ALGORITHMS and PASSWORD-ALGORITHM
    // decide, as they did for the server: SHA-256 chosen means the SHA-256
    // key, and a list present means MESSAGE-INTEGRITY-SHA256 in the answer.
    bool sha256_key = false;
    if (auto chosen = request->FindValue(AttributeType::kPasswordAlgorithm)) {
      auto decoded = stun::DecodePasswordAlgorithm(*chosen);
      sha256_key = decoded && decoded->id == stun::PasswordAlgorithmId::kSha256;
    }
    const base::ByteView key = sha256_key
                                   ? base::ByteView(signer->sha256.data(), signer->sha256.size())
                                   : base::ByteView(signer->md5.data(), signer->md5.size());
    if (request->Has(AttributeType::kPasswordAlgorithms)) {
      Check(stun::VerifyMessageIntegritySha256(*answer, key) == stun::IntegrityResult::kValid);
    } else {
      Check(stun::VerifyMessageIntegrity(*answer, key) == stun::IntegrityResult::kValid);
    }
  }

  // --- Peers and time --------------------------------------------------------

  // A datagram from a peer to one of the open relay sockets: nothing, or one
  // message to the owning allocation's client carrying exactly the data, as
  // ChannelData or as a Data indication from that peer.
  // The context of one of the open relay sockets (the input picks), or null
  // when none is open.
  void* PickRelaySocket() {
    if (io_.sockets.empty()) {
      return nullptr;
    }
    auto it = io_.sockets.begin();
    std::advance(it, in_.U8() % io_.sockets.size());
    return it->second.context;
  }

  void PeerDatagram() {
    void* context = PickRelaySocket();
    if (context == nullptr) {
      return;
    }
    const FiveTuple owner = static_cast<RelayEndpoint*>(context)->owner->tuple();
    const base::SocketAddress peer = PickPeer();
    const base::ByteView data = in_.Prefixed(1400);
    const size_t mark = io_.to_client.size();
    server_->OnPeerData(clock_.Now(), context, peer, data);
    Check(io_.to_client.size() - mark <= 1);
    if (io_.to_client.size() == mark) {
      return;
    }
    const FuzzRelayIo::ToClient& sent = io_.to_client[mark];
    Check(sent.data && sent.to == owner);
    if ((sent.bytes[0] & 0xC0) == 0x40) {
      const bool stream = owner.transport != ClientTransport::kUdp;
      auto cd = stun::DecodeChannelData(sent.bytes, stream ? stun::ChannelDataPadding::kRequired
                                                           : stun::ChannelDataPadding::kOptional);
      Check(cd.has_value() && cd->size == sent.bytes.size());
      Check(std::ranges::equal(cd->data, data));
      return;
    }
    auto m = stun::Message::Decode(sent.bytes);
    Check(m.has_value() && m->method() == stun::Method::kData && m->IsIndication());
    auto from = m->FindValue(AttributeType::kXorPeerAddress);
    auto value = m->FindValue(AttributeType::kData);
    Check(from.has_value() && value.has_value());
    Check(stun::DecodeXorAddress(*from, m->transaction_id()) == peer);
    Check(std::ranges::equal(*value, data));
  }

  void PeerIcmp() {
    void* context = PickRelaySocket();
    if (context == nullptr) {
      return;
    }
    const FiveTuple owner = static_cast<RelayEndpoint*>(context)->owner->tuple();
    net::IcmpError icmp;
    icmp.destination = PickPeer();
    icmp.v6 = icmp.destination.is_v6();
    icmp.type = in_.U8() % 12;
    icmp.code = in_.U8() % 6;
    icmp.info = in_.U16();
    const size_t mark = io_.to_client.size();
    server_->OnPeerIcmp(clock_.Now(), context, icmp);
    Check(io_.to_client.size() - mark <= 1);
    if (io_.to_client.size() == mark) {
      return;
    }
    const FuzzRelayIo::ToClient& sent = io_.to_client[mark];
    Check(sent.data && sent.to == owner);
    auto m = stun::Message::Decode(sent.bytes);
    Check(m.has_value() && m->method() == stun::Method::kData && m->IsIndication());
    Check(m->Has(AttributeType::kIcmp));
  }

  void Advance(base::Duration d) {
    clock_.Advance(d);
    server_->OnTimer(clock_.Now());
  }

  // --- Reloads and I/O failures ----------------------------------------------

  void Reload() {
    const uint8_t flags = in_.U8();
    TurnServerOptions o = options_;
    o.draining = (flags & 1) != 0;
    o.bandwidth_per_allocation = (flags & 2) != 0 ? 500 : 0;
    if ((flags & 4) != 0) {
      o.peers.deny.push_back(*base::ParseCidr("8.8.8.0/24"));
    }
    if ((flags & 8) != 0) {
      o.peers.allow.push_back(*base::ParseCidr("10.0.0.0/8"));
    }
    if ((flags & 16) != 0) {
      o.permissions_per_allocation = 1;
      o.channels_per_allocation = 1;
      o.allocations_per_user = 1;
    }
    if ((flags & 32) != 0) {
      o.auth.nonce_lifetime = std::chrono::seconds(5);
      o.allocation_default = std::chrono::seconds(30);
      o.permission_lifetime = std::chrono::seconds(10);
      o.channel_lifetime = std::chrono::seconds(20);
    }
    policy_ = std::make_unique<PeerPolicy>(o.peers);
    io_.policy = policy_.get();
    server_->SetOptions(std::move(o));
  }

  void IoKnobs() {
    const uint8_t flags = in_.U8();
    io_.client_backlogged = (flags & 1) != 0;
    io_.fail_open = (flags & 2) != 0;
    io_.fail_hold = (flags & 4) != 0;
    io_.fail_send = (flags & 8) != 0;
    if ((flags & 16) != 0 && io_.queue_sends) {
      // The batch is flushed: report what became of the queued datagrams.
      const uint64_t refused = in_.U8() % (io_.queued + 1);
      server_->OnPeerSendsDone(io_.queued - refused, io_.queued_bytes, refused);
      io_.queued = 0;
      io_.queued_bytes = 0;
    }
    io_.queue_sends = (flags & 32) != 0 || io_.queued != 0;
    if ((flags & 64) != 0) {
      const auto port = static_cast<uint16_t>(kPortMin + in_.U8() % 12);
      if (!io_.busy_ports.erase(port)) {
        io_.busy_ports.insert(port);
      }
    }
  }

  // --- Invariants -----------------------------------------------------------

  // One worker: the allocation table, the gauge, the quota and the sockets
  // agree; no gauge went below zero; every relay socket belongs to a live
  // allocation of its family; no pool has handed out more than it has.
  void CheckGlobal() {
    const TurnCounters& c = server_->counters();
    const size_t allocations = server_->allocation_count();
    Check(c.allocations_active.Get() == allocations);
    Check(shared_.quota.total() == allocations);
    Check(c.permissions_active.Get() < (uint64_t{1} << 32));
    Check(c.channels_active.Get() < (uint64_t{1} << 32));
    if (allocations == 0) {
      Check(c.permissions_active.Get() == 0 && c.channels_active.Get() == 0);
    }
    Check(io_.sockets.size() <= 2 * allocations);
    size_t used[2] = {};
    for (const auto& [handle, socket] : io_.sockets) {
      auto* endpoint = static_cast<RelayEndpoint*>(socket.context);
      Check(endpoint->handle == handle);
      Check(server_->HasAllocation(endpoint->owner->tuple()));
      Check(FamilyIndex(socket.bound) == (endpoint == &endpoint->owner->relay(1) ? 1 : 0));
      ++used[FamilyIndex(socket.bound)];
    }
    for (const auto& [handle, bound] : io_.held) {
      ++used[FamilyIndex(bound)];
    }
    for (int f = 0; f < 2; ++f) {
      const SharedPortPools& pools = *shared_.ports[f];
      Check(pools.free_count() <= pools.capacity());
      Check(pools.capacity() - pools.free_count() >= used[f]);
    }
  }

  // Far in the future everything has expired: no allocation, socket,
  // reservation or quota is left, and every port is free again. Then the
  // server goes and the same holds.
  void Finish() {
    io_.busy_ports.clear();
    Advance(std::chrono::hours(24 * 30));
    CheckGlobal();
    Check(server_->allocation_count() == 0);
    Check(io_.sockets.empty() && io_.held.empty());
    for (const auto& pools : shared_.ports) {
      Check(pools->free_count() == pools->capacity());
    }
    stats_ = stats();
    server_.reset();
    Check(io_.sockets.empty() && io_.held.empty());
    Check(shared_.quota.total() == 0);
  }

 public:
  Stats final_stats() const { return stats_; }

 private:
  stun::TransactionId NextTransaction() {
    stun::TransactionId id{};
    // Mostly fresh ids; sometimes the previous one again (a retransmission).
    if (in_.U8() < 0xF0) {
      ++txid_counter_;
    }
    base::StoreBe64(id.data() + 4, txid_counter_);
    return id;
  }

  Reader& in_;
  base::FakeClock clock_;
  auth::NonceIssuer nonces_;
  RelayShared shared_;
  FuzzRelayIo io_;
  TurnServerOptions options_;
  std::unique_ptr<PeerPolicy> policy_;
  std::unique_ptr<TurnServer> server_;
  std::vector<Client> clients_;
  uint64_t last_token_ = 0;
  uint64_t txid_counter_ = 0;
  uint64_t auth_ok_ = 0;
  Stats stats_;
};

}  // namespace
}  // namespace turnkey::relay

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  turnkey::relay::Reader in(data, size);
  turnkey::relay::Harness harness(in);
  harness.Run();
#ifdef TURN_FUZZ_STATS
  // Coverage report for a corpus run (-runs=0 or -max_total_time): how many
  // inputs reached each authenticated path.
  static uint64_t runs, alloc, perm, chan, to_peer, to_client, auth_ok;
  static turnkey::relay::Harness::Stats seen;
  static const bool registered = [] {
    // At exit: the answers, drops and auth failures no input reached.
    std::atexit([] {
      using namespace turnkey::relay;
      fprintf(stderr,
              "turn_fuzz final: runs=%lu allocate=%lu permission=%lu channel=%lu to_peer=%lu "
              "to_client=%lu auth_ok=%lu\n",
              runs, alloc, perm, chan, to_peer, to_client, auth_ok);
      for (size_t m = 0; m < std::size(seen.answered); ++m) {
        for (size_t k = 0; k < kCodeLabelCount; ++k) {
          if (!seen.answered[m][k]) {
            fprintf(stderr, "turn_fuzz never: %s %s\n",
                    MethodLabelName(static_cast<MethodLabel>(m)), CodeLabelName(k));
          }
        }
      }
      for (size_t d = 0; d < std::size(seen.dropped); ++d) {
        if (!seen.dropped[d]) {
          fprintf(stderr, "turn_fuzz never dropped: %s\n",
                  DropReasonName(static_cast<DropReason>(d)));
        }
      }
      for (size_t a = 0; a < std::size(seen.auth_failed); ++a) {
        if (!seen.auth_failed[a]) {
          fprintf(stderr, "turn_fuzz never auth failure: %s\n",
                  AuthFailureName(static_cast<AuthFailure>(a)));
        }
      }
    });
    return true;
  }();
  (void)registered;
  const auto s = harness.final_stats();
  for (size_t m = 0; m < std::size(seen.answered); ++m) {
    for (size_t k = 0; k < turnkey::relay::kCodeLabelCount; ++k) {
      seen.answered[m][k] |= s.answered[m][k];
    }
  }
  for (size_t d = 0; d < std::size(seen.dropped); ++d) {
    seen.dropped[d] |= s.dropped[d];
  }
  for (size_t a = 0; a < std::size(seen.auth_failed); ++a) {
    seen.auth_failed[a] |= s.auth_failed[a];
  }
  ++runs;
  alloc += s.allocations > 0;
  perm += s.permissions > 0;
  chan += s.channels > 0;
  to_peer += s.to_peer > 0;
  to_client += s.to_client > 0;
  auth_ok += s.auth_ok > 0;
  if ((runs & (runs - 1)) == 0) {
    fprintf(stderr,
            "turn_fuzz stats: runs=%lu allocate=%lu permission=%lu channel=%lu to_peer=%lu "
            "to_client=%lu auth_ok=%lu\n",
            runs, alloc, perm, chan, to_peer, to_client, auth_ok);
  }
#endif
  return 0;
}
