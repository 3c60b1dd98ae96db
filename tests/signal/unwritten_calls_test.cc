// The file of call history writes a stop could not make: each kind of write
// survives the line it is saved as, a line cut short is skipped, and the
// replay writes a call's row before its updates into a real (in-memory
// SQLite) store, removes the file, and keeps it when the database is away.
#include "signal/unwritten_calls.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "tests/config/test_util.h"
#include "tests/signal/flaky_store.h"

namespace turnkey::signal {
namespace {

using config::testing::TempDir;

constexpr int64_t kMs = 1'700'000'000'000;

sql::IceReport Report(std::string state, std::optional<int64_t> rtt) {
  const bool failed = state == "failed";
  return sql::IceReport{.state = std::move(state),
                        .local_candidate_type = "relay",
                        .remote_candidate_type = "srflx",
                        .relay_protocol = "udp",
                        .rtt_ms = rtt,
                        .reported_at_ms = kMs + 4000,
                        .failure_cause = failed ? "checks_failed" : ""};
}

sql::Call Ringing(std::string id) {
  return sql::Call{.id = std::move(id),
                   .caller_id = "alice-id",
                   .callee_id = "bob-id",
                   .type = sql::CallType::kVideo,
                   .created_at_ms = kMs};
}

sql::CallStateUpdate Ended(std::string id) {
  return sql::CallStateUpdate{.call_id = std::move(id),
                              .status = sql::CallStatus::kCompleted,
                              .end_reason = "hangup",
                              .answered_at_ms = kMs + 2000,
                              .ended_at_ms = kMs + 9000,
                              .duration_seconds = 7};
}

bool SameWrite(const sql::CallWrite& a, const sql::CallWrite& b) {
  if (a.index() != b.index()) {
    return false;
  }
  if (const auto* call = std::get_if<sql::Call>(&a)) {
    return *call == std::get<sql::Call>(b);
  }
  if (const auto* state = std::get_if<sql::CallStateUpdate>(&a)) {
    const auto& other = std::get<sql::CallStateUpdate>(b);
    return state->call_id == other.call_id && state->status == other.status &&
           state->end_reason == other.end_reason && state->answered_at_ms == other.answered_at_ms &&
           state->ended_at_ms == other.ended_at_ms &&
           state->duration_seconds == other.duration_seconds;
  }
  const auto& ice = std::get<sql::IceUpdate>(a);
  const auto& other = std::get<sql::IceUpdate>(b);
  return ice.call_id == other.call_id && ice.side == other.side && ice.report == other.report;
}

TEST(UnwrittenCallsTest, EveryKindOfWriteReadsBackAsItWasSaved) {
  sql::Call full = Ringing("full");
  full.status = sql::CallStatus::kFailed;
  full.type = sql::CallType::kAudio;
  full.end_reason = "connection_lost";
  full.answered_at_ms = kMs + 1000;
  full.ended_at_ms = kMs + 61000;
  full.duration_seconds = 60;
  full.caller_ice = Report("connected", 42);
  full.callee_ice = Report("failed", std::nullopt);
  sql::CallStateUpdate answered{.call_id = "c2", .status = sql::CallStatus::kActive};
  answered.answered_at_ms = kMs + 1500;
  const std::vector<sql::CallWrite> writes = {
      Ringing("bare"),
      full,
      answered,
      Ended("c3"),
      sql::IceUpdate{.call_id = "c4", .side = sql::CallSide::kCallee, .report = Report("ok", 7)},
      sql::IceUpdate{.call_id = "c5",
                     .side = sql::CallSide::kCaller,
                     .report = Report("failed", std::nullopt)},
  };
  for (const sql::CallWrite& write : writes) {
    const std::string line = EncodeCallWrite(write);
    EXPECT_EQ(line.find('\n'), std::string::npos) << line;
    std::optional<sql::CallWrite> back = DecodeCallWrite(line);
    ASSERT_TRUE(back.has_value()) << line;
    EXPECT_TRUE(SameWrite(write, *back)) << line;
  }
}

// A file that cannot take a whole append (a full disk; here the process's
// file size limit) keeps none of it: the caller keeps those writes, and
// the next append starts a line of its own.
TEST(UnwrittenCallsTest, AnAppendThatFailsHalfWayLeavesNothingBehind) {
  TempDir dir;
  const std::string path = (dir.path() / "unwritten.jsonl").string();
  UnwrittenCallsFile file(path);
  ASSERT_TRUE(file.Append(std::vector<sql::CallWrite>{Ringing("c1")}));
  const auto size = std::filesystem::file_size(path);
  std::vector<sql::CallWrite> many;
  for (int i = 0; i < 20; ++i) {
    many.push_back(Ringing("big" + std::to_string(i)));
  }
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto* const previous = ::signal(SIGXFSZ, SIG_IGN);
  rlimit small = old;
  small.rlim_cur = size + 100;  // room for part of the first line only
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  const base::Status failed = file.Append(many, /*sync=*/false);
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old), 0);
  ::signal(SIGXFSZ, previous);
  EXPECT_FALSE(failed);
  EXPECT_EQ(std::filesystem::file_size(path), size);
  ASSERT_TRUE(file.Append(std::vector<sql::CallWrite>{Ringing("c2")}));
  auto chunk = ReadUnwrittenCalls(path, 0, 10);
  ASSERT_TRUE(chunk.has_value());
  EXPECT_EQ(chunk->writes.size(), 2u);
  EXPECT_EQ(chunk->unreadable, 0u);
}

