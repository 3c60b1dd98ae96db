// CallStoreRecorder over a real work queue, a running loop and an in-memory
// SQLite store behind FlakyStore: what lands in the calls table, group
// commit, retries of a failed batch, refused writes, and the flush at the
// end. Waits are on the recorder's counters with a deadline.
#include "signal/call_store_recorder.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "metrics/registry.h"
#include "signal/unwritten_calls.h"
#include "tests/config/test_util.h"
#include "tests/signal/recorder_fixture.h"

namespace turnkey::signal {
namespace {

using namespace std::chrono_literals;
using testing::FlakyStore;

// `call` answered `answered` after it rang, hung up by `by` after `talk`.
CallEndRecord HungUp(const CallInfo& call, std::string by, std::chrono::seconds answered,
                     std::chrono::seconds talk) {
  return CallEndRecord{.call = call,
                       .status = metrics::CallStatus::kCompleted,
                       .reason = "hangup",
                       .ended_by = std::move(by),
                       .answered_at = call.created_at + answered,
                       .ended_at = call.created_at + answered + talk,
                       .duration_seconds = talk.count()};
}

class CallStoreRecorderTest : public testing::RecorderFixture {
 protected:
  // Options under which only a full batch, a Flush or a barrier posts.
  static CallStoreRecorderOptions Held() {
    CallStoreRecorderOptions options;
    options.commit_delay = 1h;
    return options;
  }

  // The stored row of call `id` has `status` and `duration_seconds`.
  void ExpectRow(const std::string& id, sql::CallStatus status, int64_t duration_seconds) {
    auto row = store_->GetCall(id);
    ASSERT_TRUE(row.has_value()) << id << ": " << row.error().message;
    EXPECT_EQ(row->status, status) << id;
    EXPECT_EQ(row->duration_seconds, duration_seconds) << id;
  }

  // unwritten_path in a directory removed after the test.
  std::string UnwrittenPath() const { return (dir_.path() / "unwritten.jsonl").string(); }
  // A recorder whose first batch (c1's insert) the database holds without an
  // answer, with a 100 ms slow_batch and the file at UnwrittenPath(); c1.
  CallInfo HoldTheFirstBatch(CallStoreRecorderOptions options = {}) {
    options.commit_delay = 0ms;
    options.slow_batch = 100ms;
    options.unwritten_path = UnwrittenPath();
    MakeRecorder(options);
    store_->Close();
    const CallInfo c1 = Info("c1");
    OnLoop([&] {
      recorder_->CallCreated(c1);
      return 0;
    });
    EXPECT_TRUE(store_->WaitHeld(10s));
    return c1;
  }

  // The call ids of the writes in the file, in its order.
  static std::vector<std::string> SavedIds(const std::string& path) {
    std::vector<std::string> ids;
    auto saved = ReadUnwrittenCalls(path, 0, 100);
    EXPECT_TRUE(saved.has_value()) << saved.error().message;
    if (saved.has_value()) {
      for (const sql::CallWrite& write : saved->writes) {
        ids.push_back(sql::CallWriteCallId(write));
      }
    }
    return ids;
  }

  CallInfo Info(const std::string& id) {
    return CallInfo{.id = id,
                    .caller_id = "alice-id",
                    .callee_id = "bob-id",
                    .type = metrics::CallType::kVideo,
                    .created_at = clock_.Now()};
  }

