// Allocation: one client's TURN allocation (RFC 8656 section 2.2): its
// 5-tuple, up to two relayed transport addresses (one per address family,
// RFC 8656 section 7.2 dual allocation), permissions, channel bindings,
// lifetime and bandwidth budget.
//
// Owned by the worker's TurnServer (in its allocation table) and used only
// on that worker's thread. Permissions and channels live in small vectors
// searched linearly with a last-hit cache: an allocation typically holds a
// handful, each lookup touches one cache line, and an idle allocation costs
// a few hundred bytes (the bench measures it).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "base/address.h"
#include "base/clock.h"
#include "relay/five_tuple.h"
#include "relay/relay_io.h"
#include "stun/constants.h"

namespace turnkey::relay {

class Allocation;

struct Permission {
  base::SocketAddress ip;  // port 0: permissions are per IP (RFC 8656 section 9)
  base::MonoTime expires{};
};

struct Channel {
  uint16_t number = 0;       // 0x4000..0x7FFF (stun::kMaxChannelNumber)
  base::SocketAddress peer;  // IP and port
  base::MonoTime expires{};
};

// Bytes per second with one second of burst; rate 0 = unlimited.
class TokenBucket {
 public:
  void SetRate(uint64_t bytes_per_second) { rate_ = bytes_per_second; }
  // Takes `bytes`; false when over budget (the packet is dropped).
  bool Take(size_t bytes, base::MonoTime now);

 private:
  uint64_t rate_ = 0;
  double tokens_ = 0;
  base::MonoTime last_{};
  bool started_ = false;
};

// One relayed transport address of an allocation.
struct RelayEndpoint {
  Allocation* owner = nullptr;
  RelayHandle handle = 0;          // 0 = this family is not allocated
  base::SocketAddress advertised;  // what XOR-RELAYED-ADDRESS carries
  uint16_t port = 0;               // the bound port (returned to the pool)
  // A dual allocation's halves can be refreshed and deleted on their own
  // (Refresh with REQUESTED-ADDRESS-FAMILY, RFC 8656 section 8.1).
  base::MonoTime expires{};
};

// Index of an address family in per-family arrays: 0 IPv4, 1 IPv6.
inline int FamilyIndex(const base::SocketAddress& a) { return a.is_v6() ? 1 : 0; }

class Allocation {
 public:
  Allocation(const FiveTuple& tuple, std::string username, std::string quota_user);
  Allocation(const Allocation&) = delete;
  Allocation& operator=(const Allocation&) = delete;

  const FiveTuple& tuple() const { return tuple_; }
  const std::string& username() const { return username_; }
  const std::string& quota_user() const { return quota_user_; }

  RelayEndpoint& relay(int family_index) { return relays_[family_index]; }
  const RelayEndpoint& relay(int family_index) const { return relays_[family_index]; }
  bool HasFamily(const base::SocketAddress& peer) const {
    return relays_[FamilyIndex(peer)].handle != 0;
  }

  // Both families allocated (RFC 8656 section 7.2 dual allocation).
  bool dual() const { return relays_[0].handle != 0 && relays_[1].handle != 0; }
  // When the last of its relayed addresses expires.
  base::MonoTime expires() const;
  // Sets the expiry of every relayed address it has.
  void set_expires(base::MonoTime t);

  // The Allocate transaction that created it and what it granted, so a
  // retransmitted Allocate gets the same answer (RFC 8656 section 7.2).
  stun::TransactionId allocate_transaction{};
  uint32_t granted_lifetime = 0;
  uint64_t reservation_token = 0;
  // Dual allocation: why the IPv6 half failed (440 or 508), 0 if it did not.
  uint16_t additional_family_error = 0;

  // Permissions (RFC 8656 section 9).
  const Permission* FindPermission(const base::SocketAddress& peer, base::MonoTime now);
  // Installs or refreshes the permission for `peer`'s IP. False when a new
  // one would pass `limit` (0 = unlimited).
  bool InstallPermission(const base::SocketAddress& peer, base::MonoTime expires, size_t limit,
                         bool* added);
  size_t permission_count() const { return permissions_.size(); }

  // Channels (RFC 8656 section 12).
  const Channel* FindChannel(uint16_t number, base::MonoTime now);
  const Channel* FindChannelByPeer(const base::SocketAddress& peer, base::MonoTime now);
  // Whether binding `number` to `peer` would conflict with an existing,
  // unexpired binding (RFC 8656 section 12.2: 400).
  bool ChannelConflicts(uint16_t number, const base::SocketAddress& peer, base::MonoTime now) const;
  // Installs or refreshes; `added` tells which. False when a new one would
  // pass `limit`.
  bool BindChannel(uint16_t number, const base::SocketAddress& peer, base::MonoTime expires,
                   size_t limit, bool* added);
  size_t channel_count() const { return channels_.size(); }

  // Removes permissions and channels that expired at or before `now`;
  // returns how many of each went. Channel numbers and peers stay blocked
  // for 5 minutes after expiry only in the RFC's recommendation for clients;
  // the server frees them at once.
  void Expire(base::MonoTime now, size_t* permissions_removed, size_t* channels_removed);
  // Removes permissions and channels whose peer `denied` says no to (for
  // permissions the IP, port 0); returns how many went.
  template <typename Denied>
  void RemoveDenied(Denied denied, size_t* permissions_removed, size_t* channels_removed) {
    const size_t permissions_before = permissions_.size();
    std::erase_if(permissions_, [&](const Permission& p) { return denied(p.ip); });
    const size_t channels_before = channels_.size();
    std::erase_if(channels_, [&](const Channel& c) { return denied(c.peer); });
    *permissions_removed = permissions_before - permissions_.size();
    *channels_removed = channels_before - channels_.size();
    last_permission_ = 0;
    last_channel_ = 0;
  }
  // Removes the permissions and channels of one address family (its relayed
  // address is going); returns how many of each went.
  void RemoveFamily(int family_index, size_t* permissions_removed, size_t* channels_removed) {
    RemoveDenied(
        [family_index](const base::SocketAddress& a) { return FamilyIndex(a) == family_index; },
        permissions_removed, channels_removed);
  }
  // The earliest expiry of anything in this allocation.
  base::MonoTime NextExpiry() const;

  TokenBucket to_peer;
  TokenBucket to_client;

 private:
  FiveTuple tuple_;
  std::string username_;
  std::string quota_user_;
  std::array<RelayEndpoint, 2> relays_{};
  std::vector<Permission> permissions_;
  std::vector<Channel> channels_;
  size_t last_permission_ = 0;
  size_t last_channel_ = 0;
};

}  // namespace turnkey::relay
