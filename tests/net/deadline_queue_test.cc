#include "net/deadline_queue.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tests/net/net_test_util.h"

namespace turnkey::net {
namespace {

using namespace std::chrono_literals;
using testing::MakeLoop;
using testing::RunUntil;

struct Owner {
  explicit Owner(std::string name) : name(std::move(name)) {}
  std::string name;
  DeadlineQueue<Owner>::Entry entry{this};
};

TEST(DeadlineQueueTest, RunsEachOwnerOnceInDeadlineOrder) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  std::vector<std::string> fired;
  DeadlineQueue<Owner> queue(*loop, [&](Owner& owner) { fired.push_back(owner.name); });
  Owner a("a"), b("b"), c("c"), d("d");
  queue.Schedule(c.entry, 30ms);
  queue.Schedule(a.entry, 10ms);
  queue.Schedule(d.entry, 40ms);
  queue.Schedule(b.entry, 20ms);
  EXPECT_EQ(queue.size(), 4u);
  EXPECT_TRUE(RunUntil(*loop, [&] { return fired.size() == 4; }));
  EXPECT_EQ(fired, (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(queue.size(), 0u);
  EXPECT_FALSE(a.entry.scheduled());
}

TEST(DeadlineQueueTest, RescheduleMovesAndCancelRemoves) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  std::vector<std::string> fired;
  DeadlineQueue<Owner> queue(*loop, [&](Owner& owner) { fired.push_back(owner.name); });
  Owner a("a"), b("b"), c("c"), d("d");
  queue.Schedule(a.entry, 10ms);
  queue.Schedule(b.entry, 20ms);
  queue.Schedule(c.entry, 30ms);
  queue.Schedule(d.entry, 40ms);
  queue.Schedule(a.entry, 50ms);  // later: behind every other
  queue.Schedule(d.entry, 5ms);   // earlier: the new head
  queue.Cancel(b.entry);
  queue.Cancel(b.entry);  // a second cancel is a no-op
  EXPECT_FALSE(b.entry.scheduled());
  EXPECT_EQ(queue.size(), 3u);
  EXPECT_TRUE(RunUntil(*loop, [&] { return fired.size() == 3; }));
  EXPECT_EQ(fired, (std::vector<std::string>{"d", "c", "a"}));
  EXPECT_EQ(queue.size(), 0u);
}

TEST(DeadlineQueueTest, CallbackMayRescheduleItselfAndCancelOthers) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  Owner a("a"), b("b");
  std::vector<std::string> fired;
  DeadlineQueue<Owner>* self = nullptr;
  DeadlineQueue<Owner> queue(*loop, [&](Owner& owner) {
    fired.push_back(owner.name);
    if (fired.size() == 1) {
      // Due again at once, but not in this wakeup; and b never runs.
      self->Schedule(owner.entry, 0ms);
      self->Cancel(b.entry);
    }
  });
  self = &queue;
  queue.Schedule(a.entry, 5ms);
  queue.Schedule(b.entry, 6ms);
  EXPECT_TRUE(RunUntil(*loop, [&] { return fired.size() == 2; }));
  EXPECT_EQ(fired.size(), 2u);
  EXPECT_EQ(fired[1], fired[0]);
  EXPECT_EQ(queue.size(), 0u);
}

TEST(DeadlineQueueTest, ManyEntriesComeOutSorted) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  std::vector<int> fired;
  std::vector<std::unique_ptr<Owner>> owners;
  DeadlineQueue<Owner> queue(*loop, [&](Owner& owner) { fired.push_back(std::stoi(owner.name)); });
  // A fixed scramble of 0..63 (multiplying by an odd number mod 64).
  for (int i = 0; i < 64; ++i) {
    owners.push_back(std::make_unique<Owner>(std::to_string(i)));
  }
  for (int i = 0; i < 64; ++i) {
    const int k = (i * 37) % 64;
    // Buckets 30 ms apart: the delays count from each Schedule() call, and
    // on a loaded machine (sanitizers, two CPUs) the 64 calls can take
    // longer than a millisecond, which turned buckets 1 ms apart around.
    queue.Schedule(owners[k]->entry, std::chrono::milliseconds(30 * (k / 4)));
  }
  for (int k = 1; k < 64; k += 9) {
    queue.Cancel(owners[k]->entry);
  }
  const size_t expected = queue.size();
  EXPECT_TRUE(RunUntil(*loop, [&] { return fired.size() == expected; }));
  for (size_t i = 1; i < fired.size(); ++i) {
    EXPECT_LE(fired[i - 1] / 4, fired[i] / 4) << "at " << i;
  }
  for (int k = 1; k < 64; k += 9) {
    EXPECT_EQ(std::count(fired.begin(), fired.end(), k), 0) << k;
  }
}

}  // namespace
}  // namespace turnkey::net
