#include "signal/call_store_recorder.h"

#include <errno.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <iterator>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <variant>

#include "base/log.h"
#include "signal/unwritten_calls.h"

namespace turnkey::signal {
namespace {

// A job waits at most this long for the batch before it (Flush at shutdown
// may have two in flight) before writing anyway.
constexpr std::chrono::seconds kTurnWait{30};

// At the stop, a batch the database could not take for a while (Passes) is
// tried again after this pause, until the shutdown budget runs out.
constexpr std::chrono::milliseconds kStopRetryPause{100};

// The failure is the database's availability (down, locked, full; no pooled
// connection free), which passes; anything else may be the batch itself.
bool Passes(const base::Error& error) {
  return error.code == base::ErrorCode::kUnavailable ||
         error.code == base::ErrorCode::kResourceExhausted;
}

sql::CallType StoredType(metrics::CallType type) {
  return type == metrics::CallType::kVideo ? sql::CallType::kVideo : sql::CallType::kAudio;
}

std::string CandidateName(metrics::CandidateType type) {
  if (type == metrics::CandidateType::kUnknown || type == metrics::CandidateType::kCount) {
    return "";
  }
  return std::string(metrics::kCandidateTypeValues[static_cast<size_t>(type)]);
}

// The call id under which `write` takes merges while it waits (an insert or
// a state update); null for an ICE report, which never does.
const std::string* MergeKey(const sql::CallWrite& write) {
  return std::holds_alternative<sql::IceUpdate>(write) ? nullptr : &sql::CallWriteCallId(write);
}

// `options` with at least one retry delay (the last one repeats).
CallStoreRecorderOptions WithRetryDelays(CallStoreRecorderOptions options) {
  if (options.retry_delays.empty()) {
    options.retry_delays = {std::chrono::seconds(15)};
  }
  return options;
}

}  // namespace

sql::CallStatus StoredCallStatus(metrics::CallStatus status) {
  switch (status) {
    case metrics::CallStatus::kCompleted:
      return sql::CallStatus::kCompleted;
    case metrics::CallStatus::kMissed:
    case metrics::CallStatus::kUnavailable:
      return sql::CallStatus::kMissed;
    case metrics::CallStatus::kRejected:
      return sql::CallStatus::kRejected;
    case metrics::CallStatus::kBusy:
      return sql::CallStatus::kBusy;
    case metrics::CallStatus::kCancelled:
      return sql::CallStatus::kCancelled;
    case metrics::CallStatus::kConnectionLost:
    case metrics::CallStatus::kIceFailed:
    case metrics::CallStatus::kCount:
      break;
  }
  return sql::CallStatus::kFailed;
}

// One posted batch, shared by its job and the loop: its writes, whether its
// job began with them, and its end (for WriteBarrier). The flags are guarded
// by Shared::mutex; the writes belong to the loop until the job has
// started (OnSlowBatch may take them to the file: `saved`), then to the job.
struct CallStoreRecorder::BatchResult {
  uint64_t seq = 0;
  std::vector<sql::CallWrite> writes;
  size_t size = 0;  // writes.size() when posted
  bool started = false;
  bool saved = false;  // taken to unwritten_path before it started
  bool done = false;
  bool failed = false;  // done without reaching the store (or saved)
};

struct CallStoreRecorder::Shared {
  Shared(const metrics::SignalMetrics& m, metrics::Shard& s, const std::string& unwritten_path)
      : metrics(m), shard(s) {
    if (!unwritten_path.empty()) {
      unwritten = std::make_unique<UnwrittenCallsFile>(unwritten_path);
    }
  }

  CallStoreRecorderStats stats;
  // turnkey_call_history_writes_total and turnkey_db_query_seconds; the
  // shard is one any thread may write.
  const metrics::SignalMetrics& metrics;
  metrics::Shard& shard;
  // Batch order across workers (only Flush ever has two in flight).
  std::mutex mutex;
  std::condition_variable turn;
  uint64_t done_seq = 0;  // guarded by mutex
  // The last batch that failed as a whole (or was not tried because the one
  // before it failed); guarded by mutex.
  uint64_t failed_seq = 0;
  // Set by the destructor: from then on a failed batch is not retried, and
  // batches that start after this time are not tried.
  std::atomic<std::chrono::steady_clock::time_point> give_up_at{
      std::chrono::steady_clock::time_point::max()};
  bool closing() const { return give_up_at.load() != std::chrono::steady_clock::time_point::max(); }
  // Loop thread only; null once the recorder is gone.
  CallStoreRecorder* owner = nullptr;
  // Where writes given up at the stop are saved; null = nowhere.
  std::unique_ptr<UnwrittenCallsFile> unwritten;

