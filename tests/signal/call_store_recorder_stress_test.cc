// CallStoreRecorder under random load: fixed seeds drive calls (create,
// answer, end, ICE reports), store failures, a held store and write
// barriers through a recorder with small limits (so batches, merges, retries
// and the unwritten file all come into play), against a model of the row
// every call must end up as. Two endings: the store recovers and everything
// is written; or the recorder is destroyed while the store fails or hangs
// and the next start replays the file. Timing varies from run to run; the
// properties checked must hold whatever it is. CallStoreRecorderStopTest
// holds the shortest sequences of what it found.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "metrics/registry.h"
#include "signal/call_store_recorder.h"
#include "signal/unwritten_calls.h"
#include "tests/config/test_util.h"
#include "tests/signal/recorder_fixture.h"

namespace turnkey::signal {
namespace {

using namespace std::chrono_literals;
using testing::FlakyStore;

constexpr int kSeeds = 20;
constexpr int kSteps = 150;

std::string Show(const std::optional<sql::IceReport>& ice) {
  if (!ice) {
    return "-";
  }
  std::ostringstream out;
  out << ice->state << "/" << ice->local_candidate_type << "/" << ice->remote_candidate_type << "/"
      << ice->relay_protocol << "/rtt=" << (ice->rtt_ms ? std::to_string(*ice->rtt_ms) : "-")
      << "/cause=" << ice->failure_cause << "@" << ice->reported_at_ms;
  return out.str();
}

std::string Show(const sql::Call& call) {
  std::ostringstream out;
  out << call.id << " " << sql::CallTypeName(call.type) << " " << sql::CallStatusName(call.status)
      << " reason=" << call.end_reason << " created=" << call.created_at_ms
      << " answered=" << (call.answered_at_ms ? std::to_string(*call.answered_at_ms) : "-")
      << " ended=" << (call.ended_at_ms ? std::to_string(*call.ended_at_ms) : "-")
      << " duration=" << call.duration_seconds << " caller_ice=" << Show(call.caller_ice)
      << " callee_ice=" << Show(call.callee_ice);
  return out.str();
}

// What CallStoreRecorder stores for a candidate type ("" for unknown).
std::string CandidateName(metrics::CandidateType type) {
  return type == metrics::CandidateType::kUnknown
             ? ""
             : std::string(metrics::kCandidateTypeValues[static_cast<size_t>(type)]);
}

// One call as CallManager made it, and the row it must end up as.
struct ModelCall {
  CallInfo info;
  std::optional<base::MonoTime> answered_at;
  bool ended = false;
  sql::Call row;
};

// RecorderFixture with a model of every call.
class ModelFixture : public testing::RecorderFixture {
 protected:
  // After the recorder is gone: every job has run, and its answer on the
  // loop too (shuts the queue down).
  void WaitForTheJobs() {
    queue_->Shutdown();
    OnLoop([] { return 0; });
  }

  // The recorder's anchor is the clock's start, so times are offsets.
  base::MonoTime At(int64_t ms) const { return clock_.Now() + std::chrono::milliseconds(ms); }
  static int64_t UnixMs(int64_t ms) { return kUnixBase * 1000 + ms; }

  // `what` happened; kept to print with a failure.
  void Log(const std::string& what) { trace_ += "  " + what + "\n"; }

  // Every call's row against the model; `when` names the check. After a
  // replay (`replayed`), a call still going may also have the end the replay
  // makes up for a call the file left going (its writes were saved there).
  void ExpectRowsMatch(const std::string& when, bool replayed = false) {
    for (const ModelCall& call : calls_) {
      auto row = store_->GetCall(call.info.id);
      if (!row) {
        ADD_FAILURE() << when << ": " << call.info.id << " has no row; expected " << Show(call.row)
                      << Trace();
        continue;
      }
      if (replayed && !sql::IsEndStatus(call.row.status) &&
          row->end_reason == sql::kReasonServerRestart) {
        sql::Call made_up = call.row;
        made_up.status = call.row.status == sql::CallStatus::kActive ? sql::CallStatus::kFailed
                                                                     : sql::CallStatus::kMissed;
        made_up.end_reason = std::string(sql::kReasonServerRestart);
        made_up.ended_at_ms =
            call.row.answered_at_ms ? call.row.answered_at_ms : call.row.created_at_ms;
        made_up.duration_seconds = 0;
        if (*row != made_up) {
          ADD_FAILURE() << when << ": " << call.info.id << "\n  stored:   " << Show(*row)
                        << "\n  expected: " << Show(made_up) << " (ended by the replay)" << Trace();
        }
        continue;
      }
      if (*row != call.row) {
        ADD_FAILURE() << when << ": " << call.info.id << "\n  stored:   " << Show(*row)
                      << "\n  expected: " << Show(call.row) << Trace();
      }
    }
  }