  config::testing::TempDir dir_;
};

TEST_F(CallStoreRecorderTest, MapsStatusesToTheStore) {
  EXPECT_EQ(StoredCallStatus(metrics::CallStatus::kCompleted), sql::CallStatus::kCompleted);
  EXPECT_EQ(StoredCallStatus(metrics::CallStatus::kMissed), sql::CallStatus::kMissed);
  EXPECT_EQ(StoredCallStatus(metrics::CallStatus::kUnavailable), sql::CallStatus::kMissed);
  EXPECT_EQ(StoredCallStatus(metrics::CallStatus::kRejected), sql::CallStatus::kRejected);
  EXPECT_EQ(StoredCallStatus(metrics::CallStatus::kBusy), sql::CallStatus::kBusy);
  EXPECT_EQ(StoredCallStatus(metrics::CallStatus::kCancelled), sql::CallStatus::kCancelled);
  EXPECT_EQ(StoredCallStatus(metrics::CallStatus::kConnectionLost), sql::CallStatus::kFailed);
}

TEST_F(CallStoreRecorderTest, RecordsACallFromCreateToEnd) {
  MakeRecorder();
  const CallInfo call = Info("call1");
  OnLoop([&] {
    recorder_->CallCreated(call);
    recorder_->CallAnswered(call, call.created_at + 2s);
    recorder_->IceReported(
        IceReportRecord{.call_id = "call1",
                        .user_id = "alice-id",
                        .side = CallSide::kCaller,
                        .result = metrics::IceResult::kConnected,
                        .local_candidate_type = metrics::CandidateType::kRelay,
                        .remote_candidate_type = metrics::CandidateType::kUnknown,
                        .relay_protocol = "udp",
                        .rtt_ms = 23,
                        .cause = metrics::IceFailureCause::kTurnAuth,  // only for a failure
                        .reported_at = call.created_at + 3s});
    recorder_->IceReported(IceReportRecord{.call_id = "call1",
                                           .user_id = "bob-id",
                                           .side = CallSide::kCallee,
                                           .result = metrics::IceResult::kFailed,
                                           .cause = metrics::IceFailureCause::kTurnUnreachable,
                                           .reported_at = call.created_at + 4s});
    recorder_->CallEnded(HungUp(call, "alice-id", 2s, 60s));
    return 0;
  });
  // The four records after the insert were folded into it while it waited.
  ASSERT_TRUE(WaitUntil([&] { return stats_->writes_applied == 1; }));
  EXPECT_EQ(stats_->records_merged, 4u);
  auto row = store_->GetCall("call1");
  ASSERT_TRUE(row.has_value()) << row.error().message;
  EXPECT_EQ(row->caller_id, "alice-id");
  EXPECT_EQ(row->callee_id, "bob-id");
  EXPECT_EQ(row->type, sql::CallType::kVideo);
  EXPECT_EQ(row->status, sql::CallStatus::kCompleted);
  EXPECT_EQ(row->end_reason, "hangup");
  EXPECT_EQ(row->created_at_ms, kUnixBase * 1000);
  EXPECT_EQ(row->answered_at_ms, kUnixBase * 1000 + 2000);
  EXPECT_EQ(row->ended_at_ms, kUnixBase * 1000 + 62000);
  EXPECT_EQ(row->duration_seconds, 60);
  ASSERT_TRUE(row->caller_ice.has_value());
  EXPECT_EQ(row->caller_ice->state, "connected");
  EXPECT_EQ(row->caller_ice->local_candidate_type, "relay");
  EXPECT_EQ(row->caller_ice->remote_candidate_type, "");
  EXPECT_EQ(row->caller_ice->relay_protocol, "udp");
  EXPECT_EQ(row->caller_ice->rtt_ms, 23);
  EXPECT_EQ(row->caller_ice->failure_cause, "");  // it connected
  ASSERT_TRUE(row->callee_ice.has_value());
  EXPECT_EQ(row->callee_ice->state, "failed");
  EXPECT_EQ(row->callee_ice->failure_cause, "turn_unreachable");
  EXPECT_EQ(stats_->writes_failed, 0u);
}

TEST_F(CallStoreRecorderTest, WallClockTimesKeepTheMillisecondsOfTheStart) {
  // A recorder made 750 ms into a second: its times must not lose those 750 ms
  // (they once did, putting every stored time up to a second in the past).
  clock_.Advance(750ms);
  MakeRecorder();
  EXPECT_EQ(recorder_->UnixMs(clock_.Now()), clock_.UnixMillis());
  clock_.Advance(1500ms);
  EXPECT_EQ(recorder_->UnixMs(clock_.Now()), clock_.UnixMillis());
}

TEST_F(CallStoreRecorderTest, CallTimesFollowAWallClockThatStepped) {
  MakeRecorder();
  auto follow = [&] { return OnLoop([&] { return recorder_->FollowWallClock(); }); };
  clock_.Advance(10s);
  // Under a second: kept (what slewing and rounding may leave).
  clock_.StepWall(500ms);
  EXPECT_EQ(follow(), base::Duration::zero());
  EXPECT_EQ(recorder_->UnixMs(clock_.Now()), clock_.UnixMillis() - 500);
  // NTP putting right a clock that was an hour behind at the start.
  clock_.StepWall(1h);
  EXPECT_EQ(follow(), 1h + 500ms);
  EXPECT_EQ(recorder_->UnixMs(clock_.Now()), clock_.UnixMillis());
  clock_.StepWall(-2h);
  EXPECT_EQ(follow(), -2h);
  EXPECT_EQ(recorder_->UnixMs(clock_.Now()), clock_.UnixMillis());
  clock_.Advance(5s);
  EXPECT_EQ(follow(), base::Duration::zero());
}

TEST_F(CallStoreRecorderTest, TimesBeforeAStepKeepTheirValueAndAnEndIsNeverBeforeThem) {
  MakeRecorder();
  const CallInfo call = Info("stepped");
  const base::MonoTime answered = call.created_at + 2s;
  clock_.Advance(5s);
  const int64_t answered_ms = recorder_->UnixMs(answered);
  // The clock steps back an hour during the call, which ends 3 s later.
  clock_.StepWall(-1h);
  OnLoop([&] {
    recorder_->FollowWallClock();
    recorder_->CallCreated(call);
    recorder_->CallAnswered(call, answered);
    recorder_->CallEnded(CallEndRecord{.call = call,
                                       .status = metrics::CallStatus::kCompleted,
                                       .reason = "hangup",
                                       .ended_by = "alice-id",
                                       .answered_at = answered,
                                       .ended_at = clock_.Now() + 3s,
                                       .duration_seconds = 6});
    return 0;
  });
  ASSERT_TRUE(WaitUntil([&] { return stats_->writes_applied == 1; }));
  auto row = store_->GetCall("stepped");
  ASSERT_TRUE(row.has_value()) << row.error().message;
  EXPECT_EQ(row->created_at_ms, kUnixBase * 1000);
  EXPECT_EQ(row->answered_at_ms, answered_ms);
  // Its Unix time by the new anchor is an hour before the answer: held there.
  EXPECT_EQ(row->ended_at_ms, answered_ms);
  EXPECT_EQ(row->duration_seconds, 6);
}

TEST_F(CallStoreRecorderTest, UnavailableIsMissedAndConnectionLostIsFailed) {
  MakeRecorder();
  OnLoop([&] {
    const CallInfo offline = Info("offline");
    recorder_->CallCreated(offline);
    recorder_->CallEnded(CallEndRecord{.call = offline,
                                       .status = metrics::CallStatus::kUnavailable,
                                       .reason = "unavailable",
                                       .ended_at = offline.created_at});
    const CallInfo lost = Info("lost");
    recorder_->CallCreated(lost);
    recorder_->CallAnswered(lost, lost.created_at + 1s);
    recorder_->CallEnded(CallEndRecord{.call = lost,
                                       .status = metrics::CallStatus::kConnectionLost,
                                       .reason = "connection_lost",
                                       .ended_by = "bob-id",
                                       .answered_at = lost.created_at + 1s,
                                       .ended_at = lost.created_at + 5s,
                                       .duration_seconds = 4});
    return 0;
  });
  ASSERT_TRUE(WaitUntil([&] { return stats_->writes_applied == 2; }));
  EXPECT_EQ(stats_->records_merged, 3u);
  auto offline = store_->GetCall("offline");
  ASSERT_TRUE(offline.has_value());
  EXPECT_EQ(offline->status, sql::CallStatus::kMissed);
  EXPECT_EQ(offline->end_reason, "unavailable");
  EXPECT_FALSE(offline->answered_at_ms.has_value());
  auto lost = store_->GetCall("lost");
  ASSERT_TRUE(lost.has_value());
  EXPECT_EQ(lost->status, sql::CallStatus::kFailed);
  EXPECT_EQ(lost->end_reason, "connection_lost");
  EXPECT_EQ(lost->duration_seconds, 4);
}

TEST_F(CallStoreRecorderTest, RecordsWaitForTheCommitDelayAndGoOutTogether) {
  CallStoreRecorderOptions options = Held();
  options.max_batch = 4;
  MakeRecorder(options);
  OnLoop([&] {
    for (int i = 0; i < 3; ++i) {
      recorder_->CallCreated(Info("waiting" + std::to_string(i)));
    }
    EXPECT_EQ(recorder_->pending(), 3u);
    EXPECT_EQ(recorder_->in_flight(), 0u);
    recorder_->CallCreated(Info("fills-the-batch"));
    EXPECT_EQ(recorder_->pending(), 0u);
    return 0;
  });
  ASSERT_TRUE(WaitUntil([&] { return stats_->writes_applied == 4; }));
  EXPECT_EQ(store_->batches(), (std::vector<size_t>{4}));
}

TEST_F(CallStoreRecorderTest, AWriteBarrierMakesEarlierRecordsVisible) {
  MakeRecorder(Held());
  const CallInfo call = Info("seen");
  auto barrier = OnLoop([&] {
    recorder_->CallCreated(call);
    recorder_->CallEnded(CallEndRecord{.call = call,
                                       .status = metrics::CallStatus::kMissed,
                                       .reason = "timeout",
                                       .ended_at = call.created_at + 30s});
    return recorder_->WriteBarrier();
  });
  EXPECT_TRUE(barrier());  // as a history read does on its worker
  auto row = store_->GetCall("seen");
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->status, sql::CallStatus::kMissed);
  EXPECT_EQ(row->end_reason, "timeout");
}

TEST_F(CallStoreRecorderTest, AnUpdateTheStoreWouldRefuseIsNotMergedIntoTheInsert) {
  MakeRecorder(Held());
  const CallInfo call = Info("kept");
  auto barrier = OnLoop([&] {
    recorder_->CallCreated(call);
    recorder_->CallEnded(CallEndRecord{.call = call,
                                       .status = metrics::CallStatus::kCompleted,
                                       .reason = "hangup",
                                       .ended_at = call.created_at + 1s,
                                       .duration_seconds = -5});
    return recorder_->WriteBarrier();
  });
  barrier();
  EXPECT_EQ(stats_->records_merged, 0u);
  EXPECT_EQ(stats_->writes_applied, 1u);
  EXPECT_EQ(stats_->writes_failed, 1u);
  EXPECT_EQ(HistoryWrites(metrics::HistoryWriteResult::kApplied), 1u);
  EXPECT_EQ(HistoryWrites(metrics::HistoryWriteResult::kRefused), 1u);
  EXPECT_EQ(HistoryWrites(metrics::HistoryWriteResult::kLost), 0u);
  auto row = store_->GetCall("kept");
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->status, sql::CallStatus::kRinging);
}