  // Stats and metric together, from any thread.
  void Applied() {
    ++stats.writes_applied;
    metrics.history_writes[metrics::HistoryWriteResult::kApplied].Inc(shard);
  }
  void Refused() {
    ++stats.writes_failed;
    metrics.history_writes[metrics::HistoryWriteResult::kRefused].Inc(shard);
  }
  // Returns the lost writes so far.
  uint64_t Lost(uint64_t n) {
    metrics.history_writes[metrics::HistoryWriteResult::kLost].Add(shard, n);
    return stats.writes_dropped += n;
  }
  // Writes the stop gives up on (`why`, for the log): saved for the next
  // start when there is a file to save them in, else lost. Any thread.
  void GiveUp(std::span<const sql::CallWrite> writes, std::string_view why) {
    if (writes.empty()) {
      return;
    }
    if (unwritten == nullptr) {
      const uint64_t lost = Lost(writes.size());
      TK_LOG_ERROR("calls: {} call history writes lost at shutdown: {} ({} lost in all)",
                   writes.size(), why, lost);
      return;
    }
    base::Status saved = unwritten->Append(writes);
    if (saved) {
      stats.writes_saved += writes.size();
      TK_LOG_WARN(
          "calls: {} call history writes not made at shutdown ({}); saved to {} and written at "
          "the next start",
          writes.size(), why, unwritten->path());
      return;
    }
    const uint64_t lost = Lost(writes.size());
    TK_LOG_ERROR(
        "calls: {} call history writes lost at shutdown ({}) and not saved: {} ({} lost in all)",
        writes.size(), why, saved.error().message, lost);
  }

  // Until the batch before `batch` is done (or `batch` was saved), then
  // starts it: true if its job is to write it, false if it was saved.
  bool WaitTurn(BatchResult& batch) {
    std::unique_lock lock(mutex);
    turn.wait_for(lock, kTurnWait, [&] { return done_seq + 1 >= batch.seq || batch.saved; });
    batch.started = !batch.saved;
    return batch.started;
  }
  // Until `batch` (and so every batch before it) is done, or `max_wait`.
  // True if it was done and did not fail. A batch after a failed one in the
  // same run fails too (not tried), so the last batch of a barrier says
  // whether any of its run failed (a failed batch's records wait in memory
  // for their retry).
  bool WaitDone(const BatchResult& batch, std::chrono::milliseconds max_wait) {
    std::unique_lock lock(mutex);
    return turn.wait_for(lock, max_wait, [&] { return batch.done; }) && !batch.failed;
  }
  // `failed`: not written, and the batches after it must not be either.
  // `saved`: not written here, but in the file (those after it are too).
  void FinishTurn(uint64_t seq, BatchResult& result, bool failed = false, bool saved = false) {
    {
      std::lock_guard lock(mutex);
      done_seq = std::max(done_seq, seq);
      result.done = true;
      result.failed = failed || saved;
      if (failed) {
        failed_seq = std::max(failed_seq, seq);
      }
    }
    turn.notify_all();
  }
  bool PreviousFailed(uint64_t seq) {
    std::lock_guard lock(mutex);
    return seq > 1 && failed_seq == seq - 1;
  }
  // Every batch of a failed run is back: the retry and what follows run.
  void ClearFailed() {
    std::lock_guard lock(mutex);
    failed_seq = 0;
  }
};

struct CallStoreRecorder::BatchOutcome {
  // The writes of a batch that failed as a whole; empty on success.
  std::vector<sql::CallWrite> failed;
  size_t attempt = 0;
  // The failure was the database's availability (kUnavailable: down,
  // locked, full; kResourceExhausted: no pooled connection free), which
  // passes; anything else may be the batch itself.
  bool unavailable = false;
  uint64_t seq = 0;
};

// One batch on a worker. A named type, not a lambda: when the queue refuses
// it, Post takes the writes back out.
struct CallStoreRecorder::BatchJob {
  std::shared_ptr<Shared> shared;
  sql::Store* store;
  size_t attempt;
  std::shared_ptr<BatchResult> end;