  // The trace once per test (it is long).
  std::string Trace() {
    if (traced_) {
      return "";
    }
    traced_ = true;
    return "\nactions:\n" + trace_;
  }

  // A barrier taken now, run here (off the loop, as a worker runs it); when
  // it says true, every record made so far must be in the store.
  bool Barrier(std::chrono::milliseconds max_wait, const std::string& when) {
    auto barrier = OnLoop([&] { return recorder_->WriteBarrier(max_wait); });
    const bool reached = barrier();
    if (reached) {
      ExpectRowsMatch(when);
    }
    return reached;
  }

  ModelCall* Pick(std::mt19937& rng, const std::function<bool(const ModelCall&)>& eligible) {
    std::vector<ModelCall*> found;
    for (ModelCall& call : calls_) {
      if (eligible(call)) {
        found.push_back(&call);
      }
    }
    if (found.empty()) {
      return nullptr;
    }
    return found[std::uniform_int_distribution<size_t>(0, found.size() - 1)(rng)];
  }

  void Create(std::mt19937& rng, int64_t now) {
    ModelCall call;
    call.info = CallInfo{.id = "c" + std::to_string(calls_.size()),
                         .caller_id = "alice-id",
                         .callee_id = "bob-id",
                         .type = rng() % 2 ? metrics::CallType::kVideo : metrics::CallType::kAudio,
                         .created_at = At(now)};
    call.row.id = call.info.id;
    call.row.caller_id = "alice-id";
    call.row.callee_id = "bob-id";
    call.row.type =
        call.info.type == metrics::CallType::kVideo ? sql::CallType::kVideo : sql::CallType::kAudio;
    call.row.status = sql::CallStatus::kRinging;
    call.row.created_at_ms = UnixMs(now);
    Log("create " + call.info.id);
    OnLoop([&] {
      recorder_->CallCreated(call.info);
      return 0;
    });
    calls_.push_back(std::move(call));
  }

  void Answer(ModelCall& call, int64_t now) {
    call.answered_at = At(now);
    call.row.status = sql::CallStatus::kActive;
    call.row.answered_at_ms = UnixMs(now);
    Log("answer " + call.info.id);
    OnLoop([&] {
      recorder_->CallAnswered(call.info, *call.answered_at);
      return 0;
    });
  }

  void End(std::mt19937& rng, ModelCall& call, int64_t now) {
    static const std::vector<std::pair<metrics::CallStatus, std::string>> kAnswered = {
        {metrics::CallStatus::kCompleted, "hangup"},
        {metrics::CallStatus::kConnectionLost, "connection_lost"},
        {metrics::CallStatus::kIceFailed, "ice_failed"}};
    static const std::vector<std::pair<metrics::CallStatus, std::string>> kRinging = {
        {metrics::CallStatus::kMissed, "timeout"},
        {metrics::CallStatus::kRejected, "rejected"},
        {metrics::CallStatus::kBusy, "busy"},
        {metrics::CallStatus::kCancelled, "cancelled"},
        {metrics::CallStatus::kUnavailable, "unavailable"},
        {metrics::CallStatus::kConnectionLost, "connection_lost"}};
    const auto& choices = call.answered_at ? kAnswered : kRinging;
    const auto& [status, reason] = choices[rng() % choices.size()];
    CallEndRecord end{.call = call.info,
                      .status = status,
                      .reason = reason,
                      .ended_by = "alice-id",
                      .answered_at = call.answered_at,
                      .ended_at = At(now)};
    if (call.answered_at) {
      end.duration_seconds =
          std::chrono::duration_cast<std::chrono::seconds>(end.ended_at - *call.answered_at)
              .count();
    }
    call.ended = true;
    call.row.status = StoredCallStatus(status);
    call.row.end_reason = reason;
    call.row.ended_at_ms = UnixMs(now);
    call.row.duration_seconds = end.duration_seconds;
    Log("end " + call.info.id + " " + reason);
    OnLoop([&] {
      recorder_->CallEnded(end);
      return 0;
    });
  }