TEST_F(CallStoreRecorderTest, StateUpdatesAfterTheInsertWentOutAreMergedTogether) {
  MakeRecorder(Held());
  const CallInfo call = Info("long");
  auto barrier = OnLoop([&] {
    recorder_->CallCreated(call);
    recorder_->Flush();  // the insert goes out alone
    recorder_->CallAnswered(call, call.created_at + 2s);
    recorder_->IceReported(IceReportRecord{.call_id = "long",
                                           .user_id = "bob-id",
                                           .side = CallSide::kCallee,
                                           .result = metrics::IceResult::kConnected,
                                           .local_candidate_type = metrics::CandidateType::kHost,
                                           .remote_candidate_type = metrics::CandidateType::kHost,
                                           .reported_at = call.created_at + 3s});
    recorder_->CallEnded(HungUp(call, "bob-id", 2s, 10s));
    // The end replaced the answer's update; the ICE report waits on its own.
    EXPECT_EQ(recorder_->pending(), 2u);
    return recorder_->WriteBarrier();
  });
  barrier();
  EXPECT_EQ(stats_->records_merged, 1u);
  EXPECT_EQ(stats_->writes_applied, 3u);
  auto row = store_->GetCall("long");
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->status, sql::CallStatus::kCompleted);
  EXPECT_EQ(row->answered_at_ms, kUnixBase * 1000 + 2000);
  EXPECT_EQ(row->ended_at_ms, kUnixBase * 1000 + 12000);
  EXPECT_EQ(row->duration_seconds, 10);
  ASSERT_TRUE(row->callee_ice.has_value());
  EXPECT_EQ(row->callee_ice->state, "connected");
}