  BatchOutcome operator()() {
    const uint64_t seq = end->seq;
    BatchOutcome outcome;
    outcome.attempt = attempt;
    outcome.seq = seq;
    if (!shared->WaitTurn(*end)) {
      // Saved to the file while it waited behind a batch the database did
      // not answer (OnSlowBatch, which counted it); it comes back from there.
      shared->FinishTurn(seq, *end, false, /*saved=*/true);
      return outcome;
    }
    // The writes are the job's from here on, and go with it.
    std::vector<sql::CallWrite> writes = std::move(end->writes);
    end->writes = {};
    if (shared->PreviousFailed(seq) && shared->closing()) {
      // At the stop the same order holds: what follows a batch that was not
      // written is saved with it, never written before it.
      shared->GiveUp(writes, "a batch before them was not written");
      shared->FinishTurn(seq, *end, true);
      return outcome;
    }
    if (shared->PreviousFailed(seq)) {
      // The batch before this one failed and goes back to be retried: this
      // one must follow it, not go first (an update of a call whose insert
      // failed would be refused as "call not found" and the call would stay
      // ringing; the MariaDB audit's lock test lost 2 of 576 calls so).
      outcome.failed = std::move(writes);
      outcome.unavailable = true;
      shared->FinishTurn(seq, *end, true);
      return outcome;
    }
    const auto start = std::chrono::steady_clock::now();
    if (start >= shared->give_up_at.load()) {
      shared->GiveUp(writes, "out of time");
      shared->FinishTurn(seq, *end, true);
      return outcome;
    }
    base::Result<std::vector<base::Status>> result = store->ApplyCallWrites(writes);
    // At the stop no retry comes later: an outage that passes (a backup
    // holding the SQLite lock) is waited out here, within the budget.
    if (!result && shared->closing() && Passes(result.error())) {
      TK_LOG_WARN("calls: {} call history writes wait for the database at shutdown: {}",
                  writes.size(), result.error().message);
      while (!result && Passes(result.error()) &&
             std::chrono::steady_clock::now() + kStopRetryPause < shared->give_up_at.load()) {
        std::this_thread::sleep_for(kStopRetryPause);
        result = store->ApplyCallWrites(writes);
      }
    }
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    shared->metrics.db_query_seconds.Observe(shared->shard, took.count());
    bool failed = false;
    if (!result) {
      failed = true;
      if (shared->closing()) {
        shared->GiveUp(writes, result.error().message);
      } else {
        TK_LOG_WARN("calls: {} call history writes not applied (will retry): {}", writes.size(),
                    result.error().message);
        outcome.failed = std::move(writes);
        outcome.unavailable = Passes(result.error());
      }
    } else {
      ++shared->stats.batches;
      for (size_t i = 0; i < result->size() && i < writes.size(); ++i) {
        if ((*result)[i]) {
          shared->Applied();
          continue;
        }
        shared->Refused();
        // kAlreadyExists: the row is there, or was ended already (by the
        // next coordinator after a handover, or a commit whose answer was
        // lost went in): expected after those, not a call missing.
        const base::Error& error = (*result)[i].error();
        const std::string refused = fmt::format(
            "calls: call history {} of call {} refused by the store: {}",
            sql::CallWriteKind(writes[i]), sql::CallWriteCallId(writes[i]), error.message);
        if (error.code == base::ErrorCode::kAlreadyExists) {
          TK_LOG_WARN("{}", refused);
        } else {
          TK_LOG_ERROR("{}", refused);
        }
      }
    }
    shared->FinishTurn(seq, *end, failed);
    return outcome;
  }
};

CallStoreRecorder::CallStoreRecorder(net::EventLoop& loop, net::WorkQueue& queue, sql::Store& store,
                                     const base::Clock& clock,
                                     const metrics::SignalMetrics& metrics,
                                     metrics::Shard& db_shard, CallStoreRecorderOptions options)
    : loop_(loop),
      queue_(queue),
      store_(store),
      options_(WithRetryDelays(std::move(options))),
      clock_(clock),
      anchors_{Anchor{clock.Now(), clock.UnixMillis()}},
      shared_(std::make_shared<Shared>(metrics, db_shard, options_.unwritten_path)),
      retry_timer_(loop,
                   [this] {
                     Post(When::kNow);
                     // Nothing in memory: what failed waits in the file.
                     ReadBackSpilled();
                   }),
      commit_timer_(loop, [this] { Post(When::kNow); }),
      slow_timer_(loop, [this] { OnSlowBatch(); }) {
  shared_->owner = this;
}

CallStoreRecorder::~CallStoreRecorder() {
  shared_->give_up_at = std::chrono::steady_clock::now() + options_.shutdown_budget;
  if (spilling_) {
    // What was read back is in memory now (and is written, or saved again
    // if it cannot be): the next start need not see it twice.
    if (auto dropped = shared_->unwritten->DropBefore(spill_offset_); !dropped) {
      TK_LOG_ERROR("calls: {} (its writes already made are refused at the next start)",
                   dropped.error().message);
    }
    TK_LOG_WARN("calls: the call history writes still waiting in {} are written at the next start",
                shared_->unwritten->path());
  }
  // Failed batches back while later ones are out: those later ones are
  // saved, not written (they follow a failure), and so are these.
  std::sort(returned_.begin(), returned_.end(),
            [](const BatchOutcome& a, const BatchOutcome& b) { return a.seq < b.seq; });
  for (const BatchOutcome& back : returned_) {
    shared_->GiveUp(back.failed, "not written before the stop");
  }
  returned_.clear();
  Flush();
  shared_->owner = nullptr;
}

const CallStoreRecorderStats& CallStoreRecorder::stats() const { return shared_->stats; }

size_t CallStoreRecorder::in_memory() const {
  size_t writes = pending_.size();
  for (const std::shared_ptr<BatchResult>& batch : posted_) {
    writes += batch->saved ? 0 : batch->size;  // saved: in the file
  }
  for (const BatchOutcome& back : returned_) {
    writes += back.failed.size();
  }
  return writes;
}

std::shared_ptr<const CallStoreRecorderStats> CallStoreRecorder::shared_stats() const {
  return std::shared_ptr<const CallStoreRecorderStats>(shared_, &shared_->stats);
}

int64_t CallStoreRecorder::UnixMs(base::MonoTime time) const {
  auto anchor = anchors_.rbegin();
  while (anchor + 1 != anchors_.rend() && time < anchor->mono) {
    ++anchor;
  }
  return anchor->unix_ms +
         std::chrono::duration_cast<std::chrono::milliseconds>(time - anchor->mono).count();
}

base::Duration CallStoreRecorder::FollowWallClock() {
  const base::MonoTime now = clock_.Now();
  const int64_t unix_ms = clock_.UnixMillis();
  const auto moved = std::chrono::milliseconds(unix_ms - UnixMs(now));
  if (std::chrono::abs(moved) < kWallClockStep) {
    return base::Duration::zero();
  }
  constexpr size_t kMaxAnchors = 16;
  if (anchors_.size() == kMaxAnchors) {
    anchors_.erase(anchors_.begin());
  }
  anchors_.push_back(Anchor{now, unix_ms});
  TK_LOG_WARN(
      "calls: the wall clock moved {:+.3f} s against the monotonic clock (stepped, or the host "
      "slept); call times follow it from now on",
      std::chrono::duration<double>(moved).count());
  return moved;
}

void CallStoreRecorder::CallCreated(const CallInfo& call) {
  sql::Call row;
  row.id = call.id;
  row.caller_id = call.caller_id;
  row.callee_id = call.callee_id;
  row.type = StoredType(call.type);
  row.status = sql::CallStatus::kRinging;
  row.created_at_ms = UnixMs(call.created_at);
  Add(std::move(row));
}

void CallStoreRecorder::CallAnswered(const CallInfo& call, base::MonoTime answered_at) {
  sql::CallStateUpdate update;
  update.call_id = call.id;
  update.status = sql::CallStatus::kActive;
  update.answered_at_ms = std::max(UnixMs(answered_at), UnixMs(call.created_at));
  Add(std::move(update));
}

void CallStoreRecorder::CallEnded(const CallEndRecord& end) {
  sql::CallStateUpdate update;
  update.call_id = end.call.id;
  update.status = StoredCallStatus(end.status);
  update.end_reason = end.reason;
  // Never before the call's earlier times, whatever the wall clock did
  // between them.
  int64_t earliest_end = UnixMs(end.call.created_at);
  if (end.answered_at) {
    update.answered_at_ms = std::max(UnixMs(*end.answered_at), earliest_end);
    earliest_end = *update.answered_at_ms;
  }
  update.ended_at_ms = std::max(UnixMs(end.ended_at), earliest_end);
  update.duration_seconds = end.duration_seconds;
  Add(std::move(update));
}

void CallStoreRecorder::IceReported(const IceReportRecord& report) {
  sql::IceUpdate update;
  update.call_id = report.call_id;
  update.side = report.side == CallSide::kCaller ? sql::CallSide::kCaller : sql::CallSide::kCallee;
  update.report.state = std::string(metrics::kIceResultValues[static_cast<size_t>(report.result)]);
  update.report.local_candidate_type = CandidateName(report.local_candidate_type);
  update.report.remote_candidate_type = CandidateName(report.remote_candidate_type);
  update.report.relay_protocol = report.relay_protocol;
  update.report.rtt_ms = report.rtt_ms;
  update.report.reported_at_ms = UnixMs(report.reported_at);
  if (report.result == metrics::IceResult::kFailed) {
    update.report.failure_cause =
        std::string(metrics::kIceFailureCauseValues[static_cast<size_t>(report.cause)]);
  }
  Add(std::move(update));
}

std::function<bool()> CallStoreRecorder::WriteBarrier(std::chrono::milliseconds max_wait) {
  // Not Flush(): that gives up on what the queue refuses, and cuts short a
  // retry's back-off. A refused batch goes back to wait for its retry here,
  // which stops the loop; a read then sees what was committed so far.
  while (!pending_.empty() && !retry_timer_.IsRunning()) {
    Post(When::kForce);
  }
  // What still waits now is held for a retry: the database is away (or a
  // failed batch is back while later ones are still out).
  const bool held = !pending_.empty() || !returned_.empty() || spilling_;
  if (posted_.empty()) {
    return [held] { return !held; };
  }
  // The newest batch posted so far is the last one holding a record made
  // before this call; it fails if any batch of its run did. Its own result,
  // not a sequence number: the batch may have failed already, and the
  // waiter may look long after its failed run was put back for a retry.
  return [shared = shared_, batch = last_posted_, max_wait, held] {
    return shared->WaitDone(*batch, max_wait) && !held;
  };
}

bool CallStoreRecorder::Merge(const sql::CallWrite& write) {
  if (std::holds_alternative<sql::Call>(write)) {
    return false;
  }
  auto found = waiting_.find(sql::CallWriteCallId(write));
  if (found == waiting_.end()) {
    return false;
  }
  sql::CallWrite& waiting = pending_[found->second - front_position_];
  const auto* state = std::get_if<sql::CallStateUpdate>(&write);
  if (auto* update = std::get_if<sql::CallStateUpdate>(&waiting)) {
    // A state update is written whole: a later one replaces it. An ICE
    // report (other columns) goes out on its own.
    if (state == nullptr) {
      return false;
    }
    *update = *state;
    return true;
  }
  sql::Call& call = std::get<sql::Call>(waiting);
  if (state != nullptr) {
    call.status = state->status;
    call.end_reason = state->end_reason;
    call.answered_at_ms = state->answered_at_ms;
    call.ended_at_ms = state->ended_at_ms;
    call.duration_seconds = state->duration_seconds;
  } else {
    const auto& ice = std::get<sql::IceUpdate>(write);
    (ice.side == sql::CallSide::kCaller ? call.caller_ice : call.callee_ice) = ice.report;
  }
  return true;
}

void CallStoreRecorder::Add(sql::CallWrite write) {
  // A write the store would refuse goes out alone: it neither joins another
  // nor takes one in, so it cannot take a good one down with it. Inserts are
  // not checked here (the store checks every write): the records folded
  // into one it refuses would find no row to update anyway.
  if (spilling_) {
    // Behind what went to the file, in order: not merged into a write in
    // memory, which may be older than ones in the file.
    Spill(std::move(write));
    return;
  }
  const bool valid =
      std::holds_alternative<sql::Call>(write) || static_cast<bool>(sql::ValidateCallWrite(write));
  if (valid && Merge(write)) {
    ++shared_->stats.records_merged;
    return;
  }
  if (pending_.size() >= options_.max_pending && shared_->unwritten != nullptr) {
    Spill(std::move(write));
    return;
  }
  if (pending_.size() >= options_.max_pending) {
    const uint64_t dropped = shared_->Lost(1);
    // Once per thousand: the database is far behind and the log must not
    // become the next bottleneck.
    if (dropped % 1000 == 1) {
      TK_LOG_ERROR("calls: {} call history writes pending; dropping {} of call {} ({} dropped)",
                   pending_.size(), sql::CallWriteKind(write), sql::CallWriteCallId(write),
                   dropped);
    }
    return;
  }
  if (const std::string* key = MergeKey(write); valid && key != nullptr) {
    waiting_[*key] = front_position_ + pending_.size();
  }
  pending_.push_back(std::move(write));
  Post(When::kAfterDelay);
}

void CallStoreRecorder::Spill(sql::CallWrite write) {
  base::Status saved = shared_->unwritten->Append(std::span(&write, 1), /*sync=*/false);
  if (!saved && pending_.size() < options_.max_pending) {
    // Memory has room: better there, even ahead of the file's older writes
    // (an end before its insert is refused, and the call is ended as
    // server_restart, as it would be without the end), than lost.
    TK_LOG_WARN_EVERY(std::chrono::seconds(10), "calls: call history writes wait in memory: {}: {}",
                      shared_->unwritten->path(), saved.error().message);
    memory_in_file_ = false;  // not a copy of the file's
    pending_.push_back(std::move(write));
    Post(When::kAfterDelay);
    return;
  }
  if (!saved) {
    const uint64_t dropped = shared_->Lost(1);
    if (dropped % 1000 == 1) {
      TK_LOG_ERROR("calls: dropping call history {} of call {}: {} ({} dropped)",
                   sql::CallWriteKind(write), sql::CallWriteCallId(write), saved.error().message,
                   dropped);
    }
    return;
  }
  ++shared_->stats.writes_saved;
  ++spilled_;
  if (!spilling_) {
    spilling_ = true;
    TK_LOG_WARN(
        "calls: {} call history writes wait in memory for the database; the next ones wait in {} "
        "until it takes them",
        pending_.size(), shared_->unwritten->path());
  }
}

void CallStoreRecorder::ReadBackSpilled() {
  if (!spilling_ || !pending_.empty() || !posted_.empty() || !returned_.empty() ||
      retry_timer_.IsRunning() || shared_->closing()) {
    return;
  }
  const std::string& path = shared_->unwritten->path();
  auto chunk = ReadUnwrittenCalls(path, spill_offset_, options_.max_batch);
  if (!chunk) {
    // Records keep going to the file, behind the older ones in it (in
    // memory they would reach the database first: an end before its
    // insert), and the read is tried again after the longest retry delay.
    // A stop leaves the file to the next start.
    TK_LOG_ERROR("calls: {}; the call history writes in it wait (tried again in {} ms)",
                 chunk.error().message, RetryDelay(options_.retry_delays.size()).count());
    retry_timer_.Start(RetryDelay(options_.retry_delays.size()));
    return;
  }
  spill_offset_ = chunk->next_offset;
  read_back_ += chunk->writes.size() + chunk->unreadable;
  if (chunk->writes.empty() && chunk->end) {
    spilling_ = false;
    memory_in_file_ = false;
    spill_offset_ = 0;
    read_back_ = 0;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      TK_LOG_ERROR("calls: {}: cannot remove after writing it: {}", path, std::strerror(errno));
    }
    if (std::exchange(spilled_, 0) > 0) {
      TK_LOG_INFO("calls: the call history writes that waited in {} are written", path);
    }
    return;
  }
  // Not open to merges (not in waiting_): they go out as they were saved.
  // Copies: the file keeps them until it goes, so a crash loses none.
  memory_in_file_ = true;
  for (sql::CallWrite& write : chunk->writes) {
    pending_.push_back(std::move(write));
  }
  Post(When::kNow);  // OnBatchDone (or the retry) comes back here
}

