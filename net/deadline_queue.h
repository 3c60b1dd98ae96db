// DeadlineQueue: one-shot deadlines for many owners over a single Timer.
//
// For a timer every idle connection needs (a heartbeat): a Timer costs each
// owner its own libevent event, about 200 bytes, where an Entry here is 24
// bytes and a slot in the queue's binary heap.
//
// Each owner embeds an Entry made with a pointer to itself; Schedule() sets
// or moves its deadline, Cancel() takes it out. When a deadline passes the
// entry is taken out and `on_due(owner)` runs; the callback may Schedule()
// or Cancel() any entry, that one included. An entry scheduled from a
// callback waits for a later wakeup, even when its delay is zero. The timer
// may wake up to a few milliseconds early (libevent's coarse clock): an
// owner that must not act before a precise instant checks its own clock,
// as a Timer user must too.
//
// Loop thread only. An owner must Cancel() its entry before the entry is
// destroyed, and the queue must outlive its scheduled entries; the queue
// must not be destroyed from its callback.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <functional>
#include <utility>
#include <vector>

#include "net/timer.h"

namespace turnkey::net {

template <typename Owner>
class DeadlineQueue {
 public:
  using Clock = std::chrono::steady_clock;

  class Entry {
   public:
    explicit Entry(Owner* owner) : owner_(owner) {}
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;

    bool scheduled() const { return index_ != kNone; }

   private:
    friend class DeadlineQueue;
    Owner* owner_;
    size_t index_ = kNone;  // position in the heap
    Clock::time_point deadline_{};
  };

  DeadlineQueue(EventLoop& loop, std::function<void(Owner&)> on_due)
      : on_due_(std::move(on_due)), timer_(loop, [this] { RunDue(); }) {}
  DeadlineQueue(const DeadlineQueue&) = delete;
  DeadlineQueue& operator=(const DeadlineQueue&) = delete;

  // Due `delay` from now (a negative delay counts as zero); replaces an
  // earlier deadline of the same entry.
  void Schedule(Entry& entry, Clock::duration delay) {
    const Clock::time_point deadline = Clock::now() + std::max(delay, Clock::duration::zero());
    if (entry.scheduled()) {
      const bool earlier = deadline < entry.deadline_;
      entry.deadline_ = deadline;
      if (earlier) {
        SiftUp(entry.index_);
      } else {
        SiftDown(entry.index_);
      }
    } else {
      entry.deadline_ = deadline;
      entry.index_ = heap_.size();
      heap_.push_back(&entry);
      SiftUp(entry.index_);
    }
    if (heap_.front() == &entry) {
      Arm();
    }
  }

  void Cancel(Entry& entry) {
    if (!entry.scheduled()) {
      return;
    }
    const size_t index = entry.index_;
    entry.index_ = kNone;
    Entry* last = heap_.back();
    heap_.pop_back();
    if (last != &entry) {
      Place(index, last);
      SiftUp(index);
      SiftDown(last->index_);
    }
    if (heap_.empty()) {
      timer_.Stop();  // an early head left armed would only cost a wakeup
    }
  }

  size_t size() const { return heap_.size(); }
  // The owner whose deadline comes first; null when none is scheduled.
  Owner* earliest() const { return heap_.empty() ? nullptr : heap_.front()->owner_; }

 private:
  static constexpr size_t kNone = static_cast<size_t>(-1);

  void RunDue() {
    // Entries (re)scheduled by the callbacks are due after `now`: at most
    // one callback per entry per wakeup.
    const Clock::time_point now = Clock::now();
    while (!heap_.empty() && heap_.front()->deadline_ < now) {
      Entry* due = heap_.front();
      Cancel(*due);
      on_due_(*due->owner_);
    }
    if (!heap_.empty()) {
      Arm();
    }
  }

  void Arm() { timer_.Start(heap_.front()->deadline_ - Clock::now()); }

  void Place(size_t index, Entry* entry) {
    heap_[index] = entry;
    entry->index_ = index;
  }
  void SiftUp(size_t index) {
    Entry* entry = heap_[index];
    while (index > 0) {
      const size_t parent = (index - 1) / 2;
      if (!(entry->deadline_ < heap_[parent]->deadline_)) {
        break;
      }
      Place(index, heap_[parent]);
      index = parent;
    }
    Place(index, entry);
  }
  void SiftDown(size_t index) {
    Entry* entry = heap_[index];
    const size_t count = heap_.size();
    while (true) {
      size_t child = 2 * index + 1;
      if (child >= count) {
        break;
      }
      if (child + 1 < count && heap_[child + 1]->deadline_ < heap_[child]->deadline_) {
        ++child;
      }
      if (!(heap_[child]->deadline_ < entry->deadline_)) {
        break;
      }
      Place(index, heap_[child]);
      index = child;
    }
    Place(index, entry);
  }

  std::function<void(Owner&)> on_due_;
  std::vector<Entry*> heap_;  // a binary min-heap on deadline_
  Timer timer_;
};

}  // namespace turnkey::net
