// WorkQueue: a fixed pool of worker threads for blocking work (database
// calls, password hashing) with a bounded queue that refuses when full
// (STYLE.md: the caller answers 503, never waits).
//
// TryPost(loop, job, done): `job` runs on a worker thread; its result is
// handed to `done`, which runs on `loop`'s thread (EventLoop::Post). Jobs
// start in the order posted (but see job kinds below); with several
// workers they may finish in any order.
//
// Shutdown rule: StopAccepting() refuses new jobs from then on and either
// keeps the jobs already queued (kRunQueued, the default) or destroys them
// unrun (kDropQueued). Shutdown() does that, then waits for the running (and
// kept) jobs and joins the workers; the destructor is Shutdown(kRunQueued).
// The `done` callbacks of jobs that ran are posted to their loops as usual;
// the loop decides whether they still run. A dropped job's `job` and `done`
// are destroyed on the thread that dropped them. Shut the queue down before
// destroying any loop it posts to, and never from a worker.
//
// Job kinds: a kRead job only reads and never waits for a write lock (a
// read on an SQLite WAL snapshot or an InnoDB consistent read); a kWrite
// job (the default) may wait for one, as a write does while another process
// holds the database locked. At most threads - read_reserve workers run
// kWrite jobs at once, so reads queued behind stalled writes (a profile, a
// Socket.IO CONNECT) still get a worker. Within what may start,
// jobs start in the order they were posted.
//
// Threads: TryPost from any thread; it only takes a short lock. A job must
// not throw: an exception is caught and logged on the worker, and its `done`
// is then destroyed unrun (on the worker thread).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "base/status.h"
#include "net/event_loop.h"

namespace turnkey::net {

struct WorkQueueOptions {
  // Worker threads. Default 4.
  size_t threads = 4;
  // Jobs waiting for a worker (running ones not counted); TryPost refuses
  // beyond this. Default 1024.
  size_t max_queued = 1024;
  // Workers that take only kRead jobs while the others are all busy with
  // kWrite ones; capped at threads - 1 (one thread: no reserve). Default 1.
  size_t read_reserve = 1;
  // Worker thread names are "<name>-<n>" (at most 15 characters are kept).
  std::string name = "tk-work";
};

enum class JobKind {
  kWrite,  // may wait for a database write lock (the default)
  kRead,   // never does; see "Job kinds" above
};

class WorkQueue {
 public:
  using Task = std::move_only_function<void()>;
  enum class ShutdownMode {
    kRunQueued,   // queued jobs still run before the workers exit
    kDropQueued,  // queued jobs are destroyed unrun
  };

  // Starts the workers. Fails if threads or max_queued is 0, or a thread
  // cannot be started.
  static base::Result<std::unique_ptr<WorkQueue>> Create(const WorkQueueOptions& options);
  // Shutdown(kRunQueued) unless already shut down.
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Queues `job` (callable with no arguments, returning R or void); after it
  // ran, `done(R)` (or `done()`) runs on `loop`. Both may be move-only.
  // Returns false when the queue is full or shut down; `job` and `done` are
  // then not moved from, so a caller that passed a named object (rvalue
  // reference) still owns it (see PostHttpJob in http_job.h).
  template <typename Job, typename Done>
  [[nodiscard]] bool TryPost(EventLoop& loop, Job&& job, Done&& done,
                             JobKind kind = JobKind::kWrite);

  // Queues `job` with nothing to report back. Same refusal rules; `job` is
  // destroyed on refusal.
  [[nodiscard]] bool TryPost(Task job, JobKind kind = JobKind::kWrite);

  // See the shutdown rule above. StopAccepting never blocks; Shutdown
  // blocks until the workers exited. Both are idempotent; any thread but a
  // worker.
  void StopAccepting(ShutdownMode mode = ShutdownMode::kRunQueued);
  void Shutdown(ShutdownMode mode = ShutdownMode::kRunQueued);

  size_t queued() const;
  size_t threads() const { return workers_.size(); }
  size_t max_queued() const { return max_queued_; }
  // Workers that may run kWrite jobs at once.
  size_t max_writers() const { return max_writers_; }
  // TryPost calls refused so far (full or shut down).
  uint64_t rejected() const;

 private:
  struct Queued {
    uint64_t seq;  // post order across both queues
    Task task;
  };

  WorkQueue(size_t max_queued, size_t max_writers)
      : max_queued_(max_queued), max_writers_(max_writers) {}
  // Under the lock: if there is room, pushes make_task() and returns true.
  bool Enqueue(JobKind kind, const std::function<Task()>& make_task);
  // Under the lock: the queue of the job that may start next, if any (the
  // older of the two fronts; writes only below max_writers_).
  std::deque<Queued>* NextQueue();
  void WorkerMain() noexcept;
  // Posts a move-only task to `loop` (EventLoop::Post wants a copyable one).
  static void PostToLoop(EventLoop& loop, Task task);

  const size_t max_queued_;
  const size_t max_writers_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Queued> reads_;   // guarded by mutex_
  std::deque<Queued> writes_;  // guarded by mutex_
  uint64_t next_seq_ = 0;      // guarded by mutex_
  size_t running_writes_ = 0;  // guarded by mutex_
  bool stopping_ = false;      // guarded by mutex_
  uint64_t rejected_ = 0;      // guarded by mutex_
  std::vector<std::thread> workers_;
};

template <typename Job, typename Done>
bool WorkQueue::TryPost(EventLoop& loop, Job&& job, Done&& done, JobKind kind) {
  using Result = std::invoke_result_t<std::decay_t<Job>&>;
  // The factory runs only when there is room, so job and done are moved
  // from only on success.
  return Enqueue(kind, [&]() -> Task {
    return [&loop, job = std::forward<Job>(job), done = std::forward<Done>(done)]() mutable {
      if constexpr (std::is_void_v<Result>) {
        job();
        PostToLoop(loop, [done = std::move(done)]() mutable { done(); });
      } else {
        Result result = job();
        PostToLoop(loop, [done = std::move(done), result = std::move(result)]() mutable {
          done(std::move(result));
        });
      }
    };
  });
}

}  // namespace turnkey::net