void CallStoreRecorder::Flush() {
  retry_timer_.Stop();
  while (!pending_.empty()) {
    const size_t before = pending_.size();
    Post(When::kForce);
    if (pending_.size() >= before) {
      // The queue refused even now: they cannot reach the database.
      const std::vector<sql::CallWrite> writes(std::make_move_iterator(pending_.begin()),
                                               std::make_move_iterator(pending_.end()));
      shared_->GiveUp(writes, "the work queue refused them");
      pending_.clear();
      waiting_.clear();
      break;
    }
  }
}

void CallStoreRecorder::Post(When when) {
  if (pending_.empty()) {
    commit_timer_.Stop();
    return;
  }
  if (when == When::kAfterDelay) {
    if (pending_.size() < options_.max_batch && options_.commit_delay.count() > 0) {
      // The first waiting record opens the window; later ones join it.
      if (!commit_timer_.IsRunning()) {
        commit_timer_.Start(options_.commit_delay);
      }
      return;
    }
    when = When::kNow;
  }
  if (when == When::kNow && (!posted_.empty() || retry_timer_.IsRunning())) {
    return;  // OnBatchDone or the retry timer comes back here
  }
  const size_t take = single_ > 0 ? 1 : std::min(options_.max_batch, pending_.size());
  std::vector<sql::CallWrite> batch;
  batch.reserve(take);
  for (size_t i = 0; i < take; ++i) {
    sql::CallWrite& write = pending_.front();
    // Once posted, a write no longer takes merges.
    if (const std::string* key = MergeKey(write); key != nullptr) {
      if (auto found = waiting_.find(*key);
          found != waiting_.end() && found->second == front_position_) {
        waiting_.erase(found);
      }
    }
    batch.push_back(std::move(write));
    pending_.pop_front();
    ++front_position_;
  }
  if (pending_.empty()) {
    commit_timer_.Stop();
  }
  const size_t attempt = std::exchange(attempt_, 0);
  const uint64_t seq = next_seq_;

  auto result = std::make_shared<BatchResult>();
  result->seq = seq;
  result->size = take;
  result->writes = std::move(batch);
  BatchJob job{shared_, &store_, attempt, result};
  auto done = [weak = std::weak_ptr<Shared>(shared_)](BatchOutcome outcome) {
    std::shared_ptr<Shared> shared = weak.lock();
    if (shared == nullptr) {
      return;
    }
    if (shared->owner == nullptr) {
      shared->GiveUp(outcome.failed, "the database did not take them");
      return;
    }
    shared->owner->OnBatchDone(std::move(outcome));
  };
  if (!queue_.TryPost(loop_, std::move(job), std::move(done))) {
    // The job was not taken, so its writes are still ours to retry.
    TK_LOG_WARN("calls: work queue full; call history writes wait");
    Retry(std::move(result->writes), attempt + 1, true);
    return;
  }
  ++next_seq_;
  posted_.push_back(result);
  last_posted_ = std::move(result);
  if (!slow_timer_.IsRunning()) {
    ArmSlowTimer();
  }
}