  void Ice(std::mt19937& rng, ModelCall& call, int64_t now) {
    static const std::vector<std::string> kProtocols = {"", "udp", "tcp", "tls"};
    const bool caller = rng() % 2 == 0;
    IceReportRecord report{
        .call_id = call.info.id,
        .user_id = caller ? "alice-id" : "bob-id",
        .side = caller ? CallSide::kCaller : CallSide::kCallee,
        .result = rng() % 3 ? metrics::IceResult::kConnected : metrics::IceResult::kFailed,
        .local_candidate_type = static_cast<metrics::CandidateType>(rng() % 5),
        .remote_candidate_type = static_cast<metrics::CandidateType>(rng() % 5),
        .relay_protocol = kProtocols[rng() % kProtocols.size()],
        .rtt_ms = rng() % 2 ? std::optional<int64_t>(rng() % 600) : std::nullopt,
        .cause = static_cast<metrics::IceFailureCause>(
            rng() % static_cast<size_t>(metrics::IceFailureCause::kCount)),
        .reported_at = At(now)};
    const bool failed = report.result == metrics::IceResult::kFailed;
    sql::IceReport stored{
        .state = std::string(metrics::kIceResultValues[static_cast<size_t>(report.result)]),
        .local_candidate_type = CandidateName(report.local_candidate_type),
        .remote_candidate_type = CandidateName(report.remote_candidate_type),
        .relay_protocol = report.relay_protocol,
        .rtt_ms = report.rtt_ms,
        .reported_at_ms = UnixMs(now),
        .failure_cause =
            failed ? std::string(metrics::kIceFailureCauseValues[static_cast<size_t>(report.cause)])
                   : ""};
    // A side may report again (an ICE restart): the last report is kept.
    (report.side == CallSide::kCaller ? call.row.caller_ice : call.row.callee_ice) = stored;
    Log("ice " + call.info.id + (report.side == CallSide::kCaller ? " caller " : " callee ") +
        Show(stored));
    OnLoop([&] {
      recorder_->IceReported(report);
      return 0;
    });
  }

  std::vector<ModelCall> calls_;
  std::string trace_;
  bool traced_ = false;
};

// Parameters: the seed, and whether the run ends with a stop during an
// outage (then a replay) rather than with the store recovering.
class CallStoreRecorderStressTest : public ModelFixture,
                                    public ::testing::WithParamInterface<std::tuple<int, bool>> {};

TEST_P(CallStoreRecorderStressTest, EveryCallEndsUpAsRecorded) {
  const auto [seed, stop_during_outage] = GetParam();
  std::mt19937 rng(static_cast<uint32_t>(seed) * 7919u + (stop_during_outage ? 1u : 0u));
  auto between = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };

  config::testing::TempDir dir;
  CallStoreRecorderOptions options;
  options.max_pending = static_cast<size_t>(between(1, 8));
  options.max_batch = static_cast<size_t>(between(1, 8));
  options.commit_delay = std::chrono::milliseconds(between(0, 5));
  options.retry_delays = {1ms, 2ms};
  options.shutdown_budget = std::chrono::milliseconds(between(0, 30));
  options.unwritten_path = (dir.path() / "unwritten.jsonl").string();
  // From the seed, not the generator (the seeds' runs stay as they were): a
  // held store sends what waits to the file after 1 or 2 ms, or never.
  options.slow_batch = std::chrono::milliseconds(seed % 3);
  Log("seed " + std::to_string(seed) + ": max_pending " + std::to_string(options.max_pending) +
      ", max_batch " + std::to_string(options.max_batch) + ", commit_delay " +
      std::to_string(options.commit_delay.count()) + " ms, shutdown_budget " +
      std::to_string(options.shutdown_budget.count()) + " ms, slow_batch " +
      std::to_string(options.slow_batch.count()) + " ms");
  MakeRecorder(options);

