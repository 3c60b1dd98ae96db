#include "net/work_queue.h"

#include <pthread.h>

#include <algorithm>
#include <exception>
#include <iterator>
#include <system_error>

#include "base/log.h"

namespace turnkey::net {

base::Result<std::unique_ptr<WorkQueue>> WorkQueue::Create(const WorkQueueOptions& options) {
  if (options.threads == 0 || options.max_queued == 0) {
    return base::InvalidArgument("work queue needs at least one thread and one queue slot");
  }
  const size_t reserve = std::min(options.read_reserve, options.threads - 1);
  std::unique_ptr<WorkQueue> queue(new WorkQueue(options.max_queued, options.threads - reserve));
  try {
    for (size_t i = 0; i < options.threads; ++i) {
      queue->workers_.emplace_back([raw = queue.get()] { raw->WorkerMain(); });
      std::string name = (options.name + "-" + std::to_string(i)).substr(0, 15);
      pthread_setname_np(queue->workers_.back().native_handle(), name.c_str());
    }
  } catch (const std::system_error& e) {
    // The destructor joins the workers that did start.
    return base::Unavailable(std::string("cannot start a work queue thread: ") + e.what());
  }
  return queue;
}

WorkQueue::~WorkQueue() { Shutdown(ShutdownMode::kRunQueued); }

bool WorkQueue::TryPost(Task job, JobKind kind) {
  return Enqueue(kind, [&job]() -> Task { return std::move(job); });
}

bool WorkQueue::Enqueue(JobKind kind, const std::function<Task()>& make_task) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || reads_.size() + writes_.size() >= max_queued_) {
      ++rejected_;
      return false;
    }
    auto& queue = kind == JobKind::kRead ? reads_ : writes_;
    queue.push_back(Queued{next_seq_++, make_task()});
  }
  ready_.notify_one();
  return true;
}

void WorkQueue::StopAccepting(ShutdownMode mode) {
  std::deque<Queued> dropped;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    if (mode == ShutdownMode::kDropQueued) {
      dropped.swap(reads_);
      std::move(writes_.begin(), writes_.end(), std::back_inserter(dropped));
      writes_.clear();
    }
  }
  ready_.notify_all();
  // Destroyed outside the lock: a job's captures may post to a loop.
  dropped.clear();
}

void WorkQueue::Shutdown(ShutdownMode mode) {
  StopAccepting(mode);
  for (auto& worker : workers_) {
    if (worker.joinable()) {
      worker.join();
    }
  }
}

size_t WorkQueue::queued() const {
  std::lock_guard lock(mutex_);
  return reads_.size() + writes_.size();
}

uint64_t WorkQueue::rejected() const {
  std::lock_guard lock(mutex_);
  return rejected_;
}

std::deque<WorkQueue::Queued>* WorkQueue::NextQueue() {
  const bool write_may_start = !writes_.empty() && running_writes_ < max_writers_;
  if (reads_.empty()) {
    return write_may_start ? &writes_ : nullptr;
  }
  if (write_may_start && writes_.front().seq < reads_.front().seq) {
    return &writes_;
  }
  return &reads_;
}

void WorkQueue::WorkerMain() noexcept {
  while (true) {
    Task task;
    bool write = false;
    {
      std::unique_lock lock(mutex_);
      std::deque<Queued>* next = nullptr;
      // Writes held back by max_writers_ wait for a running write to end
      // (its worker takes them itself); stopping ends a worker only once
      // nothing is left.
      ready_.wait(lock, [&] {
        next = NextQueue();
        return next != nullptr || (stopping_ && reads_.empty() && writes_.empty());
      });
      if (next == nullptr) {
        // Stopping with nothing left: the other idle workers may be waiting
        // for a notify that no finished write will send.
        lock.unlock();
        ready_.notify_all();
        return;
      }
      task = std::move(next->front().task);
      next->pop_front();
      write = next == &writes_;
      if (write) {
        ++running_writes_;
      }
    }
    try {
      task();
    } catch (const std::exception& e) {
      TK_LOG_ERROR("work queue job threw: {}", e.what());
    } catch (...) {
      TK_LOG_ERROR("work queue job threw a non-standard exception");
    }
    // Destroyed before the write counts as ended: its captures are the job's.
    task = nullptr;
    if (write) {
      {
        std::lock_guard lock(mutex_);
        --running_writes_;
      }
      ready_.notify_one();
    }
  }
}

void WorkQueue::PostToLoop(EventLoop& loop, Task task) {
  auto shared = std::make_shared<Task>(std::move(task));
  loop.Post([shared] { (*shared)(); });
}

}  // namespace turnkey::net