void CallStoreRecorder::ArmSlowTimer() {
  if (!posted_.empty() && options_.slow_batch.count() > 0 && shared_->unwritten != nullptr) {
    slow_timer_.Start(options_.slow_batch);
  }
}

void CallStoreRecorder::OnBatchDone(BatchOutcome outcome) {
  std::erase_if(posted_, [&](const std::shared_ptr<BatchResult>& batch) {
    return batch->seq == outcome.seq;
  });
  // The next batch out (Flush may have two) has its own time to answer.
  slow_timer_.Stop();
  ArmSlowTimer();
  if (!outcome.failed.empty()) {
    returned_.push_back(std::move(outcome));
  } else if (single_ > 0) {
    --single_;
  }
  if (!returned_.empty()) {
    // Batches after a failed one come back failed too (not tried). Once all
    // are back, their writes go back to the front together, in the order
    // they were made, with the first failure's attempt count.
    if (!posted_.empty()) {
      return;
    }
    std::sort(returned_.begin(), returned_.end(),
              [](const BatchOutcome& a, const BatchOutcome& b) { return a.seq < b.seq; });
    std::vector<sql::CallWrite> writes;
    for (BatchOutcome& back : returned_) {
      std::move(back.failed.begin(), back.failed.end(), std::back_inserter(writes));
    }
    const size_t attempt = returned_.front().attempt + 1;
    const bool unavailable = returned_.front().unavailable;
    returned_.clear();
    shared_->ClearFailed();
    Retry(std::move(writes), attempt, unavailable);
  }
  if (!commit_timer_.IsRunning()) {
    // The window of what waited during the batch has passed (or was full).
    Post(When::kNow);
  }
  ReadBackSpilled();
}