  int64_t now = 0;        // ms since the clock's start
  int gate_closed = 0;    // steps the store has been held, 0 = open
  int close_for = 0;      // steps it stays held
  int barriers_true = 0;  // barriers that answered true (and were checked)
  for (int step = 0; step < kSteps; ++step) {
    now += between(0, 2000);
    if (gate_closed > 0 && ++gate_closed > close_for) {
      Log("open");
      store_->Open();
      gate_closed = 0;
    }
    const int action = between(0, 99);
    const auto live = [](const ModelCall& c) { return !c.ended; };
    const auto ringing = [](const ModelCall& c) { return !c.ended && !c.answered_at; };
    const auto answered = [](const ModelCall& c) { return c.answered_at.has_value(); };
    if (action < 22) {
      Create(rng, now);
    } else if (action < 36) {
      if (ModelCall* call = Pick(rng, ringing)) {
        Answer(*call, now);
      } else {
        Create(rng, now);
      }
    } else if (action < 50) {
      if (ModelCall* call = Pick(rng, live)) {
        End(rng, *call, now);
      } else {
        Create(rng, now);
      }
    } else if (action < 66) {
      // After the end too (a late report within the retention).
      if (ModelCall* call = Pick(rng, answered)) {
        Ice(rng, *call, now);
      } else {
        Create(rng, now);
      }
    } else if (action < 72) {
      const int failures = between(1, 4);
      Log("fail next " + std::to_string(failures));
      store_->FailNext(failures);
    } else if (action < 76) {
      if (gate_closed == 0) {
        Log("close");
        store_->Close();
        gate_closed = 1;
        close_for = between(1, 6);
      }
    } else if (action < 86) {
      // While the store is held a barrier can only wait: keep that short.
      const bool reached =
          Barrier(gate_closed > 0 ? 5ms : 5000ms, "barrier at step " + std::to_string(step));
      barriers_true += reached ? 1 : 0;
      Log(std::string("barrier ") + (reached ? "true" : "false"));
    } else {
      const int ms = between(0, 3);
      Log("sleep " + std::to_string(ms) + " ms");
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    }
  }

