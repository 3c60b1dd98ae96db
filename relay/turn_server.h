// TurnServer: the STUN/TURN protocol core of one relay worker, sans I/O.
//
// The worker feeds it every message a client sent (a UDP datagram or one
// stream frame) and every datagram a peer sent to one of its relay sockets,
// with the time; the core answers and relays through RelayIo. It never
// touches a socket, reads the monotonic clock or logs per packet, so unit
// tests drive it with a fake clock and a recording RelayIo.
//
// It serves STUN Binding (RFC 8489) and the TURN methods of RFC 8656 over
// UDP relays: Allocate (with RFC 6156 / RFC 8656 address families, dual
// allocation, EVEN-PORT and RESERVATION-TOKEN, DONT-FRAGMENT), Refresh,
// CreatePermission, ChannelBind, Send and Data indications and ChannelData,
// ICMP errors about relayed datagrams (section 11.5), with the long-term credential mechanism
// (relay/turn_authenticator.h), the peer policy (relay/peer_policy.h) on every path, and quotas.
// With TurnServerOptions::nat_discovery it also answers Binding requests as
// RFC 5780 asks (NAT behavior discovery).
//
// Everything a client sends that is malformed, cookie-less, a response, or
// fails its FINGERPRINT is dropped without an answer and counted: no state
// and no reply for garbage.
//
// One instance per worker thread; not thread-safe. `io`, `shared`, `nonces`
// and `clock` must outlive it.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "auth/nonce.h"
#include "base/bytes.h"
#include "base/clock.h"
#include "base/source_rate_limiter.h"
#include "net/mmsg_batch.h"
#include "relay/allocation.h"
#include "relay/five_tuple.h"
#include "relay/peer_policy.h"
#include "relay/relay_io.h"
#include "relay/relay_shared.h"
#include "relay/turn_authenticator.h"
#include "relay/turn_counters.h"
#include "stun/message.h"
#include "stun/message_builder.h"

namespace turnkey::relay {

// One address family's relay address.
struct RelayAddress {
  base::SocketAddress bind;        // where relay sockets bind (port ignored)
  base::SocketAddress advertised;  // what clients are told (port ignored)
  // Behind a 1:1 NAT (`advertised` is not an address of this host): an
  // address of this host where relay sockets receive (port ignored), or kNone.
  // A datagram to `advertised` on a relay port is sent here instead, and one
  // from here on a relay port counts as from `advertised`: two clients
  // relaying through this server reach each other without the NAT sending
  // the server's traffic back to itself (hairpinning), which cloud 1:1 NATs
  // do not do.
  base::SocketAddress hairpin;
};

// The four UDP listener addresses RFC 5780 NAT behavior discovery answers
// from for one listener, indexed [ip][port]: [0][0] the listener (A1:P1),
// [1][1] the OTHER-ADDRESS of its answers (A2:P2).
using NatDiscoveryAddresses = std::array<std::array<base::SocketAddress, 2>, 2>;

struct TurnServerOptions {
  // SOFTWARE attribute value for responses; empty = none (the default keeps
  // unauthenticated responses small, reference/security.md).
  std::string software;
  TurnAuthOptions auth;
  // Lifetimes (RFC 8656 sections 7, 9, 12).
  std::chrono::seconds allocation_default{600};
  std::chrono::seconds allocation_max{3600};
  std::chrono::seconds permission_lifetime{300};
  std::chrono::seconds channel_lifetime{600};
  // Quotas; 0 = unlimited.
  uint32_t allocations_per_user = 10;
  uint32_t allocations_total = 0;
  uint32_t permissions_per_allocation = 64;
  uint32_t channels_per_allocation = 512;
  uint64_t bandwidth_per_allocation = 0;  // bytes/s, each direction
  PeerPolicyOptions peers;
  // Relay addresses per family ([0] IPv4, [1] IPv6); a missing family
  // answers 440 when requested. Restart-only in practice (ports are bound).
  std::optional<RelayAddress> relay[2];
  // The family (0 IPv4, 1 IPv6) of an Allocate without
  // REQUESTED-ADDRESS-FAMILY: IPv4 by RFC 8656 section 7.2; IPv6 on a host
  // without IPv4 (config turn.relay.default_family), where every browser's
  // Allocate would otherwise get 440.
  int default_family = 0;
  // 401/438 answers per client (an IPv4 address, an IPv6 /64; split between
  // the workers by the caller): the challenge every client needs once,
  // and failed authentications, which are throttled much harder.
  double challenge_rate = 200, challenge_burst = 400;
  double failure_rate = 2, failure_burst = 20;
  // When draining (SIGUSR1), new allocations get 403.
  bool draining = false;
  // Where a new allocation refused for the server's state (draining,
  // allocations_total, no relay port) is sent instead: 300 Try Alternate
  // with ALTERNATE-SERVER (RFC 8489 section 10), taken in turn among those of
  // the client's family; none of that family = the refusal itself. For UDP
  // and TCP clients; TLS clients get alternate_tls_servers.
  std::vector<base::SocketAddress> alternate_servers;
  std::vector<base::SocketAddress> alternate_tls_servers;
  // ALTERNATE-DOMAIN added for TLS clients; "" = none.
  std::string alternate_domain;
  // RFC 5780 NAT behavior discovery, per paired UDP listener; the worker
  // must listen on every address named. A Binding request to one of them
  // may carry CHANGE-REQUEST, RESPONSE-PORT and PADDING, and every answer
  // carries MAPPED-ADDRESS, RESPONSE-ORIGIN and OTHER-ADDRESS. Empty = off
  // (those attributes get 420). Restart-only in practice (sockets).
  std::vector<NatDiscoveryAddresses> nat_discovery;
};

class TurnServer {
 public:
  TurnServer(unsigned worker_index, TurnServerOptions options, RelayIo& io, RelayShared& shared,
             const auth::NonceIssuer& nonces, const base::Clock& clock);
  // Frees every allocation (sockets, ports, quota).
  ~TurnServer();
  TurnServer(const TurnServer&) = delete;
  TurnServer& operator=(const TurnServer&) = delete;

