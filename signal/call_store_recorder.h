// CallStoreRecorder: the CallRecorder that persists the call history
// (DESIGN.md section 6) through sql::Store on the work queue, with group
// commit: a record waits up to `commit_delay` (or until `max_batch` are
// waiting) and goes out with everything that arrived meanwhile as one batch
// (Store::ApplyCallWrites, one transaction). While one batch is being
// written, new records wait for it. Batches run one at a time in the order
// they were posted (a job waits for the one before it; WriteBarrier and
// Flush may post while one is in flight), so writes reach the database in
// the order CallManager made them; a batch behind one that failed is not
// tried and goes back with it, in order, to be retried.
//
// Mapping to the store: CallCreated inserts the call (status ringing),
// CallAnswered writes status active with the answer time, CallEnded writes
// the final state, IceReported the side's ICE report. A record for a call
// whose insert has not gone out yet is folded into that insert (a short call
// costs one row, not four statements), and a state update into the call's
// state update still waiting (answered, then ended: one UPDATE);
// stats().records_merged counts them.
// History reads call WriteBarrier() so they see every record made before
// them. Final statuses
// (metrics::CallStatus -> sql::CallStatus): completed, missed, rejected,
// busy and cancelled map to themselves; unavailable (the callee had no
// device online) is stored as missed and connection_lost as failed, both
// with their reason kept in end_reason. Monotonic times become Unix
// milliseconds against an anchor taken from the clock at construction and
// taken again whenever FollowWallClock() finds the wall clock stepped.
//
// Failures are never dropped silently: a write the store refuses is logged
// and counted (stats().writes_failed); a batch that fails as a whole (the
// database is unreachable, locked or full) waits in memory and is retried
// after each of `retry_delays`, then every last delay, for as long as the
// outage lasts. A full work queue is retried the same way. When the
// database is away, the failed writes and those waiting behind them go to
// `unwritten_path` (where a crash of the process does not lose them; a
// call's later writes would be refused without its insert), and so does
// every record after them until the file has been read back: after each
// retry delay, and once everything in memory is written, the file is read a
// batch at a time and written in order, then removed (counted in
// writes_saved, then in writes_applied). So does every record once
// `max_pending` wait in memory (a database far behind), and once a batch has
// waited `slow_batch` for an answer (a database that hangs): then the batches
// posted behind it that have not started and the pending records go to the
// file, so a crash loses at most that batch (and what came during the first
// `slow_batch`); if the database then fails, the writes still in memory go
// in front of the file's. Without a file, records wait in memory,
// and beyond `max_pending` are refused, logged and counted lost.
//
// Lifetime: create and use on the loop thread; `loop`, `queue`, `store`,
// `clock` and `metrics` must outlive every job posted (SignalService shuts
// its queue down before freeing its store). Destroying the recorder posts
// what is still pending (Flush) and never waits; jobs already queued still
// run and their answers are ignored, but a batch that has not started
// `shutdown_budget` after the destruction is given up unwritten, so a
// database that hangs cannot hold the stop for long. Within that budget a
// batch the database cannot take for a while (locked, down) is tried again
// by its job, as no retry comes after the stop. Order holds at the stop too:
// a batch behind one that was not written is not tried but given up with it.
// Writes given up at the stop are saved to `unwritten_path` for the next
// start when it is set (counted in writes_saved), else (or when the file
// cannot be written) counted lost.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "metrics/shard.h"
#include "metrics/turnkey_metrics.h"
#include "net/event_loop.h"
#include "net/timer.h"
#include "net/work_queue.h"
#include "signal/call_sinks.h"
#include "sql/store.h"