  const std::string& path = options.unwritten_path;
  if (!stop_during_outage) {
    // (a) The store recovers: everything is written, the file read back.
    Log("recover");
    store_->FailNext(0);
    store_->Open();
    ASSERT_TRUE(WaitUntil([&] {
      return Barrier(5000ms, "final barrier") && !std::filesystem::exists(path);
    })) << Trace();
    ExpectRowsMatch("after recovery");
    EXPECT_EQ(stats_->writes_dropped, 0u) << Trace();
  } else {
    // (b) The stop comes while the store fails (down for good, or for a
    // few batches only), hangs (as it does if still held), or both; then
    // it recovers and the next start replays what was saved.
    const bool hang = gate_closed > 0 || rng() % 2 == 0;
    const bool fail = !hang || rng() % 2 == 0;
    const int failures = rng() % 2 == 0 ? 1 << 30 : between(1, 3);
    Log(std::string("stop while the store ") +
        (fail ? "fails " + std::to_string(failures) + " times" : "") +
        (fail && hang ? " and " : "") + (hang ? "hangs" : ""));
    if (fail) {
      store_->FailNext(failures);
    }
    if (hang) {
      store_->Close();
    }
    OnLoop([&] {
      recorder_.reset();
      return 0;
    });
    if (hang) {
      // Jobs still queued now start past the budget (given up unwritten).
      std::this_thread::sleep_for(options.shutdown_budget + 5ms);
      store_->Open();
    }
    WaitForTheJobs();
    store_->FailNext(0);
    auto replay = ReplayUnwrittenCalls(*store_, path);
    ASSERT_TRUE(replay.has_value()) << replay.error().message;
    Log("replay: applied " + std::to_string(replay->applied) + ", refused " +
        std::to_string(replay->refused) + ", unreadable " + std::to_string(replay->unreadable));
    EXPECT_EQ(replay->unreadable, 0u) << Trace();
    EXPECT_FALSE(std::filesystem::exists(path));
    ExpectRowsMatch("after the replay", /*replayed=*/true);
  }
  // Nothing lost, nothing refused by the store.
  EXPECT_EQ(HistoryWrites(metrics::HistoryWriteResult::kLost), 0u) << Trace();
  EXPECT_EQ(stats_->writes_failed, 0u) << Trace();
  RecordProperty("barriers_true", barriers_true);
  RecordProperty("calls", static_cast<int>(calls_.size()));
}

INSTANTIATE_TEST_SUITE_P(Seeds, CallStoreRecorderStressTest,
                         ::testing::Combine(::testing::Range(1, kSeeds + 1), ::testing::Bool()),
                         [](const ::testing::TestParamInfo<std::tuple<int, bool>>& info) {
                           return "Seed" + std::to_string(std::get<0>(info.param)) +
                                  (std::get<1>(info.param) ? "StopDuringOutage" : "Recover");
                         });

// Minimal sequences of what the stress test found (a stop during an
// outage); each leaves a call in the store other than it was recorded.
class CallStoreRecorderStopTest : public ModelFixture {
 protected:
  IceReportRecord Report(const CallInfo& call, int64_t at_ms, metrics::IceResult result) {
    return IceReportRecord{.call_id = call.id,
                           .user_id = call.caller_id,
                           .side = CallSide::kCaller,
                           .result = result,
                           .local_candidate_type = metrics::CandidateType::kHost,
                           .remote_candidate_type = metrics::CandidateType::kRelay,
                           .relay_protocol = "udp",
                           .reported_at = At(at_ms)};
  }
  CallInfo Info(const std::string& id) {
    return CallInfo{.id = id,
                    .caller_id = "alice-id",
                    .callee_id = "bob-id",
                    .type = metrics::CallType::kVideo,
                    .created_at = At(0)};
  }
};

// A report that failed with the database away, then a newer one (an ICE
// restart), both wait in the file; the replay keeps the newer one.
TEST_F(CallStoreRecorderStopTest, AnOlderReportDoesNotOverwriteANewerOne) {
  config::testing::TempDir dir;
  CallStoreRecorderOptions options;
  options.commit_delay = 0ms;
  options.max_pending = 1;
  options.retry_delays = {1h};  // the failed report waits in the file
  options.shutdown_budget = 50ms;
  options.unwritten_path = (dir.path() / "unwritten.jsonl").string();
  MakeRecorder(options);
  const CallInfo call = Info("c1");
  auto barrier = OnLoop([&] {
    recorder_->CallCreated(call);
    recorder_->CallAnswered(call, At(1000));
    return recorder_->WriteBarrier();
  });
  ASSERT_TRUE(barrier());
  store_->FailNext(1 << 30);  // the database goes away
  OnLoop([&] {
    recorder_->IceReported(Report(call, 2000, metrics::IceResult::kFailed));
    return 0;
  });
  ASSERT_TRUE(WaitUntil([&] {
    return OnLoop([&] {
      return recorder_->in_flight() == 0 && recorder_->pending() == 0 && stats_->writes_saved == 1;
    });
  }));
  OnLoop([&] {
    // An ICE restart: after the failed one, in the file.
    recorder_->IceReported(Report(call, 3000, metrics::IceResult::kConnected));
    recorder_.reset();
    return 0;
  });
  WaitForTheJobs();
  EXPECT_EQ(stats_->writes_saved, 2u);
  store_->FailNext(0);  // the next start
  auto replay = ReplayUnwrittenCalls(*store_, options.unwritten_path);
  ASSERT_TRUE(replay.has_value()) << replay.error().message;
  auto row = store_->GetCall("c1");
  ASSERT_TRUE(row.has_value());
  ASSERT_TRUE(row->caller_ice.has_value());
  EXPECT_EQ(row->caller_ice->state, "connected");
  EXPECT_EQ(row->caller_ice->reported_at_ms, UnixMs(3000));
}

// At the stop a batch behind a failed one is tried (BatchJob skips it only
// while not closing): the end goes in before the insert it updates, is
// refused as "call not found", and the insert saved for the next start
// leaves the call ringing.
TEST_F(CallStoreRecorderStopTest, AnEndIsNotWrittenBeforeTheInsertItFollows) {
  config::testing::TempDir dir;
  CallStoreRecorderOptions options;
  options.commit_delay = 1h;
  options.shutdown_budget = 80ms;  // less than the stop's retry pause (100 ms)
  options.unwritten_path = (dir.path() / "unwritten.jsonl").string();
  MakeRecorder(options);
  store_->Close();
  const CallInfo call = Info("c1");
  OnLoop([&] {
    recorder_->CallCreated(call);
    recorder_->WriteBarrier();  // posts the insert
    return 0;
  });
  ASSERT_TRUE(store_->WaitHeld(10s));
  store_->FailNext(1);  // the database fails the insert, then is back
  OnLoop([&] {
    recorder_->CallEnded(CallEndRecord{.call = call,
                                       .status = metrics::CallStatus::kCancelled,
                                       .reason = "cancelled",
                                       .ended_by = "alice-id",
                                       .ended_at = At(1000)});
    recorder_.reset();  // posts the end behind the insert
    return 0;
  });
  store_->Open();
  WaitForTheJobs();
  auto replay = ReplayUnwrittenCalls(*store_, options.unwritten_path);
  ASSERT_TRUE(replay.has_value()) << replay.error().message;
  EXPECT_EQ(stats_->writes_failed, 0u);
  auto row = store_->GetCall("c1");
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->status, sql::CallStatus::kCancelled);
}