  // Handles one client message: a whole UDP datagram, or one frame cut by
  // stun::StreamFramer from a TCP/TLS stream.
  void OnClientMessage(base::MonoTime now, const FiveTuple& from, base::ByteView data);
  // Handles a datagram a peer sent to a relay socket; `context` is what the
  // core passed to RelayIo::OpenRelay (a RelayEndpoint).
  void OnPeerData(base::MonoTime now, void* context, const base::SocketAddress& from,
                  base::ByteView data);
  // Handles an ICMP error about a datagram a relay socket sent (`context` as
  // for OnPeerData): destination unreachable, packet too big and time
  // exceeded go to the client as a Data indication with XOR-PEER-ADDRESS and
  // ICMP when the allocation has a permission for the peer's address (RFC
  // 8656 section 11.5); anything else is ignored.
  void OnPeerIcmp(base::MonoTime now, void* context, const net::IcmpError& icmp);
  // What the kernel did with a flushed batch of datagrams SendToPeer had
  // queued (SendOutcome::kQueued): `sent` of them, `sent_bytes` in all, were
  // relayed; `refused` were not (dropped: send_failed). Relayed counters move
  // only here or on kSent, so they count what the kernel accepted.
  void OnPeerSendsDone(uint64_t sent, uint64_t sent_bytes, uint64_t refused);
  // A TCP/TLS client connection closed: its allocation goes with it
  // (RFC 8656 section 2.2).
  void OnClientClosed(const FiveTuple& tuple);
  // Expires allocations, permissions, channels and port reservations. Call
  // about once a second.
  void OnTimer(base::MonoTime now);

  // Applies reloadable options (SIGHUP): auth, lifetimes, quotas, peer rules,
  // software, draining. Existing allocations keep what they were granted.
  void SetOptions(TurnServerOptions options);
  const TurnServerOptions& options() const { return options_; }

  const TurnCounters& counters() const { return counters_; }
  size_t allocation_count() const { return allocations_.size(); }
  bool HasAllocation(const FiveTuple& tuple) const { return allocations_.contains(tuple); }

 private:
  struct TupleHash {
    size_t operator()(const FiveTuple& t) const {
      return t.client.Hash() * 31 + t.server.Hash() + static_cast<size_t>(t.transport);
    }
  };
  using AllocationMap = std::unordered_map<FiveTuple, std::unique_ptr<Allocation>, TupleHash>;