TEST_F(CallStoreRecorderTest, WritesArrivingDuringACommitGoOutAsOneBatch) {
  MakeRecorder();
  store_->Close();
  OnLoop([&] {
    recorder_->CallCreated(Info("first"));
    return 0;
  });
  ASSERT_TRUE(store_->WaitHeld(10s));
  OnLoop([&] {
    for (int i = 0; i < 10; ++i) {
      recorder_->CallCreated(Info("later" + std::to_string(i)));
    }
    EXPECT_EQ(recorder_->pending(), 10u);
    EXPECT_EQ(recorder_->in_flight(), 1u);
    return 0;
  });
  store_->Open();
  ASSERT_TRUE(WaitUntil([&] { return stats_->writes_applied == 11; }));
  EXPECT_EQ(store_->batches(), (std::vector<size_t>{1, 10}));
  EXPECT_EQ(stats_->batches, 2u);
}

TEST_F(CallStoreRecorderTest, ABatchThatFailsAsAWholeIsRetried) {
  CallStoreRecorderOptions options;
  options.retry_delays = {1ms, 1ms, 1ms};
  MakeRecorder(options);
  store_->FailNext(2);
  OnLoop([&] {
    recorder_->CallCreated(Info("retried"));
    return 0;
  });
  ASSERT_TRUE(WaitUntil([&] { return stats_->writes_applied == 1; }));
  EXPECT_EQ(stats_->retries, 2u);
  EXPECT_EQ(stats_->writes_dropped, 0u);
  EXPECT_EQ(store_->batches().size(), 3u);
  EXPECT_TRUE(store_->GetCall("retried").has_value());
}

// A history route that finds no row must know whether the row may still be
// waiting in memory (DELETE answered 404 for a call written later).
TEST_F(CallStoreRecorderTest, AWriteBarrierSaysWhetherEverythingBeforeItReachedTheStore) {
  CallStoreRecorderOptions options;
  // Long enough that the second barrier surely comes before the retry, on
  // a loaded machine too (300 ms was not always).
  options.retry_delays = {2s};
  MakeRecorder(options);
  store_->FailNext(1);
  auto barrier = OnLoop([&] {
    recorder_->CallCreated(Info("away"));
    return recorder_->WriteBarrier();
  });
  EXPECT_FALSE(barrier());  // its batch failed: the record waits for the retry
  EXPECT_FALSE(store_->GetCall("away").has_value());
  auto while_held = OnLoop([&] { return recorder_->WriteBarrier(); });
  EXPECT_FALSE(while_held());
  ASSERT_TRUE(WaitUntil([&] { return stats_->writes_applied == 1; }));
  auto after = OnLoop([&] { return recorder_->WriteBarrier(); });
  EXPECT_TRUE(after());
  EXPECT_TRUE(store_->GetCall("away").has_value());
}

// CI under load: a barrier taken after its batch had failed on the worker,
// before the loop heard of it, compared failure marks read too late and
// answered true for a record still in memory. Here the loop is held until
// the batch has failed, then the second barrier is taken.
TEST_F(CallStoreRecorderTest, ABarrierAfterAnUnheardFailureSaysTheRecordIsHeld) {
  CallStoreRecorderOptions options;
  options.retry_delays = {2s};
  MakeRecorder(options);
  store_->FailNext(1);
  auto [first, second] = OnLoop([&] {
    recorder_->CallCreated(Info("away"));
    // Blocks this loop task until the worker is done with the batch.
    const bool first = recorder_->WriteBarrier()();
    return std::make_pair(first, recorder_->WriteBarrier());
  });
  EXPECT_FALSE(first);
  EXPECT_FALSE(second());
  EXPECT_FALSE(store_->GetCall("away").has_value());
  ASSERT_TRUE(WaitUntil([&] { return stats_->writes_applied == 1; }));
  EXPECT_TRUE(OnLoop([&] { return recorder_->WriteBarrier(); })());
}
// The MariaDB audit: a history read's barrier posted the call's end while
// the batch with its insert was still in flight; that batch failed (a table
// lock past the read timeout), the end then ran alone, was refused as "call
// not found", and the call stayed ringing. A batch after a failed one is not
// tried; both go back in order and are retried together.
TEST_F(CallStoreRecorderTest, ABatchBehindAFailedOneWaitsForItsRetryInOrder) {
  CallStoreRecorderOptions options;
  options.commit_delay = 0ms;
  options.retry_delays = {1ms};
  MakeRecorder(options);
  store_->Close();
  store_->FailNext(1);
  const CallInfo call = Info("behind");
  OnLoop([&] {
    recorder_->CallCreated(call);
    return 0;
  });
  ASSERT_TRUE(store_->WaitHeld(5s));
  OnLoop([&] {
    recorder_->CallEnded(CallEndRecord{.call = call,
                                       .status = metrics::CallStatus::kCompleted,
                                       .reason = "hangup",
                                       .ended_at = call.created_at + 30s});
    recorder_->WriteBarrier();  // posts the end while the insert is held
    return recorder_->in_flight();
  });
  store_->Open();
  ASSERT_TRUE(WaitUntil([&] { return stats_->writes_applied == 2; }));
  EXPECT_EQ(stats_->writes_failed, 0u);
  EXPECT_EQ(stats_->writes_dropped, 0u);
  auto row = store_->GetCall("behind");
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->status, sql::CallStatus::kCompleted);
}