void CallStoreRecorder::Retry(std::vector<sql::CallWrite> writes, size_t attempt,
                              bool unavailable) {
  if (shared_->closing()) {
    shared_->GiveUp(writes, "the work queue refused them");
    return;
  }
  if (unavailable && shared_->unwritten != nullptr && (!spilling_ || !memory_in_file_)) {
    // The database is away (or far behind): these writes, those waiting
    // behind them and every record from now on wait in the file, which a
    // crash of the process does not lose (a call's later writes are no use
    // without its insert), and come back from it once the database does.
    // When records already went to the file (max_pending, a slow batch),
    // these came before them and go in front.
    if (SpillFailed(writes, attempt)) {
      return;
    }
    // The file cannot take them: these wait in memory, and what comes
    // after them in the file, if it can take that.
    if (!std::exchange(spilling_, true)) {
      TK_LOG_WARN("calls: call history writes wait for the database; the next ones wait in {}",
                  shared_->unwritten->path());
    }
  }
  if (!unavailable && attempt > options_.retry_delays.size()) {
    // Not an outage that passes: most likely a write the database cannot
    // take, which would hold every later write back. One at a time, the
    // others go in and that one is refused (counted, logged).
    if (writes.size() > 1) {
      TK_LOG_WARN("calls: {} call history writes failed {} times together; trying them one by one",
                  writes.size(), attempt);
      single_ = writes.size();
      Requeue(std::move(writes), 0);
      return;
    }
    shared_->Lost(writes.size());
    TK_LOG_ERROR("calls: giving up on call history {} of call {} after {} attempts",
                 sql::CallWriteKind(writes.front()), sql::CallWriteCallId(writes.front()), attempt);
    if (single_ > 0) {
      --single_;
    }
    return;
  }
  ++shared_->stats.retries;
  Requeue(std::move(writes), attempt);
}