  // Requests.
  void HandleRequest(base::MonoTime now, const FiveTuple& from, const stun::Message& request);
  // A Binding request without the magic cookie (RFC 3489, RFC 8489
  // section 11.2): answered with MAPPED-ADDRESS and the request's own 16
  // bytes of transaction id. Anything else without the cookie is dropped.
  void HandleClassicBinding(const FiveTuple& from, base::ByteView data);
  void HandleBinding(const FiveTuple& from, const stun::Message& request);
  // Whether a request whose TURN REST name expired (but verified) may still
  // go on: CreatePermission, ChannelBind or a Refresh with LIFETIME 0 on the
  // allocation of `from` made with that name.
  bool KeepsAllocationGoing(base::MonoTime now, const FiveTuple& from, const stun::Message& request,
                            MethodLabel method, const AuthResult& auth);
  // Answers a Binding request sent to a NAT discovery address as RFC 5780
  // section 6.1 asks; false (nothing done) for any other listener.
  bool HandleDiscoveryBinding(const FiveTuple& from, const stun::Message& request);
  // `existing` is the allocation already on this 5-tuple, if any.
  void HandleAllocate(base::MonoTime now, const FiveTuple& from, const stun::Message& request,
                      const AuthResult& auth, Allocation* existing);
  void HandleRefresh(base::MonoTime now, const FiveTuple& from, const stun::Message& request,
                     const AuthResult& auth, Allocation* allocation);
  void HandleCreatePermission(base::MonoTime now, const FiveTuple& from,
                              const stun::Message& request, const AuthResult& auth,
                              Allocation& allocation);
  void HandleChannelBind(base::MonoTime now, const FiveTuple& from, const stun::Message& request,
                         const AuthResult& auth, Allocation& allocation);
  void HandleSend(base::MonoTime now, const FiveTuple& from, const stun::Message& indication);
  void HandleChannelData(base::MonoTime now, const FiveTuple& from, base::ByteView data);

  // Opens the relay socket of `family` for `allocation` on a port from the
  // pools, or on a claimed reservation's `port` with the socket `held` there
  // (taken in every case). With `reserve_next`, port + 1 is reserved and held
  // by a socket too, and `*token` gets its token. Returns 0 or the error code
  // (440, 508); on an error every port and socket it took is given back.
  uint16_t OpenEndpoint(base::MonoTime now, Allocation& allocation, int family,
                        std::optional<uint16_t> port, HeldSocket held, bool even_port,
                        bool reserve_next, uint64_t* token);
  void DeleteAllocation(AllocationMap::iterator it);
  // DeleteAllocation for an allocation whose client stays (Refresh 0,
  // expiry): a TCP/TLS client is told through ClientSink::AllocationEnded.
  void EndAllocation(AllocationMap::iterator it);
  // Expires this worker's port reservations at `now` and closes the sockets
  // that held the ports of those that ended unclaimed.
  void ExpireReservations(base::MonoTime now);
  // Closes one half of a dual allocation: its relayed address, and the
  // permissions and channels of its family.
  void CloseFamily(Allocation& allocation, int family_index);
  // Ends the allocation if its lifetime is over at `now` (true: `it` is
  // gone), else closes a half of a dual allocation whose lifetime is. Two
  // comparisons: the per-packet path runs it (permissions and channels are
  // checked at each lookup and swept by the timer).
  bool ExpireRelays(AllocationMap::iterator it, base::MonoTime now);
  // The allocation of `tuple`, nullptr if none or if it expired by `now`
  // (RFC 8656 section 7: the timer's 1 s sweep must not extend a lifetime).
  Allocation* FindAllocation(const FiveTuple& tuple, base::MonoTime now);
  // An authenticated Allocate refused with `code`
  // (turnkey_turn_allocations_total).
  void CountAllocationFailure(ClientTransport transport, uint16_t code);
  // Grants a requested lifetime: max(default, min(requested, max))
  // (RFC 8656 section 7.2), 0 stays 0 for Refresh.
  uint32_t GrantLifetime(std::optional<uint32_t> requested) const;

