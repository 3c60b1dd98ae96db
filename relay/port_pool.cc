#include "relay/port_pool.h"

#include <array>
#include <cstdint>
#include <utility>

#include "base/bytes.h"
#include "base/crypto.h"

namespace turnkey::relay {

// ---- IndexSet ----

PortPool::IndexSet::IndexSet(size_t capacity) : items_(capacity, 0), pos_(capacity, kAbsent) {}

void PortPool::IndexSet::Insert(uint32_t index) {
  if (pos_[index] != kAbsent) {
    return;
  }
  pos_[index] = static_cast<uint32_t>(size_);
  items_[size_++] = index;
}

void PortPool::IndexSet::Erase(uint32_t index) {
  const uint32_t pos = pos_[index];
  if (pos == kAbsent) {
    return;
  }
  const uint32_t last = items_[--size_];
  items_[pos] = last;
  pos_[last] = pos;
  pos_[index] = kAbsent;
}

// ---- Partition ----

std::vector<PortRange> PortPool::Partition(uint16_t min, uint16_t max, unsigned workers) {
  if (workers == 0 || min > max) {
    return {};
  }
  const uint64_t n = uint64_t{max} - min + 1;
  if (n < workers) {
    return {};
  }
  auto ideal = [&](uint64_t i) { return uint64_t{min} + i * n / workers; };
  // bounds[i] is the first port of slice i; bounds[workers] is one past max.
  std::vector<uint64_t> bounds(workers + 1);
  bounds[0] = min;
  bounds[workers] = uint64_t{max} + 1;
  for (unsigned i = 1; i < workers; ++i) {
    uint64_t b = ideal(i);
    // Start slices on even ports so an EVEN-PORT pair (RFC 8656 section 7.2)
    // never straddles two workers; keep every slice non-empty. The ideal
    // bounds strictly increase because n >= workers, so moving down only
    // needs a check against the previous bound and moving up against the
    // next ideal one.
    if (b % 2 == 1) {
      if (b - 1 > bounds[i - 1]) {
        b -= 1;
      } else if (b + 1 < ideal(i + 1)) {
        b += 1;
      }
    }
    bounds[i] = b;
  }
  std::vector<PortRange> slices;
  slices.reserve(workers);
  for (unsigned i = 0; i < workers; ++i) {
    slices.push_back(
        PortRange{static_cast<uint16_t>(bounds[i]), static_cast<uint16_t>(bounds[i + 1] - 1)});
  }
  return slices;
}

// ---- PortPool ----

base::Result<PortPool> PortPool::Create(PortRange range) {
  if (range.first == 0 || range.first > range.last) {
    return base::InvalidArgument("relay port range must be non-empty and exclude port 0");
  }
  return PortPool(range);
}

PortPool::PortPool(PortRange range)
    : range_(range),
      state_(range.size(), State::kFree),
      free_(range.size()),
      free_even_(range.size()),
      free_pairs_(range.size()),
      token_(range.size(), 0),
      socket_(range.size(), 0),
      deadline_(range.size()),
      next_(range.size(), kNil),
      prev_(range.size(), kNil) {
  released_sockets_.reserve(range.size() / 2 + 1);
  for (uint32_t slot = 0; slot < range.size(); ++slot) {
    free_.Insert(slot);
    if (PortAt(slot) % 2 == 0) {
      free_even_.Insert(slot);
    }
  }
  for (uint32_t slot = 0; slot < range.size(); ++slot) {
    UpdatePair(slot);
  }
}

uint32_t PortPool::PickRandom(const IndexSet& set) {
  // The modulo bias is below 2^-47 for a set of at most 2^16 entries.
  return set.at(static_cast<size_t>(base::RandomUint64() % set.size()));
}

void PortPool::UpdatePair(uint32_t slot) {
  const uint16_t port = PortAt(slot);
  uint32_t even_slot = slot;
  if (port % 2 == 1) {
    if (slot == 0) {
      return;  // an odd first port has no even partner inside the slice
    }
    even_slot = slot - 1;
  }
  const uint32_t odd_slot = even_slot + 1;
  if (odd_slot >= state_.size()) {
    return;  // an even last port has no odd partner inside the slice
  }
  if (state_[even_slot] == State::kFree && state_[odd_slot] == State::kFree) {
    free_pairs_.Insert(even_slot);
  } else {
    free_pairs_.Erase(even_slot);
  }
}

void PortPool::SetState(uint32_t slot, State state) {
  const State old = state_[slot];
  if (old == state) {
    return;
  }
  if (old == State::kFree) {
    free_.Erase(slot);
    free_even_.Erase(slot);
  }
  if (old == State::kReserved) {
    Unlink(reservations_, slot);
    token_[slot] = 0;
    if (socket_[slot] != 0) {
      released_sockets_.push_back(socket_[slot]);
      socket_[slot] = 0;
    }
    --reserved_count_;
  }
  if (old == State::kUnusable) {
    Unlink(unusable_, slot);
  }
  state_[slot] = state;
  if (state == State::kFree) {
    free_.Insert(slot);
    if (PortAt(slot) % 2 == 0) {
      free_even_.Insert(slot);
    }
  }
  if (state == State::kReserved) {
    ++reserved_count_;
  }
  UpdatePair(slot);
}

std::optional<uint16_t> PortPool::Acquire() {
  if (free_.size() == 0) {
    return std::nullopt;
  }
  const uint32_t slot = PickRandom(free_);
  SetState(slot, State::kInUse);
  return PortAt(slot);
}

std::optional<EvenPortGrant> PortPool::AcquireEven(bool reserve_next, base::MonoTime now) {
  if (!reserve_next) {
    if (free_even_.size() == 0) {
      return std::nullopt;
    }
    const uint32_t slot = PickRandom(free_even_);
    SetState(slot, State::kInUse);
    return EvenPortGrant{PortAt(slot), 0};
  }
  if (free_pairs_.size() == 0) {
    return std::nullopt;
  }
  const uint32_t slot = PickRandom(free_pairs_);
  const uint32_t odd = slot + 1;
  SetState(slot, State::kInUse);
  SetState(odd, State::kReserved);

  // The token is 48 random bits above the reserved port number. RFC 8656
  // section 14.9 leaves its content to the server; the port in the low bits
  // finds the reservation (and the worker owning it) without a table, and the
  // client knows that port anyway (relayed port + 1). Guessing the random
  // part takes 2^47 authenticated Allocate requests on average.
  const uint16_t odd_port = PortAt(odd);
  token_[odd] = (base::RandomUint64() << 16) | odd_port;
  deadline_[odd] = now + kReservationLifetime;
  Link(reservations_, odd);
  return EvenPortGrant{PortAt(slot), token_[odd]};
}

void PortPool::Link(DeadlineList& list, uint32_t slot) {
  // Append in deadline order. With a monotonic `now` that is the tail, so
  // the walk is O(1); it only matters if a caller passes times out of order.
  uint32_t after = list.tail;
  while (after != kNil && deadline_[after] > deadline_[slot]) {
    after = prev_[after];
  }
  const uint32_t before = (after == kNil) ? list.head : next_[after];
  prev_[slot] = after;
  next_[slot] = before;
  (after == kNil ? list.head : next_[after]) = slot;
  (before == kNil ? list.tail : prev_[before]) = slot;
}

void PortPool::Unlink(DeadlineList& list, uint32_t slot) {
  const uint32_t prev = prev_[slot];
  const uint32_t next = next_[slot];
  (prev == kNil ? list.head : next_[prev]) = next;
  (next == kNil ? list.tail : prev_[next]) = prev;
  prev_[slot] = kNil;
  next_[slot] = kNil;
}

bool PortPool::AttachSocket(uint64_t token, uintptr_t socket) {
  const uint16_t port = TokenPort(token);
  if (socket == 0 || !range_.Contains(port)) {
    return false;
  }
  const uint32_t slot = SlotOf(port);
  if (state_[slot] != State::kReserved || token_[slot] != token || socket_[slot] != 0) {
    return false;
  }
  socket_[slot] = socket;
  return true;
}

std::optional<uint16_t> PortPool::AcquireReserved(uint64_t token, base::MonoTime now,
                                                  uintptr_t* socket) {
  if (socket != nullptr) {
    *socket = 0;
  }
  const uint16_t port = TokenPort(token);
  if (!range_.Contains(port)) {
    return std::nullopt;
  }
  const uint32_t slot = SlotOf(port);
  if (state_[slot] != State::kReserved || token_[slot] != token) {
    return std::nullopt;
  }
  if (deadline_[slot] <= now) {
    SetState(slot, State::kFree);
    return std::nullopt;
  }
  if (socket != nullptr) {
    *socket = std::exchange(socket_[slot], 0);
  }
  SetState(slot, State::kInUse);
  return port;
}

void PortPool::TakeReleasedSockets(std::vector<uintptr_t>* out) {
  out->insert(out->end(), released_sockets_.begin(), released_sockets_.end());
  released_sockets_.clear();
}

void PortPool::ExpireReservations(base::MonoTime now) {
  for (DeadlineList* list : {&reservations_, &unusable_}) {
    while (list->head != kNil && deadline_[list->head] <= now) {
      SetState(list->head, State::kFree);
    }
  }
}

void PortPool::Release(uint16_t port) {
  if (!range_.Contains(port)) {
    return;
  }
  SetState(SlotOf(port), State::kFree);
}

void PortPool::MarkUnusable(uint16_t port, base::MonoTime now) {
  if (!range_.Contains(port)) {
    return;
  }
  const uint32_t slot = SlotOf(port);
  SetState(slot, State::kFree);  // leaves any list it was on
  SetState(slot, State::kUnusable);
  deadline_[slot] = now + kUnusableRetryAfter;
  Link(unusable_, slot);
}

}  // namespace turnkey::relay