bool CallStoreRecorder::SpillFailed(std::vector<sql::CallWrite>& writes, size_t attempt) {
  const size_t held = writes.size() + pending_.size();
  if (!SpillMemory(writes)) {
    return false;
  }
  TK_LOG_WARN("calls: call history writes wait for the database in {} ({} from memory)",
              shared_->unwritten->path(), held);
  // The retry reads them back (ReadBackSpilled) after the delay.
  ++shared_->stats.retries;
  attempt_ = attempt;
  retry_timer_.Start(RetryDelay(attempt));
  return true;
}

bool CallStoreRecorder::SpillMemory(std::vector<sql::CallWrite>& front) {
  std::vector<sql::CallWrite> held = std::move(front);
  held.reserve(held.size() + pending_.size());
  std::move(pending_.begin(), pending_.end(), std::back_inserter(held));
  // Not synced (the loop thread; a disk that fails): a crash of the
  // process loses nothing written, only a power loss might. While spilling
  // the file already holds later records: these go in front of them (and
  // nothing was read back yet: memory held these).
  base::Status saved;
  if (spilling_) {
    saved = shared_->unwritten->PutInFront(held, spill_offset_, /*sync=*/false);
  } else if (!held.empty()) {
    saved = shared_->unwritten->Append(held, /*sync=*/false);
  }
  if (!saved) {
    TK_LOG_ERROR("calls: {} call history writes wait in memory for the database: {}", held.size(),
                 saved.error().message);
    // Back as they were: the failed ones, then those that waited.
    const size_t failed = held.size() - pending_.size();
    front.assign(std::make_move_iterator(held.begin()),
                 std::make_move_iterator(held.begin() + static_cast<ptrdiff_t>(failed)));
    std::move(held.begin() + static_cast<ptrdiff_t>(failed), held.end(), pending_.begin());
    return false;
  }
  if (spilling_) {
    spill_offset_ = 0;  // the lines before it went with the rewrite
  }
  shared_->stats.writes_saved += held.size();
  spilled_ += held.size();
  front_position_ += pending_.size();
  pending_.clear();
  waiting_.clear();
  single_ = 0;  // the read-back batches start whole again
  attempt_ = 0;
  commit_timer_.Stop();
  spilling_ = true;
  memory_in_file_ = false;
  return true;
}