TEST(UnwrittenCallsTest, ALineThatIsNotAWriteIsRefused) {
  const std::string good = EncodeCallWrite(Ended("c1"));
  for (const std::string& line : {
           std::string(""),
           std::string("not json"),
           good.substr(0, good.size() / 2),  // cut short by a crash
           std::string("[1,2]"),
           std::string(R"({"write":"delete","id":"c1"})"),
           std::string(R"({"write":"state","id":"c1","status":"lost","reason":"","duration_s":0})"),
           std::string(R"({"write":"state","id":"c1","status":"missed","reason":""})"),
           std::string(R"({"write":"state","id":7,"status":"missed","reason":"","duration_s":0})"),
           std::string(R"({"write":"ice","id":"c1","side":"both","report":{}})"),
       }) {
    EXPECT_FALSE(DecodeCallWrite(line).has_value()) << line;
  }
  EXPECT_TRUE(DecodeCallWrite(good).has_value());
}

class UnwrittenCallsReplayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = testing::OpenStoreOfAliceAndBob(kMs);
    ASSERT_TRUE(store.has_value()) << store.error().message;
    store_ = std::move(*store);
    path_ = (dir_.path() / std::string(kUnwrittenCallsFileName)).string();
  }

  TempDir dir_;
  std::string path_;
  std::unique_ptr<testing::FlakyStore> store_;
};

TEST_F(UnwrittenCallsReplayTest, NoFileIsNothingToDo) {
  auto replay = ReplayUnwrittenCalls(*store_, path_);
  ASSERT_TRUE(replay.has_value()) << replay.error().message;
  EXPECT_EQ(replay->applied + replay->refused + replay->unreadable, 0u);
  EXPECT_TRUE(store_->batches().empty());
}

TEST_F(UnwrittenCallsReplayTest, WritesSavedOutOfOrderLandWholeAndTheFileGoes) {
  UnwrittenCallsFile file(path_);
  // Saved by two batches that finished out of order: the end before the row.
  const std::vector<sql::CallWrite> later = {
      Ended("c1"),
      sql::IceUpdate{.call_id = "c1", .side = sql::CallSide::kCaller, .report = Report("ok", 30)}};
  const std::vector<sql::CallWrite> earlier = {Ringing("c1"), Ringing("c2")};
  ASSERT_TRUE(file.Append(later).has_value());
  ASSERT_TRUE(file.Append(earlier).has_value());
  EXPECT_EQ(std::filesystem::status(path_).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  {
    std::ofstream out(path_, std::ios::app);
    out << R"({"write":"state","id":"c2","sta)";  // a crash during an append
  }

  std::vector<size_t> progress;
  auto replay = ReplayUnwrittenCalls(*store_, path_, [&](const UnwrittenCallsReplay& so_far) {
    progress.push_back(so_far.applied);
  });
  ASSERT_TRUE(replay.has_value()) << replay.error().message;
  EXPECT_EQ(progress, (std::vector<size_t>{2, 3, 3, 4}));  // after each transaction
  EXPECT_EQ(replay->applied, 4u);
  EXPECT_EQ(replay->refused, 0u);
  EXPECT_EQ(replay->unreadable, 1u);
  EXPECT_EQ(replay->ended, 1u);
  EXPECT_FALSE(std::filesystem::exists(path_));
  // The rows, then their states, then (after the ends of the calls the file
  // left going: EndUnfinishedCallsById) the ICE reports.
  EXPECT_EQ(store_->batches(), (std::vector<size_t>{2, 1, 1}));

  auto c1 = store_->GetCall("c1");
  ASSERT_TRUE(c1.has_value());
  EXPECT_EQ(c1->status, sql::CallStatus::kCompleted);
  EXPECT_EQ(c1->duration_seconds, 7);
  ASSERT_TRUE(c1->caller_ice.has_value());
  EXPECT_EQ(c1->caller_ice->rtt_ms, 30);
  // c2 rang when the process that saved the file went (a crash: a stop
  // would have saved its end): it is over.
  auto c2 = store_->GetCall("c2");
  ASSERT_TRUE(c2.has_value());
  EXPECT_EQ(c2->status, sql::CallStatus::kMissed);
  EXPECT_EQ(c2->end_reason, "server_restart");
  EXPECT_EQ(c2->ended_at_ms, c2->created_at_ms);

  // Written once: a second start finds nothing.
  auto again = ReplayUnwrittenCalls(*store_, path_);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->applied, 0u);
}

