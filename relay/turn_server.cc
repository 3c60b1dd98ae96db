#include "relay/turn_server.h"

#include <algorithm>
#include <utility>

#include "stun/attributes.h"
#include "stun/channel_data.h"
#include "stun/integrity.h"
#include "stun/message.h"
#include "stun/message_builder.h"

namespace turnkey::relay {

const char* ClientTransportName(ClientTransport transport) {
  switch (transport) {
    case ClientTransport::kUdp: return "udp";
    case ClientTransport::kTcp: return "tcp";
    case ClientTransport::kTls: return "tls";
  }
  return "udp";
}

namespace {

constexpr uint8_t kUdpProtocol = 17;  // REQUESTED-TRANSPORT UDP (RFC 8656 s18.8)

MethodLabel LabelOf(stun::Method method) {
  switch (method) {
    case stun::Method::kBinding: return MethodLabel::kBinding;
    case stun::Method::kAllocate: return MethodLabel::kAllocate;
    case stun::Method::kRefresh: return MethodLabel::kRefresh;
    case stun::Method::kCreatePermission: return MethodLabel::kCreatePermission;
    case stun::Method::kChannelBind: return MethodLabel::kChannelBind;
    default: return MethodLabel::kOther;
  }
}

int FamilyIndexOf(stun::AddressFamily family) {
  return family == stun::AddressFamily::kIpv6 ? 1 : 0;
}

bool IsStream(ClientTransport t) { return t != ClientTransport::kUdp; }

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
}

void TurnServer::SetOptions(TurnServerOptions options) {
  options_ = std::move(options);
  authenticator_ = std::make_unique<TurnAuthenticator>(options_.auth, nonces_);
  policy_ = std::make_unique<PeerPolicy>(options_.peers);
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
  // RFC 8489 section 6.3.1: unknown comprehension-required attributes get
  // 420 with UNKNOWN-ATTRIBUTES, before anything else is looked at.
  if (!request.unknown_required().empty()) {
    SendError(from, request, 420, nullptr, method);
    return;
  }
  if (method == MethodLabel::kBinding) {
    HandleBinding(from, request);
    return;
  }
  if (method == MethodLabel::kOther) {
    // RFC 6062 (TCP relays) and anything unknown: not served.
    SendError(from, request, 400, nullptr, method, "Unsupported method");
    return;
  }

  const AuthResult auth = authenticator_->Authenticate(request, from.client, clock_.UnixSeconds());
  if (!auth.ok()) {
    SendAuthError(now, from, request, auth, method);
    return;
  }

  Allocation* allocation = FindAllocation(from);
  if (method == MethodLabel::kAllocate) {
    HandleAllocate(now, from, request, auth);
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

void TurnServer::HandleBinding(const FiveTuple& from, const stun::Message& request) {
  // RFC 8489 section 6.3.1.1: the success response carries the client's
  // transport address as XOR-MAPPED-ADDRESS.
  out_.clear();
  auto b = stun::MessageBuilder::SuccessResponse(out_, request);
  b.AddXorMappedAddress(from.client);
  Finish(b, request, nullptr);
  if (b.ok()) {
    Count(MethodLabel::kBinding, 200);
    io_.SendToClient(from, b.message());
  }
}

// ---------------------------------------------------------------------------
// Answers

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

void TurnServer::SendError(const FiveTuple& to, const stun::Message& request, uint16_t code,
                           const AuthResult* auth, MethodLabel method, std::string_view reason) {
  out_.clear();
  auto b = stun::MessageBuilder::ErrorResponse(out_, request, code, reason);
  Finish(b, request, auth);
  if (b.ok()) {
    Count(method, code);
    io_.SendToClient(to, b.message());
  }
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
  SourceRateLimiter& limiter = challenge ? challenge_limiter_ : failure_limiter_;
  if (!limiter.Allow(to.client, now)) {
    Drop(DropReason::kRateLimited);
    return;
  }
  out_.clear();
  auto b = stun::MessageBuilder::ErrorResponse(out_, request, auth.error_code);
  b.AddRealm(authenticator_->realm());
  b.AddNonce(authenticator_->IssueNonce(to.client, clock_.UnixSeconds()));
  b.AddPasswordAlgorithms(authenticator_->algorithms());
  Finish(b, request, nullptr);
  if (b.ok()) {
    Count(method, auth.error_code);
    io_.SendToClient(to, b.message());
  }
}

// ---------------------------------------------------------------------------
// Allocate (RFC 8656 section 7.2, RFC 6156)

uint32_t TurnServer::GrantLifetime(std::optional<uint32_t> requested) const {
  const auto def = static_cast<uint32_t>(options_.allocation_default.count());
  const auto max = static_cast<uint32_t>(options_.allocation_max.count());
  if (!requested) {
    return def;
  }
  return std::max(def, std::min(*requested, max));
}

Allocation* TurnServer::FindAllocation(const FiveTuple& tuple) {
  auto it = allocations_.find(tuple);
  return it == allocations_.end() ? nullptr : it->second.get();
}

void TurnServer::HandleAllocate(base::MonoTime now, const FiveTuple& from,
                                const stun::Message& request, const AuthResult& auth) {
  const MethodLabel method = MethodLabel::kAllocate;
  const size_t transport = static_cast<size_t>(from.transport);
  auto fail = [&](uint16_t code, std::string_view reason = {}) {
    counters_.allocations[transport][static_cast<size_t>(AllocationResult::kFailure)].Add();
    SendError(from, request, code, &auth, method, reason);
  };

  Allocation* existing = FindAllocation(from);
  const bool retransmission =
      existing != nullptr && existing->allocate_transaction == request.transaction_id() &&
      existing->username() == auth.username;
  if (existing != nullptr && !retransmission) {
    if (existing->username() != auth.username) {
      fail(441);
    } else {
      fail(437);
    }
    return;
  }

  Allocation* allocation = existing;
  if (allocation == nullptr) {
    if (options_.draining) {
      fail(403, "Server is draining");
      return;
    }
    // REQUESTED-TRANSPORT is mandatory; only UDP relays are offered.
    auto transport_value = request.FindValue(stun::AttributeType::kRequestedTransport);
    if (!transport_value) {
      fail(400, "REQUESTED-TRANSPORT missing");
      return;
    }
    auto protocol = stun::DecodeRequestedTransport(*transport_value);
    if (!protocol) {
      fail(400);
      return;
    }
    if (*protocol != kUdpProtocol) {
      fail(442);
      return;
    }
    const bool dont_fragment = request.Has(stun::AttributeType::kDontFragment);
    std::optional<bool> even_port;
    if (auto v = request.FindValue(stun::AttributeType::kEvenPort)) {
      even_port = stun::DecodeEvenPort(*v);
      if (!even_port) {
        fail(400);
        return;
      }
    }
    std::optional<uint64_t> token;
    if (auto v = request.FindValue(stun::AttributeType::kReservationToken)) {
      token = stun::DecodeReservationToken(*v);
      if (!token) {
        fail(400);
        return;
      }
    }
    std::optional<stun::AddressFamily> requested_family;
    if (auto v = request.FindValue(stun::AttributeType::kRequestedAddressFamily)) {
      requested_family = stun::DecodeRequestedAddressFamily(*v);
      if (!requested_family) {
        fail(400);
        return;
      }
    }
    std::optional<stun::AddressFamily> additional_family;
    if (auto v = request.FindValue(stun::AttributeType::kAdditionalAddressFamily)) {
      additional_family = stun::DecodeAdditionalAddressFamily(*v);
      if (!additional_family) {
        fail(400);
        return;
      }
    }
    // RFC 8656 section 7.2: these combinations are errors.
    if ((token && even_port) || (token && (requested_family || additional_family)) ||
        (requested_family && additional_family)) {
      fail(400);
      return;
    }
    if (additional_family && *additional_family != stun::AddressFamily::kIpv6) {
      fail(400, "ADDITIONAL-ADDRESS-FAMILY must be IPv6");
      return;
    }
    if (requested_family && *requested_family != stun::AddressFamily::kIpv4 &&
        *requested_family != stun::AddressFamily::kIpv6) {
      fail(440);
      return;
    }
    int family = requested_family ? FamilyIndexOf(*requested_family) : 0;
    std::optional<uint16_t> reserved_port;
    if (token) {
      // The reserved port lives in whichever family's pool issued the token.
      for (int f = 0; f < 2 && !reserved_port; ++f) {
        if (shared_.ports[f] && options_.relay[f]) {
          reserved_port = shared_.ports[f]->AcquireReserved(*token, now);
          if (reserved_port) {
            family = f;
          }
        }
      }
      if (!reserved_port) {
        fail(508, "Unknown reservation token");
        return;
      }
    }
    if (!options_.relay[family] || !shared_.ports[family]) {
      if (reserved_port) {
        shared_.ports[family]->Release(*reserved_port);
      }
      fail(440);
      return;
    }

    const std::string_view quota_user = TurnAuthenticator::QuotaUser(auth.username);
    switch (shared_.quota.TryAcquire(quota_user, options_.allocations_per_user,
                                     options_.allocations_total)) {
      case AllocationQuota::Verdict::kOk:
        break;
      case AllocationQuota::Verdict::kUserLimit:
        if (reserved_port) {
          shared_.ports[family]->Release(*reserved_port);
        }
        fail(486);
        return;
      case AllocationQuota::Verdict::kTotalLimit:
        if (reserved_port) {
          shared_.ports[family]->Release(*reserved_port);
        }
        fail(508);
        return;
    }

    auto owned = std::make_unique<Allocation>(from, std::string(auth.username),
                                              std::string(quota_user));
    uint64_t new_token = 0;
    uint16_t code = OpenEndpoint(now, *owned, family, reserved_port, even_port.has_value(),
                                 even_port.value_or(false), dont_fragment, &new_token);
    if (code != 0) {
      shared_.quota.Release(quota_user);
      fail(code);
      return;
    }
    if (additional_family) {
      // Dual allocation (RFC 8656 section 7.2): the IPv6 half may fail on its
      // own; the answer then carries ADDRESS-ERROR-CODE.
      if (OpenEndpoint(now, *owned, 1, std::nullopt, false, false, dont_fragment, nullptr) != 0) {
        owned->additional_family_failed = true;
      }
    }
    owned->allocate_transaction = request.transaction_id();
    owned->reservation_token = new_token;
    std::optional<uint32_t> requested_lifetime;
    if (auto v = request.FindValue(stun::AttributeType::kLifetime)) {
      requested_lifetime = stun::DecodeLifetime(*v);
    }
    owned->granted_lifetime = GrantLifetime(requested_lifetime);
    owned->set_expires(now + std::chrono::seconds(owned->granted_lifetime));
    owned->to_peer.SetRate(options_.bandwidth_per_allocation);
    owned->to_client.SetRate(options_.bandwidth_per_allocation);
    allocation = owned.get();
    allocations_.emplace(from, std::move(owned));
    counters_.allocations_active.Add();
    counters_.allocations[transport][static_cast<size_t>(AllocationResult::kSuccess)].Add();
  }

  out_.clear();
  auto b = stun::MessageBuilder::SuccessResponse(out_, request);
  for (int f = 0; f < 2; ++f) {
    const RelayEndpoint& endpoint = allocation->relay(f);
    if (endpoint.handle != 0) {
      b.AddXorRelayedAddress(endpoint.advertised);
    }
  }
  if (allocation->additional_family_failed) {
    b.AddAddressErrorCode(stun::AddressFamily::kIpv6, 440);
  }
  b.AddLifetime(allocation->granted_lifetime);
  if (allocation->reservation_token != 0) {
    b.AddReservationToken(allocation->reservation_token);
  }
  b.AddXorMappedAddress(from.client);
  Finish(b, request, &auth);
  if (b.ok()) {
    Count(method, 200);
    io_.SendToClient(from, b.message());
  }
}

uint16_t TurnServer::OpenEndpoint(base::MonoTime now, Allocation& allocation, int family,
                                  std::optional<uint16_t> port, bool even_port,
                                  bool reserve_next, bool dont_fragment, uint64_t* token) {
  if (!options_.relay[family] || !shared_.ports[family]) {
    return 440;
  }
  SharedPortPools& pools = *shared_.ports[family];
  // A few tries: a port someone else on the host holds is marked unusable
  // and another one is drawn.
  for (int attempt = 0; attempt < 8; ++attempt) {
    uint16_t chosen = 0;
    uint64_t grant_token = 0;
    if (port) {
      chosen = *port;
    } else if (even_port) {
      auto grant = pools.AcquireEven(worker_index_, reserve_next, now);
      if (!grant) {
        return 508;
      }
      chosen = grant->port;
      grant_token = grant->token;
    } else {
      auto acquired = pools.Acquire(worker_index_);
      if (!acquired) {
        return 508;
      }
      chosen = *acquired;
    }
    base::SocketAddress bind = options_.relay[family]->bind;
    bind.set_port(chosen);
    RelayEndpoint& endpoint = allocation.relay(family);
    RelayIo::OpenResult opened = io_.OpenRelay(bind, dont_fragment, &endpoint);
    if (opened.handle != 0) {
      endpoint.handle = opened.handle;
      endpoint.port = chosen;
      endpoint.advertised = options_.relay[family]->advertised;
      endpoint.advertised.set_port(chosen);
      if (token != nullptr) {
        *token = grant_token;
      }
      return 0;
    }
    if (grant_token != 0) {
      pools.Release(static_cast<uint16_t>(chosen + 1));
    }
    if (opened.address_in_use) {
      pools.MarkUnusable(chosen);
    } else {
      pools.Release(chosen);
    }
    if (port || !opened.address_in_use) {
      return 508;
    }
  }
  return 508;
}

void TurnServer::DeleteAllocation(AllocationMap::iterator it) {
  Allocation& allocation = *it->second;
  for (int f = 0; f < 2; ++f) {
    RelayEndpoint& endpoint = allocation.relay(f);
    if (endpoint.handle != 0) {
      io_.CloseRelay(endpoint.handle);
      if (shared_.ports[f]) {
        shared_.ports[f]->Release(endpoint.port);
      }
      endpoint.handle = 0;
    }
  }
  shared_.quota.Release(allocation.quota_user());
  counters_.allocations_active.Sub();
  counters_.permissions_active.Sub(allocation.permission_count());
  counters_.channels_active.Sub(allocation.channel_count());
  allocations_.erase(it);
}

void TurnServer::OnClientClosed(const FiveTuple& tuple) {
  auto it = allocations_.find(tuple);
  if (it != allocations_.end()) {
    DeleteAllocation(it);
  }
}

// ---------------------------------------------------------------------------
// Refresh (RFC 8656 section 8.2)

void TurnServer::HandleRefresh(base::MonoTime now, const FiveTuple& from,
                               const stun::Message& request, const AuthResult& auth,
                               Allocation* allocation) {
  const MethodLabel method = MethodLabel::kRefresh;
  if (auto v = request.FindValue(stun::AttributeType::kRequestedAddressFamily)) {
    auto family = stun::DecodeRequestedAddressFamily(*v);
    if (!family) {
      SendError(from, request, 400, &auth, method);
      return;
    }
    // RFC 8656 section 8.2: a family the allocation does not have is 443.
    if ((*family != stun::AddressFamily::kIpv4 && *family != stun::AddressFamily::kIpv6) ||
        allocation->relay(FamilyIndexOf(*family)).handle == 0) {
      SendError(from, request, 443, &auth, method);
      return;
    }
  }
  std::optional<uint32_t> requested;
  if (auto v = request.FindValue(stun::AttributeType::kLifetime)) {
    requested = stun::DecodeLifetime(*v);
    if (!requested) {
      SendError(from, request, 400, &auth, method);
      return;
    }
  }
  uint32_t granted = 0;
  if (requested && *requested == 0) {
    DeleteAllocation(allocations_.find(from));
  } else {
    granted = GrantLifetime(requested);
    allocation->set_expires(now + std::chrono::seconds(granted));
  }
  out_.clear();
  auto b = stun::MessageBuilder::SuccessResponse(out_, request);
  b.AddLifetime(granted);
  Finish(b, request, &auth);
  if (b.ok()) {
    Count(method, 200);
    io_.SendToClient(from, b.message());
  }
}

// ---------------------------------------------------------------------------
// CreatePermission (RFC 8656 section 10.2)

void TurnServer::HandleCreatePermission(base::MonoTime now, const FiveTuple& from,
                                        const stun::Message& request, const AuthResult& auth,
                                        Allocation& allocation) {
  const MethodLabel method = MethodLabel::kCreatePermission;
  // Check every XOR-PEER-ADDRESS before installing any: the request
  // succeeds or fails as a whole.
  size_t peers = 0;
  size_t new_ones = 0;
  for (const stun::Attribute& attribute : request) {
    if (!attribute.Is(stun::AttributeType::kXorPeerAddress) || !attribute.covered_by_integrity()) {
      continue;
    }
    auto peer = stun::DecodeXorAddress(attribute.value, request.transaction_id());
    if (!peer) {
      SendError(from, request, 400, &auth, method);
      return;
    }
    if (!allocation.HasFamily(*peer)) {
      SendError(from, request, 443, &auth, method);
      return;
    }
    if (!policy_->IsAllowed(*peer)) {
      counters_.peer_denied.Add();
      SendError(from, request, 403, &auth, method);
      return;
    }
    if (allocation.FindPermission(*peer, base::MonoTime::min()) == nullptr) {
      ++new_ones;
    }
    ++peers;
  }
  if (peers == 0) {
    SendError(from, request, 400, &auth, method, "XOR-PEER-ADDRESS missing");
    return;
  }
  const size_t limit = options_.permissions_per_allocation;
  if (limit != 0 && allocation.permission_count() + new_ones > limit) {
    SendError(from, request, 508, &auth, method);
    return;
  }
  const base::MonoTime expires = now + options_.permission_lifetime;
  for (const stun::Attribute& attribute : request) {
    if (!attribute.Is(stun::AttributeType::kXorPeerAddress) || !attribute.covered_by_integrity()) {
      continue;
    }
    auto peer = stun::DecodeXorAddress(attribute.value, request.transaction_id());
    bool added = false;
    if (allocation.InstallPermission(*peer, expires, 0, &added) && added) {
      counters_.permissions_active.Add();
    }
  }
  out_.clear();
  auto b = stun::MessageBuilder::SuccessResponse(out_, request);
  Finish(b, request, &auth);
  if (b.ok()) {
    Count(method, 200);
    io_.SendToClient(from, b.message());
  }
}

// ---------------------------------------------------------------------------
// ChannelBind (RFC 8656 section 12.2)

void TurnServer::HandleChannelBind(base::MonoTime now, const FiveTuple& from,
                                   const stun::Message& request, const AuthResult& auth,
                                   Allocation& allocation) {
  const MethodLabel method = MethodLabel::kChannelBind;
  auto number_value = request.FindValue(stun::AttributeType::kChannelNumber);
  auto peer_value = request.FindValue(stun::AttributeType::kXorPeerAddress);
  if (!number_value || !peer_value) {
    SendError(from, request, 400, &auth, method);
    return;
  }
  auto number = stun::DecodeChannelNumber(*number_value);
  auto peer = stun::DecodeXorAddress(*peer_value, request.transaction_id());
  if (!number || !peer || *number < stun::kMinChannelNumber ||
      *number > stun::kMaxChannelNumber) {
    SendError(from, request, 400, &auth, method);
    return;
  }
  if (!allocation.HasFamily(*peer)) {
    SendError(from, request, 443, &auth, method);
    return;
  }
  if (!policy_->IsAllowed(*peer)) {
    counters_.peer_denied.Add();
    SendError(from, request, 403, &auth, method);
    return;
  }
  // The number is bound to another peer, or the peer to another number.
  if (allocation.ChannelConflicts(*number, *peer, now)) {
    SendError(from, request, 400, &auth, method, "Channel or peer already bound");
    return;
  }
  const bool new_permission = allocation.FindPermission(*peer, base::MonoTime::min()) == nullptr;
  if (new_permission && options_.permissions_per_allocation != 0 &&
      allocation.permission_count() >= options_.permissions_per_allocation) {
    SendError(from, request, 508, &auth, method);
    return;
  }
  const size_t channels_before = allocation.channel_count();
  bool added = false;
  if (!allocation.BindChannel(*number, *peer, now + options_.channel_lifetime,
                              options_.channels_per_allocation, &added)) {
    SendError(from, request, 508, &auth, method);
    return;
  }
  const size_t channels_after = allocation.channel_count();
  if (channels_after > channels_before) {
    counters_.channels_active.Add(channels_after - channels_before);
  } else if (channels_after < channels_before) {
    counters_.channels_active.Sub(channels_before - channels_after);
  }
  // A channel binding installs or refreshes the permission for its peer.
  bool permission_added = false;
  if (allocation.InstallPermission(*peer, now + options_.permission_lifetime, 0,
                                   &permission_added) &&
      permission_added) {
    counters_.permissions_active.Add();
  }
  out_.clear();
  auto b = stun::MessageBuilder::SuccessResponse(out_, request);
  Finish(b, request, &auth);
  if (b.ok()) {
    Count(method, 200);
    io_.SendToClient(from, b.message());
  }
}

// ---------------------------------------------------------------------------
// The per-packet path: Send, ChannelData, peer data

void TurnServer::HandleSend(base::MonoTime now, const FiveTuple& from,
                            const stun::Message& indication) {
  Allocation* allocation = FindAllocation(from);
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
  if (!peer || !allocation->HasFamily(*peer)) {
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
  if (!io_.SendToPeer(allocation->relay(FamilyIndex(*peer)).handle, *peer, *data)) {
    Drop(DropReason::kSendFailed);
    return;
  }
  counters_.relayed_packets[static_cast<size_t>(Direction::kClientToPeer)].Add();
  counters_.relayed_bytes[static_cast<size_t>(Direction::kClientToPeer)].Add(data->size());
}

void TurnServer::HandleChannelData(base::MonoTime now, const FiveTuple& from,
                                   base::ByteView data) {
  auto message = stun::DecodeChannelData(data, stun::ChannelDataPadding::kOptional);
  if (!message || message->size != data.size()) {
    Drop(DropReason::kMalformed);
    return;
  }
  Allocation* allocation = FindAllocation(from);
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
  if (!io_.SendToPeer(allocation->relay(FamilyIndex(channel->peer)).handle, channel->peer,
                      message->data)) {
    Drop(DropReason::kSendFailed);
    return;
  }
  counters_.relayed_packets[static_cast<size_t>(Direction::kClientToPeer)].Add();
  counters_.relayed_bytes[static_cast<size_t>(Direction::kClientToPeer)].Add(
      message->data.size());
}

void TurnServer::OnPeerData(base::MonoTime now, void* context, const base::SocketAddress& from,
                            base::ByteView data) {
  auto* endpoint = static_cast<RelayEndpoint*>(context);
  Allocation& allocation = *endpoint->owner;
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

void TurnServer::RelayToClient(base::MonoTime now, Allocation& allocation,
                               const base::SocketAddress& peer, base::ByteView data) {
  out_.clear();
  const Channel* channel = allocation.FindChannelByPeer(peer, now);
  if (channel != nullptr && data.size() <= 0xFFFF) {
    stun::AppendChannelData(out_, channel->number, data,
                            IsStream(allocation.tuple().transport)
                                ? stun::ChannelDataPadding::kRequired
                                : stun::ChannelDataPadding::kOptional);
  } else {
    // RFC 8656 section 11.3: a Data indication. Indications need unique,
    // not secret, transaction ids: a per-worker counter does.
    stun::TransactionId txid{};
    ++indication_counter_;
    for (size_t i = 0; i < 8; ++i) {
      txid[4 + i] = static_cast<uint8_t>(indication_counter_ >> (8 * i));
    }
    txid[0] = static_cast<uint8_t>(worker_index_);
    stun::MessageBuilder b(out_, stun::Method::kData, stun::MessageClass::kIndication, txid);
    b.AddXorPeerAddress(peer);
    b.AddData(data);
    if (!b.ok()) {
      Drop(DropReason::kMalformed);
      return;
    }
  }
  io_.SendToClient(allocation.tuple(), out_);
  counters_.relayed_packets[static_cast<size_t>(Direction::kPeerToClient)].Add();
  counters_.relayed_bytes[static_cast<size_t>(Direction::kPeerToClient)].Add(data.size());
}

// ---------------------------------------------------------------------------
// Expiry

void TurnServer::OnTimer(base::MonoTime now) {
  for (int f = 0; f < 2; ++f) {
    if (shared_.ports[f]) {
      shared_.ports[f]->ExpireReservations(worker_index_, now);
    }
  }
  for (auto it = allocations_.begin(); it != allocations_.end();) {
    Allocation& allocation = *it->second;
    if (allocation.expires() <= now) {
      counters_.allocations_expired.Add();
      auto next = std::next(it);
      DeleteAllocation(it);
      it = next;
      continue;
    }
    if (allocation.NextExpiry() <= now) {
      size_t permissions = 0;
      size_t channels = 0;
      allocation.Expire(now, &permissions, &channels);
      counters_.permissions_active.Sub(permissions);
      counters_.channels_active.Sub(channels);
    }
    ++it;
  }
}

}  // namespace turnkey::relay