// An outage longer than the retry delays: the last delay repeats until the
// store takes the batch; nothing is given up (the durability audit lost
// every call of a 45 s MariaDB outage to the old limit of five attempts).
TEST_F(CallStoreRecorderTest, RetriesAtTheLastDelayForAsLongAsTheOutageLasts) {
  CallStoreRecorderOptions options;
  options.retry_delays = {1ms};
  MakeRecorder(options);
  store_->FailNext(8);
  OnLoop([&] {
    recorder_->CallCreated(Info("kept"));
    return 0;
  });
  ASSERT_TRUE(WaitUntil([&] { return stats_->writes_applied == 1; }));
  EXPECT_EQ(stats_->retries, 8u);
  EXPECT_EQ(stats_->writes_dropped, 0u);
  EXPECT_EQ(store_->batches().size(), 9u);
  EXPECT_EQ(HistoryWrites(metrics::HistoryWriteResult::kLost), 0u);
}

// A batch that fails for a reason other than the database's availability
// (here a write it cannot take) is retried as listed, then one write at a
// time: the others go in, and only that one is given up.
TEST_F(CallStoreRecorderTest, ABadWriteIsIsolatedInsteadOfHoldingTheRestBack) {
  CallStoreRecorderOptions options;
  options.retry_delays = {1ms, 1ms};
  options.commit_delay = 50ms;
  MakeRecorder(options);
  store_->Poison("bad");
  OnLoop([&] {
    recorder_->CallCreated(Info("before"));
    recorder_->CallCreated(Info("bad"));
    recorder_->CallCreated(Info("after"));
    return 0;
  });
  ASSERT_TRUE(WaitUntil([&] { return stats_->writes_applied + stats_->writes_dropped == 3; }));
  EXPECT_EQ(stats_->writes_applied, 2u);
  EXPECT_EQ(stats_->writes_dropped, 1u);
  EXPECT_TRUE(store_->GetCall("before").has_value());
  EXPECT_TRUE(store_->GetCall("after").has_value());
  EXPECT_FALSE(store_->GetCall("bad").has_value());
  // Later records go out in batches again.
  OnLoop([&] {
    recorder_->CallCreated(Info("later1"));
    recorder_->CallCreated(Info("later2"));
    return 0;
  });
  ASSERT_TRUE(WaitUntil([&] { return stats_->writes_applied == 4; }));
  EXPECT_EQ(store_->batches().back(), 2u);
}

// At shutdown a hung database cannot hold the stop: a batch that has not
// started shutdown_budget after the destruction is counted lost unwritten.
TEST_F(CallStoreRecorderTest, AtShutdownBatchesPastTheBudgetAreCountedLost) {
  CallStoreRecorderOptions options;
  options.shutdown_budget = 50ms;
  MakeRecorder(options);
  store_->Close();
  OnLoop([&] {
    recorder_->CallCreated(Info("first"));
    return 0;
  });
  ASSERT_TRUE(store_->WaitHeld(10s));  // its batch waits in the store
  OnLoop([&] {
    recorder_->CallCreated(Info("second"));
    recorder_.reset();  // Flush posts "second" behind it
    return 0;
  });
  std::this_thread::sleep_for(150ms);
  store_->Open();
  ASSERT_TRUE(WaitUntil([&] { return stats_->writes_applied + stats_->writes_dropped == 2; }));
  EXPECT_EQ(stats_->writes_applied, 1u);
  EXPECT_EQ(stats_->writes_dropped, 1u);
  EXPECT_TRUE(store_->GetCall("first").has_value());
  EXPECT_FALSE(store_->GetCall("second").has_value());
  // What monitoring sees: turnkey_call_history_writes_total{result="lost"}.
  EXPECT_EQ(HistoryWrites(metrics::HistoryWriteResult::kLost), 1u);
}

// With a file to save them in, the writes the stop gives up on wait there
// for the next start instead of being lost.
TEST_F(CallStoreRecorderTest, AtShutdownWritesGivenUpAreSavedForTheNextStart) {
  CallStoreRecorderOptions options;
  options.shutdown_budget = 50ms;
  options.unwritten_path = UnwrittenPath();
  MakeRecorder(options);
  store_->Close();
  const CallInfo call = Info("first");
  OnLoop([&] {
    recorder_->CallCreated(call);
    return 0;
  });
  ASSERT_TRUE(store_->WaitHeld(10s));  // its batch waits in the store
  OnLoop([&] {
    recorder_->CallCreated(Info("second"));
    recorder_->CallEnded(HungUp(call, "alice-id", 2s, 5s));
    recorder_.reset();  // Flush posts them behind it
    return 0;
  });
  std::this_thread::sleep_for(150ms);
  store_->Open();
  ASSERT_TRUE(WaitUntil([&] { return stats_->writes_applied + stats_->writes_saved == 3; }));
  EXPECT_EQ(stats_->writes_applied, 1u);
  EXPECT_EQ(stats_->writes_dropped, 0u);
  EXPECT_EQ(HistoryWrites(metrics::HistoryWriteResult::kLost), 0u);
  EXPECT_FALSE(store_->GetCall("second").has_value());
  ExpectRow("first", sql::CallStatus::kRinging, 0);

  // The next start.
  auto replay = ReplayUnwrittenCalls(*store_, options.unwritten_path);
  ASSERT_TRUE(replay.has_value()) << replay.error().message;
  EXPECT_EQ(replay->applied, 2u);
  EXPECT_TRUE(store_->GetCall("second").has_value());
  ExpectRow("first", sql::CallStatus::kCompleted, 5);
}

