// PortPool: the relay ports one TURN worker owns.
//
// Relay ports are partitioned between workers (DESIGN.md section 3): each
// worker gets one contiguous slice from Partition() and builds one PortPool
// over it, so choosing a port never takes a lock. The pool only does the
// bookkeeping; the caller binds the socket and reports a port the OS refused
// with MarkUnusable().
//
// Every port is in exactly one state: free, in use (handed out by an Acquire
// call), reserved (the odd port after an EVEN-PORT allocation with the R bit,
// waiting for an Allocate that carries its RESERVATION-TOKEN) or unusable.
// Release() returns any port that is not free to the free state.
//
// A reservation can carry the socket that holds its port (AttachSocket(), an
// opaque value to the pool): the claim hands it out (AcquireReserved()), and
// every other way a reservation ends (expiry, Release(), MarkUnusable(), an
// expired token presented) moves it to a list the owner drains with
// TakeReleasedSockets() and closes. The pool never forgets a socket.
//
// All operations are O(1) (ExpireReservations() is O(1) per expired
// reservation) and allocate nothing after Create(): every table is sized to
// the slice up front (the released-socket list grows only if more sockets are
// released between two drains than the slice has odd ports).
//
// Thread-safety: none. One PortPool per worker thread, used only there.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "base/clock.h"
#include "base/status.h"

namespace turnkey::relay {

// An inclusive range of UDP/TCP ports, [first, last].
struct PortRange {
  uint16_t first = 0;
  uint16_t last = 0;

  size_t size() const { return first > last ? 0 : size_t{last} - first + 1; }
  bool Contains(uint16_t port) const { return port >= first && port <= last; }
  friend bool operator==(const PortRange&, const PortRange&) = default;
};

// What AcquireEven() hands out.
struct EvenPortGrant {
  uint16_t port = 0;   // the even port, now in use
  uint64_t token = 0;  // RESERVATION-TOKEN for port + 1, or 0 when none was asked for
};

class PortPool {
 public:
  // How long port + 1 stays reserved after an EVEN-PORT (R=1) allocation
  // (RFC 8656 section 7.2: "approximately 30 seconds").
  static constexpr std::chrono::seconds kReservationLifetime{30};
  // How long a port the OS refused stays out of circulation.
  static constexpr std::chrono::seconds kUnusableRetryAfter{60};

  // Splits [min, max] into `workers` contiguous, disjoint, non-empty slices
  // that together cover the range, in ascending order. Slice boundaries fall
  // on even ports wherever the slice sizes allow, so an even port and the
  // odd port after it always sit in the same slice (EVEN-PORT reservations).
  // Returns an empty vector if workers == 0, min > max, or the range holds
  // fewer ports than workers.
  static std::vector<PortRange> Partition(uint16_t min, uint16_t max, unsigned workers);

  // A pool with every port of `range` free. Fails if the range is empty or
  // contains port 0.
  [[nodiscard]] static base::Result<PortPool> Create(PortRange range);

  PortPool(PortPool&&) = default;
  PortPool& operator=(PortPool&&) = default;

  // A free port chosen at random (RFC 8656 section 7.2 asks for unpredictable
  // relay ports), now in use; nullopt when none is free.
  std::optional<uint16_t> Acquire();

  // A free even port chosen at random, now in use (EVEN-PORT, RFC 8656
  // section 7.2). With `reserve_next`, port + 1 must be free as well and is
  // reserved until now + kReservationLifetime; the grant then carries a
  // token. nullopt when no suitable port is free.
  std::optional<EvenPortGrant> AcquireEven(bool reserve_next, base::MonoTime now);

  // Attaches `socket` (non-zero, opaque) to the live reservation `token`
  // stands for. False, and nothing attached, for an unknown token.
  bool AttachSocket(uint64_t token, uintptr_t socket);

  // Claims the port a reservation token stands for (an Allocate with
  // RESERVATION-TOKEN): the port moves from reserved to in use, and the
  // socket attached to it (0 if none) goes to `*socket`, now the caller's.
  // With a null `socket`, an attached one is released (TakeReleasedSockets).
  // nullopt for an unknown, already claimed or expired token; an expired one
  // is freed.
  std::optional<uint16_t> AcquireReserved(uint64_t token, base::MonoTime now,
                                          uintptr_t* socket = nullptr);

