// The TURN requests that create and change allocations (RFC 8656 sections
// 7-10 and 12): Allocate, Refresh, CreatePermission, ChannelBind, and the
// allocation bookkeeping they share. Dispatch, answers and the per-packet
// path are in turn_server.cc.
#include <algorithm>
#include <chrono>
#include <utility>
#include <vector>

#include "base/log.h"
#include "relay/turn_server.h"
#include "stun/attributes.h"
#include "stun/message.h"
#include "stun/message_builder.h"

namespace turnkey::relay {

namespace {

constexpr uint8_t kUdpProtocol = 17;  // REQUESTED-TRANSPORT UDP (RFC 8656 s18.8)

int FamilyIndexOf(stun::AddressFamily family) {
  return family == stun::AddressFamily::kIpv6 ? 1 : 0;
}

}  // namespace

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

Allocation* TurnServer::FindAllocation(const FiveTuple& tuple, base::MonoTime now) {
  auto it = allocations_.find(tuple);
  if (it == allocations_.end() || ExpireRelays(it, now)) {
    return nullptr;
  }
  return it->second.get();
}

void TurnServer::CountAllocationFailure(ClientTransport transport, uint16_t code) {
  const auto t = static_cast<size_t>(transport);
  counters_.allocations[t][static_cast<size_t>(AllocationResult::kFailure)].Add();
  counters_.allocation_failures[t][CodeLabelIndex(code)].Add();
}

void TurnServer::HandleAllocate(base::MonoTime now, const FiveTuple& from,
                                const stun::Message& request, const AuthResult& auth,
                                Allocation* existing) {
  const MethodLabel method = MethodLabel::kAllocate;
  const size_t transport = static_cast<size_t>(from.transport);
  auto fail = [&](uint16_t code, std::string_view reason = {}) {
    CountAllocationFailure(from.transport, code);
    SendError(from, request, code, &auth, method, reason);
  };
  // A refusal for this server's state rather than the request's: with an
  // alternate server for the client, the client is sent there.
  auto fail_or_redirect = [&](uint16_t code, std::string_view reason = {}) {
    if (const base::SocketAddress* alternate = NextAlternate(from)) {
      CountAllocationFailure(from.transport, stun::error_code::kTryAlternate);
      SendTryAlternate(from, request, &auth, method, *alternate);
      return;
    }
    fail(code, reason);
  };

  const bool retransmission = existing != nullptr &&
                              existing->allocate_transaction == request.transaction_id() &&
                              existing->username() == auth.username;
  // RFC 8656 section 7.2 step 2: 437 whoever asks; 441 (section 5) is for
  // the other methods.
  if (existing != nullptr && !retransmission) {
    fail(437);
    return;
  }

  Allocation* allocation = existing;
  if (allocation == nullptr) {
    if (options_.draining) {
      fail_or_redirect(403, "Server is draining");
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
    std::optional<uint32_t> requested_lifetime;
    if (auto v = request.FindValue(stun::AttributeType::kLifetime)) {
      requested_lifetime = stun::DecodeLifetime(*v);
      if (!requested_lifetime) {
        fail(400);  // as Refresh does: LIFETIME is exactly 4 bytes
        return;
      }
    }
    // DONT-FRAGMENT here only tests that Send indications may carry it
    // (RFC 8656 section 7.1); the allocation's datagrams keep DF clear.
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
    // (EVEN-PORT with R=1 reserves one port, which a dual allocation cannot.)
    if ((token && even_port) || (token && (requested_family || additional_family)) ||
        (requested_family && additional_family) ||
        (additional_family && even_port.value_or(false))) {
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
    int family = requested_family    ? FamilyIndexOf(*requested_family)
                 : additional_family ? 0  // a dual allocation: IPv4 plus the IPv6 asked for
                                     : options_.default_family;
    std::optional<uint16_t> reserved_port;
    // The socket that has held the reserved port since the reservation
    // (RFC 8656 section 7.1): this allocation's relay socket.
    HeldSocket held = 0;
    if (token) {
      // The reserved port lives in whichever family's pool issued the token.
      for (int f = 0; f < 2 && !reserved_port; ++f) {
        if (shared_.ports[f] && options_.relay[f]) {
          reserved_port = shared_.ports[f]->AcquireReserved(*token, now, &held);
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
    // Gives back a claimed reservation on the way out of a refusal.
    auto unclaim = [&] {
      if (reserved_port) {
        shared_.ports[family]->Release(*reserved_port);
      }
      if (held != 0) {
        io_.CloseHeld(held);
      }
    };
    if (!options_.relay[family] || !shared_.ports[family]) {
      unclaim();
      fail(440);
      return;
    }

    const std::string_view quota_user = TurnAuthenticator::QuotaUser(auth.username);
    switch (shared_.quota.TryAcquire(quota_user, options_.allocations_per_user,
                                     options_.allocations_total)) {
      case AllocationQuota::Verdict::kOk:
        break;
      case AllocationQuota::Verdict::kUserLimit:
        // A client that leaks allocations (left to expire rather than
        // deleted) or more devices than the quota: say whose.
        TK_LOG_WARN_EVERY(std::chrono::seconds(10),
                          "turn: user {:?} has {} allocations (turn.quotas.allocations_per_user); "
                          "Allocate from {} refused (486)",
                          quota_user, options_.allocations_per_user, from.client.ToString());
        unclaim();
        fail(486);
        return;
      case AllocationQuota::Verdict::kTotalLimit:
        TK_LOG_WARN_EVERY(std::chrono::seconds(10),
                          "turn: {} allocations in all (turn.quotas.allocations_total); Allocate "
                          "from {} refused (508)",
                          options_.allocations_total, from.client.ToString());
        unclaim();
        fail_or_redirect(508);
        return;
    }

    auto owned =
        std::make_unique<Allocation>(from, std::string(auth.username), std::string(quota_user));
    uint64_t new_token = 0;
    uint16_t code = OpenEndpoint(now, *owned, family, reserved_port, held, even_port.has_value(),
                                 even_port.value_or(false), &new_token);
    if (code != 0) {
      shared_.quota.Release(quota_user);
      if (code == 508 && !reserved_port) {
        fail_or_redirect(code);  // no relay port left
      } else {
        fail(code);
      }
      return;
    }
    if (additional_family) {
      // Dual allocation (RFC 8656 section 7.2): the IPv6 half may fail on its
      // own; the answer then carries ADDRESS-ERROR-CODE.
      owned->additional_family_error =
          OpenEndpoint(now, *owned, 1, std::nullopt, 0, false, false, nullptr);
    }
    owned->allocate_transaction = request.transaction_id();
    owned->reservation_token = new_token;
    owned->granted_lifetime = GrantLifetime(requested_lifetime);
    owned->set_expires(now + std::chrono::seconds(owned->granted_lifetime));
    owned->to_peer.SetRate(options_.bandwidth_per_allocation);
    owned->to_client.SetRate(options_.bandwidth_per_allocation);
    allocation = owned.get();
    allocations_.emplace(from, std::move(owned));
    counters_.allocations_active.Add();
    counters_.allocations[transport][static_cast<size_t>(AllocationResult::kSuccess)].Add();
  }

  const Allocation& granted = *allocation;
  SendSuccess(from, request, &auth, method, [&](stun::MessageBuilder& b) {
    for (int f = 0; f < 2; ++f) {
      if (granted.relay(f).handle != 0) {
        b.AddXorRelayedAddress(granted.relay(f).advertised);
      }
    }
    if (granted.additional_family_error != 0) {
      b.AddAddressErrorCode(stun::AddressFamily::kIpv6, granted.additional_family_error);
    }
    b.AddLifetime(granted.granted_lifetime);
    if (granted.reservation_token != 0) {
      b.AddReservationToken(granted.reservation_token);
    }
    b.AddXorMappedAddress(from.client);
  });
}

uint16_t TurnServer::OpenEndpoint(base::MonoTime now, Allocation& allocation, int family,
                                  std::optional<uint16_t> port, HeldSocket held, bool even_port,
                                  bool reserve_next, uint64_t* token) {
  if (!options_.relay[family] || !shared_.ports[family]) {
    if (held != 0) {
      io_.CloseHeld(held);
    }
    return 440;
  }
  SharedPortPools& pools = *shared_.ports[family];
  RelayEndpoint& endpoint = allocation.relay(family);
  auto bind_to = [&](uint16_t p) {
    base::SocketAddress bind = options_.relay[family]->bind;
    bind.set_port(p);
    return bind;
  };
  auto granted = [&](RelayHandle handle, uint16_t p) {
    endpoint.handle = handle;
    endpoint.port = p;
    endpoint.advertised = options_.relay[family]->advertised;
    endpoint.advertised.set_port(p);
  };
  if (port && held != 0) {
    // A claimed reservation: its socket has held the port all along.
    const RelayHandle handle = io_.AdoptRelay(held, &endpoint);
    if (handle == 0) {
      pools.Release(*port);
      return 508;
    }
    granted(handle, *port);
    return 0;
  }
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
    RelayIo::OpenResult opened = io_.OpenRelay(bind_to(chosen), &endpoint);
    if (opened.handle != 0 && grant_token == 0) {
      granted(opened.handle, chosen);
      return 0;
    }
    if (opened.handle != 0) {
      // EVEN-PORT with R (RFC 8656 section 7.2): bind port + 1 now, on the
      // same relay address, so nobody else on the host can take it before
      // the RESERVATION-TOKEN comes back. If it cannot be held, this even
      // port is no good for a reservation: draw another pair.
      const auto next = static_cast<uint16_t>(chosen + 1);
      RelayIo::OpenResult hold = io_.HoldRelay(bind_to(next));
      if (hold.handle != 0 && pools.AttachSocket(grant_token, hold.handle)) {
        granted(opened.handle, chosen);
        if (token != nullptr) {
          *token = grant_token;
        }
        return 0;
      }
      if (hold.handle != 0) {
        io_.CloseHeld(hold.handle);  // not reachable: the reservation was made above
      }
      io_.CloseRelay(opened.handle);
      pools.Release(chosen);
      if (hold.address_in_use) {
        pools.MarkUnusable(next, now);
        continue;
      }
      pools.Release(next);
      return 508;
    }
    if (grant_token != 0) {
      pools.Release(static_cast<uint16_t>(chosen + 1));
    }
    if (opened.address_in_use) {
      pools.MarkUnusable(chosen, now);
    } else {
      pools.Release(chosen);
    }
    if (port || !opened.address_in_use) {
      return 508;
    }
  }
  return 508;
}

void TurnServer::CloseFamily(Allocation& allocation, int family_index) {
  RelayEndpoint& endpoint = allocation.relay(family_index);
  if (endpoint.handle != 0) {
    io_.CloseRelay(endpoint.handle);
    if (shared_.ports[family_index]) {
      shared_.ports[family_index]->Release(endpoint.port);
    }
    endpoint.handle = 0;
  }
  size_t permissions = 0;
  size_t channels = 0;
  allocation.RemoveFamily(family_index, &permissions, &channels);
  counters_.permissions_active.Sub(permissions);
  counters_.channels_active.Sub(channels);
}

void TurnServer::DeleteAllocation(AllocationMap::iterator it) {
  Allocation& allocation = *it->second;
  for (int f = 0; f < 2; ++f) {
    CloseFamily(allocation, f);
  }
  shared_.quota.Release(allocation.quota_user());
  counters_.allocations_active.Sub();
  allocations_.erase(it);
}

void TurnServer::EndAllocation(AllocationMap::iterator it) {
  const FiveTuple tuple = it->first;
  DeleteAllocation(it);
  if (tuple.transport != ClientTransport::kUdp) {
    io_.AllocationEnded(tuple);
  }
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
  // With REQUESTED-ADDRESS-FAMILY, a dual allocation refreshes (or deletes)
  // that family's relayed address alone; without, every one it has (RFC 8656
  // section 8.1). -1: the whole allocation.
  int only_family = -1;
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
    if (allocation->dual()) {
      only_family = FamilyIndexOf(*family);
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
    if (only_family >= 0) {
      CloseFamily(*allocation, only_family);
    } else {
      EndAllocation(allocations_.find(from));
    }
  } else {
    granted = GrantLifetime(requested);
    const base::MonoTime expires = now + std::chrono::seconds(granted);
    if (only_family >= 0) {
      allocation->relay(only_family).expires = expires;
    } else {
      allocation->set_expires(expires);
    }
  }
  SendSuccess(from, request, &auth, method,
              [granted](stun::MessageBuilder& b) { b.AddLifetime(granted); });
}

// ---------------------------------------------------------------------------
// CreatePermission (RFC 8656 section 10.2)

uint16_t TurnServer::PeerRefusal(const Allocation& allocation, const base::SocketAddress& peer,
                                 bool any_port) {
  // A peer of a family the allocation has no relay for (RFC 8656 section 9).
  if (!allocation.HasFamily(peer)) {
    return 443;
  }
  if (!(any_port ? policy_->IsAllowedOnSomePort(peer) : policy_->IsAllowed(peer))) {
    counters_.peer_denied.Add();
    // Browsers try every candidate, private ones included: normal in small
    // numbers, so debug. Which peer, for the operator deciding on an allow
    // rule.
    TK_LOG_DEBUG_EVERY(std::chrono::seconds(10),
                       "turn: peer {} refused by the peer policy (user {:?})", peer.ToString(),
                       allocation.username());
    return 403;
  }
  return 0;
}

void TurnServer::HandleCreatePermission(base::MonoTime now, const FiveTuple& from,
                                        const stun::Message& request, const AuthResult& auth,
                                        Allocation& allocation) {
  const MethodLabel method = MethodLabel::kCreatePermission;
  // Check every XOR-PEER-ADDRESS before installing any: the request
  // succeeds or fails as a whole.
  // The distinct peer IPs of the request (a permission is per IP, RFC 8656
  // section 9: the same IP twice counts once against the quota).
  std::vector<base::SocketAddress> ips;
  size_t new_ips = 0;
  for (const stun::Attribute& attribute : request) {
    if (!attribute.Is(stun::AttributeType::kXorPeerAddress) || !attribute.covered_by_integrity()) {
      continue;
    }
    auto peer = stun::DecodeXorAddress(attribute.value, request.transaction_id());
    if (!peer) {
      SendError(from, request, 400, &auth, method);
      return;
    }
    if (uint16_t code = PeerRefusal(allocation, *peer, /*any_port=*/true); code != 0) {
      SendError(from, request, code, &auth, method);
      return;
    }
    base::SocketAddress ip = *peer;
    ip.set_port(0);
    if (std::find(ips.begin(), ips.end(), ip) == ips.end()) {
      ips.push_back(ip);
      if (allocation.FindPermission(ip, base::MonoTime::min()) == nullptr) {
        ++new_ips;
      }
    }
  }
  if (ips.empty()) {
    SendError(from, request, 400, &auth, method, "XOR-PEER-ADDRESS missing");
    return;
  }
  const size_t limit = options_.permissions_per_allocation;
  // Only new peers count: refreshing what exists must keep working after a
  // reload lowered the limit below what the allocation holds.
  if (limit != 0 && new_ips != 0 && allocation.permission_count() + new_ips > limit) {
    SendError(from, request, 508, &auth, method);
    return;
  }
  const base::MonoTime expires = now + options_.permission_lifetime;
  for (const base::SocketAddress& ip : ips) {
    bool added = false;
    if (allocation.InstallPermission(ip, expires, 0, &added) && added) {
      counters_.permissions_active.Add();
    }
  }
  SendSuccess(from, request, auth, method);
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
  if (!number || !peer || *number < stun::kMinChannelNumber || *number > stun::kMaxChannelNumber) {
    SendError(from, request, 400, &auth, method);
    return;
  }
  if (peer->port() == 0) {
    // Nothing can be sent to port 0: the channel could never carry data.
    SendError(from, request, 400, &auth, method, "Peer port 0");
    return;
  }
  if (uint16_t code = PeerRefusal(allocation, *peer); code != 0) {
    SendError(from, request, code, &auth, method);
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
  SendSuccess(from, request, auth, method);
}

}  // namespace turnkey::relay