namespace turnkey::signal {

struct CallStoreRecorderOptions {
  // Most writes per transaction. >= 1. Default 512.
  size_t max_batch = 512;
  // How long the first waiting record waits for others before its batch is
  // posted (a full batch goes at once). The window of history a crash can
  // lose. Default 20 ms.
  std::chrono::milliseconds commit_delay{20};
  // Records waiting in memory beyond this go to unwritten_path (or without
  // one are refused: logged, counted). Default 100000.
  size_t max_pending = 100000;
  // After a batch failed as a whole (or the queue was full), wait this long
  // before each retry; the last delay repeats until the batch is written.
  // Not empty. Default 250 ms, 1 s, 4 s, 15 s.
  std::vector<std::chrono::milliseconds> retry_delays = {
      std::chrono::milliseconds(250), std::chrono::seconds(1), std::chrono::seconds(4),
      std::chrono::seconds(15)};
  // After the recorder is destroyed, batches still waiting to start this
  // long afterwards are given up without being tried. Default 5 s.
  std::chrono::milliseconds shutdown_budget{5000};
  // A batch out this long without an answer (the database hangs) sends the
  // records waiting behind it, and every one after them, to unwritten_path
  // until the file has been read back. 0 = never. Default 2 s.
  std::chrono::milliseconds slow_batch{2000};
  // Writes given up at the stop, and those that wait while the database is
  // away or beyond max_pending, are appended here (UnwrittenCallsFile): the
  // first are written at the next start (ReplayUnwrittenCalls), the others
  // once the database takes writes again. "" = none: they wait in memory,
  // and beyond max_pending or at the stop are counted lost. Default "".
  std::string unwritten_path;
};

// Counters since creation; any thread may read them.
struct CallStoreRecorderStats {
  std::atomic<uint64_t> batches{0};         // transactions committed
  std::atomic<uint64_t> writes_applied{0};  // writes the store accepted
  std::atomic<uint64_t> writes_failed{0};   // writes the store refused (logged)
  std::atomic<uint64_t> writes_dropped{0};  // never written: too many pending, or the stop
  std::atomic<uint64_t> writes_saved{0};    // saved in unwritten_path (outage, max_pending, stop)
  std::atomic<uint64_t> retries{0};         // batches retried
  std::atomic<uint64_t> records_merged{0};  // records folded into a waiting write
};

// sql::CallStatus of a final metrics::CallStatus (see the header comment).
sql::CallStatus StoredCallStatus(metrics::CallStatus status);

class CallStoreRecorder final : public CallRecorder {
 public:
  // `db_shard` is a shard any thread may write (Registry::shared_shard()),
  // for turnkey_db_query_seconds measured on the workers.
  CallStoreRecorder(net::EventLoop& loop, net::WorkQueue& queue, sql::Store& store,
                    const base::Clock& clock, const metrics::SignalMetrics& metrics,
                    metrics::Shard& db_shard, CallStoreRecorderOptions options = {});
  ~CallStoreRecorder() override;
  CallStoreRecorder(const CallStoreRecorder&) = delete;
  CallStoreRecorder& operator=(const CallStoreRecorder&) = delete;

  void CallCreated(const CallInfo& call) override;
  void CallAnswered(const CallInfo& call, base::MonoTime answered_at) override;
  void CallEnded(const CallEndRecord& end) override;
  void IceReported(const IceReportRecord& report) override;

  // Posts what is pending now, even while a batch is in flight (the new job
  // waits for the previous one on its worker, so order is kept). For
  // shutdown; normal operation needs no call.
  void Flush();

  // Posts what is pending now and returns a function that, run on a work
  // queue worker, returns once every record made before this call has been
  // committed, refused or given up (or after `max_wait`): true if all of
  // them reached the store (committed or refused), false if some still wait
  // in memory for a retry (the database is away: so when any batch failed
  // meanwhile) or the wait ran out. Loop
  // thread only; the function may outlive the recorder.
  std::function<bool()> WriteBarrier(std::chrono::milliseconds max_wait = std::chrono::seconds(5));

  // Unix milliseconds of a monotonic time from the same clock.
  int64_t UnixMs(base::MonoTime time) const;
  // When the wall clock has moved against the monotonic one by
  // kWallClockStep or more since the anchor was taken (NTP stepped it, an
  // admin set it, the host slept), takes the anchor again, so call times
  // follow the wall clock from now on, logs it, and returns how far it moved
  // (forward positive); otherwise 0. Loop thread.
  base::Duration FollowWallClock();
  static constexpr std::chrono::seconds kWallClockStep{1};
  // Records not yet handed to the work queue, and batches in flight.
  size_t pending() const { return pending_.size(); }
  size_t in_flight() const { return posted_.size(); }
  // Writes not yet in the database, for turnkey_call_history_writes_waiting:
  // those only in memory (pending, in flight, back for a retry), which a
  // crash would lose, and those in unwritten_path (read back or not).
  size_t waiting_in_memory() const { return memory_in_file_ ? 0 : in_memory(); }
  uint64_t waiting_in_file() const {
    return (spilled_ > read_back_ ? spilled_ - read_back_ : 0) +
           (memory_in_file_ ? in_memory() : 0);
  }
  const CallStoreRecorderStats& stats() const;
  // The same counters, kept alive past the recorder (jobs still running at
  // shutdown keep counting).
  std::shared_ptr<const CallStoreRecorderStats> shared_stats() const;

 private:
  // What jobs share with the recorder; outlives it while jobs run.
  struct Shared;
  struct BatchResult;
  struct BatchOutcome;
  struct BatchJob;