TEST_F(UnwrittenCallsReplayTest, AWriteTheStoreRefusesIsCountedAndTheRestGoIn) {
  // c1 already ended in the database (another node ended it at its start).
  ASSERT_TRUE(
      store_->ApplyCallWrites(std::vector<sql::CallWrite>{Ringing("c1"), Ended("c1")}).has_value());
  UnwrittenCallsFile file(path_);
  ASSERT_TRUE(file.Append(std::vector<sql::CallWrite>{Ringing("c1"), Ringing("c3")}).has_value());
  auto replay = ReplayUnwrittenCalls(*store_, path_);
  ASSERT_TRUE(replay.has_value()) << replay.error().message;
  EXPECT_EQ(replay->applied, 1u);
  EXPECT_EQ(replay->refused, 1u);
  EXPECT_TRUE(store_->GetCall("c3").has_value());
  auto c1 = store_->GetCall("c1");
  ASSERT_TRUE(c1.has_value());
  EXPECT_EQ(c1->status, sql::CallStatus::kCompleted);  // not rewritten
  EXPECT_FALSE(std::filesystem::exists(path_));
}

// A cluster coordinator saved its history during a database outage and
// crashed; the node that took over swept the database before the file came
// back at this start.
TEST_F(UnwrittenCallsReplayTest, CallsTheFileLeftGoingEndAndRealEndsReplaceMadeUpOnes) {
  // c4's row went in before the outage, and the sweep made up its end.
  ASSERT_TRUE(store_->ApplyCallWrites(std::vector<sql::CallWrite>{Ringing("c4")}).has_value());
  ASSERT_EQ(store_->EndUnfinishedCalls(std::nullopt), 1);
  UnwrittenCallsFile file(path_);
  const sql::CallStateUpdate answered{
      .call_id = "c1", .status = sql::CallStatus::kActive, .answered_at_ms = kMs + 2000};
  ASSERT_TRUE(file.Append(std::vector<sql::CallWrite>{Ringing("c1"), answered, Ended("c4")}));

  auto replay = ReplayUnwrittenCalls(*store_, path_);
  ASSERT_TRUE(replay.has_value()) << replay.error().message;
  EXPECT_EQ(replay->applied, 3u);
  EXPECT_EQ(replay->ended, 1u);
  EXPECT_EQ(replay->refused, 0u);
  auto c1 = store_->GetCall("c1");
  ASSERT_TRUE(c1.has_value());
  EXPECT_EQ(c1->status, sql::CallStatus::kFailed);
  EXPECT_EQ(c1->end_reason, "server_restart");
  EXPECT_EQ(c1->answered_at_ms, kMs + 2000);
  EXPECT_EQ(c1->ended_at_ms, kMs + 2000);
  auto c4 = store_->GetCall("c4");
  ASSERT_TRUE(c4.has_value());
  EXPECT_EQ(c4->status, sql::CallStatus::kCompleted);
  EXPECT_EQ(c4->end_reason, "hangup");
  EXPECT_EQ(c4->duration_seconds, 7);
}

// At a stop, writes that failed in memory are saved behind newer ones
// already in the file: of each side's ICE reports the newest is written.
TEST_F(UnwrittenCallsReplayTest, TheNewestIceReportOfASideWinsWhateverTheOrder) {
  UnwrittenCallsFile file(path_);
  sql::IceUpdate newer{.call_id = "c1", .side = sql::CallSide::kCaller, .report = Report("ok", 30)};
  newer.report.reported_at_ms = kMs + 6000;
  const sql::IceUpdate older{
      .call_id = "c1", .side = sql::CallSide::kCaller, .report = Report("failed", {})};
  const sql::IceUpdate callee{
      .call_id = "c1", .side = sql::CallSide::kCallee, .report = Report("failed", {})};
  ASSERT_TRUE(file.Append(std::vector<sql::CallWrite>{newer, Ringing("c1"), Ended("c1")}));
  ASSERT_TRUE(file.Append(std::vector<sql::CallWrite>{older, callee}));

  auto replay = ReplayUnwrittenCalls(*store_, path_);
  ASSERT_TRUE(replay.has_value()) << replay.error().message;
  EXPECT_EQ(replay->superseded, 1u);
  auto c1 = store_->GetCall("c1");
  ASSERT_TRUE(c1.has_value());
  ASSERT_TRUE(c1->caller_ice.has_value());
  EXPECT_EQ(c1->caller_ice->reported_at_ms, kMs + 6000);
  EXPECT_EQ(c1->caller_ice->rtt_ms, 30);
  ASSERT_TRUE(c1->callee_ice.has_value());
  EXPECT_EQ(c1->callee_ice->failure_cause, "checks_failed");
}

