#include "relay/allocation.h"

#include <algorithm>
#include <chrono>
#include <utility>

namespace turnkey::relay {

namespace {

bool SameIp(const base::SocketAddress& a, const base::SocketAddress& b) {
  if (a.family() != b.family()) {
    return false;
  }
  base::SocketAddress x = a;
  x.set_port(0);
  base::SocketAddress y = b;
  y.set_port(0);
  return x == y;
}

}  // namespace

bool TokenBucket::Take(size_t bytes, base::MonoTime now) {
  if (rate_ == 0) {
    return true;
  }
  const double burst = static_cast<double>(rate_);
  if (!started_) {
    started_ = true;
    tokens_ = burst;
    last_ = now;
  } else if (now > last_) {
    tokens_ = std::min(burst, tokens_ + std::chrono::duration<double>(now - last_).count() *
                                            static_cast<double>(rate_));
    last_ = now;
  }
  if (tokens_ < static_cast<double>(bytes)) {
    return false;
  }
  tokens_ -= static_cast<double>(bytes);
  return true;
}

Allocation::Allocation(const FiveTuple& tuple, std::string username, std::string quota_user)
    : tuple_(tuple), username_(std::move(username)), quota_user_(std::move(quota_user)) {
  relays_[0].owner = this;
  relays_[1].owner = this;
}

const Permission* Allocation::FindPermission(const base::SocketAddress& peer, base::MonoTime now) {
  const size_t n = permissions_.size();
  if (last_permission_ < n && SameIp(permissions_[last_permission_].ip, peer)) {
    const Permission& p = permissions_[last_permission_];
    return p.expires > now ? &p : nullptr;
  }
  for (size_t i = 0; i < n; ++i) {
    if (SameIp(permissions_[i].ip, peer)) {
      last_permission_ = i;
      return permissions_[i].expires > now ? &permissions_[i] : nullptr;
    }
  }
  return nullptr;
}

bool Allocation::InstallPermission(const base::SocketAddress& peer, base::MonoTime expires,
                                   size_t limit, bool* added) {
  *added = false;
  for (Permission& p : permissions_) {
    if (SameIp(p.ip, peer)) {
      p.expires = expires;
      return true;
    }
  }
  if (limit != 0 && permissions_.size() >= limit) {
    return false;
  }
  base::SocketAddress ip = peer;
  ip.set_port(0);
  permissions_.push_back(Permission{ip, expires});
  *added = true;
  return true;
}

const Channel* Allocation::FindChannel(uint16_t number, base::MonoTime now) {
  const size_t n = channels_.size();
  if (last_channel_ < n && channels_[last_channel_].number == number) {
    const Channel& c = channels_[last_channel_];
    return c.expires > now ? &c : nullptr;
  }
  for (size_t i = 0; i < n; ++i) {
    if (channels_[i].number == number) {
      last_channel_ = i;
      return channels_[i].expires > now ? &channels_[i] : nullptr;
    }
  }
  return nullptr;
}

const Channel* Allocation::FindChannelByPeer(const base::SocketAddress& peer, base::MonoTime now) {
  const size_t n = channels_.size();
  if (last_channel_ < n && channels_[last_channel_].peer == peer) {
    const Channel& c = channels_[last_channel_];
    return c.expires > now ? &c : nullptr;
  }
  for (size_t i = 0; i < n; ++i) {
    if (channels_[i].peer == peer) {
      last_channel_ = i;
      return channels_[i].expires > now ? &channels_[i] : nullptr;
    }
  }
  return nullptr;
}

bool Allocation::ChannelConflicts(uint16_t number, const base::SocketAddress& peer,
                                  base::MonoTime now) const {
  for (const Channel& c : channels_) {
    if (c.expires <= now) {
      continue;
    }
    if ((c.number == number) != (c.peer == peer)) {
      return true;
    }
  }
  return false;
}

bool Allocation::BindChannel(uint16_t number, const base::SocketAddress& peer,
                             base::MonoTime expires, size_t limit, bool* added) {
  *added = false;
  auto matches = [&](const Channel& c) { return c.number == number || c.peer == peer; };
  auto it = std::find_if(channels_.begin(), channels_.end(), matches);
  if (it != channels_.end()) {
    // A refresh, or an expired binding taken over by a new number/peer pair
    // (ChannelConflicts() ruled out live conflicts). An expired binding that
    // shares the other half goes too, so each number and peer appear once.
    it->number = number;
    it->peer = peer;
    it->expires = expires;
    const size_t keep = static_cast<size_t>(it - channels_.begin());
    for (size_t i = channels_.size(); i-- > 0;) {
      if (i != keep && matches(channels_[i])) {
        channels_.erase(channels_.begin() + static_cast<ptrdiff_t>(i));
      }
    }
    last_channel_ = 0;
    return true;
  }
  if (limit != 0 && channels_.size() >= limit) {
    return false;
  }
  channels_.push_back(Channel{number, peer, expires});
  *added = true;
  return true;
}

void Allocation::Expire(base::MonoTime now, size_t* permissions_removed, size_t* channels_removed) {
  const size_t permissions_before = permissions_.size();
  std::erase_if(permissions_, [now](const Permission& p) { return p.expires <= now; });
  const size_t channels_before = channels_.size();
  std::erase_if(channels_, [now](const Channel& c) { return c.expires <= now; });
  *permissions_removed = permissions_before - permissions_.size();
  *channels_removed = channels_before - channels_.size();
  last_permission_ = 0;
  last_channel_ = 0;
}

base::MonoTime Allocation::expires() const {
  base::MonoTime last = base::MonoTime::min();
  for (const RelayEndpoint& r : relays_) {
    if (r.handle != 0) {
      last = std::max(last, r.expires);
    }
  }
  return last;
}

void Allocation::set_expires(base::MonoTime t) {
  for (RelayEndpoint& r : relays_) {
    if (r.handle != 0) {
      r.expires = t;
    }
  }
}

base::MonoTime Allocation::NextExpiry() const {
  base::MonoTime next = base::MonoTime::max();
  for (const RelayEndpoint& r : relays_) {
    if (r.handle != 0) {
      next = std::min(next, r.expires);
    }
  }
  for (const Permission& p : permissions_) {
    next = std::min(next, p.expires);
  }
  for (const Channel& c : channels_) {
    next = std::min(next, c.expires);
  }
  return next;
}

}  // namespace turnkey::relay