  // Frees every reservation whose deadline is at or before `now`, and every
  // port marked unusable kUnusableRetryAfter or longer before `now`. Call it
  // from the worker's periodic timer.
  void ExpireReservations(base::MonoTime now);

  // Returns `port` to the free state, from in use, reserved (the reservation
  // is dropped) or unusable. A free port or one outside the slice is ignored,
  // so a double release cannot corrupt the pool.
  void Release(uint16_t port);

  // Takes `port` out of circulation because the OS refused to bind it
  // (another program holds it); it comes back with Release(), or by itself
  // kUnusableRetryAfter after `now` (ExpireReservations), since whoever held
  // it may have let it go. Drops a reservation on it. A port outside the
  // slice is ignored.
  void MarkUnusable(uint16_t port, base::MonoTime now);

  // Appends to `out` the sockets of reservations that ended other than by a
  // claim since the last call, and forgets them: the caller closes them.
  void TakeReleasedSockets(std::vector<uintptr_t>* out);

  // The port a token produced by any PortPool refers to (the low 16 bits), so
  // the caller can route a RESERVATION-TOKEN to the worker owning that port.
  // Says nothing about whether the token is valid.
  static uint16_t TokenPort(uint64_t token) { return static_cast<uint16_t>(token); }

  size_t free_count() const { return free_.size(); }
  size_t reserved_count() const { return reserved_count_; }
  size_t capacity() const { return range_.size(); }
  const PortRange& range() const { return range_; }

 private:
  enum class State : uint8_t {
    kFree,      // may be handed out
    kInUse,     // handed out by an Acquire call, until Release or MarkUnusable
    kReserved,  // port + 1 of an EVEN-PORT R=1 allocation, waiting for its token
    kUnusable,  // the OS refused it; out of circulation until Release or its retry time
  };

  // A set of slot indexes with O(1) insert, erase and random pick. Storage
  // is sized once; nothing allocates afterwards.
  class IndexSet {
   public:
    explicit IndexSet(size_t capacity);
    void Insert(uint32_t index);
    void Erase(uint32_t index);
    bool Contains(uint32_t index) const { return pos_[index] != kAbsent; }
    size_t size() const { return size_; }
    uint32_t at(size_t k) const { return items_[k]; }

   private:
    static constexpr uint32_t kAbsent = UINT32_MAX;
    std::vector<uint32_t> items_;
    std::vector<uint32_t> pos_;
    size_t size_ = 0;
  };

  static constexpr uint32_t kNil = UINT32_MAX;

  explicit PortPool(PortRange range);

  uint16_t PortAt(uint32_t slot) const { return static_cast<uint16_t>(range_.first + slot); }
  uint32_t SlotOf(uint16_t port) const { return uint32_t{port} - range_.first; }
  // Every state change goes through here; it keeps the index sets and the
  // reservation list in step with state_.
  void SetState(uint32_t slot, State state);
  // Recomputes whether the pair holding `slot` (even port, odd port) is free.
  void UpdatePair(uint32_t slot);
  static uint32_t PickRandom(const IndexSet& set);

  PortRange range_;
  std::vector<State> state_;
  IndexSet free_;        // slots in kFree
  IndexSet free_even_;   // slots in kFree holding an even port
  IndexSet free_pairs_;  // even slots whose port and port + 1 are both free and in range

  // Reserved and unusable slots, each in a doubly linked list ordered by
  // deadline (one lifetime per list, so creation order). A slot is on at
  // most one list, so the two share the link and deadline arrays.
  struct DeadlineList {
    uint32_t head = kNil;
    uint32_t tail = kNil;
  };
  // Appends `slot` (deadline_[slot] set) in deadline order.
  void Link(DeadlineList& list, uint32_t slot);
  void Unlink(DeadlineList& list, uint32_t slot);

  std::vector<uint64_t> token_;    // per reserved (odd) slot
  std::vector<uintptr_t> socket_;  // per reserved slot: what AttachSocket gave, or 0
  std::vector<uintptr_t> released_sockets_;
  std::vector<base::MonoTime> deadline_;
  std::vector<uint32_t> next_;
  std::vector<uint32_t> prev_;
  DeadlineList reservations_;
  DeadlineList unusable_;
  size_t reserved_count_ = 0;
};

}  // namespace turnkey::relay
