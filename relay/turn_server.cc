#include "relay/turn_server.h"

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "base/crypto.h"
#include "base/log.h"
#include "stun/attributes.h"
#include "stun/channel_data.h"
#include "stun/integrity.h"
#include "stun/message.h"
#include "stun/message_builder.h"

namespace turnkey::relay {

const char* ClientTransportName(ClientTransport transport) {
  switch (transport) {
    case ClientTransport::kUdp:
      return "udp";
    case ClientTransport::kTcp:
      return "tcp";
    case ClientTransport::kTls:
      return "tls";
    case ClientTransport::kDtls:
      return "dtls";
  }
  return "udp";
}

namespace {

MethodLabel LabelOf(stun::Method method) {
  switch (method) {
    case stun::Method::kBinding:
      return MethodLabel::kBinding;
    case stun::Method::kAllocate:
      return MethodLabel::kAllocate;
    case stun::Method::kRefresh:
      return MethodLabel::kRefresh;
    case stun::Method::kCreatePermission:
      return MethodLabel::kCreatePermission;
    case stun::Method::kChannelBind:
      return MethodLabel::kChannelBind;
    default:
      return MethodLabel::kOther;
  }
}

// TCP and TLS carry a byte stream (ChannelData padded, RFC 8656 section
// 12.5); UDP and DTLS carry datagrams.
bool IsStream(ClientTransport t) {
  return t == ClientTransport::kTcp || t == ClientTransport::kTls;
}

// TLS and DTLS: alternates and ALTERNATE-DOMAIN for secure transports.
bool IsSecure(ClientTransport t) {
  return t == ClientTransport::kTls || t == ClientTransport::kDtls;
}

}  // namespace

TurnServer::TurnServer(unsigned worker_index, TurnServerOptions options, RelayIo& io,
                       RelayShared& shared, const auth::NonceIssuer& nonces,
                       const base::Clock& clock)
    : worker_index_(worker_index),
      io_(io),
      shared_(shared),
      nonces_(nonces),
      clock_(clock),
      challenge_limiter_(options.challenge_rate, options.challenge_burst, 4096),
      failure_limiter_(options.failure_rate, options.failure_burst, 4096) {
  out_.reserve(2048);
  SetOptions(std::move(options));
}

TurnServer::~TurnServer() {
  while (!allocations_.empty()) {
    DeleteAllocation(allocations_.begin());
  }
  // The reservations this worker made end with it, and so do the sockets
  // holding their ports.
  ExpireReservations(base::MonoTime::max());
}

void TurnServer::ExpireReservations(base::MonoTime now) {
  for (int f = 0; f < 2; ++f) {
    if (shared_.ports[f]) {
      shared_.ports[f]->ExpireReservations(worker_index_, now, &released_);
    }
  }
  for (HeldSocket held : released_) {
    io_.CloseHeld(held);
  }
  released_.clear();
}

void TurnServer::SetOptions(TurnServerOptions options) {
  options_ = std::move(options);
  authenticator_ = std::make_unique<TurnAuthenticator>(options_.auth, nonces_);
  policy_ = std::make_unique<PeerPolicy>(options_.peers);
  // New peer rules apply to what exists too: permissions and channels to a
  // peer that is now denied go at once, so ChannelData (which does not ask
  // the policy per packet) stops with Send.
  for (auto& [tuple, allocation] : allocations_) {
    size_t permissions = 0;
    size_t channels = 0;
    allocation->RemoveDenied(
        [this](const base::SocketAddress& peer) {
          // Permissions carry no port (0); channels do.
          return peer.port() == 0 ? !policy_->IsAllowedOnSomePort(peer) : !policy_->IsAllowed(peer);
        },
        &permissions, &channels);
    counters_.permissions_active.Sub(permissions);
    counters_.channels_active.Sub(channels);
    // The bandwidth cap too: raising, lowering or removing it is what an
    // operator reloads for, most of all for the allocations that exist.
    allocation->to_peer.SetRate(options_.bandwidth_per_allocation);
    allocation->to_client.SetRate(options_.bandwidth_per_allocation);
  }
}

void TurnServer::Count(MethodLabel method, uint16_t code) {
  counters_.requests[static_cast<size_t>(method)][CodeLabelIndex(code)].Add();
}

// ---------------------------------------------------------------------------
// Dispatch

void TurnServer::OnClientMessage(base::MonoTime now, const FiveTuple& from, base::ByteView data) {
  if (!data.empty() && (data[0] & 0xC0) == 0x40) {
    HandleChannelData(now, from, data);
    return;
  }
  auto decoded = stun::Message::Decode(data);
  if (!decoded && decoded.error() == stun::DecodeError::kNoMagicCookie) {
    HandleClassicBinding(from, data);
    return;
  }
  // A datagram carries exactly one message (RFC 8489 section 6.2.1); trailing
  // bytes mean it is not one of ours.
  if (!decoded || decoded->size() != data.size()) {
    Drop(DropReason::kMalformed);
    return;
  }
  const stun::Message& msg = *decoded;
  // RFC 8489 section 7.3: a FINGERPRINT that does not match means the packet
  // is not STUN (or was damaged): discard silently.
  if (msg.has_fingerprint() && stun::VerifyFingerprint(msg) != stun::IntegrityResult::kValid) {
    Drop(DropReason::kFingerprint);
    return;
  }
  if (msg.IsIndication()) {
    if (!msg.unknown_required().empty()) {
      // RFC 8489 section 6.3.3: an indication with unknown
      // comprehension-required attributes is discarded, not acted on.
      Drop(DropReason::kUnexpected);
      return;
    }
    if (msg.method() == stun::Method::kSend) {
      HandleSend(now, from, msg);
    } else if (msg.method() != stun::Method::kBinding) {
      // Binding indications are keepalives (RFC 8489 section 6.3.2).
      Drop(DropReason::kUnexpected);
    }
    return;
  }
  if (!msg.IsRequest()) {
    Drop(DropReason::kUnexpected);
    return;
  }
  HandleRequest(now, from, msg);
}

void TurnServer::HandleRequest(base::MonoTime now, const FiveTuple& from,
                               const stun::Message& request) {
  const MethodLabel method = LabelOf(request.method());
  // RFC 8489 section 6.3: unknown comprehension-required attributes are
  // looked for once the authentication checks are done, and get 420 with
  // UNKNOWN-ATTRIBUTES. Binding needs no authentication; the TURN methods'
  // 420 comes after it and carries MESSAGE-INTEGRITY like every answer to
  // an authenticated request (section 9.2.4).
  if (method == MethodLabel::kBinding) {
    if (HandleDiscoveryBinding(from, request)) {
      return;
    }
    if (!request.unknown_required().empty()) {
      SendError(from, request, 420, nullptr, method);
      return;
    }
    HandleBinding(from, request);
    return;
  }
  if (method == MethodLabel::kOther) {
    // RFC 6062 (TCP relays) and anything unknown: not served.
    SendError(from, request, 400, nullptr, method, "Unsupported method");
    return;
  }

  AuthResult auth = authenticator_->Authenticate(request, from.client, clock_.UnixSeconds());
  if (auth.expired_but_verified && KeepsAllocationGoing(now, from, request, method, auth)) {
    // DESIGN: an expired credential is refused, but the allocation made
    // with it keeps working until its own lifetime ends: its permissions
    // and channels may be refreshed (browsers refresh permissions every
    // 5 minutes, channels every 10, with the credentials they allocated
    // with), and it may be deleted. Its lifetime is not extended.
    auth.failure = AuthFailure::kNone;
    auth.error_code = 0;
    auth.expired_but_verified = false;
  }
  if (!auth.ok()) {
    // A new client's first Allocate (no credentials yet) while this host
    // takes no new allocations: sent to an alternate before the challenge
    // (RFC 8489 section 10 lets a 300 go unauthenticated). WebRTC's client
    // (libwebrtc) redirected only after authenticating brings this host's
    // realm and nonce to the alternate, which refuses them (401, 438), and
    // it gives up; redirected now, it meets the alternate's own challenge.
    // Like the challenge it replaces: limited per source (a spoofed flood
    // must not make this host an amplifier), and not an authenticated
    // Allocate, so only turnkey_turn_requests_total counts it.
    if (method == MethodLabel::kAllocate && auth.failure == AuthFailure::kNoCredentials &&
        TakesNoNewAllocations() && FindAllocation(from, now) == nullptr) {
      if (const base::SocketAddress* alternate = NextAlternate(from)) {
        if (!challenge_limiter_.Allow(from.client, now)) {
          Drop(DropReason::kRateLimited);
          return;
        }
        SendTryAlternate(from, request, nullptr, method, *alternate);
        return;
      }
    }
    SendAuthError(now, from, request, auth, method);
    return;
  }
  if (!request.unknown_required().empty()) {
    if (method == MethodLabel::kAllocate) {
      CountAllocationFailure(from.transport, 420);  // authenticated, so counted
    }
    SendError(from, request, 420, &auth, method);
    return;
  }

  Allocation* allocation = FindAllocation(from, now);
  if (method == MethodLabel::kAllocate) {
    HandleAllocate(now, from, request, auth, allocation);
    return;
  }
  if (allocation == nullptr) {
    SendError(from, request, 437, &auth, method);
    return;
  }
  // RFC 8656 section 5: every request on an allocation must use the
  // credentials that created it.
  if (allocation->username() != auth.username) {
    SendError(from, request, 441, &auth, method);
    return;
  }
  switch (method) {
    case MethodLabel::kRefresh:
      HandleRefresh(now, from, request, auth, allocation);
      break;
    case MethodLabel::kCreatePermission:
      HandleCreatePermission(now, from, request, auth, *allocation);
      break;
    case MethodLabel::kChannelBind:
      HandleChannelBind(now, from, request, auth, *allocation);
      break;
    default:
      break;
  }
}

bool TurnServer::KeepsAllocationGoing(base::MonoTime now, const FiveTuple& from,
                                      const stun::Message& request, MethodLabel method,
                                      const AuthResult& auth) {
  if (method != MethodLabel::kCreatePermission && method != MethodLabel::kChannelBind &&
      method != MethodLabel::kRefresh) {
    return false;
  }
  Allocation* allocation = FindAllocation(from, now);
  if (allocation == nullptr || allocation->username() != auth.username) {
    return false;
  }
  if (method == MethodLabel::kRefresh) {
    // Only a delete (LIFETIME 0): a refresh would outlive the credential.
    auto value = request.FindValue(stun::AttributeType::kLifetime);
    std::optional<uint32_t> lifetime = value ? stun::DecodeLifetime(*value) : std::nullopt;
    return lifetime == 0u;
  }
  return true;
}

void TurnServer::HandleBinding(const FiveTuple& from, const stun::Message& request) {
  // RFC 8489 section 6.3.1.1: the success response carries the client's
  // transport address as XOR-MAPPED-ADDRESS.
  SendSuccess(from, request, nullptr, MethodLabel::kBinding,
              [&from](stun::MessageBuilder& b) { b.AddXorMappedAddress(from.client); });
}

void TurnServer::HandleClassicBinding(const FiveTuple& from, base::ByteView data) {
  // Header: type, length, then 16 bytes of transaction id where RFC 8489 has
  // the cookie and 12. Only a well-formed Binding request over UDP (RFC 3489
  // is UDP; streams are framed by the cookie) is answered, with
  // nothing but MAPPED-ADDRESS: no integrity, no FINGERPRINT (both came
  // with the cookie), the same length as the other answers to Binding.
  constexpr uint16_t kBindingRequest = 0x0001;
  if (from.transport != ClientTransport::kUdp || data.size() < stun::kHeaderSize ||
      base::LoadBe16(data.data()) != kBindingRequest ||
      base::LoadBe16(data.data() + 2) != data.size() - stun::kHeaderSize || data.size() % 4 != 0) {
    Drop(DropReason::kMalformed);
    return;
  }
  stun::TransactionId id{};
  std::copy_n(data.data() + 8, id.size(), id.begin());
  out_.clear();
  stun::MessageBuilder b(out_, stun::Method::kBinding, stun::MessageClass::kSuccessResponse, id);
  b.AddMappedAddress(from.client);
  if (!b.ok()) {
    return;
  }
  std::copy_n(data.data() + 4, 4, out_.begin() + 4);  // the client's, not our cookie
  Count(MethodLabel::kBinding, 200);
  io_.SendToClient(from, b.message());
}

bool TurnServer::HandleDiscoveryBinding(const FiveTuple& from, const stun::Message& request) {
  if (from.transport != ClientTransport::kUdp) {
    return false;
  }
  const NatDiscoveryAddresses* found = nullptr;
  int ip = 0;
  int port = 0;
  for (const NatDiscoveryAddresses& quad : options_.nat_discovery) {
    for (int i = 0; i < 4 && found == nullptr; ++i) {
      if (quad[i / 2][i % 2] == from.server) {
        found = &quad;
        ip = i / 2;
        port = i % 2;
      }
    }
  }
  if (found == nullptr) {
    return false;
  }
  const NatDiscoveryAddresses& addresses = *found;
  constexpr MethodLabel kMethod = MethodLabel::kBinding;
  // CHANGE-REQUEST, RESPONSE-PORT and PADDING are understood here; any other
  // unknown comprehension-required attribute still gets 420, naming only
  // those.
  std::array<uint16_t, stun::Message::kMaxAttributes> unknown{};
  size_t unknown_count = 0;
  for (uint16_t type : request.unknown_required()) {
    if (!stun::IsDiscoveryAttribute(type)) {
      unknown[unknown_count++] = type;
    }
  }
  if (unknown_count > 0) {
    out_.clear();
    auto b = stun::MessageBuilder::UnknownAttributesResponse(
        out_, request, std::span<const uint16_t>(unknown.data(), unknown_count));
    Deliver(from, b, request, nullptr, kMethod, 420);
    return true;
  }
  stun::ChangeRequest change;
  if (auto value = request.FindValue(stun::AttributeType::kChangeRequest)) {
    auto decoded = stun::DecodeChangeRequest(*value);
    if (!decoded) {
      SendError(from, request, 400, nullptr, kMethod, "Malformed CHANGE-REQUEST");
      return true;
    }
    change = *decoded;
  }
  std::optional<uint16_t> response_port;
  if (auto value = request.FindValue(stun::AttributeType::kResponsePort)) {
    response_port = stun::DecodeResponsePort(*value);
    if (!response_port || *response_port == 0) {
      SendError(from, request, 400, nullptr, kMethod, "Malformed RESPONSE-PORT");
      return true;
    }
  }
  const std::optional<base::ByteView> padding = request.FindValue(stun::AttributeType::kPadding);
  if (padding && response_port) {
    // RFC 5780 sections 6.1 and 10: both together would aim a large answer
    // at another port of the sender.
    SendError(from, request, 400, nullptr, kMethod, "PADDING with RESPONSE-PORT");
    return true;
  }
  // Table 1 of RFC 5780: the answer leaves from the other IP and/or port as
  // asked, and goes to the request's source (its RESPONSE-PORT if given).
  FiveTuple to = from;
  to.server = addresses[change.change_ip ? 1 - ip : ip][change.change_port ? 1 - port : port];
  if (response_port) {
    to.client.set_port(*response_port);
  }
  SendSuccess(to, request, nullptr, kMethod, [&](stun::MessageBuilder& b) {
    b.AddXorMappedAddress(from.client);
    b.AddMappedAddress(from.client);
    b.AddResponseOrigin(to.server);
    b.AddOtherAddress(addresses[1 - ip][1 - port]);
    if (padding) {
      // The request's own padding, not the MTU's worth the RFC suggests (a
      // SHOULD): the answer is then a few dozen bytes longer than the
      // request, as any Binding answer is, and a forged source address buys
      // no amplification (a 28-byte request would otherwise get 1,500).
      b.AddAttribute(stun::AttributeType::kPadding, *padding);
    }
  });
  return true;
}

// ---------------------------------------------------------------------------
// Answers

void TurnServer::Deliver(const FiveTuple& to, stun::MessageBuilder& b, const stun::Message& request,
                         const AuthResult* auth, MethodLabel method, uint16_t code) {
  Finish(b, request, auth);
  if (b.ok()) {
    Count(method, code);
    io_.SendToClient(to, b.message());
  }
}

void TurnServer::Finish(stun::MessageBuilder& b, const stun::Message& request,
                        const AuthResult* auth) {
  if (!options_.software.empty()) {
    b.AddSoftware(options_.software);
  }
  if (auth != nullptr) {
    if (auth->integrity == IntegrityKind::kSha256) {
      b.AddMessageIntegritySha256(auth->key_view());
    } else {
      b.AddMessageIntegrity(auth->key_view());
    }
  }
  // FINGERPRINT when the request had one: such a client may be
  // demultiplexing STUN from media on it (RFC 8489 section 7.3).
  if (request.has_fingerprint()) {
    b.AddFingerprint();
  }
}

const base::SocketAddress* TurnServer::NextAlternate(const FiveTuple& client) {
  // RFC 8489 section 10: the client retries with the same transport.
  const bool tls = IsSecure(client.transport);
  const std::vector<base::SocketAddress>& all =
      tls ? options_.alternate_tls_servers : options_.alternate_servers;
  size_t& next = next_alternate_[tls ? 1 : 0];
  for (size_t i = 0; i < all.size(); ++i) {
    const size_t index = (next + i) % all.size();
    if (all[index].family() == client.client.family()) {
      next = index + 1;
      return &all[index];
    }
  }
  return nullptr;
}

bool TurnServer::TakesNoNewAllocations() const {
  return options_.draining ||
         (options_.allocations_total > 0 && shared_.quota.total() >= options_.allocations_total);
}

void TurnServer::SendTryAlternate(const FiveTuple& to, const stun::Message& request,
                                  const AuthResult* auth, MethodLabel method,
                                  const base::SocketAddress& alternate) {
  SendError(to, request, stun::error_code::kTryAlternate, auth, method, {},
            [&](stun::MessageBuilder& b) {
              b.AddAlternateServer(alternate);
              if (IsSecure(to.transport) && !options_.alternate_domain.empty()) {
                b.AddAlternateDomain(options_.alternate_domain);
              }
            });
}

void TurnServer::SendAuthError(base::MonoTime now, const FiveTuple& to,
                               const stun::Message& request, const AuthResult& auth,
                               MethodLabel method) {
  counters_.auth_failures[static_cast<size_t>(auth.failure)].Add();
  if (auth.error_code == 400) {
    SendError(to, request, 400, nullptr, method);
    return;
  }
  // The challenge every client needs once is limited gently; answers to
  // failed attempts much harder, so guessing passwords is slow and a spoofed
  // source cannot turn us into an amplifier.
  const bool challenge = auth.failure == AuthFailure::kNoCredentials ||
                         auth.failure == AuthFailure::kStaleNonce ||
                         auth.failure == AuthFailure::kInvalidNonce;
  if (!challenge) {
    // What an operator looks for after a rise of auth failures in the
    // metrics: who, and why (a stale app, a rotated secret, a guesser).
    std::string_view username;
    if (auto value = request.FindValue(stun::AttributeType::kUsername)) {
      username = std::string_view(reinterpret_cast<const char*>(value->data()),
                                  std::min<size_t>(value->size(), 128));
    }
    TK_LOG_WARN_EVERY(std::chrono::seconds(10),
                      "turn: authentication failed ({}) for username {:?} from {}",
                      AuthFailureName(auth.failure), username, to.client.ToString());
  }
  base::SourceRateLimiter& limiter = challenge ? challenge_limiter_ : failure_limiter_;
  if (!limiter.Allow(to.client, now)) {
    Drop(DropReason::kRateLimited);
    return;
  }
  out_.clear();
  auto b = stun::MessageBuilder::ErrorResponse(out_, request, auth.error_code);
  b.AddRealm(authenticator_->realm());
  b.AddNonce(authenticator_->IssueNonce(to.client, clock_.UnixSeconds()));
  b.AddPasswordAlgorithms(authenticator_->algorithms());
  Deliver(to, b, request, nullptr, method, auth.error_code);
}

// ---------------------------------------------------------------------------
// The per-packet path: Send, ChannelData, peer data

void TurnServer::HandleSend(base::MonoTime now, const FiveTuple& from,
                            const stun::Message& indication) {
  Allocation* allocation = FindAllocation(from, now);
  if (allocation == nullptr) {
    Drop(DropReason::kNoAllocation);
    return;
  }
  auto peer_value = indication.FindValue(stun::AttributeType::kXorPeerAddress);
  auto data = indication.FindValue(stun::AttributeType::kData);
  if (!peer_value || !data) {
    Drop(DropReason::kMalformed);
    return;
  }
  auto peer = stun::DecodeXorAddress(*peer_value, indication.transaction_id());
  if (!peer || peer->port() == 0 || !allocation->HasFamily(*peer)) {
    Drop(DropReason::kMalformed);
    return;
  }
  if (!policy_->IsAllowed(*peer)) {
    counters_.peer_denied.Add();
    Drop(DropReason::kPeerDenied);
    return;
  }
  if (allocation->FindPermission(*peer, now) == nullptr) {
    Drop(DropReason::kNoPermission);
    return;
  }
  if (!allocation->to_peer.Take(data->size(), now)) {
    Drop(DropReason::kBandwidth);
    return;
  }
  // DONT-FRAGMENT asks for DF on this datagram (RFC 8656 section 11.2); the
  // relay sockets otherwise leave it clear (section 14).
  CountToPeer(io_.SendToPeer(allocation->relay(FamilyIndex(*peer)).handle, Hairpin(*peer, true),
                             *data, indication.Has(stun::AttributeType::kDontFragment)),
              data->size());
}

void TurnServer::CountToPeer(SendOutcome outcome, size_t bytes) {
  switch (outcome) {
    case SendOutcome::kSent:
      counters_.relayed_packets[static_cast<size_t>(Direction::kClientToPeer)].Add();
      counters_.relayed_bytes[static_cast<size_t>(Direction::kClientToPeer)].Add(bytes);
      break;
    case SendOutcome::kQueued:
      break;  // counted by OnPeerSendsDone once the kernel has had its say
    case SendOutcome::kRefused:
      Drop(DropReason::kSendFailed);
      break;
  }
}

void TurnServer::OnPeerSendsDone(uint64_t sent, uint64_t sent_bytes, uint64_t refused) {
  counters_.relayed_packets[static_cast<size_t>(Direction::kClientToPeer)].Add(sent);
  counters_.relayed_bytes[static_cast<size_t>(Direction::kClientToPeer)].Add(sent_bytes);
  counters_.dropped[static_cast<size_t>(DropReason::kSendFailed)].Add(refused);
}

void TurnServer::HandleChannelData(base::MonoTime now, const FiveTuple& from, base::ByteView data) {
  auto message = stun::DecodeChannelData(data, stun::ChannelDataPadding::kOptional);
  if (!message || message->size != data.size()) {
    Drop(DropReason::kMalformed);
    return;
  }
  Allocation* allocation = FindAllocation(from, now);
  if (allocation == nullptr) {
    Drop(DropReason::kNoAllocation);
    return;
  }
  const Channel* channel = allocation->FindChannel(message->channel, now);
  if (channel == nullptr) {
    Drop(DropReason::kNoChannel);
    return;
  }
  if (!allocation->to_peer.Take(message->data.size(), now)) {
    Drop(DropReason::kBandwidth);
    return;
  }
  CountToPeer(io_.SendToPeer(allocation->relay(FamilyIndex(channel->peer)).handle,
                             Hairpin(channel->peer, true), message->data, false),
              message->data.size());
}

base::SocketAddress TurnServer::InboundPeer(Allocation& allocation, const base::SocketAddress& from,
                                            base::MonoTime now) const {
  const base::SocketAddress mapped = Hairpin(from, false);
  // A peer on the host's own address with a permission of its own (a local
  // process whose port happens to lie in the relay range, a media server on
  // the host) is itself, not another client's relayed address.
  if (mapped == from || allocation.FindPermission(from, now) != nullptr) {
    return from;
  }
  return mapped;
}

base::SocketAddress TurnServer::Hairpin(const base::SocketAddress& address, bool outbound) const {
  const std::optional<RelayAddress>& relay = options_.relay[FamilyIndex(address)];
  if (!relay || relay->hairpin.family() == base::Family::kNone ||
      address.port() < options_.peers.relay_port_min ||
      address.port() > options_.peers.relay_port_max) {
    return address;
  }
  const base::SocketAddress& match = outbound ? relay->advertised : relay->hairpin;
  base::SocketAddress ip = address;
  ip.set_port(0);
  if (ip != match) {
    return address;
  }
  base::SocketAddress mapped = outbound ? relay->hairpin : relay->advertised;
  mapped.set_port(address.port());
  return mapped;
}

void TurnServer::OnPeerData(base::MonoTime now, void* context, const base::SocketAddress& from_io,
                            base::ByteView data) {
  auto* endpoint = static_cast<RelayEndpoint*>(context);
  // RFC 8656 section 7: an expired relayed address relays nothing, though the
  // timer may not have closed it yet.
  if (endpoint->expires <= now) {
    Drop(DropReason::kNoAllocation);
    return;
  }
  Allocation& allocation = *endpoint->owner;
  const base::SocketAddress from = InboundPeer(allocation, from_io, now);
  // RFC 8656 section 11.3: only peers with a permission get through.
  if (allocation.FindPermission(from, now) == nullptr) {
    Drop(DropReason::kNoPermission);
    return;
  }
  if (!allocation.to_client.Take(data.size(), now)) {
    Drop(DropReason::kBandwidth);
    return;
  }
  RelayToClient(now, allocation, from, data);
}

template <typename AddContent>
bool TurnServer::BuildDataIndication(const base::SocketAddress& peer, AddContent add_content) {
  out_.clear();
  stun::MessageBuilder b(out_, stun::Method::kData, stun::MessageClass::kIndication,
                         NextIndicationId());
  b.AddXorPeerAddress(peer);
  add_content(b);
  if (!b.ok()) {
    Drop(DropReason::kMalformed);
    return false;
  }
  return true;
}

bool TurnServer::SendDataToClient(const Allocation& allocation) {
  if (!io_.SendDataToClient(allocation.tuple(), out_)) {
    Drop(DropReason::kClientBacklog);
    return false;
  }
  return true;
}

namespace {

// The kind of an ICMP error RFC 8656 section 11.5 passes on (ICMP types 3
// and 11, ICMPv6 types 1, 2 and 3), or kCount for one it does not.
metrics::IcmpKind ClassifyIcmp(const net::IcmpError& icmp) {
  if (!icmp.v6) {
    if (icmp.type == 3) {
      return icmp.code == 3   ? metrics::IcmpKind::kPortUnreachable
             : icmp.code == 4 ? metrics::IcmpKind::kPacketTooBig
                              : metrics::IcmpKind::kUnreachable;
    }
    return icmp.type == 11 ? metrics::IcmpKind::kTimeExceeded : metrics::IcmpKind::kCount;
  }
  switch (icmp.type) {
    case 1:
      return icmp.code == 4 ? metrics::IcmpKind::kPortUnreachable : metrics::IcmpKind::kUnreachable;
    case 2:
      return metrics::IcmpKind::kPacketTooBig;
    case 3:
      return metrics::IcmpKind::kTimeExceeded;
    default:
      return metrics::IcmpKind::kCount;
  }
}

}  // namespace

void TurnServer::OnPeerIcmp(base::MonoTime now, void* context, const net::IcmpError& icmp) {
  const metrics::IcmpKind kind = ClassifyIcmp(icmp);
  if (kind == metrics::IcmpKind::kCount) {
    return;
  }
  Allocation& allocation = *static_cast<RelayEndpoint*>(context)->owner;
  // The permission is checked against the peer the datagram went to, address
  // only, never against whoever sent the ICMP.
  const base::SocketAddress peer = InboundPeer(allocation, icmp.destination, now);
  if (allocation.FindPermission(peer, now) == nullptr) {
    Drop(DropReason::kNoPermission);
    return;
  }
  const bool built = BuildDataIndication(peer, [&](stun::MessageBuilder& b) {
    // Error Data is the next-hop MTU for "too big", zero otherwise (s18.13).
    b.AddIcmp(icmp.type, icmp.code, kind == metrics::IcmpKind::kPacketTooBig ? icmp.info : 0);
  });
  if (built && SendDataToClient(allocation)) {
    counters_.icmp[static_cast<size_t>(kind)].Add();
  }
}

stun::TransactionId TurnServer::NextIndicationId() {
  if (indication_ids_used_ == indication_ids_.size()) {
    if (!base::RandomBytes(indication_ids_)) {
      std::abort();  // as base::RandomHex: no randomness, no safe ids
    }
    indication_ids_used_ = 0;
  }
  stun::TransactionId id;
  std::copy_n(indication_ids_.begin() + static_cast<std::ptrdiff_t>(indication_ids_used_),
              id.size(), id.begin());
  indication_ids_used_ += id.size();
  return id;
}

void TurnServer::RelayToClient(base::MonoTime now, Allocation& allocation,
                               const base::SocketAddress& peer, base::ByteView data) {
  out_.clear();
  const Channel* channel = allocation.FindChannelByPeer(peer, now);
  if (channel != nullptr && data.size() <= 0xFFFF) {
    stun::AppendChannelData(out_, channel->number, data,
                            IsStream(allocation.tuple().transport)
                                ? stun::ChannelDataPadding::kRequired
                                : stun::ChannelDataPadding::kOptional);
  } else if (!BuildDataIndication(peer, [&](stun::MessageBuilder& b) { b.AddData(data); })) {
    return;  // RFC 8656 section 11.3: a Data indication, here one not buildable
  }
  if (!SendDataToClient(allocation)) {
    return;
  }
  counters_.relayed_packets[static_cast<size_t>(Direction::kPeerToClient)].Add();
  counters_.relayed_bytes[static_cast<size_t>(Direction::kPeerToClient)].Add(data.size());
}

// ---------------------------------------------------------------------------
// Expiry

void TurnServer::OnTimer(base::MonoTime now) {
  ExpireReservations(now);
  for (auto it = allocations_.begin(); it != allocations_.end();) {
    auto next = std::next(it);
    if (!ExpireRelays(it, now)) {
      Allocation& allocation = *it->second;
      if (allocation.NextExpiry() <= now) {
        size_t permissions = 0;
        size_t channels = 0;
        allocation.Expire(now, &permissions, &channels);
        counters_.permissions_active.Sub(permissions);
        counters_.channels_active.Sub(channels);
      }
    }
    it = next;
  }
}

bool TurnServer::ExpireRelays(AllocationMap::iterator it, base::MonoTime now) {
  Allocation& allocation = *it->second;
  if (allocation.expires() <= now) {
    counters_.allocations_expired.Add();
    EndAllocation(it);
    return true;
  }
  // One half of a dual allocation that was not refreshed with the other.
  for (int f = 0; f < 2; ++f) {
    const RelayEndpoint& endpoint = allocation.relay(f);
    if (endpoint.handle != 0 && endpoint.expires <= now) {
      CloseFamily(allocation, f);
    }
  }
  return false;
}

}  // namespace turnkey::relay