// Beyond max_pending in memory, records wait in the file, and every record
// after them too (not merged into older ones in memory) until the file has
// been read back; then they are written in the order they were made, across
// a failed batch, and the file goes.
TEST_F(CallStoreRecorderTest, RecordsBeyondMaxPendingWaitInTheFileAndAreWrittenInOrder) {
  CallStoreRecorderOptions options = Held();
  options.max_pending = 2;
  options.max_batch = 3;  // more than max_pending (a full batch posts); two chunks to read back
  options.retry_delays = {10ms};
  options.unwritten_path = UnwrittenPath();
  MakeRecorder(options);
  const CallInfo c1 = Info("c1");
  const CallInfo c2 = Info("c2");
  const CallInfo c3 = Info("c3");
  OnLoop([&] {
    recorder_->CallCreated(c1);
    recorder_->CallCreated(c2);  // memory is full (nothing posts: Held)
    recorder_->CallCreated(c3);
    recorder_->CallAnswered(c1, c1.created_at + 1s);  // not merged into c1's insert
    recorder_->CallEnded(HungUp(c1, "alice-id", 1s, 4s));
    recorder_->CallEnded(HungUp(c3, "bob-id", 2s, 3s));
    return 0;
  });
  EXPECT_EQ(stats_->writes_saved, 4u);
  EXPECT_EQ(stats_->records_merged, 0u);
  EXPECT_EQ(OnLoop([&] { return recorder_->pending(); }), 2u);
  EXPECT_TRUE(std::filesystem::exists(options.unwritten_path));

  // The database is away: the first batch out (c1 and c2's inserts, made
  // before the file's records) fails and goes in front of them, where a
  // crash would not lose it.
  store_->FailNext(1000);
  auto barrier = OnLoop([&] { return recorder_->WriteBarrier(); });
  EXPECT_FALSE(barrier());  // records wait in the file
  ASSERT_TRUE(WaitUntil([&] { return stats_->writes_saved == 6; }));
  EXPECT_EQ(SavedIds(options.unwritten_path),
            (std::vector<std::string>{"c1", "c2", "c3", "c1", "c1", "c3"}));

  store_->FailNext(0);
  ASSERT_TRUE(WaitUntil([&] { return stats_->writes_applied == 6; }));
  ASSERT_TRUE(WaitUntil([&] { return !std::filesystem::exists(options.unwritten_path); }));
  EXPECT_EQ(stats_->writes_failed, 0u);
  EXPECT_EQ(HistoryWrites(metrics::HistoryWriteResult::kLost), 0u);
  ExpectRow("c1", sql::CallStatus::kCompleted, 4);
  ExpectRow("c2", sql::CallStatus::kRinging, 0);
  ExpectRow("c3", sql::CallStatus::kCompleted, 3);

  // All read back: records stay in memory again.
  barrier = OnLoop([&] {
    recorder_->CallEnded(HungUp(c2, "alice-id", 1s, 1s));
    return recorder_->WriteBarrier();
  });
  EXPECT_TRUE(barrier());
  EXPECT_EQ(stats_->writes_saved, 6u);
  ExpectRow("c2", sql::CallStatus::kCompleted, 1);
}

// Once a batch fails because the database is away, it and the records after
// it wait in the file, where a crash of the process would not lose them (a
// call's end is no use without its insert), and are written in order once
// the database is back.
TEST_F(CallStoreRecorderTest, DuringAnOutageNewRecordsWaitInTheFile) {
  CallStoreRecorderOptions options;
  options.commit_delay = 0ms;
  options.retry_delays = {50ms};
  options.unwritten_path = UnwrittenPath();
  MakeRecorder(options);
  store_->FailNext(1000);
  const CallInfo c1 = Info("c1");
  OnLoop([&] {
    recorder_->CallCreated(c1);
    return 0;
  });
  ASSERT_TRUE(WaitUntil([&] { return stats_->retries > 0; }));
  OnLoop([&] {
    recorder_->CallAnswered(c1, c1.created_at + 1s);
    recorder_->CallEnded(HungUp(c1, "alice-id", 1s, 5s));
    return 0;
  });
  EXPECT_EQ(stats_->writes_saved, 3u);
  auto saved = ReadUnwrittenCalls(options.unwritten_path, 0, 10);
  ASSERT_TRUE(saved.has_value()) << saved.error().message;
  ASSERT_EQ(saved->writes.size(), 3u);  // on disk while the database is away
  EXPECT_TRUE(std::holds_alternative<sql::Call>(saved->writes.front()));

  store_->FailNext(0);
  ASSERT_TRUE(WaitUntil([&] { return stats_->writes_applied == 3; }));
  ASSERT_TRUE(WaitUntil([&] { return !std::filesystem::exists(options.unwritten_path); }));
  ExpectRow("c1", sql::CallStatus::kCompleted, 5);
}