TEST_F(UnwrittenCallsReplayTest, WhileTheDatabaseIsAwayTheFileIsKept) {
  UnwrittenCallsFile file(path_);
  ASSERT_TRUE(file.Append(std::vector<sql::CallWrite>{Ringing("c1")}).has_value());
  store_->FailNext(1);
  auto replay = ReplayUnwrittenCalls(*store_, path_);
  ASSERT_FALSE(replay.has_value());
  EXPECT_EQ(replay.error().code, base::ErrorCode::kUnavailable);
  EXPECT_TRUE(std::filesystem::exists(path_));

  replay = ReplayUnwrittenCalls(*store_, path_);
  ASSERT_TRUE(replay.has_value()) << replay.error().message;
  EXPECT_EQ(replay->applied, 1u);
  EXPECT_TRUE(store_->GetCall("c1").has_value());
}

TEST_F(UnwrittenCallsReplayTest, ChunksReadWholeLinesInOrderAndDropBeforeKeepsTheRest) {
  UnwrittenCallsFile file(path_);
  ASSERT_TRUE(
      file.Append(std::vector<sql::CallWrite>{Ringing("c1"), Ringing("c2"), Ringing("c3")}, false)
          .has_value());
  {
    std::ofstream out(path_, std::ios::app);
    out << R"({"write":"insert","id":"c4")";  // not whole yet
  }
  auto first = ReadUnwrittenCalls(path_, 0, 2);
  ASSERT_TRUE(first.has_value()) << first.error().message;
  ASSERT_EQ(first->writes.size(), 2u);
  EXPECT_EQ(std::get<sql::Call>(first->writes[1]).id, "c2");
  EXPECT_FALSE(first->end);
  auto second = ReadUnwrittenCalls(path_, first->next_offset, 2);
  ASSERT_TRUE(second.has_value()) << second.error().message;
  ASSERT_EQ(second->writes.size(), 1u);
  EXPECT_EQ(std::get<sql::Call>(second->writes[0]).id, "c3");
  EXPECT_TRUE(second->end);  // the cut line is not read

  ASSERT_TRUE(file.DropBefore(first->next_offset).has_value());
  auto rest = ReadUnwrittenCalls(path_, 0, 10);
  ASSERT_TRUE(rest.has_value()) << rest.error().message;
  ASSERT_EQ(rest->writes.size(), 1u);
  EXPECT_EQ(std::get<sql::Call>(rest->writes[0]).id, "c3");

  auto missing = ReadUnwrittenCalls((dir_.path() / "none.jsonl").string(), 0, 10);
  ASSERT_TRUE(missing.has_value());
  EXPECT_TRUE(missing->writes.empty());
  EXPECT_TRUE(missing->end);
}

// Writes that came before the file's (held in memory) go in front of the
// lines not read back yet; those read back go; no file: a new one.
TEST_F(UnwrittenCallsReplayTest, PutInFrontKeepsTheLinesNotReadBackBehindTheNewOnes) {
  UnwrittenCallsFile file(path_);
  ASSERT_TRUE(file.PutInFront(std::vector<sql::CallWrite>{Ringing("c2")}, 0, false).has_value());
  ASSERT_TRUE(
      file.Append(std::vector<sql::CallWrite>{Ringing("c3"), Ringing("c4")}, false).has_value());
  auto first = ReadUnwrittenCalls(path_, 0, 1);  // c2 read back
  ASSERT_TRUE(first.has_value()) << first.error().message;

  ASSERT_TRUE(file.PutInFront(std::vector<sql::CallWrite>{Ringing("c0"), Ringing("c1")},
                              first->next_offset, false)
                  .has_value());
  auto all = ReadUnwrittenCalls(path_, 0, 10);
  ASSERT_TRUE(all.has_value()) << all.error().message;
  std::vector<std::string> ids;
  for (const sql::CallWrite& write : all->writes) {
    ids.push_back(sql::CallWriteCallId(write));
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"c0", "c1", "c3", "c4"}));
  EXPECT_FALSE(std::filesystem::exists(path_ + ".new"));
}

TEST_F(UnwrittenCallsReplayTest, AFileThatCannotBeWrittenSaysWhy) {
  UnwrittenCallsFile file((dir_.path() / "missing-dir" / "calls.jsonl").string());
  auto saved = file.Append(std::vector<sql::CallWrite>{Ringing("c1")});
  ASSERT_FALSE(saved.has_value());
  EXPECT_NE(saved.error().message.find("missing-dir"), std::string::npos) << saved.error().message;
}

}  // namespace
}  // namespace turnkey::signal