void CallStoreRecorder::OnSlowBatch() {
  if (posted_.empty() || shared_->unwritten == nullptr || shared_->closing() ||
      (spilling_ && memory_in_file_)) {
    return;  // nothing out, no file, or what memory holds is in the file already
  }
  // The writes behind the batch that hangs: batches posted after it whose
  // jobs have not started (a history read forces them out), then pending_.
  // Taken under the mutex, so a job either starts with its writes or finds
  // them saved, never both.
  std::vector<sql::CallWrite> front;
  std::vector<BatchResult*> taken;
  {
    std::lock_guard lock(shared_->mutex);
    for (const std::shared_ptr<BatchResult>& batch : posted_) {
      if (!batch->started && !batch->saved && !batch->done) {
        std::move(batch->writes.begin(), batch->writes.end(), std::back_inserter(front));
        taken.push_back(batch.get());
      }
    }
    if (spilling_ && front.empty() && pending_.empty()) {
      return;  // memory holds nothing that is not in the file
    }
    const size_t waiting = front.size() + pending_.size();
    if (!SpillMemory(front)) {
      // Back to their batches, which then run as posted.
      auto next = front.begin();
      for (BatchResult* batch : taken) {
        std::move(next, next + static_cast<ptrdiff_t>(batch->writes.size()), batch->writes.begin());
        next += static_cast<ptrdiff_t>(batch->writes.size());
      }
      return;
    }
    for (BatchResult* batch : taken) {
      batch->saved = true;
      // Known now: a barrier waiting on it answers at once (not written).
      batch->done = true;
      batch->failed = true;
      batch->writes = {};
    }
    TK_LOG_WARN(
        "calls: the database has not answered a call history batch for {} ms; the {} writes "
        "behind it and the next ones wait in {} until it does",
        options_.slow_batch.count(), waiting, shared_->unwritten->path());
  }
  shared_->turn.notify_all();  // the saved batches' jobs need not wait their turn
}

std::chrono::milliseconds CallStoreRecorder::RetryDelay(size_t attempt) const {
  // The last delay repeats for as long as the database is away.
  const size_t delays = options_.retry_delays.size();
  return options_.retry_delays[attempt == 0 ? 0 : std::min(attempt, delays) - 1];
}

void CallStoreRecorder::Requeue(std::vector<sql::CallWrite> writes, size_t attempt) {
  // Back to the front, in order, ahead of what waits (positions in
  // waiting_ stay valid: the front position moves back by as many).
  for (auto it = writes.rbegin(); it != writes.rend(); ++it) {
    pending_.push_front(std::move(*it));
    --front_position_;
  }
  attempt_ = attempt;
  // What waits meanwhile is bounded by max_pending.
  retry_timer_.Start(RetryDelay(attempt));
}

void LogUnfinishedCallsEnded(const base::Result<int>& ended, std::string_view whose) {
  if (!ended) {
    TK_LOG_WARN("calls: the unfinished calls {} were not ended: {}", whose, ended.error().message);
  } else if (*ended > 0) {
    TK_LOG_WARN(
        "calls: {} calls {} were still ringing or in progress, never ended; recorded as ended "
        "(reason server_restart)",
        *ended, whose);
  }
}

}  // namespace turnkey::signal