// A batch the database does not answer (it hangs: no error yet) sends the
// records behind it, and the next ones, to the file, where a crash would
// not lose them; once it answers they are read back and written in order.
TEST_F(CallStoreRecorderTest, RecordsBehindABatchTheDatabaseDoesNotAnswerWaitInTheFile) {
  const CallInfo c1 = HoldTheFirstBatch();
  const CallInfo c2 = Info("c2");
  OnLoop([&] {
    recorder_->CallCreated(c2);
    recorder_->CallEnded(HungUp(c1, "alice-id", 1s, 4s));
    return 0;
  });
  ASSERT_TRUE(WaitUntil([&] { return stats_->writes_saved == 2; }));
  OnLoop([&] {
    recorder_->CallEnded(HungUp(c2, "bob-id", 1s, 2s));  // straight to the file
    EXPECT_EQ(recorder_->pending(), 0u);
    EXPECT_EQ(recorder_->waiting_in_memory(), 1u);  // c1's insert, still out
    EXPECT_EQ(recorder_->waiting_in_file(), 3u);
    return 0;
  });
  EXPECT_EQ(SavedIds(UnwrittenPath()), (std::vector<std::string>{"c2", "c1", "c2"}));

  store_->Open();
  ASSERT_TRUE(WaitUntil([&] { return stats_->writes_applied == 4; }));
  ASSERT_TRUE(WaitUntil([&] { return !std::filesystem::exists(UnwrittenPath()); }));
  ExpectRow("c1", sql::CallStatus::kCompleted, 4);
  ExpectRow("c2", sql::CallStatus::kCompleted, 2);
  OnLoop([&] {
    EXPECT_EQ(recorder_->waiting_in_memory(), 0u);
    EXPECT_EQ(recorder_->waiting_in_file(), 0u);
    return 0;
  });
}

// Records already went to the file (beyond max_pending) when the database
// stops answering: those still in memory, older, go in front of them.
TEST_F(CallStoreRecorderTest, AHangAfterMaxPendingPutsTheRecordsInMemoryInFrontOfTheFile) {
  CallStoreRecorderOptions options;
  options.max_pending = 2;
  HoldTheFirstBatch(options);
  OnLoop([&] {
    for (const char* id : {"c2", "c3", "c4"}) {  // c4: beyond max_pending, to the file
      recorder_->CallCreated(Info(id));
    }
    return 0;
  });
  ASSERT_TRUE(WaitUntil([&] { return stats_->writes_saved == 3; }));
  EXPECT_EQ(OnLoop([&] { return recorder_->pending(); }), 0u);
  EXPECT_EQ(SavedIds(UnwrittenPath()), (std::vector<std::string>{"c2", "c3", "c4"}));

  store_->Open();
  ASSERT_TRUE(WaitUntil([&] { return stats_->writes_applied == 4; }));
  ASSERT_TRUE(WaitUntil([&] { return !std::filesystem::exists(UnwrittenPath()); }));
}

// A history read while the database hangs posts what waits behind the batch
// that hangs; those batches, not started, go to the file too, and the read
// says the records are not all in.
TEST_F(CallStoreRecorderTest, BatchesPostedBehindOneThatHangsGoToTheFile) {
  const CallInfo c1 = HoldTheFirstBatch();
  auto barrier = OnLoop([&] {
    recorder_->CallCreated(Info("c2"));
    recorder_->CallEnded(HungUp(c1, "alice-id", 1s, 3s));
    auto waiter = recorder_->WriteBarrier(60s);
    EXPECT_EQ(recorder_->in_flight(), 2u);  // the read posted them
    return waiter;
  });
  ASSERT_TRUE(WaitUntil([&] { return stats_->writes_saved == 2; }));
  EXPECT_EQ(SavedIds(UnwrittenPath()), (std::vector<std::string>{"c2", "c1"}));
  OnLoop([&] {
    EXPECT_EQ(recorder_->waiting_in_memory(), 1u);  // c1's insert, still out
    EXPECT_EQ(recorder_->waiting_in_file(), 2u);
    return 0;
  });
  // Saved, not written: known at once, not after the barrier's 60 s.
  auto answer = std::async(std::launch::async, barrier);
  ASSERT_EQ(answer.wait_for(30s), std::future_status::ready);
  EXPECT_FALSE(answer.get());

  store_->Open();
  ASSERT_TRUE(WaitUntil([&] { return stats_->writes_applied == 3; }));
  ASSERT_TRUE(WaitUntil([&] { return !std::filesystem::exists(UnwrittenPath()); }));
  EXPECT_EQ(stats_->writes_failed, 0u);
  ExpectRow("c1", sql::CallStatus::kCompleted, 3);
}

// A read back from the file that fails keeps the records going to the file
// (in memory they would overtake its older ones) and is tried again.
TEST_F(CallStoreRecorderTest, AFailedReadBackIsTriedAgainAndKeepsTheOrder) {
  CallStoreRecorderOptions options = Held();
  options.max_pending = 1;
  options.retry_delays = {20ms};
  options.unwritten_path = UnwrittenPath();
  MakeRecorder(options);
  const CallInfo c1 = Info("c1");
  const CallInfo c2 = Info("c2");
  OnLoop([&] {
    recorder_->CallCreated(c1);
    recorder_->CallCreated(c2);  // to the file
    recorder_->CallEnded(HungUp(c2, "bob-id", 1s, 2s));
    return 0;
  });
  ASSERT_EQ(stats_->writes_saved, 2u);
  // The file cannot be read for a while: a directory stands in its place.
  const std::string aside = options.unwritten_path + ".aside";
  std::filesystem::rename(options.unwritten_path, aside);
  std::filesystem::create_directory(options.unwritten_path);
  OnLoop([&] {
    recorder_->Flush();  // c1 goes out; then the read back fails
    return 0;
  });
  ASSERT_TRUE(WaitUntil([&] { return stats_->writes_applied == 1; }));
  std::this_thread::sleep_for(100ms);  // a few failed reads
  // A record made meanwhile cannot go to the file either: memory, not lost.
  OnLoop([&] {
    recorder_->CallCreated(Info("c3"));
    recorder_->Flush();
    return 0;
  });
  ASSERT_TRUE(WaitUntil([&] { return stats_->writes_applied == 2; }));
  EXPECT_EQ(HistoryWrites(metrics::HistoryWriteResult::kLost), 0u);
  std::filesystem::remove(options.unwritten_path);
  std::filesystem::rename(aside, options.unwritten_path);
  ASSERT_TRUE(WaitUntil([&] { return stats_->writes_applied == 4; }));
  ASSERT_TRUE(WaitUntil([&] { return !std::filesystem::exists(options.unwritten_path); }));
  ExpectRow("c2", sql::CallStatus::kCompleted, 2);
}