  void Add(sql::CallWrite write);
  // Writes in memory: pending, in flight, back for a retry.
  size_t in_memory() const;
  // Folds `write` (valid) into the waiting insert of its call, or a state
  // update into its waiting state update; false if there is none.
  bool Merge(const sql::CallWrite& write);
  enum class When {
    kAfterDelay,  // once commit_delay has passed since the first waiting record (or a batch is
                  // full)
    kNow,         // unless a batch is in flight or a retry waits
    kForce,       // even then (Flush)
  };
  // Posts the next batch, as `when` says.
  void Post(When when);
  void OnBatchDone(BatchOutcome outcome);
  // `unavailable`: the database was away (retried for as long as that
  // lasts); otherwise, after the listed delays, the writes are tried one by
  // one and a single one that still fails is given up.
  void Retry(std::vector<sql::CallWrite> writes, size_t attempt, bool unavailable);
  // Puts `writes` back at the front and starts the retry timer with the
  // delay of `attempt` (the first one for 0).
  void Requeue(std::vector<sql::CallWrite> writes, size_t attempt);
  // At the start of an outage: SpillMemory, then the retry timer, which
  // reads them back. False (`writes` and pending_ as they were) when the
  // file cannot take them.
  bool SpillFailed(std::vector<sql::CallWrite>& writes, size_t attempt);
  // Puts `front` (writes back from the database) and everything in pending_
  // into unwritten_path, in front of what it holds, empties pending_ and
  // starts spilling. False (`front` and pending_ as they were, logged) when
  // the file cannot take them.
  bool SpillMemory(std::vector<sql::CallWrite>& front);
  // slow_timer_: a batch has waited slow_batch for the database.
  void OnSlowBatch();
  // Starts slow_timer_ for the oldest batch out, if any (and a file).
  void ArmSlowTimer();
  // The retry delay after `attempt` attempts.
  std::chrono::milliseconds RetryDelay(size_t attempt) const;
  // Appends a record to unwritten_path (from then on every record goes
  // there until it is read back); when that fails, keeps it in memory if
  // fewer than max_pending wait there, else counts it lost.
  void Spill(sql::CallWrite write);
  // Once nothing waits in memory or is out, reads the next batch of the
  // spilled records back and posts it; removes the file when all are back.
  void ReadBackSpilled();

  net::EventLoop& loop_;
  net::WorkQueue& queue_;
  sql::Store& store_;
  const CallStoreRecorderOptions options_;
  const base::Clock& clock_;
  // (monotonic, Unix ms) pairs, oldest first: a time converts against the
  // latest anchor taken at or before it, so an instant keeps the Unix time
  // it had when it happened (an answer before a step, a lease that ran out
  // before a sleep). The last few only.
  struct Anchor {
    base::MonoTime mono;
    int64_t unix_ms;
  };
  std::vector<Anchor> anchors_;
  std::shared_ptr<Shared> shared_;
  std::deque<sql::CallWrite> pending_;
  // Position (counted since construction) of pending_.front(), and of the
  // write in pending_ that takes merges for a call (its insert, or else its
  // state update), by call id.
  uint64_t front_position_ = 0;
  std::unordered_map<std::string, uint64_t> waiting_;
  // Attempts already made for the writes at the front of pending_ (after a
  // failed batch was put back).
  size_t attempt_ = 0;
  // Writes at the front of pending_ to post one per batch (Retry).
  size_t single_ = 0;
  // Failed batches back from the queue while later ones are still in
  // flight (OnBatchDone).
  std::vector<BatchOutcome> returned_;
  uint64_t next_seq_ = 1;
  // The newest batch handed to the work queue, and every one not back yet.
  std::shared_ptr<BatchResult> last_posted_;
  std::vector<std::shared_ptr<BatchResult>> posted_;
  // Records go to unwritten_path (Spill) until it has been read back; the
  // part read back so far ends here.
  bool spilling_ = false;
  uint64_t spill_offset_ = 0;
  // Records appended since spilling began, and read back since.
  uint64_t spilled_ = 0;
  uint64_t read_back_ = 0;
  // The writes in memory were read back from the file (a crash leaves
  // them there); false while spilling: they came before the file's.
  bool memory_in_file_ = false;
  net::Timer retry_timer_;
  net::Timer commit_timer_;
  net::Timer slow_timer_;
};

// Logs the outcome of Store::EndUnfinishedCalls; `whose` says whose calls
// they were ("of the last run", "of the last coordinator").
void LogUnfinishedCallsEnded(const base::Result<int>& ended, std::string_view whose);

}  // namespace turnkey::signal