  // Answers.
  void SendAuthError(base::MonoTime now, const FiveTuple& to, const stun::Message& request,
                     const AuthResult& auth, MethodLabel method);
  // The next alternate server for `client` (its family, and for TLS
  // clients a TLS one), or nullptr.
  const base::SocketAddress* NextAlternate(const FiveTuple& client);
  // 300 Try Alternate, with MESSAGE-INTEGRITY when `auth` is given (an
  // authenticated request), without for a client's first request.
  void SendTryAlternate(const FiveTuple& to, const stun::Message& request, const AuthResult* auth,
                        MethodLabel method, const base::SocketAddress& alternate);
  // Draining, or allocations_total reached: a new allocation would be
  // refused for this host's state.
  bool TakesNoNewAllocations() const;
  // An error answer; authenticated with `auth`'s key when given. `add`
  // appends attributes of its own before Finish().
  template <typename AddAttributes>
  void SendError(const FiveTuple& to, const stun::Message& request, uint16_t code,
                 const AuthResult* auth, MethodLabel method, std::string_view reason,
                 AddAttributes add) {
    out_.clear();
    auto b = stun::MessageBuilder::ErrorResponse(out_, request, code, reason);
    add(b);
    Deliver(to, b, request, auth, method, code);
  }
  void SendError(const FiveTuple& to, const stun::Message& request, uint16_t code,
                 const AuthResult* auth, MethodLabel method, std::string_view reason = {}) {
    SendError(to, request, code, auth, method, reason, [](stun::MessageBuilder&) {});
  }
  // A success response to `request`: `add` appends the method's attributes,
  // then Finish(); counted and sent to `to`.
  template <typename AddAttributes>
  void SendSuccess(const FiveTuple& to, const stun::Message& request, const AuthResult* auth,
                   MethodLabel method, AddAttributes add) {
    out_.clear();
    auto b = stun::MessageBuilder::SuccessResponse(out_, request);
    add(b);
    Deliver(to, b, request, auth, method, 200);
  }
  // One with no attributes of its own, authenticated with `auth`.
  void SendSuccess(const FiveTuple& to, const stun::Message& request, const AuthResult& auth,
                   MethodLabel method) {
    SendSuccess(to, request, &auth, method, [](stun::MessageBuilder&) {});
  }
  // 0 if `allocation` may talk to `peer`, else the answer: 443 for a peer of
  // a family it has no relay for, 403 for one the peer policy refuses. With
  // `any_port` (CreatePermission, whose port RFC 8656 section 10.1 ignores),
  // a peer the policy allows on some port: another client's relayed address
  // on this server is allowed in the relay port range only, and Send checks
  // each datagram's port.
  uint16_t PeerRefusal(const Allocation& allocation, const base::SocketAddress& peer,
                       bool any_port = false);
  // Finishes a success or error response: SOFTWARE, integrity, FINGERPRINT.
  void Finish(stun::MessageBuilder& builder, const stun::Message& request, const AuthResult* auth);
  // Finish()es `builder`'s response, counts it as `code` and sends it to `to`.
  void Deliver(const FiveTuple& to, stun::MessageBuilder& builder, const stun::Message& request,
               const AuthResult* auth, MethodLabel method, uint16_t code);
  void Count(MethodLabel method, uint16_t code);
  // Builds into out_ a Data indication from `peer` whose content
  // `add_content(builder)` adds (DATA, or ICMP); false (dropped, counted)
  // if it could not be built.
  template <typename AddContent>
  bool BuildDataIndication(const base::SocketAddress& peer, AddContent add_content);
  // Sends out_ to the client of `allocation` as relayed data; false
  // (dropped, counted) when its stream is too far behind to take it.
  bool SendDataToClient(const Allocation& allocation);
  void Drop(DropReason reason) { counters_.dropped[static_cast<size_t>(reason)].Add(); }

  // Counts one datagram to a peer by what SendToPeer said became of it.
  void CountToPeer(SendOutcome outcome, size_t bytes);
  // Sends peer data to the client as ChannelData or a Data indication.
  // A transaction id for a Data indication: cryptographically random (RFC
  // 8489 section 5), taken from a pool refilled in batches so the relay path
  // rarely calls the RNG.
  stun::TransactionId NextIndicationId();
  void RelayToClient(base::MonoTime now, Allocation& allocation, const base::SocketAddress& peer,
                     base::ByteView data);
  // Behind a 1:1 NAT (RelayAddress::hairpin), on a relay port: `outbound`
  // (where a datagram for a peer goes), this server's public relayed
  // address becomes the hairpin address; inbound (who sent what came from
  // `address`, also for ICMP), the hairpin address becomes the public one.
  // Any other address is returned as it is.
  base::SocketAddress Hairpin(const base::SocketAddress& address, bool outbound) const;
  // Who sent what `allocation` got from `from` (data or, for an ICMP error,
  // its destination): Hairpin(from, inbound), unless `allocation` has a
  // permission for `from`'s own address.
  base::SocketAddress InboundPeer(Allocation& allocation, const base::SocketAddress& from,
                                  base::MonoTime now) const;

  unsigned worker_index_;
  TurnServerOptions options_;
  RelayIo& io_;
  RelayShared& shared_;
  const auth::NonceIssuer& nonces_;
  const base::Clock& clock_;
  std::unique_ptr<TurnAuthenticator> authenticator_;
  std::unique_ptr<PeerPolicy> policy_;
  base::SourceRateLimiter challenge_limiter_;
  base::SourceRateLimiter failure_limiter_;
  AllocationMap allocations_;
  TurnCounters counters_;
  base::Bytes out_;                   // reused for every response: no allocation once warm
  size_t next_alternate_[2] = {};     // into alternate_servers, alternate_tls_servers
  std::vector<HeldSocket> released_;  // reused by ExpireReservations
  // Random bytes for NextIndicationId: 64 ids per RNG call; used up at start.
  std::array<uint8_t, 64 * stun::kTransactionIdSize> indication_ids_{};
  size_t indication_ids_used_ = 64 * stun::kTransactionIdSize;
};

}  // namespace turnkey::relay