// A stop while records wait in the file: they, and what memory held, are
// all written at the next start.
TEST_F(CallStoreRecorderTest, AStopWhileRecordsWaitInTheFileLeavesThemAllForTheNextStart) {
  CallStoreRecorderOptions options = Held();
  options.max_pending = 1;
  options.shutdown_budget = 50ms;
  options.unwritten_path = UnwrittenPath();
  MakeRecorder(options);
  store_->Close();  // the database hangs through the stop
  const CallInfo c1 = Info("c1");
  const CallInfo c2 = Info("c2");
  OnLoop([&] {
    recorder_->CallCreated(c1);
    recorder_->CallCreated(c2);
    recorder_->CallEnded(HungUp(c1, "alice-id", 1s, 2s));
    recorder_->CallEnded(HungUp(c2, "alice-id", 1s, 3s));
    recorder_.reset();
    return 0;
  });
  ASSERT_TRUE(store_->WaitHeld(10s));  // c1's insert, flushed at the stop
  std::this_thread::sleep_for(100ms);
  store_->Open();
  ASSERT_TRUE(WaitUntil([&] { return stats_->writes_applied + stats_->writes_saved == 4; }));
  EXPECT_EQ(HistoryWrites(metrics::HistoryWriteResult::kLost), 0u);

  auto replay = ReplayUnwrittenCalls(*store_, options.unwritten_path);
  ASSERT_TRUE(replay.has_value()) << replay.error().message;
  EXPECT_EQ(replay->refused, 0u);
  ExpectRow("c1", sql::CallStatus::kCompleted, 2);
  ExpectRow("c2", sql::CallStatus::kCompleted, 3);
}

// At shutdown nobody retries later: a database that is unavailable for a
// moment (a backup holding the SQLite lock) is waited for within the budget,
// not given up on at the first failure.
TEST_F(CallStoreRecorderTest, AtShutdownAnOutageThatPassesWithinTheBudgetLosesNothing) {
  CallStoreRecorderOptions options;
  options.shutdown_budget = 10s;
  MakeRecorder(options);
  store_->FailNext(3);
  OnLoop([&] {
    recorder_->CallCreated(Info("kept"));
    recorder_.reset();
    return 0;
  });
  ASSERT_TRUE(WaitUntil([&] { return stats_->writes_applied + stats_->writes_dropped == 1; }));
  EXPECT_EQ(stats_->writes_applied, 1u);
  EXPECT_TRUE(store_->GetCall("kept").has_value());
  EXPECT_EQ(store_->batches().size(), 4u);
  EXPECT_EQ(HistoryWrites(metrics::HistoryWriteResult::kLost), 0u);
}

TEST_F(CallStoreRecorderTest, AWriteTheStoreRefusesIsCounted) {
  MakeRecorder();
  OnLoop([&] {
    const CallInfo ghost = Info("never-created");
    recorder_->CallEnded(CallEndRecord{.call = ghost,
                                       .status = metrics::CallStatus::kMissed,
                                       .reason = "timeout",
                                       .ended_at = ghost.created_at});
    CallInfo stranger = Info("stranger");
    stranger.callee_id = "nobody-id";
    recorder_->CallCreated(stranger);
    recorder_->CallCreated(Info("fine"));
    return 0;
  });
  ASSERT_TRUE(WaitUntil([&] { return stats_->writes_failed + stats_->writes_applied == 3; }));
  EXPECT_EQ(stats_->writes_failed, 2u);
  EXPECT_TRUE(store_->GetCall("fine").has_value());
}

TEST_F(CallStoreRecorderTest, DestroyingItFlushesWhatIsPendingInOrder) {
  MakeRecorder();
  store_->Close();
  const CallInfo call = Info("flushed");
  OnLoop([&] {
    recorder_->CallCreated(call);
    return 0;
  });
  ASSERT_TRUE(store_->WaitHeld(10s));
  OnLoop([&] {
    recorder_->CallEnded(CallEndRecord{.call = call,
                                       .status = metrics::CallStatus::kCancelled,
                                       .reason = "cancelled",
                                       .ended_by = "alice-id",
                                       .ended_at = call.created_at + 1s});
    recorder_.reset();
    return 0;
  });
  store_->Open();
  ASSERT_TRUE(WaitUntil([&] { return stats_->writes_applied == 2; }));
  auto row = store_->GetCall("flushed");
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->status, sql::CallStatus::kCancelled);
}

}  // namespace
}  // namespace turnkey::signal