// A failed batch back on the loop while a later one is still out waits in
// returned_; destroying the recorder then drops it: neither written, saved
// nor counted lost. Another job on the queue (here a blocker) keeps the
// later batch out long enough.
TEST_F(CallStoreRecorderStopTest, AFailedBatchWaitingForTheOneBehindItIsNotDroppedAtTheStop) {
  config::testing::TempDir dir;
  CallStoreRecorderOptions options;
  options.commit_delay = 1h;
  options.unwritten_path = (dir.path() / "unwritten.jsonl").string();
  MakeRecorder(options);
  store_->Close();
  OnLoop([&] {
    recorder_->CallCreated(Info("c1"));
    recorder_->WriteBarrier();  // posts c1's insert
    return 0;
  });
  ASSERT_TRUE(store_->WaitHeld(10s));
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  ASSERT_TRUE(queue_->TryPost(
      *loop_, [released] { released.wait(); }, [] {}));
  EXPECT_EQ(OnLoop([&] {
              recorder_->CallCreated(Info("c2"));
              recorder_->WriteBarrier();  // posts c2's insert behind the blocker
              return recorder_->in_flight();
            }),
            2u);
  store_->FailNext(1);
  store_->Open();
  // c1's batch failed and is back, waiting for c2's.
  ASSERT_TRUE(WaitUntil([&] { return OnLoop([&] { return recorder_->in_flight() == 1; }); }));
  OnLoop([&] {
    recorder_.reset();
    return 0;
  });
  release.set_value();
  WaitForTheJobs();
  auto replay = ReplayUnwrittenCalls(*store_, options.unwritten_path);
  ASSERT_TRUE(replay.has_value()) << replay.error().message;
  EXPECT_TRUE(store_->GetCall("c2").has_value());
  EXPECT_TRUE(store_->GetCall("c1").has_value())
      << "saved " << stats_->writes_saved << ", lost "
      << HistoryWrites(metrics::HistoryWriteResult::kLost);
}

}  // namespace
}  // namespace turnkey::signal
